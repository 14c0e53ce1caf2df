use std::time::Duration;

use crate::window::LatencySummary;

/// What recording one event changed, as the per-event metrics need it.
///
/// A backend fills this in the same operation that applies the event, so the
/// calculator never reads state a second time per event.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Observation {
    /// Latency statistics after a tool run with a duration.
    pub latency: Option<LatencySummary>,
    /// This tool's success rate, %, after a named tool run with an explicit outcome.
    pub tool_success_rate: Option<f64>,
    /// Overall success rate, %, after a tool run with an explicit outcome.
    pub overall_success_rate: Option<f64>,
    /// This tool's share of all tool runs, %, after a named tool run.
    pub tool_frequency: Option<f64>,
    /// Acceptance rate over the decision window, %, after an explicit decision.
    pub acceptance_rate: Option<f64>,
    /// Prompts so far in the session, after a user prompt.
    pub prompts_in_session: Option<u64>,
    /// The session's totals, after the `session_end` of a known session.
    pub session_end: Option<SessionSummary>,
    /// Events per second over the last 60 seconds, this event included.
    pub events_per_second: f64,
    /// The event carried an [`event_id`](crate::Event::event_id) already
    /// applied within the dedup horizon: nothing was changed, and every other
    /// field is at its default.
    pub duplicate: bool,
}

/// A finished session's totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionSummary {
    /// From `session_start` (or first sight) to `session_end`, by the calculator's clock.
    pub duration: Duration,
    /// Tool runs in the session.
    pub tool_runs: u64,
    /// Prompts in the session.
    pub prompts: u64,
    /// Errors the producer reported in the session (events of type `error`).
    pub errors: u64,
}
