use std::sync::Arc;

/// Composites a fencing sink refused because a newer lock holder's composite
/// for the same scope was already recorded: the source of the
/// [`SinkError`](crate::SinkError) that [`MemorySink`](crate::MemorySink) and
/// `RedisSink` return for such a batch (the calculator counts it in
/// [`Stats::sink_errors`](crate::Stats::sink_errors) and logs it).
///
/// Only the refused composites were left out: the batch's other metrics
/// were recorded. Find it with `err.source.downcast_ref::<Fenced>()`.
///
/// ```
/// use composite_metrics::{Category, Metric, MemorySink, MetricSink};
/// use composite_metrics::metric::names;
/// use composite_metrics::sink::Fenced;
/// use std::time::Duration;
///
/// let sink = MemorySink::new();
/// let score = |value, generation| {
///     Metric::new(Category::Composite, names::PRODUCTIVITY_SCORE, value, Duration::ZERO)
///         .with_generation(Some(generation))
/// };
/// sink.record(&[score(70.0, 2)])?;
/// // A holder that was overtaken (generation 1) writes late: refused.
/// let err = sink.record(&[score(40.0, 1)]).unwrap_err();
/// let fenced = err.source.downcast_ref::<Fenced>().unwrap();
/// assert_eq!((fenced.refused, fenced.generation, fenced.newest), (1, 1, 2));
/// assert_eq!(sink.latest_of(Category::Composite, names::PRODUCTIVITY_SCORE), Some(70.0));
/// assert_eq!(sink.refused(), 1);
/// # Ok::<(), composite_metrics::SinkError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{refused} stale composite(s) refused by fencing: generation {generation} of scope {} \
     is older than the newest recorded, {newest} (the batch's other metrics were recorded)",
    scope_name(.session)
)]
pub struct Fenced {
    /// How many metrics of the batch were refused.
    pub refused: u64,
    /// The first refused metric's generation.
    pub generation: u64,
    /// The newest generation recorded for its scope.
    pub newest: u64,
    /// The first refused metric's scope: its session, `None` for global.
    pub session: Option<Arc<str>>,
}

fn scope_name(session: &Option<Arc<str>>) -> String {
    match session {
        Some(id) => format!("session {id:?}"),
        None => "global".to_owned(),
    }
}
