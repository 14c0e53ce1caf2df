/// What a calculator has done, counted exactly.
///
/// Each event handed to `process`/`process_json` is counted once, in
/// `events`, `rejected` or `duplicates`, or the call fails on the backend
/// (counted per call in `backend_errors` or `state_resets`); a refused batch
/// counts every one of its events in `rejected`. `late_events`,
/// `unknown_types` and `ignored_fields` are details of those counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Events recorded.
    pub events: u64,
    /// Events rejected as invalid, late, refused by strict mode, or over a
    /// backend limit (state unchanged). When a batch is refused
    /// ([`process_batch`](crate::MetricsCalculator::process_batch): one
    /// invalid event, or a backend limit), **every** event of the batch is
    /// counted here, not only the one at fault.
    pub rejected: u64,
    /// Composite calculations run (their inputs read), with or without a
    /// score, wherever they ran: on the event path, by
    /// [`compute_now`](crate::MetricsCalculator::compute_now), and off the
    /// event path by the scheduler's timer ([`Background`](crate::Background)'s
    /// runs, one per session read in a per-session run, and
    /// [`Coalesce`](crate::Coalesce)'s timer), which the scheduler counts in
    /// [`SchedulerStats::composites`](crate::schedule::SchedulerStats::composites).
    /// Those that produced a score: `composites - composites_without_data`.
    /// A calculation whose read failed is not here but in `composite_errors`
    /// (or `state_resets`).
    pub composites: u64,
    /// Of `composites`, the calculations (wherever they ran) that found no
    /// data to score (no success rate or no acceptance rate yet): no metric,
    /// no invented score; the timers' are
    /// [`SchedulerStats::composites_without_data`](crate::schedule::SchedulerStats::composites_without_data).
    pub composites_without_data: u64,
    /// Composite calculations that failed on the event path or by
    /// `compute_now` (backend error), plus the failures and panics off the
    /// event path
    /// ([`SchedulerStats::errors`](crate::schedule::SchedulerStats::errors) and
    /// [`panics`](crate::schedule::SchedulerStats::panics)).
    pub composite_errors: u64,
    /// Scheduler coordination calls on the event path that failed (the
    /// composite was skipped); one that found the state lost counts in
    /// `state_resets` instead.
    pub coordination_errors: u64,
    /// Backend failures that lost an event or batch (returned as errors).
    pub backend_errors: u64,
    /// Metric batches the sink failed to record.
    pub sink_errors: u64,
    /// Events not applied because their [`event_id`](crate::Event::event_id)
    /// was already applied within the dedup horizon (not in `events`).
    pub duplicates: u64,
    /// Times the backend reported that its state was lost
    /// ([`BackendError::StateReset`](crate::BackendError::StateReset)): by a
    /// record, a composite read or a lock attempt, on the event path, by
    /// `compute_now`, or in the scheduler's runs off the event path
    /// ([`SchedulerStats::state_resets`](crate::schedule::SchedulerStats::state_resets)).
    /// The call that saw it applied nothing and is not counted elsewhere.
    pub state_resets: u64,
    /// Event time only: events rejected as later than the allowed lateness
    /// ([`EventError::Late`](crate::EventError::Late)); also counted in
    /// `rejected`.
    pub late_events: u64,
    /// JSON lines whose `event_type` is not a known type
    /// ([`EventType::KNOWN`](crate::EventType::KNOWN)): recorded as `other`
    /// (in `events`) by default, rejected in strict mode (in `rejected`).
    pub unknown_types: u64,
    /// Fields carried by events whose type does not use them
    /// ([`Event::ignored_fields`](crate::Event::ignored_fields)), one per
    /// field: ignored by default (the event is recorded), the event rejected
    /// in strict mode.
    pub ignored_fields: u64,
}
