/// The kind of an [`Event`](super::Event).
///
/// Unknown kinds parse as [`EventType::Other`]: they count toward throughput
/// (`realtime/events_per_second`) and nothing else, so new producers never
/// break old consumers (a calculator counts them in
/// [`Stats::unknown_types`](crate::Stats::unknown_types), and its strict mode
/// rejects them).
///
/// The known types and what each counts as (see
/// [`Event::recorded`](super::Event::recorded)):
///
/// | wire name | counts as |
/// |---|---|
/// | `tool_use`, `mcp_execution` | a tool run (a pre hook: throughput only) |
/// | `shell_execution` | a run of the tool `shell` (a pre hook: throughput only) |
/// | `file_edit`, `code_change`, `acceptance_decision` | an edit decision (`payload.accepted`) |
/// | `user_prompt` | a prompt |
/// | `session_start`, `session_end` | session bounds |
/// | `error` | an error in its session (`session/errors_per_session`) |
/// | `assistant_response`, `file_read`, `context_compact` | throughput only |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventType {
    /// A built-in tool ran (`tool_use`).
    ToolUse,
    /// An MCP server tool ran (`mcp_execution`).
    McpExecution,
    /// A file was edited (`file_edit`).
    FileEdit,
    /// A code change was proposed (`code_change`).
    CodeChange,
    /// The user sent a prompt (`user_prompt`).
    UserPrompt,
    /// A session started (`session_start`).
    SessionStart,
    /// A session ended (`session_end`).
    SessionEnd,
    /// A shell command ran (`shell_execution`): a run of the tool `shell`.
    ShellExecution,
    /// The user accepted or rejected a proposed change
    /// (`acceptance_decision`): a decision, like a [`FileEdit`](Self::FileEdit).
    AcceptanceDecision,
    /// The assistant answered (`assistant_response`); throughput only.
    AssistantResponse,
    /// A file was read (`file_read`); throughput only.
    FileRead,
    /// The context was compacted (`context_compact`); throughput only.
    ContextCompact,
    /// The producer reported an error (`error`): counted in its session.
    Error,
    /// Any other type; counted toward throughput only.
    Other,
}

impl EventType {
    /// Every known type, in wire order (not [`Other`](Self::Other)).
    pub const KNOWN: [EventType; 13] = [
        Self::ToolUse,
        Self::McpExecution,
        Self::FileEdit,
        Self::CodeChange,
        Self::UserPrompt,
        Self::SessionStart,
        Self::SessionEnd,
        Self::ShellExecution,
        Self::AcceptanceDecision,
        Self::AssistantResponse,
        Self::FileRead,
        Self::ContextCompact,
        Self::Error,
    ];

    /// Parses the wire name; unknown names give [`EventType::Other`].
    pub fn from_wire(name: &str) -> Self {
        Self::known(name).unwrap_or(Self::Other)
    }

    /// Parses the wire name; `None` for a name that is not one of
    /// [`KNOWN`](Self::KNOWN) (also for `"other"`).
    pub fn known(name: &str) -> Option<Self> {
        Some(match name {
            "tool_use" => Self::ToolUse,
            "mcp_execution" => Self::McpExecution,
            "file_edit" => Self::FileEdit,
            "code_change" => Self::CodeChange,
            "user_prompt" => Self::UserPrompt,
            "session_start" => Self::SessionStart,
            "session_end" => Self::SessionEnd,
            "shell_execution" => Self::ShellExecution,
            "acceptance_decision" => Self::AcceptanceDecision,
            "assistant_response" => Self::AssistantResponse,
            "file_read" => Self::FileRead,
            "context_compact" => Self::ContextCompact,
            "error" => Self::Error,
            _ => return None,
        })
    }

    /// The wire name (`"other"` for [`EventType::Other`]).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ToolUse => "tool_use",
            Self::McpExecution => "mcp_execution",
            Self::FileEdit => "file_edit",
            Self::CodeChange => "code_change",
            Self::UserPrompt => "user_prompt",
            Self::SessionStart => "session_start",
            Self::SessionEnd => "session_end",
            Self::ShellExecution => "shell_execution",
            Self::AcceptanceDecision => "acceptance_decision",
            Self::AssistantResponse => "assistant_response",
            Self::FileRead => "file_read",
            Self::ContextCompact => "context_compact",
            Self::Error => "error",
            Self::Other => "other",
        }
    }

    /// Whether this is a tool type (`tool_use`, `mcp_execution`,
    /// `shell_execution`). Its event is a run unless it comes from a pre
    /// hook: see [`Event::is_tool_run`](super::Event::is_tool_run).
    pub fn is_tool(self) -> bool {
        matches!(
            self,
            Self::ToolUse | Self::McpExecution | Self::ShellExecution
        )
    }

    /// Whether this type carries an accept/reject decision (`file_edit`,
    /// `code_change`, `acceptance_decision`).
    pub fn is_edit(self) -> bool {
        matches!(
            self,
            Self::FileEdit | Self::CodeChange | Self::AcceptanceDecision
        )
    }
}
