use std::sync::Arc;

use thiserror::Error;

use crate::error::{Error, EventError};
use crate::event::Event;

/// Why an event accepted by a [`Batcher`](super::Batcher) was not applied,
/// as its [`Reply`](super::Reply) reports it.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The event is invalid; it was left out of its batch and nothing of it
    /// was recorded (the rest of the batch was applied).
    #[error("rejected event: {0}")]
    Rejected(#[source] EventError),
    /// The batch holding the event failed as a whole (all or none): nothing
    /// of it was recorded. Every event of the batch reports the same error.
    /// Whether a retry is safe is the error's to say
    /// ([`BackendError::is_retryable`](crate::BackendError::is_retryable)).
    #[error("the event's batch failed: {0}")]
    Batch(#[source] Arc<Error>),
    /// The worker stopped (it panicked) before answering; whether the event
    /// was applied is unknown.
    #[error("the worker stopped before answering")]
    Lost,
}

/// [`Batcher::try_send`](super::Batcher::try_send) refused the event; it is
/// handed back (boxed: an error stays small; [`into_event`](Self::into_event)
/// unboxes it).
#[derive(Debug, Clone, PartialEq, Error)]
pub enum TrySendError {
    /// The queue is full: retry later, or use a waiting send.
    #[error("the batcher's queue is full")]
    Full(Box<Event>),
    /// The batcher was shut down.
    #[error("the batcher is shut down")]
    Closed(Box<Event>),
}

impl TrySendError {
    /// The event that was not sent.
    pub fn into_event(self) -> Event {
        match self {
            Self::Full(e) | Self::Closed(e) => *e,
        }
    }
}

/// A waiting send failed because the batcher was shut down; the event is
/// handed back (boxed: an error stays small).
#[derive(Debug, Clone, PartialEq, Error)]
#[error("the batcher is shut down")]
pub struct SendError(pub Box<Event>);
