use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::error::ConfigError;
use crate::state::{MemoryConfig, MemoryState};

/// [`MemoryConfig`] in a configuration file (a `[memory]` table); each
/// field as in [`MemoryConfig`].
///
/// # Default
///
/// [`MemoryConfig::default`]: `session_ttl = "24h"`,
/// `max_sessions = 1000000`, `max_tools = 10000`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct MemoryConfigSpec {
    /// A session idle this long is forgotten.
    #[serde(
        deserialize_with = "super::field::session_ttl",
        serialize_with = "humantime_serde::serialize"
    )]
    pub session_ttl: Duration,
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

impl Default for MemoryConfigSpec {
    fn default() -> Self {
        Self::from(&MemoryConfig::default())
    }
}

impl From<&MemoryConfig> for MemoryConfigSpec {
    fn from(c: &MemoryConfig) -> Self {
        Self {
            session_ttl: c.session_ttl(),
            max_sessions: c.max_sessions(),
            max_tools: c.max_tools(),
            dedup_horizon: c.dedup_horizon(),
        }
    }
}

impl MemoryConfigSpec {
    /// The configuration, validated as [`MemoryState::with_config`] does
    /// (no zero TTL or limit).
    pub fn to_config(&self) -> Result<MemoryConfig, ConfigError> {
        MemoryConfig::default()
            .with_session_ttl(self.session_ttl)
            .with_max_sessions(self.max_sessions)
            .with_max_tools(self.max_tools)
            .with_dedup_horizon(self.dedup_horizon)
            .validated()
    }

    /// A memory state with this configuration on `clock`.
    pub fn build(&self, clock: impl Clock) -> Result<MemoryState, ConfigError> {
        MemoryState::with_config(self.to_config()?, clock)
    }
}
