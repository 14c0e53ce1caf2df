use std::time::Duration;

use super::{CompositeScheduler, Decision, EventContext, SchedulerEnv, Ticket};
use crate::error::{ConfigError, Error};

/// The legacy rule, kept faithfully: on each event, compute when the
/// wall-clock second is a multiple of the period (`int(time.time()) % 10 == 0`).
///
/// Kept as the baseline the other strategies are measured against; its faults
/// are the reason this crate exists:
///
/// - it fires on **every** event inside a matching second, so at 1000 events/s
///   it computes about 1000 times in that second (about `rate / period` per
///   second on average), not once;
/// - every worker fires in the same second, with no coordination;
/// - with fewer than one event per second it misses matching seconds, and at
///   1 event/min it rarely computes at all: no freshness guarantee;
/// - it reads the clock on every event.
///
/// # Default
///
/// Period 10 s.
///
/// ```
/// use std::time::Duration;
/// use composite_metrics::clock::ManualClock;
/// use composite_metrics::{Event, MemoryState, MetricsCalculator, TimeBased};
///
/// let clock = ManualClock::new(Duration::from_secs(1_000)); // a multiple of 10
/// let mut calc = MetricsCalculator::builder()
///     .clock(clock.clone())
///     .scheduler(TimeBased::default())
///     .build()?;
/// for _ in 0..3 {
///     calc.process(&Event::tool_use("s1", "bash"))?; // all inside second 1000
/// }
/// clock.advance(Duration::from_secs(1));
/// calc.process(&Event::tool_use("s1", "bash"))?; // second 1001: no
/// assert_eq!(calc.stats().composites, 3);
/// # Ok::<(), composite_metrics::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TimeBased {
    period_secs: u64,
    /// The last second found not due (0: none yet; second 0 is always
    /// due), so the events of that second skip without dividing.
    not_due_sec: u64,
}

impl Default for TimeBased {
    fn default() -> Self {
        Self::every(Duration::from_secs(10))
    }
}

impl TimeBased {
    /// Fires in seconds that are a multiple of `period` (whole seconds; the
    /// fraction is ignored). A period under one second is rejected when the
    /// calculator is built.
    pub fn every(period: Duration) -> Self {
        Self {
            period_secs: period.as_secs(),
            not_due_sec: 0,
        }
    }

    /// The period in whole seconds.
    pub fn period_secs(&self) -> u64 {
        self.period_secs
    }
}

impl CompositeScheduler for TimeBased {
    fn name(&self) -> &'static str {
        "time-based"
    }

    fn attach(&mut self, _env: &SchedulerEnv) -> Result<(), Error> {
        if self.period_secs == 0 {
            return Err(ConfigError::Zero { field: "period" }.into());
        }
        Ok(())
    }

    #[inline]
    fn on_event(&mut self, ctx: &EventContext<'_>) -> Result<Decision, crate::BackendError> {
        Ok(
            if ctx.now.as_secs().checked_rem(self.period_secs) == Some(0) {
                Decision::Compute(Ticket::free())
            } else {
                Decision::Skip
            },
        )
    }

    #[inline]
    fn skip_fast(&mut self, now: std::time::Duration) -> bool {
        let sec = now.as_secs();
        if sec == self.not_due_sec {
            return true;
        }
        let skip = sec.checked_rem(self.period_secs) != Some(0);
        if skip {
            self.not_due_sec = sec;
        }
        skip
    }
}
