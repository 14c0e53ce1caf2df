use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use metrics::Gauge;
use parking_lot::RwLock;

use super::MetricSink;
use crate::error::SinkError;
use crate::metric::{names, Category, Metric};
use crate::telemetry::names::{series_index, SERIES};

/// One tool's series: its gauges, indexed like [`SERIES`], and its named
/// runs recorded through the sink (one per `tool_frequency` metric).
struct ToolSeries {
    gauges: Box<[Option<Gauge>]>,
    runs: AtomicU64,
}

/// One second, in nanoseconds: the shortest time between two refreshes of
/// the share gauges, by the metrics' time.
const SHARE_REFRESH_NANOS: u64 = 1_000_000_000;

/// The position of `tools/tool_frequency` in [`SERIES`].
fn frequency_index() -> usize {
    series_index(Category::Tools, names::TOOL_FREQUENCY).map_or(usize::MAX, |(i, _)| i)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

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
///
/// # Tool shares that add up
///
/// The `composite_metrics_tools_tool_frequency{tool}` gauges are not set from
/// each `tool_frequency` value (each was computed against the total at its
/// own run, so the gauges of tools that ran earlier would keep shares of an
/// older total). The sink counts, per tool, the named tool runs recorded
/// through it (one per `tool_frequency` metric it receives; runs of tools
/// beyond [`max_tools`](Self::with_max_tools) count in the total only) and
/// sets **every** tool's gauge together to its share of that count, in %:
/// at the first such metric, then at the first one whose time
/// ([`Metric::at`]) is at least one second after the previous refresh, and
/// whenever [`refresh_shares`](Self::refresh_shares) is called. So the
/// gauges always add up to 100 % (less when tools are beyond the limit),
/// lagging the runs by at most one second of the metrics' time. They are
/// the shares of the runs this sink saw; across processes, and for success
/// rates, divide the per-tool counters in PromQL (see
/// [`telemetry::names::TOOL_RUNS`](crate::telemetry::names::TOOL_RUNS)):
///
/// ```text
/// # share of the named tool runs, %
/// 100 * sum by (tool) (rate(composite_metrics_tool_runs_total[5m]))
///   / ignoring (tool) group_left sum(rate(composite_metrics_tool_runs_total[5m]))
/// # success rate over explicit outcomes, %
/// 100 * sum by (tool) (rate(composite_metrics_tool_successes_total[5m]))
///   / (sum by (tool) (rate(composite_metrics_tool_successes_total[5m]))
///      + sum by (tool) (rate(composite_metrics_tool_failures_total[5m])))
/// ```
pub struct MetricsSink {
    /// Unlabelled gauges, indexed like [`SERIES`] (`None` for per-tool series).
    plain: Box<[Option<Gauge>]>,
    tools: RwLock<HashMap<Arc<str>, ToolSeries, foldhash::fast::RandomState>>,
    max_tools: usize,
    unexported: AtomicU64,
    /// Named runs of tools beyond the limit: in the shares' total only.
    unexported_runs: AtomicU64,
    /// The metric time (ns) from which a run refreshes the share gauges.
    next_share_refresh: AtomicU64,
    /// The position of `tools/tool_frequency` in [`SERIES`].
    frequency: usize,
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
            unexported_runs: AtomicU64::new(0),
            next_share_refresh: AtomicU64::new(0),
            frequency: frequency_index(),
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

    /// Sets every tool's share gauge now, from the runs counted so far (see
    /// [Tool shares that add up](Self#tool-shares-that-add-up)); the next
    /// refresh by a run comes at least one second of metric time after the
    /// latest run's.
    pub fn refresh_shares(&self) {
        let tools = self.tools.read();
        // One reading of every count, so the shares set below add up.
        let runs: Vec<u64> = tools
            .values()
            .map(|t| t.runs.load(Ordering::Relaxed))
            .collect();
        let total = runs.iter().sum::<u64>() + self.unexported_runs.load(Ordering::Relaxed);
        if total == 0 {
            return;
        }
        for (series, runs) in tools.values().zip(runs) {
            if let Some(Some(gauge)) = series.gauges.get(self.frequency) {
                gauge.set(100.0 * runs as f64 / total as f64);
            }
        }
    }

    /// Counts a named run of `tool` recorded at `at` and refreshes the
    /// shares when a second of metric time has passed since the last
    /// refresh; `false` when the tool is beyond the limit.
    fn count_run(&self, tool: &Arc<str>, at: Duration) -> bool {
        let frequency = self.frequency;
        let found = match self.tools.read().get(&**tool) {
            Some(series) if matches!(series.gauges.get(frequency), Some(Some(_))) => {
                series.runs.fetch_add(1, Ordering::Relaxed);
                true
            }
            _ => false,
        };
        // The tool's first run: its share gauge is registered, so a refresh
        // sets it with every other tool's.
        let counted = found
            || self.with_series(tool, |series| {
                if let (Some(slot), Some(s)) =
                    (series.gauges.get_mut(frequency), SERIES.get(frequency))
                {
                    let name = s.exported;
                    slot.get_or_insert_with(|| metrics::gauge!(name, "tool" => Arc::clone(tool)));
                }
                series.runs.fetch_add(1, Ordering::Relaxed);
            });
        if !counted {
            self.unexported_runs.fetch_add(1, Ordering::Relaxed);
        }
        let at = nanos(at);
        let next = self.next_share_refresh.load(Ordering::Relaxed);
        if at >= next
            && self
                .next_share_refresh
                .compare_exchange(
                    next,
                    at.saturating_add(SHARE_REFRESH_NANOS),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            self.refresh_shares();
        }
        counted
    }

    /// Runs `f` on the series of `tool` under the write lock, adding an
    /// entry for the tool if it is new; `false` when it is new and beyond
    /// the limit.
    #[cold]
    fn with_series(&self, tool: &Arc<str>, f: impl FnOnce(&mut ToolSeries)) -> bool {
        let mut tools = self.tools.write();
        if !tools.contains_key(&**tool) && tools.len() >= self.max_tools {
            return false;
        }
        let series = tools.entry(Arc::clone(tool)).or_insert_with(|| ToolSeries {
            gauges: SERIES.iter().map(|_| None).collect(),
            runs: AtomicU64::new(0),
        });
        f(series);
        true
    }

    /// Sets the gauge of `tool` for the series at `index`; `false` when the
    /// tool is beyond the limit.
    fn set_tool(&self, index: usize, tool: &Arc<str>, value: f64) -> bool {
        {
            let tools = self.tools.read();
            if let Some(gauge) = tools
                .get(&**tool)
                .and_then(|series| series.gauges.get(index))
                .and_then(Option::as_ref)
            {
                gauge.set(value);
                return true;
            }
        }
        self.with_series(tool, |series| {
            if let (Some(slot), Some(s)) = (series.gauges.get_mut(index), SERIES.get(index)) {
                let name = s.exported;
                slot.get_or_insert_with(|| metrics::gauge!(name, "tool" => Arc::clone(tool)))
                    .set(value);
            }
        })
    }
}

impl MetricSink for MetricsSink {
    fn record(&self, metrics: &[Metric]) -> Result<(), SinkError> {
        let mut refused: Option<&Arc<str>> = None;
        for m in metrics {
            match (series_index(m.category, m.name), &m.tool) {
                (Some((i, _)), Some(tool)) if i == self.frequency => {
                    if !self.count_run(tool, m.at) {
                        self.unexported.fetch_add(1, Ordering::Relaxed);
                        refused = Some(tool);
                    }
                }
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
