//! Metric names, grouped by category. The full name is `category/name`,
//! e.g. `tools/tool_latency_p50`.

/// Tool latency, 50th percentile (nearest rank) of the last 100 durations, ms.
pub const TOOL_LATENCY_P50: &str = "tool_latency_p50";
/// Tool latency, 95th percentile (nearest rank) of the last 100 durations, ms.
pub const TOOL_LATENCY_P95: &str = "tool_latency_p95";
/// Tool latency, 99th percentile (nearest rank) of the last 100 durations, ms.
pub const TOOL_LATENCY_P99: &str = "tool_latency_p99";
/// Tool latency, mean of the last 100 durations, ms.
pub const TOOL_LATENCY_AVG: &str = "tool_latency_avg";
/// Success rate of one tool (labelled with the tool), %, explicit outcomes only.
pub const TOOL_SUCCESS_RATE: &str = "tool_success_rate";
/// Success rate over all tools, %, explicit outcomes only.
pub const OVERALL_SUCCESS_RATE: &str = "overall_success_rate";
/// Share of tool runs that used this tool (labelled with the tool), %.
pub const TOOL_FREQUENCY: &str = "tool_frequency";
/// Accepted share of the last 100 explicit accept/reject decisions, %.
pub const ACCEPTANCE_RATE: &str = "acceptance_rate";
/// Rejected share of the last 100 explicit accept/reject decisions, %.
pub const REJECTION_RATE: &str = "rejection_rate";
/// Length of a user prompt (labelled with the session), characters.
pub const PROMPT_LENGTH: &str = "prompt_length";
/// Prompts so far in the session (labelled with the session).
pub const PROMPTS_PER_SESSION: &str = "prompts_per_session";
/// Errors reported in the session (events of type `error`), at `session_end`
/// (labelled with the session).
pub const ERRORS_PER_SESSION: &str = "errors_per_session";
/// Session length at `session_end` (labelled with the session), seconds.
pub const SESSION_DURATION: &str = "session_duration";
/// Tool runs per minute over the session, at `session_end` (labelled with the session).
pub const TOOLS_PER_MINUTE: &str = "tools_per_minute";
/// Events per second over the last 60 seconds.
pub const EVENTS_PER_SECOND: &str = "events_per_second";
/// The composite productivity score, 0..=100.
pub const PRODUCTIVITY_SCORE: &str = "productivity_score";
