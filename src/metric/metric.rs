use std::sync::Arc;
use std::time::Duration;

use super::Category;

/// One metric value, as the calculator emits it and a sink records it.
///
/// `name` is one of the constants in [`names`](super::names); per-tool metrics
/// carry `tool`, per-session metrics carry `session`. Labels share the event's
/// strings, so building a metric never copies them.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The metric's group.
    pub category: Category,
    /// The metric's name within its category.
    pub name: &'static str,
    /// The value.
    pub value: f64,
    /// The tool this value is about, for per-tool metrics.
    pub tool: Option<Arc<str>>,
    /// The session this value is about, for per-session metrics.
    pub session: Option<Arc<str>>,
    /// When it was computed, by the calculator's clock (since the UNIX epoch).
    pub at: Duration,
    /// For a composite computed under a lock: the lock's fencing generation
    /// ([`LockOutcome::Acquired`](crate::state::LockOutcome::Acquired)).
    /// Sinks that fence ([`MemorySink`](crate::MemorySink), `RedisSink`)
    /// refuse a metric whose generation is older than the newest they have
    /// recorded for its scope (its `session`, or global without one). `None`
    /// for everything else, which is never refused.
    pub generation: Option<u64>,
}

impl Metric {
    /// An unlabelled metric.
    pub fn new(category: Category, name: &'static str, value: f64, at: Duration) -> Self {
        Self {
            category,
            name,
            value,
            tool: None,
            session: None,
            at,
            generation: None,
        }
    }

    /// Labels the metric with a tool.
    pub fn with_tool(mut self, tool: Arc<str>) -> Self {
        self.tool = Some(tool);
        self
    }

    /// Labels the metric with a session.
    pub fn with_session(mut self, session: Arc<str>) -> Self {
        self.session = Some(session);
        self
    }

    /// Stamps the fencing generation of the lock it was computed under
    /// (`None` leaves it unfenced).
    pub fn with_generation(mut self, generation: Option<u64>) -> Self {
        self.generation = generation;
        self
    }

    /// `category/name`, e.g. `tools/tool_latency_p50`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.category, self.name)
    }

    /// Whether this is `category/name`.
    pub fn is(&self, category: Category, name: &str) -> bool {
        self.category == category && self.name == name
    }
}
