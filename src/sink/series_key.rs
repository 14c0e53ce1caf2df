use std::sync::Arc;

use crate::metric::{Category, Metric};

/// Identifies one series in a [`MemorySink`](super::MemorySink): category,
/// name and tool label.
///
/// The session label is not part of the key: per-session values of one metric
/// form one series, so the number of series stays bounded however many
/// sessions come and go.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    /// The metric's category.
    pub category: Category,
    /// The metric's name.
    pub name: &'static str,
    /// The tool label, if any.
    pub tool: Option<Arc<str>>,
}

impl SeriesKey {
    /// An unlabelled series.
    pub fn new(category: Category, name: &'static str) -> Self {
        Self {
            category,
            name,
            tool: None,
        }
    }

    /// Labels the key with a tool.
    pub fn with_tool(mut self, tool: &str) -> Self {
        self.tool = Some(Arc::from(tool));
        self
    }

    /// The series a metric belongs to.
    pub fn of(metric: &Metric) -> Self {
        Self {
            category: metric.category,
            name: metric.name,
            tool: metric.tool.clone(),
        }
    }
}
