use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ::redis::Value;

use super::{Fenced, MetricSink};
use crate::error::{BackendError, SinkError};
use crate::metric::{Category, Metric};
use crate::redis::{Keys, Link, LuaScript, RedisConfig, SERIES};
use crate::state::LockToken;

/// Records metrics in Redis (feature `redis`): the latest value of every
/// series in one hash, and a time series per metric in a sorted set trimmed
/// to a retention per category. One round trip per
/// [`record`](MetricSink::record) call, whatever the number of metrics: one
/// Lua script, which checks every key's type before its first write (a key
/// of the wrong type fails the call and changes nothing).
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
/// - `{ns}:latest_generation` — string, the newest fencing generation
///   recorded for the global composite (never expires); `{ns}:g:<session>`
///   the same for a session's composite (expires after
///   [`with_fence_memory`](Self::with_fence_memory), default 24 h).
///
/// Points older than the category's retention (by the metric's own time)
/// are trimmed on every write, and a series expires when nothing was written
/// to it for a retention. Per-session values of one metric share a series,
/// as in [`MemorySink`](super::MemorySink).
///
/// # Fencing
///
/// A metric carrying a [`generation`](Metric::generation) (a composite
/// computed under a lock) is refused when a newer generation was already
/// recorded for its scope (its session, or global), decided inside the
/// script: a lock holder paused past its lease cannot overwrite the score of
/// the holder that took over. The batch's other metrics are recorded; the
/// call returns a [`SinkError`] whose source is [`Fenced`](super::Fenced),
/// and [`refused`](Self::refused) counts the refused metrics. Generations are
/// compared exactly as decimal integers.
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
    keys: Keys,
    script: LuaScript,
    retention: [Duration; 4],
    fence_memory: Duration,
    id: u64,
    seq: AtomicU64,
    trips: AtomicU64,
    refused: AtomicU64,
}

impl fmt::Debug for RedisSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSink")
            .field("prefix", &self.keys.prefix)
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
        let script = LuaScript::new(include_str!("redis_record.lua"));
        Ok(Self::with_link(Link::open(url, config)?, script))
    }

    /// Connects to a Redis Cluster through `seed_urls` (any of its nodes;
    /// one answering is enough), as
    /// [`RedisState::connect_cluster`](crate::state::RedisState::connect_cluster)
    /// does: the namespace is one slot, the script is loaded on every
    /// primary, and redirections (`ASK`, `MOVED`) and `TRYAGAIN` during a
    /// slot migration are followed or retried within the call's deadline.
    pub fn connect_cluster(seed_urls: &[&str], config: RedisConfig) -> Result<Self, BackendError> {
        let script = LuaScript::new(include_str!("redis_record.lua"));
        let link = Link::open_cluster(seed_urls, config, &[&script])?;
        Ok(Self::with_link(link, script))
    }

    fn with_link(link: Link, script: LuaScript) -> Self {
        let keys = Keys::new(link.config().key_prefix());
        Self {
            link,
            keys,
            script,
            fence_memory: Duration::from_secs(24 * 3600),
            refused: AtomicU64::new(0),
            retention: [
                Duration::from_secs(24 * 3600),
                Duration::from_secs(7 * 24 * 3600),
                Duration::from_secs(3600),
                Duration::from_secs(30 * 24 * 3600),
            ],
            id: LockToken::random().as_u64() & 0xffff_ffff,
            seq: AtomicU64::new(0),
            trips: AtomicU64::new(0),
        }
    }

    /// Keeps points of `category` for `retention` (at least one millisecond).
    pub fn with_retention(mut self, category: Category, retention: Duration) -> Self {
        self.retention[slot(category)] = retention.max(Duration::from_millis(1));
        self
    }

    /// Remembers a session's newest fencing generation for `memory` (at
    /// least one millisecond) after its last fenced composite; default 24 h.
    /// The global scope's never expires.
    pub fn with_fence_memory(mut self, memory: Duration) -> Self {
        self.fence_memory = memory.max(Duration::from_millis(1));
        self
    }

    /// Metrics refused by fencing so far (see [Fencing](#fencing)).
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// The retention of a category.
    pub fn retention(&self, category: Category) -> Duration {
        self.retention[slot(category)]
    }

    /// The hash of latest values: `{ns}:latest`.
    pub fn latest_key(&self) -> String {
        self.keys.latest.clone()
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
        self.keys.family(SERIES, &Self::field(metric))
    }

    /// Round trips to Redis so far.
    pub fn round_trips(&self) -> u64 {
        self.trips.load(Ordering::Relaxed)
    }
}

