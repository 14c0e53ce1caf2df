use std::sync::Arc;
use std::time::SystemTime;

use super::{EventType, Payload};
use crate::error::EventError;

/// Longest accepted `session_id`, in bytes.
pub const MAX_SESSION_ID_BYTES: usize = 256;
/// Longest accepted `tool_name`, in bytes.
pub const MAX_TOOL_NAME_BYTES: usize = 128;
/// Longest accepted `event_id`, in bytes.
pub const MAX_EVENT_ID_BYTES: usize = 128;
/// Largest accepted `duration_ms` (10^12 ms, about 31.7 years): sums of the
/// 100 durations of the latency window stay far from overflow, so averages
/// and percentiles are finite on every backend.
pub const MAX_DURATION_MS: f64 = 1e12;

/// One telemetry event.
///
/// Parse the pipeline's JSON with [`Event::from_json`], or build one in code
/// with [`Event::new`] and the `with_*` methods. Either way the calculator
/// validates it again before recording anything.
///
/// # Rules at the edges (the same on every backend)
///
/// - `session_id` must not be empty ([`EventError::Empty`]) and is at most
///   [`MAX_SESSION_ID_BYTES`] long.
/// - An empty `tool_name` is the same as an absent one: the run counts, but
///   for no tool (no per-tool metrics, no tool-name limit used).
/// - `duration_ms` is finite, non-negative ([`EventError::InvalidNumber`])
///   and at most [`MAX_DURATION_MS`] ([`EventError::TooLarge`]).
/// - `event_id`, when present, is non-empty and at most
///   [`MAX_EVENT_ID_BYTES`] long; within the backend's dedup horizon an id
///   is applied at most once (see [`Event::with_event_id`]).
///
/// # Example
///
/// ```
/// use composite_metrics::event::{Event, EventType};
///
/// let line = r#"{"event_type":"tool_use","session_id":"s1",
///                "timestamp":"2024-05-01T12:00:00Z","tool_name":"bash",
///                "duration_ms":42.5,"payload":{"success":true}}"#;
/// let event = Event::from_json(line)?;
/// assert_eq!(event.event_type, EventType::ToolUse);
/// assert_eq!(event.duration_ms, Some(42.5));
/// assert_eq!(event.payload.success, Some(true));
///
/// let bad = Event::from_json(r#"{"event_type":"tool_use","session_id":"s1",
///                                "timestamp":"2024-05-01T12:00:00Z","duration_ms":-1}"#);
/// assert!(bad.unwrap_err().to_string().contains("duration_ms"));
/// # Ok::<(), composite_metrics::EventError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// What happened.
    pub event_type: EventType,
    /// The session it belongs to (at most [`MAX_SESSION_ID_BYTES`]).
    pub session_id: Arc<str>,
    /// When the producer saw it.
    pub timestamp: SystemTime,
    /// The tool, for tool runs (at most [`MAX_TOOL_NAME_BYTES`]).
    pub tool_name: Option<Arc<str>>,
    /// How long the tool ran, in milliseconds (finite, non-negative).
    pub duration_ms: Option<f64>,
    /// Outcome details.
    pub payload: Payload,
    /// The producer's id of this event (JSON `event_id`, optional), for
    /// idempotent delivery: see [`with_event_id`](Self::with_event_id).
    pub event_id: Option<Arc<str>>,
}

impl Event {
    /// An event of `event_type` in `session_id`, stamped now, with no details.
    pub fn new(event_type: EventType, session_id: impl Into<Arc<str>>) -> Self {
        Self {
            event_type,
            session_id: session_id.into(),
            timestamp: SystemTime::now(),
            tool_name: None,
            duration_ms: None,
            payload: Payload::default(),
            event_id: None,
        }
    }

    /// A tool run of `tool` (`tool_use`).
    pub fn tool_use(session_id: impl Into<Arc<str>>, tool: impl Into<Arc<str>>) -> Self {
        Self::new(EventType::ToolUse, session_id).with_tool(tool)
    }

    /// Sets the tool name.
    pub fn with_tool(mut self, tool: impl Into<Arc<str>>) -> Self {
        self.tool_name = Some(tool.into());
        self
    }

