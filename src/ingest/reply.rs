use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::{Condvar, Mutex};

use super::IngestError;
use crate::calculator::Delivery;
use crate::metric::Metric;

/// What happened to one event sent with a `*_with_reply` method.
pub type EventResult = Result<Applied, IngestError>;

#[derive(Debug, Default)]
struct SlotState {
    result: Option<EventResult>,
    waker: Option<Waker>,
}

#[derive(Debug, Default)]
struct Slot {
    state: Mutex<SlotState>,
    ready: Condvar,
}

/// The answer to one event sent with a `*_with_reply` method of a
/// [`Batcher`](super::Batcher): wait for it with [`wait`](Self::wait), poll it
/// with [`try_take`](Self::try_take), or `.await` it (it is a `Future` that
/// works on any executor).
#[derive(Debug)]
pub struct Reply {
    slot: Arc<Slot>,
}

/// The worker's end of a [`Reply`]; answers [`IngestError::Lost`] if dropped
/// without answering.
#[derive(Debug)]
pub(crate) struct Responder {
    slot: Option<Arc<Slot>>,
}

pub(crate) fn channel() -> (Responder, Reply) {
    let slot = Arc::new(Slot::default());
    (
        Responder {
            slot: Some(Arc::clone(&slot)),
        },
        Reply { slot },
    )
}

impl Responder {
    pub(crate) fn answer(mut self, result: EventResult) {
        if let Some(slot) = self.slot.take() {
            fill(&slot, result);
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            fill(&slot, Err(IngestError::Lost));
        }
    }
}

fn fill(slot: &Slot, result: EventResult) {
    let waker = {
        let mut state = slot.state.lock();
        state.result = Some(result);
        state.waker.take()
    };
    slot.ready.notify_all();
    if let Some(w) = waker {
        w.wake();
    }
}

impl Reply {
    /// Blocks until the event's batch was processed and returns its result.
    pub fn wait(self) -> EventResult {
        let mut state = self.slot.state.lock();
        loop {
            if let Some(result) = state.result.take() {
                return result;
            }
            self.slot.ready.wait(&mut state);
        }
    }

    /// The result if it is there, without waiting; `Err(self)` otherwise.
    pub fn try_take(self) -> Result<EventResult, Self> {
        let taken = self.slot.state.lock().result.take();
        taken.ok_or(self)
    }
}

impl Future for Reply {
    type Output = EventResult;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<EventResult> {
        let mut state = self.slot.state.lock();
        match state.result.take() {
            Some(result) => Poll::Ready(result),
            None => {
                state.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

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
