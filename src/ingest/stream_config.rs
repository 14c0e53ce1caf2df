use std::time::Duration;

use crate::error::ConfigError;
use crate::event::MAX_EVENT_ID_BYTES;

/// Entries the dead-letter stream keeps by default.
const DEFAULT_DEAD_LETTER_MAX_LEN: u64 = 10_000;

/// Longest entry id Redis writes (`<u64>-<u64>`).
const MAX_ENTRY_ID_BYTES: usize = 41;

/// How a [`StreamSource`](super::StreamSource) reads a Redis Stream.
///
/// | setting | default | meaning |
/// |---|---|---|
/// | `stream`, `group`, `consumer` | (required) | the stream, its consumer group, this consumer's name |
/// | `count` | 100 | most entries per read (`XREADGROUP COUNT`), applied as one batch |
/// | `block` | 1 s | longest a read waits for new entries (`BLOCK`) |
/// | `min_idle` | 30 s | how long an entry stays unacknowledged before another consumer claims it (`XAUTOCLAIM`) |
/// | `claim_every` | 1 s | how often this consumer looks for such entries |
/// | `max_deliveries` | 3 | deliveries after which an entry goes to the dead-letter stream |
/// | `dead_letter` | `<stream>:dead` | the dead-letter stream |
/// | `dead_letter_max_len` | 10 000 | entries the dead-letter stream keeps, trimmed approximately (`XADD ... MAXLEN ~ n`, see [`with_dead_letter_max_len`](Self::with_dead_letter_max_len)) |
/// | `json_field` | `event` | the entry field that holds the event JSON |
/// | `start_id` | `0` | where a group created by the source starts (`0`: the whole stream, `$`: new entries only) |
/// | `connect_timeout` | 5 s | bound on opening the connection |
/// | `io_timeout` | 5 s | bound on every other call (a blocking read may take `block` + `io_timeout`) |
/// | `lag_every` | 1 s | how often `poll` refreshes the lag in [`StreamStats`](super::StreamStats) |
///
/// ```
/// use std::time::Duration;
/// use composite_metrics::ingest::StreamConfig;
///
/// let config = StreamConfig::new("events", "metrics", "worker-1")
///     .with_count(200)
///     .with_min_idle(Duration::from_secs(10));
/// assert_eq!(config.dead_letter(), "events:dead");
/// assert_eq!(config.dead_letter_max_len(), 10_000);
/// assert!(config.validate().is_ok());
/// assert!(StreamConfig::new("events", "", "w").validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConfig {
    stream: String,
    group: String,
    consumer: String,
    count: usize,
    block: Duration,
    min_idle: Duration,
    claim_every: Duration,
    max_deliveries: u64,
    dead_letter: Option<String>,
    dead_letter_max_len: u64,
    json_field: String,
    start_id: String,
    connect_timeout: Duration,
    io_timeout: Duration,
    lag_every: Duration,
}

impl StreamConfig {
    /// Reads `stream` in consumer group `group` as consumer `consumer`
    /// (unique per worker process; a restarted worker that keeps its name
    /// first re-reads the entries it left unacknowledged).
    pub fn new(stream: &str, group: &str, consumer: &str) -> Self {
        Self {
            stream: stream.to_owned(),
            group: group.to_owned(),
            consumer: consumer.to_owned(),
            count: 100,
            block: Duration::from_secs(1),
            min_idle: Duration::from_secs(30),
            claim_every: Duration::from_secs(1),
            max_deliveries: 3,
            dead_letter: None,
            dead_letter_max_len: DEFAULT_DEAD_LETTER_MAX_LEN,
            json_field: "event".to_owned(),
            start_id: "0".to_owned(),
            connect_timeout: Duration::from_secs(5),
            io_timeout: Duration::from_secs(5),
            lag_every: Duration::from_secs(1),
        }
    }

    /// Most entries per read, applied as one batch (at least 1).
    pub fn with_count(mut self, count: usize) -> Self {
        self.count = count;
        self
    }

    /// Longest a read waits for new entries (at least 1 ms).
    pub fn with_block(mut self, block: Duration) -> Self {
        self.block = block;
        self
    }

    /// Idle time after which another consumer's unacknowledged entries are
    /// claimed (its process is presumed dead).
    pub fn with_min_idle(mut self, min_idle: Duration) -> Self {
        self.min_idle = min_idle;
        self
    }

    /// How often `poll` runs `XAUTOCLAIM` (by the source's clock).
    pub fn with_claim_every(mut self, every: Duration) -> Self {
        self.claim_every = every;
        self
    }

    /// An entry delivered more than this many times goes to the dead-letter
    /// stream instead of being applied (at least 1).
    pub fn with_max_deliveries(mut self, max: u64) -> Self {
        self.max_deliveries = max;
        self
    }

