use thiserror::Error;

use crate::error::EventError;

/// Why a stream entry went to the dead-letter stream (its text is the
/// dead-letter entry's `error` field).
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum EntryError {
    /// The entry is not a valid event.
    #[error("invalid event: {0}")]
    Event(#[from] EventError),
    /// A field name or value is not UTF-8.
    #[error("field `{field}` is not UTF-8")]
    NotUtf8 {
        /// The field's name (lossily decoded).
        field: String,
    },
    /// The entry was delivered more often than `max_deliveries` (its batch
    /// kept failing, or the consumers holding it kept dying).
    #[error("delivered {deliveries} times, more than max_deliveries ({max})")]
    TooManyDeliveries {
        /// Deliveries so far (this one included).
        deliveries: u64,
        /// The configured maximum.
        max: u64,
    },
}
