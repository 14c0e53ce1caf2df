use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::queue::{Item, PollPush, Queue};
use super::{Reply, SendError};

/// The future of [`Batcher::send_async`](super::Batcher::send_async): resolves once the event is in the
/// queue (waiting, without blocking the thread, while the queue is full).
/// It needs no particular runtime: any executor that polls futures drives
/// it. Dropping it before it resolves drops the event unsent.
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct SendFuture<'a> {
    pub(crate) queue: &'a Queue,
    pub(crate) item: Option<Item>,
}

/// The future of [`Batcher::send_async_with_reply`](super::Batcher::send_async_with_reply): like [`SendFuture`],
/// resolving to the [`Reply`] to await next.
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct SendReplyFuture<'a> {
    pub(crate) inner: SendFuture<'a>,
    pub(crate) reply: Option<Reply>,
}

impl Future for SendFuture<'_> {
    type Output = Result<(), SendError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(item) = self.item.take() else {
            // Polled again after it resolved: it already did its work.
            return Poll::Ready(Ok(()));
        };
        match self.queue.poll_push(item, cx) {
            PollPush::Pushed => Poll::Ready(Ok(())),
            PollPush::Closed(item) => Poll::Ready(Err(SendError(Box::new(item.event)))),
            PollPush::Full(item) => {
                self.item = Some(item);
                Poll::Pending
            }
        }
    }
}

impl Future for SendReplyFuture<'_> {
    type Output = Result<Reply, SendError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match Pin::new(&mut self.inner).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => match self.reply.take() {
                Some(reply) => Poll::Ready(Ok(reply)),
                // Polled after it resolved.
                None => Poll::Pending,
            },
        }
    }
}
