use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::MetricSink;
use crate::error::{BackendError, SinkError};
use crate::metric::{Category, Metric};
use crate::state::{Link, LockToken, RedisConfig};

/// Records metrics in Redis (feature `redis`): the latest value of every
/// series in one hash, and a time series per metric in a sorted set trimmed
/// to a retention per category. One round trip per
/// [`record`](MetricSink::record) call, whatever the number of metrics.
///
/// # Key layout
///
/// With namespace `ns` ([`RedisConfig::with_namespace`]):
///
/// - `{ns}:latest` — hash, field `category/name` (`category/name@tool` for
///   per-tool metrics) → latest value. `HGETALL {ns}:latest`.
/// - `{ns}:series:category/name[@tool]` — sorted set, score = the metric's
///   time in milliseconds since the UNIX epoch, member =
///   `value@nanoseconds#sink.sequence` (unique, so equal values at one
///   instant are all kept). `ZRANGE {ns}:series:tools/tool_latency_p50 -10 -1 WITHSCORES`.
///
/// Points older than the category's retention (by the metric's own time)
/// are trimmed on every write, and a series expires when nothing was written
/// to it for a retention. Per-session values of one metric share a series,
/// as in [`MemorySink`](super::MemorySink).
///
/// # Default
///
/// Retention: `tools` 24 h, `session` 7 days, `realtime` 1 h, `composite` 30 days.
///
/// # Example
///
/// ```no_run
/// use std::time::Duration;
/// use composite_metrics::{Category, Event, MetricsCalculator, RedisConfig, RedisSink};
///
/// let sink = RedisSink::connect("redis://127.0.0.1:6379/", RedisConfig::default())?
///     .with_retention(Category::Realtime, Duration::from_secs(600));
/// let mut calc = MetricsCalculator::builder().sink(sink).build()?;
/// calc.process(&Event::tool_use("s1", "bash").with_duration_ms(12.0))?;
/// # Ok::<(), composite_metrics::Error>(())
/// ```
pub struct RedisSink {
    link: Link,
    prefix: String,
    retention: [Duration; 4],
    id: u64,
    seq: AtomicU64,
    trips: AtomicU64,
}

impl fmt::Debug for RedisSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSink")
            .field("prefix", &self.prefix)
            .field("retention", &self.retention)
            .field("link", &self.link)
            .finish_non_exhaustive()
    }
}

/// The index of a category's retention; always below 4, the array's length.
fn slot(category: Category) -> usize {
    match category {
        Category::Tools => 0,
        Category::Session => 1,
        Category::Realtime => 2,
        Category::Composite => 3,
    }
}

impl RedisSink {
    /// Connects to the server at `url`; keys go under `config`'s namespace.
    pub fn connect(url: &str, config: RedisConfig) -> Result<Self, BackendError> {
        let prefix = config.key_prefix();
        Ok(Self {
            link: Link::open(url, config)?,
            prefix,
            retention: [
                Duration::from_secs(24 * 3600),
                Duration::from_secs(7 * 24 * 3600),
                Duration::from_secs(3600),
                Duration::from_secs(30 * 24 * 3600),
            ],
            id: LockToken::random().as_u64() & 0xffff_ffff,
            seq: AtomicU64::new(0),
            trips: AtomicU64::new(0),
        })
    }

    /// Keeps points of `category` for `retention` (at least one millisecond).
    pub fn with_retention(mut self, category: Category, retention: Duration) -> Self {
        self.retention[slot(category)] = retention.max(Duration::from_millis(1));
        self
    }

    /// The retention of a category.
    pub fn retention(&self, category: Category) -> Duration {
        self.retention[slot(category)]
    }

    /// The hash of latest values: `{ns}:latest`.
    pub fn latest_key(&self) -> String {
        format!("{}latest", self.prefix)
    }

    /// The field of a metric in [`latest_key`](Self::latest_key):
    /// `category/name`, or `category/name@tool`.
    pub fn field(metric: &Metric) -> String {
        match &metric.tool {
            Some(tool) => format!("{}/{}@{tool}", metric.category, metric.name),
            None => format!("{}/{}", metric.category, metric.name),
        }
    }

    /// The sorted set holding a metric's series: `{ns}:series:<field>`.
    pub fn series_key(&self, metric: &Metric) -> String {
        format!("{}series:{}", self.prefix, Self::field(metric))
    }

    /// Round trips to Redis so far.
    pub fn round_trips(&self) -> u64 {
        self.trips.load(Ordering::Relaxed)
    }
}

impl MetricSink for RedisSink {
    fn record(&self, metrics: &[Metric]) -> Result<(), SinkError> {
        if metrics.is_empty() {
            return Ok(());
        }
        let latest = self.latest_key();
        let mut pipe = ::redis::pipe();
        pipe.atomic();
        for m in metrics {
            let field = Self::field(m);
            let key = format!("{}series:{field}", self.prefix);
            let retention = self.retention(m.category);
            let retention_ms = u64::try_from(retention.as_millis()).unwrap_or(u64::MAX);
            let at_ms = u64::try_from(m.at.as_millis()).unwrap_or(u64::MAX);
            let seq = self.seq.fetch_add(1, Ordering::Relaxed);
            let member = format!("{}@{}#{:x}.{seq}", m.value, m.at.as_nanos(), self.id);
            pipe.hset(&latest, &field, m.value.to_string()).ignore();
            pipe.zadd(&key, member, at_ms).ignore();
            pipe.cmd("ZREMRANGEBYSCORE")
                .arg(&key)
                .arg("-inf")
                .arg(format!("({}", at_ms.saturating_sub(retention_ms)))
                .ignore();
            pipe.pexpire(&key, i64::try_from(retention_ms).unwrap_or(i64::MAX))
                .ignore();
        }
        self.link
            .pipeline("sink record", &self.trips, &pipe)
            .map_err(|e| SinkError {
                sink: "redis",
                source: Box::new(e),
            })
    }
}
