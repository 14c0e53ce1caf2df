use std::time::Duration;

/// Reflect lag: for each event, the time from its recording to the start of
/// the first composite calculation (by any worker) that read it.
///
/// Percentiles are by nearest rank over the events that were reflected before
/// the run ended; the others are counted in `unreflected`, and the oldest of
/// them gives a lower bound on their lag.
///
/// ```
/// use std::time::Duration;
/// use composite_metrics::sim::LagStats;
///
/// let lags: Vec<u64> = (1..=100).map(|s| s * 1_000_000_000).collect();
/// let stats = LagStats::from_nanos(lags, 0, None);
/// assert_eq!(stats.p50, Some(Duration::from_secs(50)));
/// assert_eq!(stats.p99, Some(Duration::from_secs(99)));
/// assert_eq!(stats.max, Some(Duration::from_secs(100)));
/// assert_eq!(stats.worst(), Some(Duration::from_secs(100)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LagStats {
    /// Median lag of reflected events.
    pub p50: Option<Duration>,
    /// 99th percentile.
    pub p99: Option<Duration>,
    /// Largest.
    pub max: Option<Duration>,
    /// Events reflected by a calculation during the run.
    pub reflected: u64,
    /// Events no calculation read before the run ended.
    pub unreflected: u64,
    /// How long the oldest unreflected event had waited when the run ended.
    pub oldest_unreflected: Option<Duration>,
}

impl LagStats {
    /// Statistics of `lags` (nanoseconds, any order), plus the unreflected events.
    pub fn from_nanos(
        mut lags: Vec<u64>,
        unreflected: u64,
        oldest_unreflected: Option<Duration>,
    ) -> Self {
        let n = lags.len();
        let mut rank = |q: f64| -> Option<Duration> {
            if n == 0 {
                return None;
            }
            let k = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
            let (_, v, _) = lags.select_nth_unstable(k);
            Some(Duration::from_nanos(*v))
        };
        let p50 = rank(0.50);
        let p99 = rank(0.99);
        let max = lags.iter().max().map(|v| Duration::from_nanos(*v));
        Self {
            p50,
            p99,
            max,
            reflected: n as u64,
            unreflected,
            oldest_unreflected,
        }
    }

    /// The worst staleness seen: the largest reflected lag, or the age of the
    /// oldest unreflected event if that is larger (a lower bound then).
    pub fn worst(&self) -> Option<Duration> {
        match (self.max, self.oldest_unreflected) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether [`worst`](Self::worst) is only a lower bound (an unreflected
    /// event waited longer than every reflected one).
    pub fn worst_is_lower_bound(&self) -> bool {
        match (self.max, self.oldest_unreflected) {
            (Some(a), Some(b)) => b > a,
            (None, Some(_)) => true,
            _ => false,
        }
    }
}
