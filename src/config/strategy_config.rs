use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{BackgroundSpec, CoalesceSpec, EventBasedSpec, HybridLockSpec, TimeBasedSpec};
use crate::error::{ConfigError, STRATEGY_NAMES};
use crate::schedule::{CompositeScheduler, Never};
use crate::sim::Strategy;

/// A composite scheduling strategy and its parameters, as written in a
/// configuration file: the `strategy` field names it (kebab-case), the other
/// fields are its parameters, each optional with the strategy's default.
/// Durations are written as `"30s"`, `"500ms"`, `"2m"` (humantime).
///
/// Deserialising rejects an unknown strategy name and a field the strategy
/// does not have, naming them; [`build`](Self::build) rejects values that
/// break a rule, with a [`ConfigError`] naming the field. `"hybrid-lock".parse()`
/// gives a strategy with its defaults.
///
/// ```
/// # #[cfg(feature = "toml")] {
/// use composite_metrics::config::StrategyConfig;
///
/// let config = StrategyConfig::from_toml(r#"
///     strategy = "hybrid-lock"
///     min_interval = "10s"
///     every_events = 500
/// "#)?;
/// let scheduler = config.build()?;
/// assert_eq!(scheduler.name(), "hybrid-lock");
///
/// let defaults: StrategyConfig = "background".parse()?;
/// assert_eq!(defaults, StrategyConfig::Background(Default::default()));
/// # }
/// # Ok::<(), composite_metrics::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "strategy", rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub enum StrategyConfig {
    /// [`Never`]: no composite (the benchmark baseline). No parameters
    /// (written `StrategyConfig::Never {}`: as a struct variant it rejects
    /// unknown fields like the others).
    Never {},
    /// [`TimeBased`](crate::TimeBased): the legacy rule.
    TimeBased(TimeBasedSpec),
    /// [`EventBased`](crate::EventBased): every N events per worker.
    EventBased(EventBasedSpec),
    /// [`HybridLock`](crate::HybridLock).
    HybridLock(HybridLockSpec),
    /// [`Background`](crate::Background).
    Background(BackgroundSpec),
    /// [`Coalesce`](crate::Coalesce), its timer on its own thread.
    Coalesce(CoalesceSpec),
    // A new strategy adds its variant here with its spec type, a `NAMES`
    // entry (in `crate::error::STRATEGY_NAMES`), and an arm in `name`,
    // `build`, `sim_strategy` and `from_str`.
}

impl Default for StrategyConfig {
    /// [`Never`](Self::Never), the calculator builder's default.
    fn default() -> Self {
        Self::Never {}
    }
}

impl StrategyConfig {
    /// Every strategy name, as written in a file.
    pub const NAMES: [&'static str; 6] = STRATEGY_NAMES;

    /// The strategy's name, as written in a file.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Never {} => "never",
            Self::TimeBased(_) => "time-based",
            Self::EventBased(_) => "event-based",
            Self::HybridLock(_) => "hybrid-lock",
            Self::Background(_) => "background",
            Self::Coalesce(_) => "coalesce",
        }
    }

    /// The scheduler, boxed; a parameter that breaks a rule is a
    /// [`ConfigError`] naming it.
    pub fn build(&self) -> Result<Box<dyn CompositeScheduler>, ConfigError> {
        Ok(match self {
            Self::Never {} => Box::new(Never),
            Self::TimeBased(spec) => Box::new(spec.build()?),
            Self::EventBased(spec) => Box::new(spec.build()?),
            Self::HybridLock(spec) => Box::new(spec.build()?),
            Self::Background(spec) => Box::new(spec.build()?),
            Self::Coalesce(spec) => Box::new(spec.build()?),
        })
    }

    /// The same strategy for the simulator, validated as [`build`](Self::build) does.
    pub fn sim_strategy(&self) -> Result<Strategy, ConfigError> {
        Ok(match self {
            Self::Never {} => Strategy::Never,
            Self::TimeBased(spec) => Strategy::TimeBased {
                period: std::time::Duration::from_secs(spec.build()?.period_secs()),
            },
            Self::EventBased(spec) => Strategy::EventBased {
                every: spec.build()?.n(),
            },
            Self::HybridLock(spec) => Strategy::HybridLock(spec.to_config()?),
            Self::Background(spec) => Strategy::Background(spec.to_config()?),
            Self::Coalesce(spec) => Strategy::Coalesce(spec.to_config()?),
        })
    }

    /// Parses one strategy from a TOML document (feature `toml`). Syntax
    /// errors, unknown strategies and unknown fields are [`ConfigError::Parse`]
    /// (the message names them and their line); the values are not validated
    /// until [`build`](Self::build).
    #[cfg(feature = "toml")]
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(ConfigError::parse)
    }
}

impl fmt::Display for StrategyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for StrategyConfig {
    type Err = ConfigError;

    /// A bare strategy name (`"hybrid-lock"`) gives that strategy with its defaults.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Ok(match name.trim() {
            "never" => Self::Never {},
            "time-based" => Self::TimeBased(TimeBasedSpec::default()),
            "event-based" => Self::EventBased(EventBasedSpec::default()),
            "hybrid-lock" => Self::HybridLock(HybridLockSpec::default()),
            "background" => Self::Background(BackgroundSpec::default()),
            "coalesce" => Self::Coalesce(CoalesceSpec::default()),
            other => {
                return Err(ConfigError::UnknownStrategy {
                    name: other.to_owned(),
                })
            }
        })
    }
}
