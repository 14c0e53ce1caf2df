/// Counters a scheduler keeps about itself, merged into
/// [`Stats`](crate::Stats) by the calculator.
///
/// "Off the event path" means the calculations a scheduler runs on its own
/// timer: every [`Background`](crate::Background) run (one calculation for
/// the global scope, one per session read for the per-session scope) and
/// every trailing-deadline or takeover calculation of
/// [`Coalesce`](crate::Coalesce)'s timer (threaded or
/// [`poll`](crate::Coalesce::poll)ed). Calculations decided on the event
/// path (a [`Decision::Compute`](super::Decision::Compute), e.g.
/// `Coalesce`'s leading edge) are counted by the calculator itself, not here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SchedulerStats {
    /// Calculations run off the event path that read their inputs, with or
    /// without a score; added to [`Stats::composites`](crate::Stats::composites).
    pub composites: u64,
    /// Of `composites`, those that found no data to score (no metric, no
    /// invented score); added to
    /// [`Stats::composites_without_data`](crate::Stats::composites_without_data).
    pub composites_without_data: u64,
    /// Failures off the event path, added to
    /// [`Stats::composite_errors`](crate::Stats::composite_errors): each
    /// failed run or backend call (lock attempt, composite read, release)
    /// and each batch of composites the sink refused (a
    /// [`BackendError::StateReset`](crate::BackendError::StateReset) is
    /// counted in `state_resets` instead).
    pub errors: u64,
    /// Runs off the event path (a lock attempt, a composite read) that found
    /// the backend's state lost
    /// ([`BackendError::StateReset`](crate::BackendError::StateReset)); the
    /// run applied nothing and is not counted in `errors`.
    pub state_resets: u64,
    /// Runs off the event path that panicked, added to
    /// [`Stats::composite_errors`](crate::Stats::composite_errors).
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
