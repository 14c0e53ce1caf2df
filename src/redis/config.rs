#[cfg(feature = "tls")]
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::ConfigError;

/// How a [`RedisState`](crate::state::RedisState) (and a
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
/// 10 000 distinct tool names; no TLS files.
///
/// # Timeouts: how long a call can block
///
/// Every call to Redis (an event, a batch, a composite read, a lock, a sink
/// write, and connecting) runs against one deadline, measured from the call's
/// start and covering every step: waiting for the connection (shared with
/// other threads using the same state or sink), opening it, sending the
/// request, and reading the reply.
///
/// - Connecting ([`RedisState::connect`](crate::state::RedisState::connect),
///   [`RedisSink::connect`](crate::sink::RedisSink::connect)) returns within
///   `connect_timeout`: name resolution, TCP connect, the TLS handshake,
///   `AUTH`, `SELECT` and a `PING` included.
/// - A call that finds its connection open returns within `read_timeout`
///   (sending blocks at most `write_timeout` of it).
/// - A call that has to (re)connect first, or waits for another thread's
///   call on the shared connection, returns within
///   `connect_timeout + read_timeout`. This is the bound for every call.
///
/// Past its bound a call fails with
/// [`BackendError::Timeout`](crate::BackendError::Timeout) and the
/// connection is dropped; the next call opens a new one. The bounds hold
/// up to the operating system's scheduling delay (the tests allow 10 %);
/// a server that keeps sending a reply one byte at a time can stretch a
/// read, since each read of the socket restarts its wait.
///
/// On a Redis Cluster ([`RedisState::connect_cluster`](crate::state::RedisState::connect_cluster),
/// [`RedisSink::connect_cluster`](crate::sink::RedisSink::connect_cluster))
/// the same bounds hold, measured the same way: connecting (reaching a seed
/// node, reading the slot map, connecting to every primary and loading the
/// scripts on each) returns within `connect_timeout`, and every call within
/// `connect_timeout + read_timeout`, redirections and retries included.
/// Before each request of a call the sockets' read and write timeouts are
/// set to what is left of its deadline (capped by `read_timeout` and
/// `write_timeout`); an `ASK` is followed at once, a `MOVED` rebuilds the
/// cluster connection (bounded by what is left of the deadline), and a
/// `TRYAGAIN` or `CLUSTERDOWN` is retried after a pause of 2 ms doubling to
/// 50 ms, no pause reaching past the deadline. One exception: an `ASK` to a
/// node that was not in the slot map when the connection was built (a node
/// added since) makes the client library open a connection to it inside
/// the request, with `connect_timeout` for the TCP connect and for each
/// reply of its handshake but none for its first `PING`: that step is not
/// bounded by the call's deadline.
///
/// # Credentials and TLS
///
/// A user name and password go in the URL:
/// `redis://user:password@host:6379/` (ACL user), or
/// `redis://:password@host:6379/` (the default user, `requirepass`);
/// characters such as `@`, `:` or `/` in them must be percent-encoded. A
/// database other than 0 is the URL's path (`redis://host/2`). The URL's
/// `protocol` parameter is ignored: the crate speaks RESP2. Missing or wrong
/// credentials fail at connect with
/// [`BackendError::Auth`](crate::BackendError::Auth).
///
/// TLS (cargo feature `tls`) is selected by a `rediss://` URL. The server's
/// certificate is checked against the CA file given with
/// `with_tls_ca_file`, or else against the system's trusted roots; the
/// host name in the URL must be named by the certificate. A client
/// certificate, for servers that require one (`tls-auth-clients yes`), is
/// given with `with_tls_client_cert`. The files are read once, at connect.
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
    /// Boxed: most configurations have none, and the struct stays small.
    #[cfg(feature = "tls")]
    tls: Option<Box<TlsFiles>>,
    session_ttl: Duration,
    window_ttl: Duration,
    max_sessions: usize,
    max_tools: usize,
    dedup_horizon: Duration,
}

/// The TLS files of a [`RedisConfig`].
#[cfg(feature = "tls")]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct TlsFiles {
    ca_file: Option<PathBuf>,
    client_cert: Option<(PathBuf, PathBuf)>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            namespace: "cm".to_owned(),
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_millis(500),
            write_timeout: Duration::from_millis(500),
            #[cfg(feature = "tls")]
            tls: None,
            session_ttl: Duration::from_secs(24 * 3600),
            window_ttl: Duration::from_secs(24 * 3600),
            max_sessions: 1_000_000,
            max_tools: 10_000,
            dedup_horizon: Duration::from_secs(24 * 3600),
        }
    }
}

