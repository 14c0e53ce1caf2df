use std::fmt;
use std::sync::Arc;

use crate::error::SinkError;
use crate::metric::Metric;

/// Where recorded metrics go.
///
/// The calculator calls [`record`](MetricSink::record) once per event (and
/// once per batch) with everything that event produced. A failure does not
/// fail the event: it is counted in [`Stats::sink_errors`](crate::Stats::sink_errors).
///
/// # Implementing a sink
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use composite_metrics::{Metric, MetricSink, MetricsCalculator, Event, SinkError};
///
/// /// Counts metrics and forwards nothing.
/// #[derive(Debug, Default)]
/// struct Counting(AtomicU64);
///
/// impl MetricSink for Counting {
///     fn record(&self, metrics: &[Metric]) -> Result<(), SinkError> {
///         self.0.fetch_add(metrics.len() as u64, Ordering::Relaxed);
///         Ok(())
///     }
/// }
///
/// let sink = std::sync::Arc::new(Counting::default());
/// let mut calc = MetricsCalculator::builder().sink(sink.clone()).build()?;
/// calc.process(&Event::tool_use("s1", "bash").with_duration_ms(12.0))?;
/// assert!(sink.0.load(Ordering::Relaxed) >= 5);
/// # Ok::<(), composite_metrics::Error>(())
/// ```
pub trait MetricSink: Send + Sync + fmt::Debug {
    /// Records metrics, in order.
    fn record(&self, metrics: &[Metric]) -> Result<(), SinkError>;
}

/// Compile-time check that the trait stays object-safe.
const _: Option<&dyn MetricSink> = None;

impl<S: MetricSink + ?Sized> MetricSink for Arc<S> {
    fn record(&self, metrics: &[Metric]) -> Result<(), SinkError> {
        (**self).record(metrics)
    }
}

impl<S: MetricSink + ?Sized> MetricSink for Box<S> {
    fn record(&self, metrics: &[Metric]) -> Result<(), SinkError> {
        (**self).record(metrics)
    }
}
