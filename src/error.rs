//! Error types. Every fallible operation names what was wrong; nothing panics.

use std::time::Duration;

use thiserror::Error;

/// An event that could not be parsed or validated. The event was not recorded.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum EventError {
    /// The input is not one well-formed JSON object.
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    Malformed {
        /// 1-based line of the fault.
        line: usize,
        /// 1-based column of the fault.
        column: usize,
        /// What the JSON parser reported.
        message: String,
    },
    /// A required field is absent.
    #[error("missing field `{field}`")]
    MissingField {
        /// The field's name.
        field: &'static str,
    },
    /// A field holds a value of the wrong type or form.
    #[error("field `{field}`: {reason}")]
    InvalidField {
        /// The field's name (`payload.success` for nested fields).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A string field is longer than its limit.
    #[error("field `{field}` is {len} bytes long; the limit is {max} bytes")]
    TooLong {
        /// The field's name.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// A number field is negative, NaN or infinite.
    #[error("field `{field}` must be a finite, non-negative number, got {value}")]
    InvalidNumber {
        /// The field's name.
        field: &'static str,
        /// The rejected value.
        value: f64,
    },
    // Added with issue 8 (same answers on both backends, event ids).
    /// A string field that must say something is empty (`session_id`,
    /// `event_id`).
    #[error("field `{field}` must not be empty")]
    Empty {
        /// The field's name.
        field: &'static str,
    },
    /// A number field is above its documented maximum (e.g. `duration_ms`
    /// above [`MAX_DURATION_MS`](crate::event::MAX_DURATION_MS)), so that sums
    /// and averages stay finite.
    #[error("field `{field}` is {value}; the maximum is {max}")]
    TooLarge {
        /// The field's name.
        field: &'static str,
        /// The rejected value.
        value: f64,
        /// The maximum.
        max: f64,
    },
    // Added with issue 11 (strict input, bytes, event time).
    /// The input is not UTF-8 ([`process_json_bytes`](crate::MetricsCalculator::process_json_bytes),
    /// [`Event::from_json_bytes`](crate::Event::from_json_bytes)).
    #[error("invalid UTF-8 at byte offset {offset}")]
    InvalidUtf8 {
        /// Offset of the first byte that is not part of valid UTF-8.
        offset: usize,
    },
    /// Strict mode: the `event_type` is not one of
    /// [`EventType::KNOWN`](crate::EventType::KNOWN).
    #[error("unknown event_type `{value}`")]
    UnknownEventType {
        /// The type as written (at most 64 bytes of it).
        value: String,
    },
    /// Strict mode: the event carries a field its type does not use (see
    /// [`Event::ignored_fields`](crate::Event::ignored_fields)).
    #[error("field `{field}` is not used by a `{event_type}` event")]
    IgnoredField {
        /// The field's name (`payload.accepted` for nested fields).
        field: &'static str,
        /// The event's type (its wire name).
        event_type: &'static str,
    },
    /// Event time: the event is older than the newest event time seen minus
    /// the allowed lateness
    /// ([`TimeSource::EventTime`](crate::TimeSource::EventTime)).
    #[error(
        "event is {behind:?} behind the newest event time; the allowed lateness is {allowed:?}"
    )]
    Late {
        /// How far its timestamp is behind the newest event time seen.
        behind: Duration,
        /// The allowed lateness.
        allowed: Duration,
    },
}

/// Every strategy name, as written in a file: what
/// [`StrategyConfig::NAMES`](crate::config::StrategyConfig::NAMES) holds,
/// kept here so that [`ConfigError`] lists them without depending on the
/// configuration types (which depend on it).
pub(crate) const STRATEGY_NAMES: [&str; 6] = [
    "never",
    "time-based",
    "event-based",
    "hybrid-lock",
    "background",
    "coalesce",
];

