use std::ops::{Add, AddAssign};

/// Operations a backend has served, counted by the backend itself.
///
/// The simulator reads these to report what each strategy costs the backend.
/// Counts of several backends add up with `+`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpCounts {
    /// Event updates applied (a batch counts once per event).
    pub records: u64,
    /// Round trips spent applying events (a batch counts once).
    pub record_round_trips: u64,
    /// Composite input reads.
    pub composite_reads: u64,
    /// Lock attempts (each also checks and sets the "last computed" marker).
    pub lock_attempts: u64,
    /// Lock attempts that took the lock.
    pub locks_acquired: u64,
    /// Lock releases.
    pub unlocks: u64,
    /// Reads of the "last computed" marker.
    pub marker_reads: u64,
    /// Coordination keys a lock attempt found holding something this crate
    /// did not write, and neutralised: a lock key without a TTL, of the wrong
    /// type, or whose value is not a [`LockToken`](super::LockToken), had its
    /// TTL capped at the lease (so it blocks calculations for at most one
    /// lease); a marker or fencing key of the wrong type or not holding a
    /// number was replaced when the lock was taken. Each one is also logged
    /// with `log::warn!`. Always 0 on [`MemoryState`](super::MemoryState),
    /// whose keys no one else can write.
    pub foreign_keys: u64,
}

impl OpCounts {
    /// Operations spent on the composite: reads, lock and marker operations.
    pub fn composite_ops(&self) -> u64 {
        self.composite_reads + self.lock_attempts + self.unlocks + self.marker_reads
    }

    /// Coordination operations only: lock and marker.
    pub fn coordination_ops(&self) -> u64 {
        self.lock_attempts + self.unlocks + self.marker_reads
    }
}

impl Add for OpCounts {
    type Output = OpCounts;

    fn add(mut self, other: OpCounts) -> OpCounts {
        self += other;
        self
    }
}

impl AddAssign for OpCounts {
    fn add_assign(&mut self, o: OpCounts) {
        self.records += o.records;
        self.record_round_trips += o.record_round_trips;
        self.composite_reads += o.composite_reads;
        self.lock_attempts += o.lock_attempts;
        self.locks_acquired += o.locks_acquired;
        self.unlocks += o.unlocks;
        self.marker_reads += o.marker_reads;
        self.foreign_keys += o.foreign_keys;
    }
}
