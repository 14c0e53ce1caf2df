use std::sync::Arc;
use std::time::SystemTime;

use super::{EventType, Payload};
use crate::error::EventError;

/// Longest accepted `session_id`, in bytes.
pub const MAX_SESSION_ID_BYTES: usize = 256;
/// Longest accepted `tool_name`, in bytes.
pub const MAX_TOOL_NAME_BYTES: usize = 128;

/// One telemetry event.
///
/// Parse the pipeline's JSON with [`Event::from_json`], or build one in code
/// with [`Event::new`] and the `with_*` methods. Either way the calculator
/// validates it again before recording anything.
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

    /// Sets the timestamp.
    pub fn with_timestamp(mut self, timestamp: SystemTime) -> Self {
        self.timestamp = timestamp;
        self
    }

    /// Checks the limits that parsing enforces, for events built in code.
    pub fn validate(&self) -> Result<(), EventError> {
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
        }
        Ok(())
    }
}
