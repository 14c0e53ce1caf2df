/// Counters a scheduler keeps about itself, merged into
/// [`Stats`](crate::Stats) by the calculator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SchedulerStats {
    /// Composites computed off the event path (background runs).
    pub composites: u64,
    /// Composite runs off the event path that returned an error (a
    /// [`BackendError::StateReset`](crate::BackendError::StateReset) is
    /// counted in `state_resets` instead).
    pub errors: u64,
    /// Runs off the event path (a lock attempt, a composite read) that found
    /// the backend's state lost
    /// ([`BackendError::StateReset`](crate::BackendError::StateReset)); the
    /// run applied nothing and is not counted in `errors`.
    pub state_resets: u64,
    /// Composite runs off the event path that panicked.
    pub panics: u64,
    /// Background ticks skipped because the thread woke too late for them.
    pub skipped_ticks: u64,
    /// Lock attempts made.
    pub lock_attempts: u64,
    /// Lock attempts that succeeded.
    pub locks_acquired: u64,
    /// Releases that found the lease already expired (another worker may hold it).
    pub leases_lost: u64,
}
