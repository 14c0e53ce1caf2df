use std::time::Duration;

/// One stretch of a [`LoadProfile`](super::LoadProfile): Poisson arrivals at
/// `rate` events per second (over all workers) for `duration`.
///
/// A rate of zero is a quiet gap.
///
/// ```
/// use std::time::Duration;
/// use composite_metrics::sim::Phase;
///
/// let burst = Phase::new(Duration::from_secs(10), 2_000.0);
/// assert_eq!(burst.expected_events(), 20_000.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    /// How long the phase lasts.
    pub duration: Duration,
    /// Events per second over all workers (0 for a quiet gap).
    pub rate: f64,
}

impl Phase {
    /// A phase of `duration` at `rate` events per second.
    pub fn new(duration: Duration, rate: f64) -> Self {
        Self { duration, rate }
    }

    /// The mean number of events it brings.
    pub fn expected_events(&self) -> f64 {
        self.rate * self.duration.as_secs_f64()
    }
}
