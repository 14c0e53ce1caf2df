use crate::calculator::Delivery;
use crate::metric::Metric;

/// A processed event, as its [`Reply`](super::Reply) reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// Applied, or a duplicate of an event id already applied (then
    /// `metrics` is empty).
    pub delivery: Delivery,
    /// The event's metrics; the reply of a batch's last event also carries
    /// the composite when the batch computed one.
    pub metrics: Vec<crate::metric::Metric>,
}

impl Applied {
    pub(crate) fn new(delivery: Delivery, metrics: &[Metric]) -> Self {
        Self {
            delivery,
            metrics: metrics.to_vec(),
        }
    }
}
