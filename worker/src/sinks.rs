//! Sinks the worker adds: a fan-out to several sinks, JSON lines on stdout,
//! and a table of latest values (for `replay`).

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use composite_metrics::{Metric, MetricSink, RedisSink, SinkError};
use parking_lot::Mutex;

/// Records every batch in each of its sinks; the first error is returned
/// after all were tried.
#[derive(Debug, Default)]
pub struct FanOut {
    sinks: Vec<Box<dyn MetricSink>>,
}

impl FanOut {
    /// Adds a sink.
    pub fn push(&mut self, sink: impl MetricSink + 'static) {
        self.sinks.push(Box::new(sink));
    }
}

impl MetricSink for FanOut {
    fn record(&self, metrics: &[Metric]) -> Result<(), SinkError> {
        let mut first = None;
        for sink in &self.sinks {
            if let Err(e) = sink.record(metrics) {
                tracing::warn!(error = %e, "sink failed");
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

/// The field a metric is known by: `category/name` or `category/name@tool`,
/// as in Redis' `{ns}:latest`.
pub fn field(metric: &Metric) -> String {
    RedisSink::field(metric)
}

/// One metric as a JSON object.
pub fn metric_json(m: &Metric) -> serde_json::Value {
    serde_json::json!({
        "metric": field(m),
        "category": m.category.to_string(),
        "name": m.name,
        "tool": m.tool.as_deref(),
        "session": m.session.as_deref(),
        "value": m.value,
        "at_ms": u64::try_from(m.at.as_millis()).unwrap_or(u64::MAX),
    })
}

/// Prints every metric as one JSON line on stdout.
#[derive(Debug, Default)]
pub struct StdoutSink;

impl MetricSink for StdoutSink {
    fn record(&self, metrics: &[Metric]) -> Result<(), SinkError> {
        let mut out = std::io::stdout().lock();
        for m in metrics {
            writeln!(out, "{}", metric_json(m))
                .map_err(|e| SinkError::new("stdout", e.to_string()))?;
        }
        out.flush()
            .map_err(|e| SinkError::new("stdout", e.to_string()))
    }
}

/// The latest value of every field (session labels dropped, as in `{ns}:latest`).
#[derive(Debug, Default, Clone)]
pub struct LatestTable {
    inner: Arc<Mutex<BTreeMap<String, f64>>>,
}

impl LatestTable {
    /// A copy of the table.
    pub fn snapshot(&self) -> BTreeMap<String, f64> {
        self.inner.lock().clone()
    }
}

impl MetricSink for LatestTable {
    fn record(&self, metrics: &[Metric]) -> Result<(), SinkError> {
        let mut t = self.inner.lock();
        for m in metrics {
            t.insert(field(m), m.value);
        }
        Ok(())
    }
}
