use std::collections::VecDeque;

use foldhash::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::{Fenced, MetricSink, SeriesKey};
use crate::error::SinkError;
use crate::metric::{Category, Metric};

type Points = VecDeque<(Duration, f64)>;

/// Keeps the latest value of every series and its last `capacity` points.
///
/// Clones share the same store. A series is keyed by category, name and tool
/// ([`SeriesKey`]); per-session values of one metric share a series, so memory
/// stays bounded however many sessions pass.
///
/// # Default
///
/// 1 000 points per series.
///
/// # Example
///
/// ```
/// use composite_metrics::{Category, Event, MemorySink, MetricsCalculator};
/// use composite_metrics::metric::names;
/// use composite_metrics::sink::SeriesKey;
///
/// let sink = MemorySink::new();
/// let mut calc = MetricsCalculator::builder().sink(sink.clone()).build()?;
/// calc.process(&Event::tool_use("s1", "bash").with_duration_ms(30.0))?;
/// calc.process(&Event::tool_use("s1", "bash").with_duration_ms(10.0))?;
/// let avg = SeriesKey::new(Category::Tools, names::TOOL_LATENCY_AVG);
/// assert_eq!(sink.latest(&avg), Some(20.0));
/// assert_eq!(sink.series(&avg).len(), 2);
/// # Ok::<(), composite_metrics::Error>(())
/// ```
///
/// # Fencing
///
/// A metric carrying a [`generation`](Metric::generation) (a composite
/// computed under a lock) is refused when a newer generation was already
/// recorded for its scope (its session, or global): a lock holder that was
/// paused past its lease cannot overwrite the score of the holder that took
/// over. The batch's other metrics are recorded; the call returns a
/// [`SinkError`] whose source is [`Fenced`], and [`refused`](Self::refused)
/// counts the refused metrics. A session's newest generation is remembered
/// for 24 hours (by the metrics' time) after its last fenced metric.
#[derive(Debug, Clone)]
pub struct MemorySink {
    inner: Arc<Mutex<HashMap<SeriesKey, Points>>>,
    capacity: usize,
    fence: Arc<Mutex<Fences>>,
}

/// How long a session's newest generation is remembered after its last
/// fenced metric, by the metrics' time.
const FENCE_MEMORY: Duration = Duration::from_secs(24 * 3600);

/// The newest generation recorded per scope (`None`: global), with the time
/// of the metric that brought it.
#[derive(Debug, Default)]
struct Fences {
    newest: HashMap<Option<Arc<str>>, (u64, Duration)>,
    /// Sweep old sessions when the map grows past this.
    sweep_at: usize,
    refused: u64,
}

impl Fences {
    /// Decides which metrics pass, updating the newest generations.
    fn admit(&mut self, metrics: &[Metric], keep: &mut Vec<bool>) -> Option<Fenced> {
        let mut refused: Option<Fenced> = None;
        for m in metrics {
            let Some(generation) = m.generation else {
                keep.push(true);
                continue;
            };
            let entry = match self.newest.get_mut(&m.session) {
                Some(e) => e,
                None => self.newest.entry(m.session.clone()).or_insert((0, m.at)),
            };
            if generation < entry.0 {
                keep.push(false);
                let first = refused.get_or_insert_with(|| Fenced {
                    refused: 0,
                    generation,
                    newest: entry.0,
                    session: m.session.clone(),
                });
                first.refused += 1;
            } else {
                *entry = (generation, entry.1.max(m.at));
                keep.push(true);
            }
        }
        if self.newest.len() > self.sweep_at {
            let newest_at = self
                .newest
                .values()
                .map(|(_, at)| *at)
                .max()
                .unwrap_or_default();
            let horizon = newest_at.saturating_sub(FENCE_MEMORY);
            self.newest
                .retain(|scope, (_, at)| scope.is_none() || *at >= horizon);
            self.sweep_at = (2 * self.newest.len()).max(1024);
        }
        if let Some(f) = &refused {
            self.refused += f.refused;
        }
        refused
    }
}

impl Default for MemorySink {
    fn default() -> Self {
        Self::new()
    }
}

impl MemorySink {
    /// An empty sink keeping 1 000 points per series.
    pub fn new() -> Self {
        Self::with_capacity(1_000)
    }

    /// An empty sink keeping `capacity` points per series (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            inner: Arc::default(),
            capacity: capacity.max(1),
            fence: Arc::default(),
        }
    }

    /// Metrics refused by fencing so far (see [Fencing](#fencing)).
    pub fn refused(&self) -> u64 {
        self.fence.lock().refused
    }

    /// The latest value of a series.
    pub fn latest(&self, key: &SeriesKey) -> Option<f64> {
        self.inner
            .lock()
            .get(key)
            .and_then(|s| s.back())
            .map(|(_, v)| *v)
    }

    /// The latest value of an unlabelled series.
    pub fn latest_of(&self, category: Category, name: &'static str) -> Option<f64> {
        self.latest(&SeriesKey::new(category, name))
    }

    /// The retained points of a series, oldest first.
    pub fn series(&self, key: &SeriesKey) -> Vec<(Duration, f64)> {
        self.inner
            .lock()
            .get(key)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Every series key, sorted.
    pub fn keys(&self) -> Vec<SeriesKey> {
        let mut keys: Vec<_> = self.inner.lock().keys().cloned().collect();
        keys.sort();
        keys
    }

    /// How many series it holds.
    pub fn len(&self) -> usize {
        self.inner.lock().len()
    }

    /// Whether it holds no series.
    pub fn is_empty(&self) -> bool {
        self.inner.lock().is_empty()
    }
}

impl MetricSink for MemorySink {
    fn record(&self, metrics: &[Metric]) -> Result<(), SinkError> {
        if metrics.iter().any(|m| m.generation.is_some()) {
            return self.record_fenced(metrics);
        }
        self.store(metrics.iter())
    }
}

impl MemorySink {
    /// Records a batch holding fenced metrics: the fence is held while the
    /// admitted metrics are stored, so a refused one can never land after a
    /// newer one.
    fn record_fenced(&self, metrics: &[Metric]) -> Result<(), SinkError> {
        let mut fence = self.fence.lock();
        let mut keep = Vec::with_capacity(metrics.len());
        let refused = fence.admit(metrics, &mut keep);
        self.store(
            metrics
                .iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(m, _)| m),
        )?;
        drop(fence);
        match refused {
            None => Ok(()),
            Some(f) => Err(SinkError {
                sink: "memory",
                source: Box::new(f),
            }),
        }
    }

    fn store<'a>(&self, metrics: impl Iterator<Item = &'a Metric>) -> Result<(), SinkError> {
        let mut map = self.inner.lock();
        for m in metrics {
            let key = SeriesKey::of(m);
            let series = match map.get_mut(&key) {
                Some(s) => s,
                None => map.entry(key).or_default(),
            };
            if series.len() == self.capacity {
                series.pop_front();
            }
            series.push_back((m.at, m.value));
        }
        Ok(())
    }
}
