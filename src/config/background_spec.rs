use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::schedule::{Background, BackgroundConfig};

/// The parameters of [`Background`] in a configuration file
/// (`strategy = "background"`); each field as in [`BackgroundConfig`].
///
/// # Default
///
/// [`BackgroundConfig::default`]: `interval = "30s"`, `jitter = "0s"`,
/// `coordinated = false`, `lease = "5s"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct BackgroundSpec {
    /// Time between runs.
    #[serde(
        deserialize_with = "super::field::interval",
        serialize_with = "humantime_serde::serialize"
    )]
    pub interval: Duration,
    /// Random delay bound of each run.
    #[serde(
        deserialize_with = "super::field::jitter",
        serialize_with = "humantime_serde::serialize"
    )]
    pub jitter: Duration,
    /// Coordinate runs across calculators through the backend's lock.
    #[serde(deserialize_with = "super::field::coordinated")]
    pub coordinated: bool,
    /// Lease of the coordination lock.
    #[serde(
        deserialize_with = "super::field::lease",
        serialize_with = "humantime_serde::serialize"
    )]
    pub lease: Duration,
}

impl Default for BackgroundSpec {
    fn default() -> Self {
        Self::from(&BackgroundConfig::default())
    }
}

impl From<&BackgroundConfig> for BackgroundSpec {
    fn from(c: &BackgroundConfig) -> Self {
        Self {
            interval: c.interval(),
            jitter: c.jitter(),
            coordinated: c.coordinated(),
            lease: c.lease(),
        }
    }
}

impl BackgroundSpec {
    /// The configuration, validated as [`BackgroundConfig::validate`] does.
    pub fn to_config(&self) -> Result<BackgroundConfig, ConfigError> {
        let config = BackgroundConfig::default()
            .with_interval(self.interval)
            .with_jitter(self.jitter)
            .with_coordination(self.coordinated)
            .with_lease(self.lease);
        config.validate()?;
        Ok(config)
    }

    /// The scheduler (its thread starts when the calculator is built).
    pub fn build(&self) -> Result<Background, ConfigError> {
        Background::new(self.to_config()?)
    }
}
