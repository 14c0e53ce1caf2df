use std::collections::VecDeque;

use foldhash::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::{MetricSink, SeriesKey};
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
#[derive(Debug, Clone)]
pub struct MemorySink {
    inner: Arc<Mutex<HashMap<SeriesKey, Points>>>,
    capacity: usize,
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
        }
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
