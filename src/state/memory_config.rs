use std::time::Duration;

use crate::error::ConfigError;

/// Limits of [`MemoryState`](super::MemoryState).
///
/// # Default
///
/// `session_ttl` 24 h, `max_sessions` 1 000 000, `max_tools` 10 000,
/// `dedup_horizon` 24 h.
///
/// ```
/// use std::time::Duration;
/// use composite_metrics::state::MemoryConfig;
///
/// let config = MemoryConfig::default().with_session_ttl(Duration::from_secs(3600));
/// assert_eq!(config.session_ttl(), Duration::from_secs(3600));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryConfig {
    session_ttl: Duration,
    max_sessions: usize,
    max_tools: usize,
    dedup_horizon: Duration,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            session_ttl: Duration::from_secs(24 * 3600),
            max_sessions: 1_000_000,
            max_tools: 10_000,
            dedup_horizon: Duration::from_secs(24 * 3600),
        }
    }
}

impl MemoryConfig {
    /// A session idle this long is forgotten: it is no longer listed as
    /// active (by the state's clock), and its next event starts it afresh (by
    /// the time that event is recorded at). The rule both backends keep: a
    /// session idle for less than the TTL minus one second is live, one idle
    /// for the TTL or longer is gone (`MemoryState` exactly at the TTL; Redis
    /// up to a second early, see `RedisConfig::with_session_ttl`).
    pub fn with_session_ttl(mut self, ttl: Duration) -> Self {
        self.session_ttl = ttl;
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

    /// How long an applied [`event_id`](crate::Event::event_id) is
    /// remembered (by the calculator's clock): a second delivery within this
    /// time is a duplicate and changes nothing.
    ///
    /// Memory: each remembered id costs about 80 bytes plus its length (the
    /// id's shared string, its expiry, and a hash-table slot); ids are kept
    /// for the horizon plus at most one sweep interval (60 s), so the cost is
    /// bounded by the rate of events with ids times the horizon.
    pub fn with_dedup_horizon(mut self, horizon: Duration) -> Self {
        self.dedup_horizon = horizon;
        self
    }

    /// The dedup horizon.
    pub fn dedup_horizon(&self) -> Duration {
        self.dedup_horizon
    }

    /// The idle time after which a session is forgotten.
    pub fn session_ttl(&self) -> Duration {
        self.session_ttl
    }

    /// The session limit.
    pub fn max_sessions(&self) -> usize {
        self.max_sessions
    }

    /// The tool-name limit.
    pub fn max_tools(&self) -> usize {
        self.max_tools
    }

    pub(crate) fn validated(self) -> Result<Self, ConfigError> {
        if self.session_ttl.is_zero() {
            return Err(ConfigError::Zero {
                field: "session_ttl",
            });
        }
        if self.max_sessions == 0 {
            return Err(ConfigError::Zero {
                field: "max_sessions",
            });
        }
        if self.max_tools == 0 {
            return Err(ConfigError::Zero { field: "max_tools" });
        }
        if self.dedup_horizon.is_zero() {
            return Err(ConfigError::Zero {
                field: "dedup_horizon",
            });
        }
        Ok(self)
    }
}
