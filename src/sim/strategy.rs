use std::fmt;
use std::time::Duration;

use crate::schedule::{BackgroundConfig, CoalesceConfig, HybridLockConfig};

/// A scheduling strategy to simulate, with its parameters.
///
/// [`defaults`](Self::defaults) gives the six of the comparison:
/// `Never`, `TimeBased` (10 s), `EventBased` (every 100), `HybridLock`
/// (defaults), `Background` (30 s, coordinated) and `Coalesce` (defaults).
///
/// ```
/// use composite_metrics::sim::Strategy;
///
/// let names: Vec<_> = Strategy::defaults().iter().map(|s| s.name()).collect();
/// assert_eq!(names, ["never", "time-based", "event-based", "hybrid-lock", "background", "coalesce"]);
/// assert_eq!(Strategy::EventBased { every: 100 }.to_string(), "event-based(every 100)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Strategy {
    /// [`Never`](crate::Never): the baseline.
    Never,
    /// [`TimeBased`](crate::TimeBased): every event in a second that is a multiple of `period`.
    TimeBased {
        /// The period (whole seconds).
        period: Duration,
    },
    /// [`EventBased`](crate::EventBased): every `every` events per worker.
    EventBased {
        /// N.
        every: u64,
    },
    /// [`HybridLock`](crate::HybridLock) with its configuration.
    HybridLock(HybridLockConfig),
    /// [`Background`](crate::Background) in manual mode, polled by the
    /// simulator at every `interval / 64` of simulated time, idle or not (each
    /// poll runs before any event that arrives after it).
    Background(BackgroundConfig),
    /// [`Coalesce`](crate::Coalesce), its timer polled every `tick` of virtual time.
    Coalesce(CoalesceConfig),
}

impl Strategy {
    /// The five strategies of the comparison, with their default parameters
    /// (Background coordinated, so W workers compute once per interval).
    pub fn defaults() -> Vec<Strategy> {
        vec![
            Strategy::Never,
            Strategy::TimeBased {
                period: Duration::from_secs(10),
            },
            Strategy::EventBased { every: 100 },
            Strategy::HybridLock(HybridLockConfig::default()),
            Strategy::Background(BackgroundConfig::default().with_coordination(true)),
            Strategy::Coalesce(CoalesceConfig::default()),
        ]
    }

    /// The scheduler's name (`"never"`, `"time-based"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::Never => "never",
            Strategy::TimeBased { .. } => "time-based",
            Strategy::EventBased { .. } => "event-based",
            Strategy::HybridLock(_) => "hybrid-lock",
            Strategy::Background(_) => "background",
            Strategy::Coalesce(_) => "coalesce",
        }
    }

    /// Every duration multiplied by `factor`, for real-time runs on a
    /// compressed time axis. `TimeBased` keeps its period: its rule is about
    /// whole wall-clock seconds and cannot be scaled.
    pub fn scaled(&self, factor: f64) -> Strategy {
        match *self {
            Strategy::HybridLock(c) => Strategy::HybridLock(c.scaled(factor)),
            Strategy::Background(c) => Strategy::Background(c.scaled(factor)),
            Strategy::Coalesce(c) => Strategy::Coalesce(c.scaled(factor)),
            other => other,
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Strategy::Never => f.write_str("never"),
            Strategy::TimeBased { period } => write!(f, "time-based(period {}s)", period.as_secs()),
            Strategy::EventBased { every } => write!(f, "event-based(every {every})"),
            Strategy::HybridLock(c) => write!(
                f,
                "hybrid-lock(max_staleness {}s, min_interval {}s, every_events {}, lease {}s)",
                c.max_staleness().as_secs_f64(),
                c.min_interval().as_secs_f64(),
                c.every_events(),
                c.lease().as_secs_f64()
            ),
            Strategy::Background(c) => write!(
                f,
                "background(interval {}s, {})",
                c.interval().as_secs_f64(),
                if c.coordinated() {
                    "coordinated"
                } else {
                    "uncoordinated"
                }
            ),
            Strategy::Coalesce(c) => write!(
                f,
                "coalesce(max_staleness {}s, min_interval {}s, every_events {}, lease {}s, tick {}s)",
                c.max_staleness().as_secs_f64(),
                c.min_interval().as_secs_f64(),
                c.every_events(),
                c.lease().as_secs_f64(),
                c.tick().as_secs_f64()
            ),
        }
    }
}
