use std::borrow::Cow;
use std::sync::{Arc, LazyLock};
use std::time::SystemTime;

use super::EventType;
use crate::error::EventError;

/// Longest accepted `session_id`, in bytes.
pub const MAX_SESSION_ID_BYTES: usize = 256;
/// Longest accepted `tool_name`, in bytes.
pub const MAX_TOOL_NAME_BYTES: usize = 128;
/// Longest accepted `event_id`, in bytes.
pub const MAX_EVENT_ID_BYTES: usize = 128;
/// Longest accepted `hook_type`, in bytes.
pub const MAX_HOOK_TYPE_BYTES: usize = 64;
/// The tool a `shell_execution` run counts for.
pub const SHELL_TOOL: &str = "shell";

static SHELL: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from(SHELL_TOOL));
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
    /// The hook that produced it (JSON `hook_type`, optional, at most
    /// [`MAX_HOOK_TYPE_BYTES`]), e.g. `PreToolUse`; see
    /// [`is_pre_hook`](Self::is_pre_hook).
    pub hook_type: Option<Arc<str>>,
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
            hook_type: None,
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

    /// Sets the hook type (e.g. `"PostToolUse"`).
    pub fn with_hook_type(mut self, hook: impl Into<Arc<str>>) -> Self {
        self.hook_type = Some(hook.into());
        self
    }

    /// Whether this is the *pre* hook of a tool call: a tool type
    /// (`tool_use`, `mcp_execution`, `shell_execution`) whose `hook_type`
    /// starts with `Pre`, `pre`, `before` or `Before` (Claude Code's
    /// `PreToolUse`, Cursor's `beforeMCPExecution` and
    /// `beforeShellExecution`). A pre hook is not a run: the post/after hook
    /// of the same call is, so a call counts once. Other event types are
    /// never pre hooks (Cursor's `beforeSubmitPrompt` is still a prompt).
    #[inline(never)]
    pub fn is_pre_hook(&self) -> bool {
        self.event_type.is_tool()
            && self.hook_type.as_deref().is_some_and(|h| {
                ["Pre", "pre", "before", "Before"]
                    .iter()
                    .any(|p| h.starts_with(p))
            })
    }

    /// Whether this event is a tool run: a tool type that is not a
    /// [pre hook](Self::is_pre_hook) (no `hook_type`, a post/after hook, or
    /// any other hook name).
    pub fn is_tool_run(&self) -> bool {
        self.event_type.is_tool() && !self.is_pre_hook()
    }

    /// The tool this run names: for a `tool_use` or `mcp_execution` run its
    /// tool name when present and not empty (an empty `tool_name` is treated
    /// as absent on every backend); for a `shell_execution` run always
    /// [`SHELL_TOOL`]; `None` for anything that is not a
    /// [run](Self::is_tool_run).
    #[inline]
    pub fn named_tool(&self) -> Option<&Arc<str>> {
        match self.event_type {
            EventType::ToolUse | EventType::McpExecution => {}
            EventType::ShellExecution if !self.is_pre_hook() => return Some(&SHELL),
            _ => return None,
        }
        if self.hook_type.is_some() && self.is_pre_hook() {
            return None;
        }
        self.tool_name.as_ref().filter(|t| !t.is_empty())
    }

    /// The event as the calculator hands it to the state backend: what it
    /// counts as, in the seven classic types and [`EventType::Other`].
    ///
    /// - a [pre hook](Self::is_pre_hook): `other` (throughput only; its
    ///   tool name, duration and payload are not used);
    /// - a `shell_execution` run: a `tool_use` of the tool [`SHELL_TOOL`];
    /// - `acceptance_decision`: a `file_edit` (its `payload.accepted` is the
    ///   decision);
    /// - `assistant_response`, `file_read`, `context_compact`: `other`
    ///   (throughput only);
    /// - anything else: the event itself (borrowed).
    ///
    /// Session id, timestamp and event id are kept, so deduplication and
    /// throughput are unchanged.
    ///
    /// ```
    /// use composite_metrics::{Event, EventType};
    ///
    /// let pre = Event::tool_use("s1", "Bash").with_hook_type("PreToolUse");
    /// assert_eq!(pre.recorded().event_type, EventType::Other);
    /// let post = Event::tool_use("s1", "Bash").with_hook_type("PostToolUse");
    /// assert_eq!(post.recorded().event_type, EventType::ToolUse);
    /// let shell = Event::new(EventType::ShellExecution, "s1").with_duration_ms(12.0);
    /// assert_eq!(shell.recorded().named_tool().map(|t| &**t), Some("shell"));
    /// ```
    #[inline]
    pub fn recorded(&self) -> Cow<'_, Event> {
        if self.records_as_itself() {
            Cow::Borrowed(self)
        } else {
            Cow::Owned(self.recorded_owned())
        }
    }

    /// Whether [`recorded`](Self::recorded) is the event itself: a classic
    /// type, not a pre hook.
    #[inline]
    pub(crate) fn records_as_itself(&self) -> bool {
        match self.event_type {
            EventType::ToolUse | EventType::McpExecution => {
                self.hook_type.is_none() || !self.is_pre_hook()
            }
            EventType::FileEdit
            | EventType::CodeChange
            | EventType::UserPrompt
            | EventType::SessionStart
            | EventType::SessionEnd
            | EventType::Error
            | EventType::Other => true,
            _ => false,
        }
    }

    /// The event as recorded, when it is not the event itself.
    #[cold]
    pub(crate) fn recorded_owned(&self) -> Event {
        let throughput = |e: &Event| Event {
            event_type: EventType::Other,
            session_id: Arc::clone(&e.session_id),
            timestamp: e.timestamp,
            tool_name: None,
            duration_ms: None,
            payload: Payload::default(),
            event_id: e.event_id.clone(),
            hook_type: None,
        };
        match self.event_type {
            t if t.is_tool() && self.is_pre_hook() => throughput(self),
            EventType::ShellExecution => Event {
                event_type: EventType::ToolUse,
                tool_name: Some(Arc::clone(&SHELL)),
                duration_ms: self.duration_ms,
                payload: Payload {
                    success: self.payload.success,
                    ..Payload::default()
                },
                ..throughput(self)
            },
            EventType::AcceptanceDecision => Event {
                event_type: EventType::FileEdit,
                payload: Payload {
                    accepted: self.payload.accepted,
                    ..Payload::default()
                },
                ..throughput(self)
            },
            EventType::AssistantResponse | EventType::FileRead | EventType::ContextCompact => {
                throughput(self)
            }
            _ => self.clone(),
        }
    }

    /// The fields this event carries that its type does not use (the
    /// calculator counts them in [`Stats::ignored_fields`](crate::Stats::ignored_fields),
    /// and its strict mode rejects them), in this order:
    ///
    /// - `tool_name` on a type that is not a tool type, or on
    ///   `shell_execution` (whose tool is always [`SHELL_TOOL`]);
    /// - `duration_ms` and `payload.success` on an event that is not a
    ///   [tool run](Self::is_tool_run) (a pre hook included);
    /// - `payload.accepted` on a type that does not carry a decision
    ///   ([`EventType::is_edit`]);
    /// - `payload.prompt_length` on a type other than `user_prompt`.
    ///
    /// An empty `tool_name` counts as absent.
    ///
    /// ```
    /// use composite_metrics::Event;
    ///
    /// let e = Event::tool_use("s1", "bash").with_accepted(true);
    /// assert_eq!(e.ignored_fields().collect::<Vec<_>>(), ["payload.accepted"]);
    /// ```
    pub fn ignored_fields(&self) -> impl Iterator<Item = &'static str> {
        self.ignored_flags()
            .into_iter()
            .filter_map(|(ignored, name)| ignored.then_some(name))
    }

    /// How many [`ignored_fields`](Self::ignored_fields) there are.
    #[inline]
    pub(crate) fn ignored_count(&self) -> u64 {
        // The common event carries only what its type uses: a few compares.
        let t = self.event_type;
        let p = &self.payload;
        let run = t.is_tool() && (self.hook_type.is_none() || !self.is_pre_hook());
        let may_name = t.is_tool() && t != EventType::ShellExecution;
        if (run || self.duration_ms.is_none() && p.success.is_none())
            && (t.is_edit() || p.accepted.is_none())
            && (t == EventType::UserPrompt || p.prompt_length.is_none())
            && (may_name || self.tool_name.is_none())
        {
            return 0;
        }
        self.ignored_flags()
            .iter()
            .filter(|(ignored, _)| *ignored)
            .count() as u64
    }

    #[cold]
    fn ignored_flags(&self) -> [(bool, &'static str); 5] {
        let t = self.event_type;
        let run = self.is_tool_run();
        let named = self.tool_name.as_deref().is_some_and(|n| !n.is_empty());
        [
            (
                named && (!t.is_tool() || t == EventType::ShellExecution),
                "tool_name",
            ),
            (self.duration_ms.is_some() && !run, "duration_ms"),
            (self.payload.success.is_some() && !run, "payload.success"),
            (
                self.payload.accepted.is_some() && !t.is_edit(),
                "payload.accepted",
            ),
            (
                self.payload.prompt_length.is_some() && t != EventType::UserPrompt,
                "payload.prompt_length",
            ),
        ]
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
        if let Some(hook) = &self.hook_type {
            if hook.len() > MAX_HOOK_TYPE_BYTES {
                return Err(EventError::TooLong {
                    field: "hook_type",
                    len: hook.len(),
                    max: MAX_HOOK_TYPE_BYTES,
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

/// The `payload` object of an [`Event`](super::Event).
///
/// Every field is optional, and absent means *unknown*: success and
/// acceptance rates count only explicit values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Payload {
    /// Whether a tool run succeeded.
    pub success: Option<bool>,
    /// Whether an edit was accepted (`false`: rejected).
    pub accepted: Option<bool>,
    /// Length of a user prompt, in characters.
    pub prompt_length: Option<u64>,
}
