//! Strategies and backends from configuration files: serde types with
//! durations written as `"30s"` (humantime), unknown fields rejected.
//!
//! Each type mirrors a configuration of the crate and builds it through its
//! public builder, validated as the builder validates: a value that breaks
//! a rule is a [`ConfigError`](crate::ConfigError) naming the field. With
//! the `toml` feature, `from_toml` functions parse a TOML document, turning
//! syntax errors, unknown fields and unknown strategies into
//! [`ConfigError::Parse`](crate::ConfigError::Parse); without it, use any
//! serde format (`toml::from_str`, `serde_json::from_str`, ...) directly.

mod background_spec;
mod calculator_config;
mod coalesce_spec;
mod event_based_spec;
mod field;
mod hybrid_lock_spec;
mod memory_config_spec;
#[cfg(feature = "redis")]
mod redis_config_spec;
mod strategy_config;
mod strategy_list;
mod time_based_spec;

pub use self::background_spec::BackgroundSpec;
pub use self::calculator_config::CalculatorConfig;
pub use self::coalesce_spec::CoalesceSpec;
pub use self::event_based_spec::EventBasedSpec;
pub use self::hybrid_lock_spec::HybridLockSpec;
pub use self::memory_config_spec::MemoryConfigSpec;
#[cfg(feature = "redis")]
pub use self::redis_config_spec::RedisConfigSpec;
pub use self::strategy_config::StrategyConfig;
pub use self::strategy_list::StrategyList;
pub use self::time_based_spec::TimeBasedSpec;
