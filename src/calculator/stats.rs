/// What a calculator has done, counted exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Events recorded.
    pub events: u64,
    /// Events rejected as invalid or over a backend limit (state unchanged).
    pub rejected: u64,
    /// Composite calculations run (on the event path and in the background).
    pub composites: u64,
    /// Composite calculations that failed (backend error, or panic in the background).
    pub composite_errors: u64,
    /// Scheduler coordination calls that failed (the composite was skipped).
    pub coordination_errors: u64,
    /// Backend failures that lost an event or batch (returned as errors).
    pub backend_errors: u64,
    /// Metric batches the sink failed to record.
    pub sink_errors: u64,
    /// Events not applied because their [`event_id`](crate::Event::event_id)
    /// was already applied within the dedup horizon (not in `events`).
    pub duplicates: u64,
    /// Times the backend reported that its state was lost
    /// ([`BackendError::StateReset`](crate::BackendError::StateReset)); the
    /// call that saw it applied nothing and is not counted elsewhere.
    pub state_resets: u64,
}
