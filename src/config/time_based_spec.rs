use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::schedule::TimeBased;

/// The parameters of [`TimeBased`] in a configuration file
/// (`strategy = "time-based"`).
///
/// # Default
///
/// `period = "10s"`, as [`TimeBased::default`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TimeBasedSpec {
    /// Fire in wall-clock seconds that are a multiple of this (whole seconds).
    #[serde(
        deserialize_with = "super::field::period",
        serialize_with = "humantime_serde::serialize"
    )]
    pub period: Duration,
}

impl Default for TimeBasedSpec {
    fn default() -> Self {
        Self {
            period: Duration::from_secs(TimeBased::default().period_secs()),
        }
    }
}

impl TimeBasedSpec {
    /// The scheduler; a period that is not a whole number of seconds of at
    /// least one is rejected (the rule compares whole seconds).
    pub fn build(&self) -> Result<TimeBased, ConfigError> {
        if self.period < Duration::from_secs(1) || self.period.subsec_nanos() != 0 {
            return Err(ConfigError::OutOfRange {
                field: "period",
                reason: "must be a whole number of seconds, at least one",
            });
        }
        Ok(TimeBased::every(self.period))
    }
}
