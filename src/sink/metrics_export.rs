use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use metrics::Gauge;
use parking_lot::RwLock;

use super::MetricSink;
use crate::error::SinkError;
use crate::metric::Metric;
use crate::telemetry::names::{series_index, SERIES};

/// Per-tool gauges of one tool, indexed like [`SERIES`].
type ToolGauges = Box<[Option<Gauge>]>;

/// Exports every derived metric through the [`metrics`] facade as a gauge
/// named `composite_metrics_<category>_<name>` (feature `metrics`).
///
/// Per-tool metrics (`tool_success_rate`, `tool_frequency`) carry a `tool`
/// label; nothing else is labelled. Session ids are never labels (their
/// number is unbounded): a metric about a session (prompt length, session
/// duration, a per-session score, ...) sets its gauge to that session's
/// value, so the gauge holds the latest value of any session. The names,
/// units and help texts are listed in [`telemetry::names::SERIES`](crate::telemetry::names::SERIES).
///
/// Handles are registered with the recorder that is current when the sink
/// is built (unlabelled series) or when a tool is first seen (per-tool
/// series): install the recorder first. Recording an unlabelled metric is a
/// table lookup and the recorder's `set`; a per-tool one also reads a map
/// of the tools seen so far under a read lock. At most
/// [`max_tools`](Self::with_max_tools) distinct tools (default 10 000) get
/// series; values of further tools are not exported, counted in
/// [`unexported`](Self::unexported), and reported as a [`SinkError`] (the
/// calculator counts it in `Stats::sink_errors`).
///
/// ```
/// use composite_metrics::sink::MetricsSink;
/// use composite_metrics::{Event, MetricsCalculator};
/// use metrics_util::debugging::DebuggingRecorder;
///
/// let recorder = DebuggingRecorder::new();
/// let snapshotter = recorder.snapshotter();
/// metrics::with_local_recorder(&recorder, || {
///     let mut calc = MetricsCalculator::builder().sink(MetricsSink::new()).build()?;
///     calc.process(&Event::tool_use("s1", "bash").with_duration_ms(40.0).with_success(true))?;
///     Ok::<(), composite_metrics::Error>(())
/// })?;
/// let exported: Vec<String> =
///     snapshotter.snapshot().into_vec().iter().map(|(k, ..)| k.key().name().to_owned()).collect();
/// assert!(exported.iter().any(|n| n == "composite_metrics_tools_tool_latency_p50"));
/// # Ok::<(), composite_metrics::Error>(())
/// ```
pub struct MetricsSink {
    /// Unlabelled gauges, indexed like [`SERIES`] (`None` for per-tool series).
    plain: Box<[Option<Gauge>]>,
    tools: RwLock<HashMap<Arc<str>, ToolGauges, foldhash::fast::RandomState>>,
    max_tools: usize,
    unexported: AtomicU64,
}

impl fmt::Debug for MetricsSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsSink")
            .field("tools", &self.tools.read().len())
            .field("max_tools", &self.max_tools)
            .field("unexported", &self.unexported())
            .finish()
    }
}

impl Default for MetricsSink {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricsSink {
    /// A sink registering its unlabelled gauges with the current recorder.
    pub fn new() -> Self {
        Self {
            plain: SERIES
                .iter()
                .map(|s| (!s.per_tool).then(|| metrics::gauge!(s.exported)))
                .collect(),
            tools: RwLock::new(HashMap::default()),
            max_tools: 10_000,
            unexported: AtomicU64::new(0),
        }
    }

    /// At most `max` distinct tools get `tool`-labelled series.
    pub fn with_max_tools(mut self, max: usize) -> Self {
        self.max_tools = max;
        self
    }

    /// Metric values not exported: per-tool values beyond the tool limit.
    pub fn unexported(&self) -> u64 {
        self.unexported.load(Ordering::Relaxed)
    }

    /// Sets the gauge of `tool` for the series at `index`; `false` when the
    /// tool is beyond the limit.
    fn set_tool(&self, index: usize, tool: &Arc<str>, value: f64) -> bool {
        {
            let tools = self.tools.read();
            if let Some(gauge) = tools
                .get(&**tool)
                .and_then(|gauges| gauges.get(index))
                .and_then(Option::as_ref)
            {
                gauge.set(value);
                return true;
            }
        }
        let mut tools = self.tools.write();
        if !tools.contains_key(&**tool) && tools.len() >= self.max_tools {
            return false;
        }
        let gauges = tools
            .entry(Arc::clone(tool))
            .or_insert_with(|| SERIES.iter().map(|_| None).collect());
        if let (Some(slot), Some(series)) = (gauges.get_mut(index), SERIES.get(index)) {
            let name = series.exported;
            slot.get_or_insert_with(|| metrics::gauge!(name, "tool" => Arc::clone(tool)))
                .set(value);
        }
        true
    }
}

impl MetricSink for MetricsSink {
    fn record(&self, metrics: &[Metric]) -> Result<(), SinkError> {
        let mut refused: Option<&Arc<str>> = None;
        for m in metrics {
            match (series_index(m.category, m.name), &m.tool) {
                (Some((i, series)), Some(tool)) if series.per_tool => {
                    if !self.set_tool(i, tool, m.value) {
                        self.unexported.fetch_add(1, Ordering::Relaxed);
                        refused = Some(tool);
                    }
                }
                (Some((i, series)), _) if !series.per_tool => {
                    if let Some(Some(gauge)) = self.plain.get(i) {
                        gauge.set(m.value);
                    }
                }
                // A metric this version does not list (or a per-tool one
                // without a tool): exported through the facade's slow path,
                // the name formatted per value.
                (_, tool) => {
                    let name = format!("composite_metrics_{}_{}", m.category, m.name);
                    match tool {
                        Some(tool) => metrics::gauge!(name, "tool" => Arc::clone(tool)),
                        None => metrics::gauge!(name),
                    }
                    .set(m.value);
                }
            }
        }
        match refused {
            None => Ok(()),
            Some(tool) => Err(SinkError::new(
                "metrics",
                format!(
                    "more than {} distinct tools; values of tool `{tool}` and others beyond the limit were not exported",
                    self.max_tools
                ),
            )),
        }
    }
}