impl RedisConfig {
    /// The longest namespace accepted, in bytes.
    pub const MAX_NAMESPACE_LEN: usize = 64;

    /// Puts every key under `{namespace}:`. The namespace is kept as given;
    /// one holding `{` or `}` (which would break the hash tag, and let two
    /// namespaces share keys), and one longer than
    /// [`MAX_NAMESPACE_LEN`](Self::MAX_NAMESPACE_LEN) bytes (every key
    /// carries it), are rejected by [`validate`](Self::validate), and so at
    /// connect.
    pub fn with_namespace(mut self, namespace: &str) -> Self {
        self.namespace = namespace.to_owned();
        self
    }

    /// How long opening a connection may take, everything included (name
    /// resolution, TCP connect, TLS handshake, `AUTH`, `SELECT`, `PING`).
    /// See [Timeouts](Self#timeouts-how-long-a-call-can-block).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a request may take on an open connection, from sending it
    /// to the end of its reply. See
    /// [Timeouts](Self#timeouts-how-long-a-call-can-block).
    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// How long sending one request may block (within the read timeout's
    /// budget: the smaller of the two applies).
    pub fn with_write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Checks the server's TLS certificate against the CA certificates in
    /// this PEM file instead of the system's trusted roots (feature `tls`;
    /// needs a `rediss://` URL, else connect fails with
    /// [`BackendError::InvalidConfig`](crate::BackendError::InvalidConfig)).
    /// A certificate not signed by them fails at connect with
    /// [`BackendError::Tls`](crate::BackendError::Tls).
    #[cfg(feature = "tls")]
    pub fn with_tls_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.get_or_insert_with(Box::default).ca_file = Some(path.into());
        self
    }

    /// Presents this client certificate (PEM, chain allowed) and its private
    /// key (PEM, PKCS#8, PKCS#1 or SEC1) to servers that ask for one
    /// (feature `tls`; needs a `rediss://` URL).
    #[cfg(feature = "tls")]
    pub fn with_tls_client_cert(
        mut self,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.tls.get_or_insert_with(Box::default).client_cert = Some((cert.into(), key.into()));
        self
    }

    /// The CA file, if set.
    #[cfg(feature = "tls")]
    pub fn tls_ca_file(&self) -> Option<&Path> {
        self.tls.as_ref()?.ca_file.as_deref()
    }

    /// The client certificate and key files, if set.
    #[cfg(feature = "tls")]
    pub fn tls_client_cert(&self) -> Option<(&Path, &Path)> {
        self.tls
            .as_ref()?
            .client_cert
            .as_ref()
            .map(|(c, k)| (c.as_path(), k.as_path()))
    }

    /// A session not touched for this long (by the Redis server's clock) is
    /// forgotten: its keys expire and it leaves the active set. Also the
    /// retention of per-session "last computed" markers.
    ///
    /// Its TTL is renewed at most once per second of the server's clock (the
    /// session's housekeeping), so a session can be forgotten up to one
    /// second before the TTL has passed since its last event, never after:
    /// one idle for less than the TTL minus one second is live, one idle for
    /// the TTL or longer is gone. `MemoryState` keeps the same bound.
    pub fn with_session_ttl(mut self, ttl: Duration) -> Self {
        self.session_ttl = ttl;
        self
    }

    /// The latency and decision windows, and the rate window's earlier
    /// seconds (`{ns}:rate`), expire after this long without an update (by
    /// the Redis server's clock). The rate window's newest second is kept in
    /// `{ns}:totals` and leaves the window 60 s later by the workers' clock.
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
    /// empty namespace, one holding `{` or `}`, or one longer than
    /// [`MAX_NAMESPACE_LEN`](Self::MAX_NAMESPACE_LEN) bytes.
    ///
    /// ```
    /// use composite_metrics::state::RedisConfig;
    /// use composite_metrics::ConfigError;
    ///
    /// let err = RedisConfig::default().with_namespace("team{").validate().unwrap_err();
    /// assert!(matches!(err, ConfigError::OutOfRange { field: "namespace", .. }));
    /// let long = "n".repeat(RedisConfig::MAX_NAMESPACE_LEN + 1);
    /// let err = RedisConfig::default().with_namespace(&long).validate().unwrap_err();
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
        if self.namespace.len() > Self::MAX_NAMESPACE_LEN {
            return Err(ConfigError::OutOfRange {
                field: "namespace",
                reason: "must be at most 64 bytes (every key carries it)",
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
