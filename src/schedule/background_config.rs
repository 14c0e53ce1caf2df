use std::time::Duration;

use crate::error::ConfigError;

/// Parameters of [`Background`](super::Background).
///
/// # Default
///
/// `interval` 30 s, no jitter, not coordinated, `lease` 5 s.
///
/// ```
/// use std::time::Duration;
/// use composite_metrics::BackgroundConfig;
///
/// let config = BackgroundConfig::default()
///     .with_interval(Duration::from_secs(10))
///     .with_jitter(Duration::from_secs(1))
///     .with_coordination(true);
/// assert!(config.validate().is_ok());
/// assert!(config.with_jitter(Duration::from_secs(20)).validate().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackgroundConfig {
    interval: Duration,
    jitter: Duration,
    coordinated: bool,
    lease: Duration,
}

impl Default for BackgroundConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
            jitter: Duration::ZERO,
            coordinated: false,
            lease: Duration::from_secs(5),
        }
    }
}

impl BackgroundConfig {
    /// Time between runs.
    pub fn with_interval(mut self, d: Duration) -> Self {
        self.interval = d;
        self
    }

    /// Each run is delayed by a random amount below `jitter` (less than half
    /// the interval), so processes started together spread out.
    pub fn with_jitter(mut self, d: Duration) -> Self {
        self.jitter = d;
        self
    }

    /// Coordinate through the backend's lock and marker, so N calculators
    /// sharing a backend compute about once per interval in all, not N times.
    pub fn with_coordination(mut self, on: bool) -> Self {
        self.coordinated = on;
        self
    }

    /// Lease of the coordination lock.
    pub fn with_lease(mut self, d: Duration) -> Self {
        self.lease = d;
        self
    }

    /// Every duration multiplied by `factor`.
    pub fn scaled(self, factor: f64) -> Self {
        Self {
            interval: self.interval.mul_f64(factor),
            jitter: self.jitter.mul_f64(factor),
            lease: self.lease.mul_f64(factor),
            coordinated: self.coordinated,
        }
    }

    /// Time between runs.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The jitter bound.
    pub fn jitter(&self) -> Duration {
        self.jitter
    }

    /// Whether runs are coordinated across calculators.
    pub fn coordinated(&self) -> bool {
        self.coordinated
    }

    /// The coordination lease.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// The marker age below which a coordinated run yields to another's:
    /// nine tenths of `interval - jitter`. The calculator that ran last ticks
    /// again between `interval - jitter` and `interval + jitter` later, so
    /// it always finds the marker old enough (the tenth absorbs differences
    /// in how long requests take to reach the backend), while the other
    /// calculators' ticks in between yield: calculations start at least
    /// `0.9 * (interval - jitter)` and at most `interval + jitter` apart.
    pub fn min_interval(&self) -> Duration {
        self.interval.saturating_sub(self.jitter).mul_f64(0.9)
    }

    /// Rejects a zero interval or lease, jitter of half the interval or more,
    /// and a lease longer than [`min_interval`](Self::min_interval).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.interval.as_millis() == 0 {
            return Err(ConfigError::OutOfRange {
                field: "interval",
                reason: "must be at least one millisecond",
            });
        }
        if self.lease.as_millis() == 0 {
            return Err(ConfigError::OutOfRange {
                field: "lease",
                reason: "must be at least one millisecond",
            });
        }
        if self.jitter * 2 >= self.interval {
            return Err(ConfigError::OutOfRange {
                field: "jitter",
                reason: "must be less than half the interval",
            });
        }
        if self.lease > self.min_interval() {
            return Err(ConfigError::Order {
                lower: "lease",
                lower_value: self.lease,
                upper: "(interval - jitter) * 0.9",
                upper_value: self.min_interval(),
            });
        }
        Ok(())
    }
}