/// A configuration that cannot work, rejected at construction.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A parameter must be greater than zero.
    #[error("`{field}` must be greater than zero")]
    Zero {
        /// The parameter's name.
        field: &'static str,
    },
    /// Two parameters are in the wrong order.
    #[error("`{lower}` ({lower_value:?}) must not exceed `{upper}` ({upper_value:?})")]
    Order {
        /// The parameter that must be the smaller one.
        lower: &'static str,
        /// Its value.
        lower_value: Duration,
        /// The parameter that must be the larger one.
        upper: &'static str,
        /// Its value.
        upper_value: Duration,
    },
    /// A parameter is out of its documented range.
    #[error("`{field}`: {reason}")]
    OutOfRange {
        /// The parameter's name.
        field: &'static str,
        /// The allowed range.
        reason: &'static str,
    },
    /// A required parameter is absent.
    #[error("`{field}` is required")]
    Missing {
        /// The parameter's name.
        field: &'static str,
    },
    /// A strategy name that is not one of
    /// [`StrategyConfig::NAMES`](crate::config::StrategyConfig::NAMES).
    #[error("unknown strategy `{name}`; known: {}", STRATEGY_NAMES.join(", "))]
    UnknownStrategy {
        /// The name given.
        name: String,
    },
    /// A configuration document could not be read: bad syntax, an unknown
    /// field or table, an unknown strategy, or a value of the wrong type. The
    /// message is the parser's, naming the field and its line.
    #[error("{message}")]
    Parse {
        /// What the parser reported.
        message: String,
    },
}

impl ConfigError {
    #[cfg(feature = "toml")]
    pub(crate) fn parse(e: impl std::fmt::Display) -> Self {
        Self::Parse {
            message: e.to_string(),
        }
    }
}

