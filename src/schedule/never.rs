use super::{CompositeScheduler, Decision, EventContext};
use crate::error::BackendError;

/// Never computes the composite: the baseline that benchmarks compare against.
///
/// ```
/// use composite_metrics::{Event, MetricsCalculator, Never};
/// let mut calc = MetricsCalculator::builder().scheduler(Never).build()?;
/// for _ in 0..1_000 {
///     calc.process(&Event::tool_use("s1", "bash").with_success(true))?;
/// }
/// assert_eq!(calc.stats().composites, 0);
/// # Ok::<(), composite_metrics::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Never;

impl CompositeScheduler for Never {
    fn name(&self) -> &'static str {
        "never"
    }

    #[inline]
    fn on_event(&mut self, _ctx: &EventContext<'_>) -> Result<Decision, BackendError> {
        Ok(Decision::Skip)
    }

    #[inline]
    fn skip_fast(&mut self, _now: std::time::Duration) -> bool {
        true
    }
}
