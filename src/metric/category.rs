use std::fmt;

/// The group a [`Metric`](super::Metric) belongs to, as the pipeline names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Category {
    /// Tool latency, success and frequency (`tools`).
    Tools,
    /// Prompts, acceptance and session summaries (`session`).
    Session,
    /// Throughput (`realtime`).
    Realtime,
    /// The composite productivity score (`composite`).
    Composite,
}

impl Category {
    /// Every category, in a fixed order.
    pub const ALL: [Category; 4] = [
        Category::Tools,
        Category::Session,
        Category::Realtime,
        Category::Composite,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tools => "tools",
            Self::Session => "session",
            Self::Realtime => "realtime",
            Self::Composite => "composite",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
