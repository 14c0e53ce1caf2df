/// What happened to one event handed to
/// [`MetricsCalculator::process_into`](crate::MetricsCalculator::process_into).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// The event was applied: its metrics were appended and recorded.
    Applied,
    /// The event's [`event_id`](crate::Event::event_id) was already applied
    /// within the dedup horizon: nothing changed, no metrics were produced,
    /// and the scheduler was not consulted. Not an error: do not retry.
    Duplicate,
}
