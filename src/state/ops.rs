/// Operations a backend has served, counted by the backend itself.
///
/// The simulator reads these to report what each strategy costs the backend.
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
