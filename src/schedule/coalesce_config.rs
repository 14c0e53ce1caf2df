use std::time::Duration;

use super::HybridLockConfig;
use crate::error::ConfigError;

/// Parameters of [`Coalesce`](super::Coalesce): [`HybridLock`](super::HybridLock)'s,
/// plus the timer's `tick`.
///
/// - **Leading edge**: an event computes at once when the last calculation
///   (anywhere, as far as this worker knows) started at least `max_staleness`
///   ago, or when this worker has seen `every_events` events since it and at
///   least `min_interval` has passed.
/// - **Trailing edge**: otherwise the event arms a worker-local deadline at
///   the moment the leading rule would next allow a calculation (never later
///   than `max_staleness` after the event). The strategy's timer fires `tick`
///   after that deadline unless an event got there first, and computes if the
///   backend still holds an event no calculation has read.
/// - **Takeover**: a worker whose timer has had nothing armed for
///   `max_staleness` asks the backend once whether anything is unreflected
///   (a dead worker's events) and computes if so.
///
/// # Default
///
/// `max_staleness` 30 s, `min_interval` 30 s, `every_events` 100, `lease` 5 s,
/// `tick` 1 s.
///
/// ```
/// use std::time::Duration;
/// use composite_metrics::CoalesceConfig;
///
/// let config = CoalesceConfig::default().with_tick(Duration::from_millis(250));
/// assert_eq!(config.max_staleness(), Duration::from_secs(30));
/// assert_eq!(config.tick(), Duration::from_millis(250));
///
/// let bad = CoalesceConfig::default().with_tick(Duration::ZERO);
/// assert!(bad.validate().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoalesceConfig {
    pub(super) lock: HybridLockConfig,
    tick: Duration,
}

impl Default for CoalesceConfig {
    fn default() -> Self {
        Self {
            lock: HybridLockConfig::default(),
            tick: Duration::from_secs(1),
        }
    }
}

impl CoalesceConfig {
    /// Freshness bound: every event is in a calculation that starts within
    /// this plus `tick` of its recording.
    pub fn with_max_staleness(mut self, d: Duration) -> Self {
        self.lock = self.lock.with_max_staleness(d);
        self
    }

    /// Rate ceiling: across all workers, two calculations never start closer
    /// than this (backend time).
    pub fn with_min_interval(mut self, d: Duration) -> Self {
        self.lock = self.lock.with_min_interval(d);
        self
    }

    /// Early trigger: after this many events on one worker, compute as soon as
    /// `min_interval` allows.
    pub fn with_every_events(mut self, n: u64) -> Self {
        self.lock = self.lock.with_every_events(n);
        self
    }

    /// Lock time-to-live.
    pub fn with_lease(mut self, d: Duration) -> Self {
        self.lock = self.lock.with_lease(d);
        self
    }

    /// The timer's grace after a deadline (and the freshness slack).
    pub fn with_tick(mut self, d: Duration) -> Self {
        self.tick = d;
        self
    }

    /// Every duration multiplied by `factor` (e.g. `0.01` to run 30 s rules in
    /// 300 ms for a real-time test).
    pub fn scaled(self, factor: f64) -> Self {
        Self {
            lock: self.lock.scaled(factor),
            tick: self.tick.mul_f64(factor),
        }
    }

    /// The freshness bound.
    pub fn max_staleness(&self) -> Duration {
        self.lock.max_staleness()
    }

    /// The rate ceiling.
    pub fn min_interval(&self) -> Duration {
        self.lock.min_interval()
    }

    /// The early trigger.
    pub fn every_events(&self) -> u64 {
        self.lock.every_events()
    }

    /// The lock time-to-live.
    pub fn lease(&self) -> Duration {
        self.lock.lease()
    }

    /// The timer's tick.
    pub fn tick(&self) -> Duration {
        self.tick
    }

    /// Rejects what [`HybridLockConfig::validate`] rejects, and a `tick` under
    /// one millisecond or above `max_staleness`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.lock.validate()?;
        if self.tick.as_millis() == 0 {
            return Err(ConfigError::OutOfRange {
                field: "tick",
                reason: "must be at least one millisecond",
            });
        }
        if self.tick > self.max_staleness() {
            return Err(ConfigError::Order {
                lower: "tick",
                lower_value: self.tick,
                upper: "max_staleness",
                upper_value: self.max_staleness(),
            });
        }
        Ok(())
    }
}
