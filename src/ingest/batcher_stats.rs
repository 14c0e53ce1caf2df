/// What a [`Batcher`](super::Batcher) has done, counted exactly. Every
/// accepted event ends in exactly one of `applied`, `duplicates`,
/// `rejected` or `failed`, or is still `queued` or in a batch being
/// processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatcherStats {
    /// Events accepted into the queue.
    pub accepted: u64,
    /// `try_send` calls refused because the queue was full (not accepted).
    pub refused_full: u64,
    /// Events in the queue now.
    pub queued: usize,
    /// `process_batch` calls made.
    pub batches: u64,
    /// Events applied.
    pub applied: u64,
    /// Events skipped as duplicates of an event id already applied.
    pub duplicates: u64,
    /// Invalid events, left out of their batch.
    pub rejected: u64,
    /// Events of batches that failed (backend error): not applied.
    pub failed: u64,
}