/// A state backend could not carry out an operation. What it concerned was not recorded,
/// except where a variant says it may have been (see [`Timeout`](Self::Timeout)).
///
/// [`is_retryable`](Self::is_retryable) tells whether the same call may succeed if tried
/// again later; each variant's docs say whether such a retry is also safe (cannot count an
/// event twice).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BackendError {
    /// A bounded table is full; the event was rejected rather than silently dropped.
    ///
    /// Nothing was recorded. Not retryable: the same call fails again until the table
    /// has room (sessions expire, or the limit is raised).
    #[error("capacity exceeded: more than {limit} distinct {what}")]
    CapacityExceeded {
        /// What the table holds.
        what: &'static str,
        /// Its limit.
        limit: usize,
    },
    /// The backend did not answer within its timeout.
    ///
    /// The request was sent, so the server may still apply it. Retrying is
    /// safe when every event of the call carries an
    /// [`event_id`](crate::Event::event_id) and the retry comes within the
    /// dedup horizon ([`RedisConfig::with_dedup_horizon`](crate::state::RedisConfig::with_dedup_horizon),
    /// default 24 h): an id is applied at most once per namespace, so an
    /// event the server did apply comes back as
    /// [`Delivery::Duplicate`](crate::Delivery::Duplicate) and counts once.
    /// Events without an id may be counted twice by a retry.
    #[error("backend operation `{op}` timed out")]
    Timeout {
        /// The operation (`connect` when opening the connection timed out).
        op: &'static str,
    },
    /// The backend's configuration was rejected before connecting.
    ///
    /// Nothing was sent. Not retryable: fix the configuration.
    #[error("invalid backend configuration: {0}")]
    InvalidConfig(#[source] ConfigError),
    /// The backend could not be reached, or the connection broke.
    ///
    /// Retryable. When the connection could not be opened (refused, unreachable), nothing
    /// was sent and a retry is safe. When an open connection broke while a request was in
    /// flight, the request may have been applied, as after a [`Timeout`](Self::Timeout).
    #[error("backend connection failed during `{op}`: {source}")]
    Connection {
        /// The operation.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    // Added with issue 8 (all or none, state loss).
    /// The namespace's state was lost since this worker last saw it (a server
    /// restarted without persistence, `FLUSHALL`, a failover to an empty
    /// replica): its epoch key was missing or held another epoch.
    ///
    /// Reported once per worker (per [`RedisState`](crate::state::RedisState)),
    /// which then adopts the new epoch; the call that reports it applied
    /// nothing, and later calls work on the fresh state (retry the event).
    /// The counts before the loss are gone; this error is the signal.
    #[error("the backend's state was lost (reset) before `{op}`; nothing was applied")]
    StateReset {
        /// The operation.
        op: &'static str,
    },
    /// A key the operation needs holds a value of another type than this
    /// crate writes there, or a field holds text where the crate keeps a
    /// number (written by another program). Checked before the first write:
    /// nothing was changed.
    #[error("backend operation `{op}`: key `{key}` holds a value of the wrong type or form")]
    WrongType {
        /// The operation.
        op: &'static str,
        /// The key at fault.
        key: String,
    },
    /// The server is out of memory (`maxmemory` reached with a
    /// `noeviction` policy) and refused the operation before it started:
    /// nothing was changed.
    #[error("backend operation `{op}` refused: the server is out of memory")]
    OutOfMemory {
        /// The operation.
        op: &'static str,
    },
    /// The server is starting and still loading its data set (Redis `LOADING`).
    ///
    /// The server refused the request before running it, so nothing was applied. Retryable
    /// and safe to retry, after a pause: loading a large data set can take minutes.
    #[error("backend is loading its data set; operation `{op}` was refused and can be retried")]
    Loading {
        /// The operation.
        op: &'static str,
    },
    /// The server refused the credentials: a password is required and none was given
    /// (Redis `NOAUTH`), or the user name or password is wrong (`WRONGPASS`), or a
    /// password was given to a server that has none.
    ///
    /// Reported when connecting. Nothing was applied. Not retryable: fix the credentials.
    #[error("backend authentication failed during `{op}`: {source}")]
    Auth {
        /// The operation.
        op: &'static str,
        /// The server's answer.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A TLS connection could not be set up: the server's certificate is not signed by the
    /// configured CA or does not name the host, the server requires a client certificate
    /// and none (or an unknown one) was given, or a certificate or key file could not be
    /// read or parsed. The source names the problem.
    ///
    /// Reported when connecting. Nothing was applied. Not retryable: fix the certificates.
    #[error("backend TLS failed during `{op}`: {source}")]
    Tls {
        /// The operation.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The backend answered with an error or an unexpected reply.
    ///
    /// Not retryable: the same request would fail the same way.
    #[error("backend error during `{op}`: {source}")]
    Other {
        /// The operation.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl BackendError {
    /// Whether the same call may succeed if tried again later: `true` for
    /// [`Timeout`](Self::Timeout), [`Connection`](Self::Connection),
    /// [`Loading`](Self::Loading), [`StateReset`](Self::StateReset) (the next
    /// call works on the fresh state) and [`OutOfMemory`](Self::OutOfMemory)
    /// (once the server has memory again), `false` for every other variant.
    ///
    /// Retryable does not mean the failed attempt left no trace: after a timeout or a
    /// connection that broke mid-request, the request may have been applied (see
    /// [`Timeout`](Self::Timeout)).
    ///
    /// ```
    /// use composite_metrics::BackendError;
    ///
    /// assert!(BackendError::Timeout { op: "record" }.is_retryable());
    /// assert!(BackendError::Loading { op: "record" }.is_retryable());
    /// let full = BackendError::CapacityExceeded { what: "sessions", limit: 10 };
    /// assert!(!full.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Timeout { .. }
            | Self::Connection { .. }
            | Self::Loading { .. }
            | Self::StateReset { .. }
            | Self::OutOfMemory { .. } => true,
            Self::CapacityExceeded { .. }
            | Self::InvalidConfig(_)
            | Self::WrongType { .. }
            | Self::Auth { .. }
            | Self::Tls { .. }
            | Self::Other { .. } => false,
        }
    }
}

/// A metric sink could not record a batch of metrics.
#[derive(Debug, Error)]
#[error("sink `{sink}` failed: {source}")]
pub struct SinkError {
    /// The sink's name.
    pub sink: &'static str,
    /// The underlying error.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl SinkError {
    /// A sink error with a plain message.
    pub fn new(sink: &'static str, message: impl Into<String>) -> Self {
        Self {
            sink,
            source: message.into().into(),
        }
    }
}

/// Any error of this crate.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The event was rejected; state is unchanged.
    #[error("rejected event: {0}")]
    Event(#[from] EventError),
    /// An event of a batch was rejected; nothing of the batch was recorded.
    #[error("rejected event at index {index} of the batch: {source}")]
    BatchEvent {
        /// Its position in the batch.
        index: usize,
        /// What was wrong with it.
        #[source]
        source: EventError,
    },
    /// A configuration was rejected.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// The state backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The background thread could not be started.
    #[error("could not start the background scheduler thread: {0}")]
    Spawn(#[source] std::io::Error),
}
