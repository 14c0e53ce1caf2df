use std::time::Duration;

use crate::error::ConfigError;

/// How a [`RedisState`](super::RedisState) (and a
/// [`RedisSink`](crate::sink::RedisSink)) talks to Redis and what it keeps there.
///
/// Every key lives under `{namespace}:`; the braces make the namespace a
/// Redis Cluster hash tag, so one namespace is one slot and every script's
/// keys are on one node. Two namespaces on one server never see each other.
///
/// # Default
///
/// Namespace `cm`; connect timeout 1 s; read and write timeouts 500 ms;
/// session TTL 24 h; window TTL 24 h; at most 1 000 000 live sessions and
/// 10 000 distinct tool names.
///
/// ```
/// use std::time::Duration;
/// use composite_metrics::state::RedisConfig;
///
/// let config = RedisConfig::default()
///     .with_namespace("team-a")
///     .with_read_timeout(Duration::from_millis(200));
/// assert_eq!(config.namespace(), "team-a");
/// assert_eq!(config.key_prefix(), "{team-a}:");
/// assert_eq!(config.connect_timeout(), Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    namespace: String,
    connect_timeout: Duration,
    read_timeout: Duration,
    write_timeout: Duration,
    session_ttl: Duration,
    window_ttl: Duration,
    max_sessions: usize,
    max_tools: usize,
    dedup_horizon: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            namespace: "cm".to_owned(),
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_millis(500),
            write_timeout: Duration::from_millis(500),
            session_ttl: Duration::from_secs(24 * 3600),
            window_ttl: Duration::from_secs(24 * 3600),
            max_sessions: 1_000_000,
            max_tools: 10_000,
            dedup_horizon: Duration::from_secs(24 * 3600),
        }
    }
}

impl RedisConfig {
    /// Puts every key under `{namespace}:`. The namespace is kept as given;
    /// one holding `{` or `}` (which would break the hash tag, and let two
    /// namespaces share keys) is rejected by [`validate`](Self::validate),
    /// and so at connect.
    pub fn with_namespace(mut self, namespace: &str) -> Self {
        self.namespace = namespace.to_owned();
        self
    }

    /// How long opening a connection (TCP connect and handshake) may take.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one reply may take to arrive.
    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// How long sending one request may block.
    pub fn with_write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// A session not touched for this long (by the Redis server's clock) is
    /// forgotten: its keys expire and it leaves the active set. Also the
    /// retention of per-session "last computed" markers.
    pub fn with_session_ttl(mut self, ttl: Duration) -> Self {
        self.session_ttl = ttl;
        self
    }

    /// The latency, decision and rate windows expire after this long without
    /// an update (by the Redis server's clock).
    pub fn with_window_ttl(mut self, ttl: Duration) -> Self {
        self.window_ttl = ttl;
        self
    }

    /// At most this many live sessions; an event that would open one more is
    /// rejected with [`BackendError::CapacityExceeded`](crate::BackendError::CapacityExceeded).
    pub fn with_max_sessions(mut self, max: usize) -> Self {
        self.max_sessions = max;
        self
    }

    /// At most this many distinct tool names; an event naming one more is rejected.
    pub fn with_max_tools(mut self, max: usize) -> Self {
        self.max_tools = max;
        self
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The prefix of every key: `{namespace}:`.
    pub fn key_prefix(&self) -> String {
        format!("{{{}}}:", self.namespace)
    }

    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> Duration {
        self.read_timeout
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> Duration {
        self.write_timeout
    }

    /// The session TTL.
    pub fn session_ttl(&self) -> Duration {
        self.session_ttl
    }

    /// The window TTL.
    pub fn window_ttl(&self) -> Duration {
        self.window_ttl
    }

    /// The session limit.
    pub fn max_sessions(&self) -> usize {
        self.max_sessions
    }

    /// The tool-name limit.
    pub fn max_tools(&self) -> usize {
        self.max_tools
    }

    /// Rejects zero timeouts and limits, TTLs under one millisecond, and an
    /// empty namespace or one holding `{` or `}`.
    ///
    /// ```
    /// use composite_metrics::state::RedisConfig;
    /// use composite_metrics::ConfigError;
    ///
    /// let err = RedisConfig::default().with_namespace("team{").validate().unwrap_err();
    /// assert!(matches!(err, ConfigError::OutOfRange { field: "namespace", .. }));
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, d) in [
            ("connect_timeout", self.connect_timeout),
            ("read_timeout", self.read_timeout),
            ("write_timeout", self.write_timeout),
            ("session_ttl", self.session_ttl),
            ("window_ttl", self.window_ttl),
            ("dedup_horizon", self.dedup_horizon),
        ] {
            if d.as_millis() == 0 {
                return Err(ConfigError::OutOfRange {
                    field,
                    reason: "must be at least one millisecond",
                });
            }
        }
        if self.max_sessions == 0 {
            return Err(ConfigError::Zero {
                field: "max_sessions",
            });
        }
        if self.max_tools == 0 {
            return Err(ConfigError::Zero { field: "max_tools" });
        }
        if self.namespace.is_empty() {
            return Err(ConfigError::OutOfRange {
                field: "namespace",
                reason: "must not be empty",
            });
        }
        if self.namespace.contains(['{', '}']) {
            return Err(ConfigError::OutOfRange {
                field: "namespace",
                reason: "must not contain `{` or `}` (the namespace is the Redis Cluster hash tag)",
            });
        }
        Ok(())
    }

    /// How long an applied [`event_id`](crate::Event::event_id) is
    /// remembered (key `{ns}:e:<id>`, expiring on the Redis server's clock):
    /// a second delivery within this time is a duplicate and changes nothing.
    /// Default 24 h; at least one millisecond ([`validate`](Self::validate)).
    /// Each remembered id is one small string key with a TTL: roughly 100
    /// bytes of server memory plus the key's length.
    pub fn with_dedup_horizon(mut self, horizon: Duration) -> Self {
        self.dedup_horizon = horizon;
        self
    }

    /// The dedup horizon.
    pub fn dedup_horizon(&self) -> Duration {
        self.dedup_horizon
    }
}
