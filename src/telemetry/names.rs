//! The names of every series this crate exports through the `metrics` facade.
//!
//! Derived metrics are gauges named `composite_metrics_<category>_<name>`
//! (see [`SERIES`]); the crate's own health uses the constants below.

use metrics::Unit;

use crate::metric::{names, Category};

/// Composite scheduling decisions, a counter labelled `strategy` (the
/// scheduler's name) and `outcome` (`compute`, `skip` or `error`). Skips are
/// counted per calculator and added at most once per second of its clock,
/// every 256 skips, at its next decision to compute, and when it is dropped.
pub const DECISIONS: &str = "composite_metrics_decisions_total";
/// Composite lock attempts and releases, a counter labelled `strategy` and
/// `result`: `acquired`, `refused` (another worker holds the lock, or
/// computed less than `min_interval` ago, or, for `Coalesce`'s "lock if
/// dirty", no event is unread), or `lost` (the lease ran out before
/// release). Every lock attempt is counted, on the event path and on the
/// timers (`Background`, `Coalesce`).
pub const LOCKS: &str = "composite_metrics_lock_total";
/// Composite calculations run, with or without a score, a counter labelled
/// `strategy` (the scheduler's name) and `trigger`: `event` (decided on the
/// event path), `compute_now`, or `timer` (off the event path:
/// [`Background`](crate::Background)'s runs, one per session read in a
/// per-session run, and [`Coalesce`](crate::Coalesce)'s timer). Each is
/// counted once, when it has read its inputs; its sum over triggers for one
/// calculator is that calculator's
/// [`Stats::composites`](crate::Stats::composites).
pub const CALCULATIONS: &str = "composite_metrics_calculations_total";
/// Time one composite calculation took (reading its inputs and scoring), a
/// histogram in seconds of real time: one observation per composite read,
/// failed ones included, whoever runs it (the event path, `compute_now`,
/// the timers). A per-session `Background` run reads a page of sessions at
/// once and observes the page's time divided evenly among its sessions.
pub const CALCULATION_SECONDS: &str = "composite_metrics_calculation_seconds";
/// Seconds between an event and the latest composite calculation started in
/// this process (the timers' included), by the calculators' clocks; a gauge
/// each calculator sets at most once per second of its clock (it reads 0
/// until the first calculation).
pub const SECONDS_SINCE_CALCULATION: &str = "composite_metrics_seconds_since_last_calculation";
/// Backend failures, a counter labelled `kind` (`timeout`, `connection`,
/// `capacity`, `config`, `other`).
pub const BACKEND_ERRORS: &str = "composite_metrics_backend_errors_total";
/// Metric batches a sink failed to record, a counter labelled `sink`.
pub const SINK_ERRORS: &str = "composite_metrics_sink_errors_total";
/// Named tool runs ([`Event::named_tool`](crate::Event::named_tool)) the
/// calculators of this process applied (duplicates and rejected events
/// excluded), a counter labelled `tool`. Each calculator counts locally and
/// adds its counts when it publishes the staleness gauge (at most once per
/// second of its clock, or with 256 skips pending) and when it is dropped.
/// A calculator counts at most 10 000 distinct tools; runs of further tools
/// are not counted. A tool's share of the named runs, in PromQL:
/// `100 * sum by (tool) (rate(composite_metrics_tool_runs_total[5m])) / ignoring (tool) group_left sum(rate(composite_metrics_tool_runs_total[5m]))`.
pub const TOOL_RUNS: &str = "composite_metrics_tool_runs_total";
/// Of [`TOOL_RUNS`], the runs whose outcome was an explicit success
/// (`payload.success` true), a counter labelled `tool`, added at the same
/// moments. A tool's success rate over explicit outcomes (as
/// `tool_success_rate`), in PromQL:
/// `100 * sum by (tool) (rate(composite_metrics_tool_successes_total[5m])) / (sum by (tool) (rate(composite_metrics_tool_successes_total[5m])) + sum by (tool) (rate(composite_metrics_tool_failures_total[5m])))`.
pub const TOOL_SUCCESSES: &str = "composite_metrics_tool_successes_total";
/// Of [`TOOL_RUNS`], the runs whose outcome was an explicit failure
/// (`payload.success` false), a counter labelled `tool`, added at the same
/// moments. Runs without an outcome are in neither this nor [`TOOL_SUCCESSES`].
pub const TOOL_FAILURES: &str = "composite_metrics_tool_failures_total";