    /// The dead-letter stream (default `<stream>:dead`).
    pub fn with_dead_letter(mut self, stream: &str) -> Self {
        self.dead_letter = Some(stream.to_owned());
        self
    }

    /// How many entries the dead-letter stream keeps (default 10 000, at
    /// least 1). Every dead letter is added with `XADD <dead_letter> MAXLEN ~
    /// <max_len>`: Redis trims approximately, removing only whole internal
    /// nodes of the stream (of at most `stream-node-max-entries` entries,
    /// 100 by default), oldest first. So once it has been filled past the
    /// bound the stream keeps at least the newest `max_len` entries and at
    /// most `max_len + stream-node-max-entries - 1` (10 099 with the
    /// defaults); entries beyond are lost, oldest first.
    pub fn with_dead_letter_max_len(mut self, max_len: u64) -> Self {
        self.dead_letter_max_len = max_len;
        self
    }

    /// The entry field holding the event JSON (default `event`).
    pub fn with_json_field(mut self, field: &str) -> Self {
        self.json_field = field.to_owned();
        self
    }

    /// Where a group this source creates starts: `0` (default, the whole
    /// stream) or `$` (entries added from now on), or an entry id.
    pub fn with_start_id(mut self, id: &str) -> Self {
        self.start_id = id.to_owned();
        self
    }

    /// Bound on opening the connection.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Bound on each call (a blocking read: `block` + this).
    pub fn with_io_timeout(mut self, timeout: Duration) -> Self {
        self.io_timeout = timeout;
        self
    }

    /// How often `poll` refreshes the lag (by the source's clock).
    pub fn with_lag_every(mut self, every: Duration) -> Self {
        self.lag_every = every;
        self
    }

    /// The stream.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The consumer group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// This consumer's name.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// Most entries per read.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Longest wait of a read.
    pub fn block(&self) -> Duration {
        self.block
    }

    /// Idle time before claiming.
    pub fn min_idle(&self) -> Duration {
        self.min_idle
    }

    /// Interval between claims.
    pub fn claim_every(&self) -> Duration {
        self.claim_every
    }

    /// Deliveries allowed before dead-lettering.
    pub fn max_deliveries(&self) -> u64 {
        self.max_deliveries
    }

    /// The dead-letter stream.
    pub fn dead_letter(&self) -> String {
        self.dead_letter
            .clone()
            .unwrap_or_else(|| format!("{}:dead", self.stream))
    }

    /// Entries the dead-letter stream keeps (`MAXLEN ~`).
    pub fn dead_letter_max_len(&self) -> u64 {
        self.dead_letter_max_len
    }

    /// The field holding the event JSON.
    pub fn json_field(&self) -> &str {
        &self.json_field
    }

    /// Start id of a group created by the source.
    pub fn start_id(&self) -> &str {
        &self.start_id
    }

    /// Connect bound.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Per-call bound.
    pub fn io_timeout(&self) -> Duration {
        self.io_timeout
    }

    /// Interval between lag refreshes.
    pub fn lag_every(&self) -> Duration {
        self.lag_every
    }

    /// The event id given to an entry without an `event_id`:
    /// `<stream>:<entry id>`.
    pub(crate) fn entry_event_id(&self, entry_id: &str) -> String {
        format!("{}:{entry_id}", self.stream)
    }

    /// Checks the names (not empty; the stream name short enough that
    /// `<stream>:<entry id>` fits in an event id), `count`, `block`,
    /// `max_deliveries`, `dead_letter_max_len` and the timeouts (not zero).
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, value) in [
            ("stream", &self.stream),
            ("group", &self.group),
            ("consumer", &self.consumer),
            ("json_field", &self.json_field),
            ("start_id", &self.start_id),
        ] {
            if value.is_empty() {
                return Err(ConfigError::Missing { field });
            }
        }
        if self.stream.len() + 1 + MAX_ENTRY_ID_BYTES > MAX_EVENT_ID_BYTES {
            return Err(ConfigError::OutOfRange {
                field: "stream",
                reason: "at most 86 bytes (`<stream>:<entry id>` is an event id)",
            });
        }
        if self.dead_letter() == self.stream {
            return Err(ConfigError::OutOfRange {
                field: "dead_letter",
                reason: "must differ from the stream",
            });
        }
        if self.count == 0 {
            return Err(ConfigError::Zero { field: "count" });
        }
        if self.max_deliveries == 0 {
            return Err(ConfigError::Zero {
                field: "max_deliveries",
            });
        }
        if self.dead_letter_max_len == 0 {
            return Err(ConfigError::Zero {
                field: "dead_letter_max_len",
            });
        }
        for (field, value) in [
            ("block", self.block),
            ("connect_timeout", self.connect_timeout),
            ("io_timeout", self.io_timeout),
        ] {
            if value.as_millis() == 0 {
                return Err(ConfigError::Zero { field });
            }
        }
        Ok(())
    }
}
