use std::time::Duration;

use crate::error::ConfigError;

/// Parameters of [`HybridLock`](super::HybridLock).
///
/// A calculation is due when an event has arrived since the last one and
/// either `max_staleness` has passed, or `every_events` events have been seen
/// by this worker and `min_interval` has passed since the last calculation
/// anywhere. A due worker takes the shared lock (held for at most `lease`);
/// the backend refuses it if any worker started a calculation less than
/// `min_interval` ago.
///
/// # Default
///
/// `max_staleness` 30 s, `min_interval` 30 s, `every_events` 100, `lease` 5 s.
///
/// ```
/// use std::time::Duration;
/// use composite_metrics::HybridLockConfig;
///
/// let config = HybridLockConfig::default()
///     .with_min_interval(Duration::from_secs(10))
///     .with_every_events(1_000);
/// assert_eq!(config.max_staleness(), Duration::from_secs(30));
///
/// let bad = HybridLockConfig::default().with_min_interval(Duration::from_secs(60));
/// assert!(bad.validate().is_err()); // min_interval above max_staleness
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HybridLockConfig {
    max_staleness: Duration,
    min_interval: Duration,
    pub(super) every_events: u64,
    lease: Duration,
}

impl Default for HybridLockConfig {
    fn default() -> Self {
        Self {
            max_staleness: Duration::from_secs(30),
            min_interval: Duration::from_secs(30),
            every_events: 100,
            lease: Duration::from_secs(5),
        }
    }
}

impl HybridLockConfig {
    /// Freshness floor: an event is reflected within this (plus the gap to the next event).
    pub fn with_max_staleness(mut self, d: Duration) -> Self {
        self.max_staleness = d;
        self
    }

    /// Rate ceiling across all workers: two calculations never start closer than this.
    pub fn with_min_interval(mut self, d: Duration) -> Self {
        self.min_interval = d;
        self
    }

    /// Activity trigger per worker.
    pub fn with_every_events(mut self, n: u64) -> Self {
        self.every_events = n;
        self
    }

    /// How long a taken lock lives if its holder never releases it.
    pub fn with_lease(mut self, d: Duration) -> Self {
        self.lease = d;
        self
    }

    /// Every duration multiplied by `factor` (for running scenarios in scaled real time).
    pub fn scaled(self, factor: f64) -> Self {
        Self {
            max_staleness: self.max_staleness.mul_f64(factor),
            min_interval: self.min_interval.mul_f64(factor),
            lease: self.lease.mul_f64(factor),
            every_events: self.every_events,
        }
    }

    /// The freshness floor.
    pub fn max_staleness(&self) -> Duration {
        self.max_staleness
    }

    /// The rate ceiling.
    pub fn min_interval(&self) -> Duration {
        self.min_interval
    }

    /// The activity trigger.
    pub fn every_events(&self) -> u64 {
        self.every_events
    }

    /// The lock lease.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Rejects configurations that cannot keep the guarantees: zero durations
    /// or count, `min_interval` above `max_staleness`, or a `lease` longer
    /// than `min_interval` (a stuck holder would then block calculations past
    /// the rate ceiling).
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, d) in [
            ("max_staleness", self.max_staleness),
            ("min_interval", self.min_interval),
            ("lease", self.lease),
        ] {
            if d.as_millis() == 0 {
                return Err(ConfigError::OutOfRange {
                    field,
                    reason: "must be at least one millisecond",
                });
            }
        }
        if self.every_events == 0 {
            return Err(ConfigError::Zero {
                field: "every_events",
            });
        }
        if self.min_interval > self.max_staleness {
            return Err(ConfigError::Order {
                lower: "min_interval",
                lower_value: self.min_interval,
                upper: "max_staleness",
                upper_value: self.max_staleness,
            });
        }
        if self.lease > self.min_interval {
            return Err(ConfigError::Order {
                lower: "lease",
                lower_value: self.lease,
                upper: "min_interval",
                upper_value: self.min_interval,
            });
        }
        Ok(())
    }
}