impl MetricSink for RedisSink {
    fn record(&self, metrics: &[Metric]) -> Result<(), SinkError> {
        const OP: &str = "sink record";
        if metrics.is_empty() {
            return Ok(());
        }
        let fail = |e: BackendError| SinkError {
            sink: "redis",
            source: Box::new(e),
        };
        let fence_ttl = u64::try_from(self.fence_memory.as_millis()).unwrap_or(u64::MAX);
        let mut keys = Vec::with_capacity(1 + 2 * metrics.len());
        keys.push(self.keys.latest.clone());
        let mut args = Vec::with_capacity(metrics.len());
        for m in metrics {
            let field = Self::field(m);
            keys.push(self.keys.family(SERIES, &field));
            keys.push(self.keys.sink_generation_of(m.session.as_deref()));
            let retention = self.retention(m.category);
            let retention_ms = u64::try_from(retention.as_millis()).unwrap_or(u64::MAX);
            let at_ms = u64::try_from(m.at.as_millis()).unwrap_or(u64::MAX);
            let seq = self.seq.fetch_add(1, Ordering::Relaxed);
            let member = format!("{}@{}#{:x}.{seq}", m.value, m.at.as_nanos(), self.id);
            let generation = m.generation.map(|g| g.to_string()).unwrap_or_default();
            let ttl = if m.session.is_some() { fence_ttl } else { 0 };
            args.push((
                field,
                member,
                at_ms,
                format!("({}", at_ms.saturating_sub(retention_ms)),
                retention_ms.max(1),
                m.value.to_string(),
                generation,
                ttl,
            ));
        }
        let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let reply = self
            .link
            .eval(OP, &self.trips, &self.script, &key_refs, &|cmd| {
                cmd.arg(metrics.len());
                for (field, member, at_ms, trim, retention_ms, value, generation, ttl) in &args {
                    cmd.arg(field)
                        .arg(member)
                        .arg(at_ms)
                        .arg(trim)
                        .arg(retention_ms)
                        .arg(value)
                        .arg(generation)
                        .arg(ttl);
                }
            })
            .map_err(fail)?;
        let (refused, generation, newest) = fenced_reply(&reply).map_err(fail)?;
        if refused == 0 {
            return Ok(());
        }
        self.refused.fetch_add(refused, Ordering::Relaxed);
        let session = metrics
            .iter()
            .find(|m| m.generation == Some(generation))
            .and_then(|m| m.session.clone());
        Err(SinkError {
            sink: "redis",
            source: Box::new(Fenced {
                refused,
                generation,
                newest,
                session,
            }),
        })
    }
}

/// Reads the script's `{refused, first refused generation, newest}`.
fn fenced_reply(v: &Value) -> Result<(u64, u64, u64), BackendError> {
    const OP: &str = "sink record";
    let bad = || crate::redis::unexpected(OP, "not {refused, generation, newest}");
    let Value::Array(items) = v else {
        return Err(bad());
    };
    let num = |i: usize| -> Result<u64, BackendError> {
        match items.get(i) {
            Some(Value::Int(n)) => u64::try_from(*n).map_err(|_| bad()),
            Some(Value::BulkString(b)) if b.is_empty() => Ok(0),
            Some(Value::BulkString(b)) => std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(bad),
            _ => Err(bad()),
        }
    };
    Ok((num(0)?, num(1)?, num(2)?))
}
