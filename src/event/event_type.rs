/// The kind of an [`Event`](super::Event).
///
/// Unknown kinds parse as [`EventType::Other`]: they count toward throughput
/// (`realtime/events_per_second`) and nothing else, so new producers never
/// break old consumers.
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
    /// Any other type; counted toward throughput only.
    Other,
}

impl EventType {
    /// Parses the wire name; unknown names give [`EventType::Other`].
    pub fn from_wire(name: &str) -> Self {
        match name {
            "tool_use" => Self::ToolUse,
            "mcp_execution" => Self::McpExecution,
            "file_edit" => Self::FileEdit,
            "code_change" => Self::CodeChange,
            "user_prompt" => Self::UserPrompt,
            "session_start" => Self::SessionStart,
            "session_end" => Self::SessionEnd,
            _ => Self::Other,
        }
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
            Self::Other => "other",
        }
    }

    /// Whether this is a tool run (`tool_use` or `mcp_execution`).
    pub fn is_tool(self) -> bool {
        matches!(self, Self::ToolUse | Self::McpExecution)
    }

    /// Whether this is an edit that may carry an accept/reject decision
    /// (`file_edit` or `code_change`).
    pub fn is_edit(self) -> bool {
        matches!(self, Self::FileEdit | Self::CodeChange)
    }
}
