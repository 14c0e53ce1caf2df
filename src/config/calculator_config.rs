use std::sync::Arc;

use serde::{Deserialize, Serialize};

#[cfg(feature = "redis")]
use super::RedisConfigSpec;
use super::{MemoryConfigSpec, StrategyConfig};
use crate::calculator::{Builder, MetricsCalculator};
use crate::clock::SystemClock;
use crate::error::{ConfigError, Error};
use crate::schedule::CompositeScheduler;
use crate::state::StateBackend;

/// A calculator's scheduler and state backend, as written in a
/// configuration file: a `[scheduler]` table (a [`StrategyConfig`]), a
/// `[memory]` table (a [`MemoryConfigSpec`]), and with feature `redis` an
/// optional `[redis]` table (a `RedisConfigSpec` with its `url`) that,
/// when present, replaces the memory backend. Every table and field is
/// optional; unknown ones are rejected.
///
/// ```
/// # #[cfg(feature = "toml")] {
/// use composite_metrics::config::CalculatorConfig;
///
/// let config = CalculatorConfig::from_toml(r#"
///     [scheduler]
///     strategy = "event-based"
///     every = 10
///
///     [memory]
///     session_ttl = "2h"
/// "#)?;
/// let calc = config.builder()?.build()?;
/// assert_eq!(calc.scheduler_name(), "event-based");
/// # }
/// # Ok::<(), composite_metrics::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct CalculatorConfig {
    /// When the composite is recomputed (default `never`).
    pub scheduler: StrategyConfig,
    /// The memory backend's limits (used when there is no `[redis]` table).
    pub memory: MemoryConfigSpec,
    /// The Redis backend (feature `redis`); when present it is used instead
    /// of the memory backend.
    #[cfg(feature = "redis")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisConfigSpec>,
}

impl CalculatorConfig {
    /// Parses a TOML document (feature `toml`). Syntax errors, unknown
    /// tables, fields and strategies are [`ConfigError::Parse`], naming them.
    #[cfg(feature = "toml")]
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(ConfigError::parse)
    }

    /// The state backend: Redis (connected now) when configured, else a
    /// fresh [`MemoryState`](crate::MemoryState) on the [`SystemClock`].
    pub fn state(&self) -> Result<Arc<dyn StateBackend>, Error> {
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.redis {
            return Ok(Arc::new(redis.connect()?));
        }
        Ok(Arc::new(self.memory.build(SystemClock)?))
    }

    /// A calculator builder with this scheduler and state (see
    /// [`state`](Self::state)), everything else at the builder's defaults
    /// (the [`SystemClock`] among them); set more on it before `build()`.
    /// A field that breaks a rule is [`Error::Config`] naming it.
    pub fn builder(&self) -> Result<Builder<Box<dyn CompositeScheduler>>, Error> {
        let scheduler = self.scheduler.build()?;
        Ok(MetricsCalculator::builder()
            .state(self.state()?)
            .scheduler(scheduler))
    }

    /// Checks every field without connecting or starting anything.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.scheduler.sim_strategy()?;
        self.memory.to_config()?;
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.redis {
            redis.to_config()?;
        }
        Ok(())
    }
}