    /// Sets the duration in milliseconds.
    pub fn with_duration_ms(mut self, ms: f64) -> Self {
        self.duration_ms = Some(ms);
        self
    }

    /// Sets `payload.success`.
    pub fn with_success(mut self, success: bool) -> Self {
        self.payload.success = Some(success);
        self
    }

    /// Sets `payload.accepted`.
    pub fn with_accepted(mut self, accepted: bool) -> Self {
        self.payload.accepted = Some(accepted);
        self
    }

    /// Sets `payload.prompt_length`.
    pub fn with_prompt_length(mut self, length: u64) -> Self {
        self.payload.prompt_length = Some(length);
        self
    }

    /// Sets the event id (at most [`MAX_EVENT_ID_BYTES`], not empty).
    ///
    /// Within the backend's dedup horizon (default 24 h,
    /// [`MemoryConfig::with_dedup_horizon`](crate::state::MemoryConfig::with_dedup_horizon),
    /// `RedisConfig::with_dedup_horizon`), an id is applied at most once per
    /// state (per Redis namespace), decided in the same atomic step that
    /// applies the event: a second delivery changes nothing and is reported as
    /// [`Delivery::Duplicate`](crate::Delivery::Duplicate). So retrying after
    /// a timeout cannot count an event twice.
    ///
    /// ```
    /// use composite_metrics::{Delivery, Event, MetricsCalculator};
    ///
    /// let mut calc = MetricsCalculator::builder().build()?;
    /// let event = Event::tool_use("s1", "bash").with_event_id("evt-42");
    /// let mut out = Vec::new();
    /// assert_eq!(calc.process_into(&event, &mut out)?, Delivery::Applied);
    /// assert_eq!(calc.process_into(&event, &mut out)?, Delivery::Duplicate);
    /// assert!(calc.process(&event)?.is_empty());
    /// assert_eq!((calc.stats().events, calc.stats().duplicates), (1, 2));
    /// # Ok::<(), composite_metrics::Error>(())
    /// ```
    pub fn with_event_id(mut self, id: impl Into<Arc<str>>) -> Self {
        self.event_id = Some(id.into());
        self
    }

    /// The tool this run names: the tool name of a tool run (`tool_use`,
    /// `mcp_execution`) when it is present and not empty. An empty
    /// `tool_name` is treated as absent on every backend.
    pub fn named_tool(&self) -> Option<&Arc<str>> {
        if !self.event_type.is_tool() {
            return None;
        }
        self.tool_name.as_ref().filter(|t| !t.is_empty())
    }

    /// Sets the timestamp.
    pub fn with_timestamp(mut self, timestamp: SystemTime) -> Self {
        self.timestamp = timestamp;
        self
    }

    /// Checks the limits that parsing enforces, for events built in code.
    pub fn validate(&self) -> Result<(), EventError> {
        if self.session_id.is_empty() {
            return Err(EventError::Empty {
                field: "session_id",
            });
        }
        if self.session_id.len() > MAX_SESSION_ID_BYTES {
            return Err(EventError::TooLong {
                field: "session_id",
                len: self.session_id.len(),
                max: MAX_SESSION_ID_BYTES,
            });
        }
        if let Some(tool) = &self.tool_name {
            if tool.len() > MAX_TOOL_NAME_BYTES {
                return Err(EventError::TooLong {
                    field: "tool_name",
                    len: tool.len(),
                    max: MAX_TOOL_NAME_BYTES,
                });
            }
        }
        if let Some(ms) = self.duration_ms {
            if !ms.is_finite() || ms < 0.0 {
                return Err(EventError::InvalidNumber {
                    field: "duration_ms",
                    value: ms,
                });
            }
            if ms > MAX_DURATION_MS {
                return Err(EventError::TooLarge {
                    field: "duration_ms",
                    value: ms,
                    max: MAX_DURATION_MS,
                });
            }
        }
        if let Some(id) = &self.event_id {
            if id.is_empty() {
                return Err(EventError::Empty { field: "event_id" });
            }
            if id.len() > MAX_EVENT_ID_BYTES {
                return Err(EventError::TooLong {
                    field: "event_id",
                    len: id.len(),
                    max: MAX_EVENT_ID_BYTES,
                });
            }
        }
        Ok(())
    }
}
