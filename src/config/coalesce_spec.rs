use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::schedule::{Coalesce, CoalesceConfig};

/// The parameters of [`Coalesce`] in a configuration file
/// (`strategy = "coalesce"`); each field as in [`CoalesceConfig`]. The
/// strategy built from it runs its timer on its own thread.
///
/// # Default
///
/// [`CoalesceConfig::default`]: `max_staleness = "30s"`,
/// `min_interval = "30s"`, `every_events = 100`, `lease = "5s"`,
/// `tick = "1s"`.
///
/// ```
/// use composite_metrics::config::StrategyConfig;
///
/// let s: StrategyConfig = "coalesce".parse()?;
/// assert_eq!(s.build()?.name(), "coalesce");
/// # Ok::<(), composite_metrics::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct CoalesceSpec {
    /// Freshness bound.
    #[serde(
        deserialize_with = "super::field::max_staleness",
        serialize_with = "humantime_serde::serialize"
    )]
    pub max_staleness: Duration,
    /// Rate ceiling across all workers.
    #[serde(
        deserialize_with = "super::field::min_interval",
        serialize_with = "humantime_serde::serialize"
    )]
    pub min_interval: Duration,
    /// Early trigger per worker.
    #[serde(deserialize_with = "super::field::every_events")]
    pub every_events: u64,
    /// Lock lease.
    #[serde(
        deserialize_with = "super::field::lease",
        serialize_with = "humantime_serde::serialize"
    )]
    pub lease: Duration,
    /// The timer's tick.
    #[serde(
        deserialize_with = "super::field::tick",
        serialize_with = "humantime_serde::serialize"
    )]
    pub tick: Duration,
}

impl Default for CoalesceSpec {
    fn default() -> Self {
        Self::from(&CoalesceConfig::default())
    }
}

impl From<&CoalesceConfig> for CoalesceSpec {
    fn from(c: &CoalesceConfig) -> Self {
        Self {
            max_staleness: c.max_staleness(),
            min_interval: c.min_interval(),
            every_events: c.every_events(),
            lease: c.lease(),
            tick: c.tick(),
        }
    }
}

impl CoalesceSpec {
    /// The configuration, validated as [`CoalesceConfig::validate`] does.
    pub fn to_config(&self) -> Result<CoalesceConfig, ConfigError> {
        let config = CoalesceConfig::default()
            .with_max_staleness(self.max_staleness)
            .with_min_interval(self.min_interval)
            .with_every_events(self.every_events)
            .with_lease(self.lease)
            .with_tick(self.tick);
        config.validate()?;
        Ok(config)
    }

    /// The scheduler, its timer on its own thread.
    pub fn build(&self) -> Result<Coalesce, ConfigError> {
        Coalesce::new(self.to_config()?)
    }
}
