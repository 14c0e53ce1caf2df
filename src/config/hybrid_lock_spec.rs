use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::schedule::{HybridLock, HybridLockConfig};

/// The parameters of [`HybridLock`] in a configuration file
/// (`strategy = "hybrid-lock"`); each field as in [`HybridLockConfig`].
///
/// # Default
///
/// [`HybridLockConfig::default`]: `max_staleness = "30s"`,
/// `min_interval = "30s"`, `every_events = 100`, `lease = "5s"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct HybridLockSpec {
    /// Freshness floor.
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
    /// Activity trigger per worker.
    #[serde(deserialize_with = "super::field::every_events")]
    pub every_events: u64,
    /// Lock lease.
    #[serde(
        deserialize_with = "super::field::lease",
        serialize_with = "humantime_serde::serialize"
    )]
    pub lease: Duration,
}

impl Default for HybridLockSpec {
    fn default() -> Self {
        Self::from(&HybridLockConfig::default())
    }
}

impl From<&HybridLockConfig> for HybridLockSpec {
    fn from(c: &HybridLockConfig) -> Self {
        Self {
            max_staleness: c.max_staleness(),
            min_interval: c.min_interval(),
            every_events: c.every_events(),
            lease: c.lease(),
        }
    }
}

impl HybridLockSpec {
    /// The configuration, validated as [`HybridLockConfig::validate`] does.
    pub fn to_config(&self) -> Result<HybridLockConfig, ConfigError> {
        let config = HybridLockConfig::default()
            .with_max_staleness(self.max_staleness)
            .with_min_interval(self.min_interval)
            .with_every_events(self.every_events)
            .with_lease(self.lease);
        config.validate()?;
        Ok(config)
    }

    /// The scheduler.
    pub fn build(&self) -> Result<HybridLock, ConfigError> {
        HybridLock::new(self.to_config()?)
    }
}
