use std::fmt;

use super::MetricSink;
use crate::error::SinkError;
use crate::metric::Metric;

/// Hands every batch of metrics to a host function, e.g. to forward them on a
/// channel or to a metrics library.
///
/// # Example
///
/// ```
/// use std::sync::mpsc;
/// use composite_metrics::{CallbackSink, Event, MetricsCalculator, SinkError};
///
/// let (tx, rx) = mpsc::channel();
/// let sink = CallbackSink::new(move |metrics| {
///     tx.send(metrics.to_vec()).map_err(|e| SinkError::new("channel", e.to_string()))
/// });
/// let mut calc = MetricsCalculator::builder().sink(sink).build()?;
/// calc.process(&Event::tool_use("s1", "bash").with_duration_ms(5.0))?;
/// assert!(!rx.recv().unwrap().is_empty());
/// # Ok::<(), composite_metrics::Error>(())
/// ```
pub struct CallbackSink<F> {
    f: F,
}

impl<F> CallbackSink<F>
where
    F: Fn(&[Metric]) -> Result<(), SinkError> + Send + Sync,
{
    /// A sink calling `f` with each batch.
    pub fn new(f: F) -> Self {
        Self { f }
    }
}

impl<F> fmt::Debug for CallbackSink<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackSink").finish_non_exhaustive()
    }
}

impl<F> MetricSink for CallbackSink<F>
where
    F: Fn(&[Metric]) -> Result<(), SinkError> + Send + Sync,
{
    fn record(&self, metrics: &[Metric]) -> Result<(), SinkError> {
        (self.f)(metrics)
    }
}
