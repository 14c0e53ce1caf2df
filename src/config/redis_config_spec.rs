use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, Error};
use crate::state::{RedisConfig, RedisState};

/// [`RedisConfig`] in a configuration file (a `[redis]` table), plus the
/// `url` to connect to; each other field as in [`RedisConfig`]
/// (feature `redis`).
///
/// # Default
///
/// No `url`; the rest as [`RedisConfig::default`]: `namespace = "cm"`,
/// `connect_timeout = "1s"`, `read_timeout = "500ms"`,
/// `write_timeout = "500ms"`, `session_ttl = "24h"`, `window_ttl = "24h"`,
/// `max_sessions = 1000000`, `max_tools = 10000`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RedisConfigSpec {
    /// Where to connect, e.g. `redis://127.0.0.1:6379/`; needed by
    /// [`connect`](Self::connect), ignored by [`to_config`](Self::to_config).
    #[serde(
        deserialize_with = "super::field::url",
        skip_serializing_if = "Option::is_none"
    )]
    pub url: Option<String>,
    /// Every key lives under `{namespace}:`.
    #[serde(deserialize_with = "super::field::namespace")]
    pub namespace: String,
    /// Connect timeout.
    #[serde(
        deserialize_with = "super::field::connect_timeout",
        serialize_with = "humantime_serde::serialize"
    )]
    pub connect_timeout: Duration,
    /// Read timeout.
    #[serde(
        deserialize_with = "super::field::read_timeout",
        serialize_with = "humantime_serde::serialize"
    )]
    pub read_timeout: Duration,
    /// Write timeout.
    #[serde(
        deserialize_with = "super::field::write_timeout",
        serialize_with = "humantime_serde::serialize"
    )]
    pub write_timeout: Duration,
    /// Session TTL.
    #[serde(
        deserialize_with = "super::field::session_ttl",
        serialize_with = "humantime_serde::serialize"
    )]
    pub session_ttl: Duration,
    /// Window TTL.
    #[serde(
        deserialize_with = "super::field::window_ttl",
        serialize_with = "humantime_serde::serialize"
    )]
    pub window_ttl: Duration,
    /// At most this many live sessions.
    #[serde(deserialize_with = "super::field::max_sessions")]
    pub max_sessions: usize,
    /// At most this many distinct tool names.
    #[serde(deserialize_with = "super::field::max_tools")]
    pub max_tools: usize,
    /// How long an applied `event_id` is remembered (at most once within it).
    #[serde(
        deserialize_with = "super::field::dedup_horizon",
        serialize_with = "humantime_serde::serialize"
    )]
    pub dedup_horizon: Duration,
}

impl Default for RedisConfigSpec {
    fn default() -> Self {
        Self::from(&RedisConfig::default())
    }
}

impl From<&RedisConfig> for RedisConfigSpec {
    fn from(c: &RedisConfig) -> Self {
        Self {
            url: None,
            namespace: c.namespace().to_owned(),
            connect_timeout: c.connect_timeout(),
            read_timeout: c.read_timeout(),
            write_timeout: c.write_timeout(),
            session_ttl: c.session_ttl(),
            window_ttl: c.window_ttl(),
            max_sessions: c.max_sessions(),
            max_tools: c.max_tools(),
            dedup_horizon: c.dedup_horizon(),
        }
    }
}

impl RedisConfigSpec {
    /// The configuration, validated as [`RedisConfig::validate`] does.
    pub fn to_config(&self) -> Result<RedisConfig, ConfigError> {
        let config = RedisConfig::default()
            .with_namespace(&self.namespace)
            .with_connect_timeout(self.connect_timeout)
            .with_read_timeout(self.read_timeout)
            .with_write_timeout(self.write_timeout)
            .with_session_ttl(self.session_ttl)
            .with_window_ttl(self.window_ttl)
            .with_max_sessions(self.max_sessions)
            .with_max_tools(self.max_tools)
            .with_dedup_horizon(self.dedup_horizon);
        config.validate()?;
        Ok(config)
    }

    /// Connects to `url` with this configuration. Without a `url` it is
    /// [`ConfigError::Missing`]; a bad field is [`Error::Config`]; a
    /// connection failure is [`Error::Backend`].
    pub fn connect(&self) -> Result<RedisState, Error> {
        let url = self
            .url
            .as_deref()
            .ok_or(ConfigError::Missing { field: "url" })?;
        Ok(RedisState::connect(url, self.to_config()?)?)
    }
}
