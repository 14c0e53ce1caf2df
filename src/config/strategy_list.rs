use serde::{Deserialize, Serialize};

use super::StrategyConfig;
use crate::error::ConfigError;
use crate::sim::Strategy;

/// A list of strategies, as `[[strategies]]` tables in a file: what
/// `compare --strategy-file` reads.
///
/// ```
/// use composite_metrics::config::StrategyList;
///
/// let list: StrategyList = toml::from_str(r#"
///     [[strategies]]
///     strategy = "hybrid-lock"
///     min_interval = "10s"
///
///     [[strategies]]
///     strategy = "background"
///     coordinated = true
/// "#).unwrap();
/// let strategies = list.sim_strategies()?;
/// assert_eq!(strategies[0].name(), "hybrid-lock");
/// # Ok::<(), composite_metrics::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StrategyList {
    /// The strategies, in order.
    pub strategies: Vec<StrategyConfig>,
}

impl StrategyList {
    /// The strategies for the simulator, each validated; the first invalid
    /// one is a [`ConfigError`] naming its field.
    pub fn sim_strategies(&self) -> Result<Vec<Strategy>, ConfigError> {
        self.strategies
            .iter()
            .map(StrategyConfig::sim_strategy)
            .collect()
    }
}

impl StrategyConfig {
    /// Parses a list of strategies from a TOML document of `[[strategies]]`
    /// tables (feature `toml`), each validated as [`build`](Self::build) does.
    ///
    /// ```
    /// use composite_metrics::config::StrategyConfig;
    ///
    /// let list = StrategyConfig::list_from_toml(r#"
    ///     [[strategies]]
    ///     strategy = "never"
    ///
    ///     [[strategies]]
    ///     strategy = "event-based"
    ///     every = 50
    /// "#)?;
    /// assert_eq!(list.len(), 2);
    /// assert_eq!(list[1].name(), "event-based");
    /// # Ok::<(), composite_metrics::ConfigError>(())
    /// ```
    #[cfg(feature = "toml")]
    pub fn list_from_toml(text: &str) -> Result<Vec<Self>, ConfigError> {
        let list: StrategyList = toml::from_str(text).map_err(ConfigError::parse)?;
        list.sim_strategies()?;
        Ok(list.strategies)
    }
}