/// One derived metric as exported: its category and name in the calculator,
/// the exported gauge name, unit, help text, and whether it carries a `tool` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Series {
    /// The metric's category.
    pub category: Category,
    /// The metric's name within its category (one of [`crate::metric::names`]).
    pub name: &'static str,
    /// The exported gauge: `composite_metrics_<category>_<name>`.
    pub exported: &'static str,
    /// The unit, for [`describe`](super::describe).
    pub unit: Unit,
    /// The help text, for [`describe`](super::describe).
    pub help: &'static str,
    /// Whether the calculator emits it per tool (exported with a `tool` label).
    pub per_tool: bool,
}

const fn series(
    category: Category,
    name: &'static str,
    exported: &'static str,
    unit: Unit,
    help: &'static str,
    per_tool: bool,
) -> Series {
    Series {
        category,
        name,
        exported,
        unit,
        help,
        per_tool,
    }
}

/// Every derived metric the calculator emits, as exported. Metrics labelled
/// with a session are exported without it (session ids are unbounded), so
/// such a gauge holds the latest value of any session.
pub const SERIES: [Series; 16] = [
    series(
        Category::Tools,
        names::TOOL_LATENCY_P50,
        "composite_metrics_tools_tool_latency_p50",
        Unit::Milliseconds,
        "Tool latency, 50th percentile of the last 100 durations",
        false,
    ),
    series(
        Category::Tools,
        names::TOOL_LATENCY_P95,
        "composite_metrics_tools_tool_latency_p95",
        Unit::Milliseconds,
        "Tool latency, 95th percentile of the last 100 durations",
        false,
    ),
    series(
        Category::Tools,
        names::TOOL_LATENCY_P99,
        "composite_metrics_tools_tool_latency_p99",
        Unit::Milliseconds,
        "Tool latency, 99th percentile of the last 100 durations",
        false,
    ),
    series(
        Category::Tools,
        names::TOOL_LATENCY_AVG,
        "composite_metrics_tools_tool_latency_avg",
        Unit::Milliseconds,
        "Tool latency, mean of the last 100 durations",
        false,
    ),
    series(
        Category::Tools,
        names::TOOL_SUCCESS_RATE,
        "composite_metrics_tools_tool_success_rate",
        Unit::Percent,
        "Success rate of one tool, explicit outcomes only",
        true,
    ),
    series(
        Category::Tools,
        names::OVERALL_SUCCESS_RATE,
        "composite_metrics_tools_overall_success_rate",
        Unit::Percent,
        "Success rate over all tools, explicit outcomes only",
        false,
    ),
    series(
        Category::Tools,
        names::TOOL_FREQUENCY,
        "composite_metrics_tools_tool_frequency",
        Unit::Percent,
        "Share of the named tool runs recorded through the sink that used this tool; all tools refreshed together, at most once per second",
        true,
    ),
    series(
        Category::Session,
        names::ACCEPTANCE_RATE,
        "composite_metrics_session_acceptance_rate",
        Unit::Percent,
        "Accepted share of the last 100 explicit decisions",
        false,
    ),
    series(
        Category::Session,
        names::REJECTION_RATE,
        "composite_metrics_session_rejection_rate",
        Unit::Percent,
        "Rejected share of the last 100 explicit decisions",
        false,
    ),
    series(
        Category::Session,
        names::PROMPT_LENGTH,
        "composite_metrics_session_prompt_length",
        Unit::Count,
        "Length of the latest user prompt, characters",
        false,
    ),
    series(
        Category::Session,
        names::PROMPTS_PER_SESSION,
        "composite_metrics_session_prompts_per_session",
        Unit::Count,
        "Prompts so far in the session of the latest prompt or session end",
        false,
    ),
    series(
        Category::Session,
        names::ERRORS_PER_SESSION,
        "composite_metrics_session_errors_per_session",
        Unit::Count,
        "Errors reported in the latest ended session",
        false,
    ),
    series(
        Category::Session,
        names::SESSION_DURATION,
        "composite_metrics_session_session_duration",
        Unit::Seconds,
        "Length of the latest ended session",
        false,
    ),
    series(
        Category::Session,
        names::TOOLS_PER_MINUTE,
        "composite_metrics_session_tools_per_minute",
        Unit::Count,
        "Tool runs per minute over the latest ended session",
        false,
    ),
    series(
        Category::Realtime,
        names::EVENTS_PER_SECOND,
        "composite_metrics_realtime_events_per_second",
        Unit::Count,
        "Events per second over the last 60 seconds",
        false,
    ),
    series(
        Category::Composite,
        names::PRODUCTIVITY_SCORE,
        "composite_metrics_composite_productivity_score",
        Unit::Count,
        "The latest composite productivity score, 0 to 100",
        false,
    ),
];

/// The position in [`SERIES`] of `category/name`, and its entry, if it is listed.
#[inline]
pub(crate) fn series_index(category: Category, name: &str) -> Option<(usize, &'static Series)> {
    SERIES
        .iter()
        .enumerate()
        .find(|(_, s)| s.category == category && s.name == name)
}
