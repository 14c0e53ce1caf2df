use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use parking_lot::Mutex;

use super::queue::{Gathered, Item, Queue};
use super::reply::{channel, Responder};
use super::{
    Applied, BatcherConfig, BatcherStats, IngestError, Reply, SendError, SendFuture,
    SendReplyFuture, TrySendError,
};
use crate::calculator::{Delivery, MetricsCalculator};
use crate::error::Error;
use crate::event::Event;
use crate::metric::Metric;
use crate::schedule::CompositeScheduler;

/// An auto-batching handle: events sent from any thread or task are queued
/// and applied by worker threads in micro-batches, one
/// [`process_batch`](MetricsCalculator::process_batch) (one backend round
/// trip) per batch.
///
/// - Cloneable, `Send + Sync`: give a clone to every producer.
/// - A bounded queue ([`BatcherConfig::with_capacity`]) with backpressure:
///   [`try_send`](Self::try_send) answers [`TrySendError::Full`],
///   [`send`](Self::send) blocks the thread until there is room, and
///   [`send_async`](Self::send_async) is a future that waits without
///   blocking, on any executor (the crate depends on no runtime).
/// - Each worker thread owns one calculator, built by the factory given to
///   [`start`](Self::start). A worker takes up to `max_batch` queued events,
///   waiting at most `max_delay` after the oldest was accepted for more, and
///   applies them with one `process_batch`. Invalid events are left out of
///   the batch (answered [`IngestError::Rejected`]).
/// - The `*_with_reply` sends return a [`Reply`] carrying the event's
///   metrics or a typed [`IngestError`].
/// - [`shutdown`](Self::shutdown) stops accepting, flushes every accepted
///   event and joins the workers. Dropping the last handle does the same,
///   waiting at most [`BatcherConfig::with_drop_timeout`].
///
/// A failed batch is not retried: its events are counted in
/// [`BatcherStats::failed`], logged, and their replies carry the error.
///
/// # Example
///
/// ```
/// use composite_metrics::ingest::{Batcher, BatcherConfig};
/// use composite_metrics::{Event, MemoryState, MetricsCalculator};
///
/// let state = MemoryState::new();
/// let shared = state.clone();
/// let batcher = Batcher::start(BatcherConfig::default().with_workers(2), move |_worker| {
///     MetricsCalculator::builder().state(shared.clone()).build()
/// })?;
/// let producers: Vec<_> = (0..4)
///     .map(|p| {
///         let batcher = batcher.clone();
///         std::thread::spawn(move || {
///             for _ in 0..250 {
///                 batcher.send(Event::tool_use(format!("s{p}"), "bash")).unwrap();
///             }
///         })
///     })
///     .collect();
/// for p in producers {
///     p.join().unwrap();
/// }
/// let reply = batcher.send_with_reply(Event::tool_use("s0", "grep"))?;
/// assert!(!reply.wait()?.metrics.is_empty());
/// let stats = batcher.shutdown();
/// assert_eq!((stats.accepted, stats.applied), (1001, 1001));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Batcher {
    inner: Arc<Inner>,
}

struct Inner {
    queue: Arc<Queue>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    config: BatcherConfig,
}

impl fmt::Debug for Batcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batcher")
            .field("config", &self.inner.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Batcher {
    /// Validates `config`, builds one calculator per worker with
    /// `factory(worker_index)` (on this thread, so an error is returned
    /// here) and starts the worker threads.
    pub fn start<S, F>(config: BatcherConfig, mut factory: F) -> Result<Self, Error>
    where
        S: CompositeScheduler + 'static,
        F: FnMut(usize) -> Result<MetricsCalculator<S>, Error>,
    {
        config.validate()?;
        let calculators = (0..config.workers())
            .map(&mut factory)
            .collect::<Result<Vec<_>, _>>()?;
        let queue = Arc::new(Queue::new(config.capacity(), config.workers()));
        let mut threads = Vec::with_capacity(calculators.len());
        for (index, calc) in calculators.into_iter().enumerate() {
            let worker = Worker::new(Arc::clone(&queue), calc, &config);
            let spawned = std::thread::Builder::new()
                .name(format!("cm-batcher-{index}"))
                .spawn(move || worker.run());
            match spawned {
                Ok(handle) => threads.push(handle),
                Err(e) => {
                    // The workers already started have nothing to do yet.
                    queue.close();
                    for _ in index..config.workers() {
                        queue.worker_exited();
                    }
                    return Err(Error::Spawn(e));
                }
            }
        }
        Ok(Self {
            inner: Arc::new(Inner {
                queue,
                threads: Mutex::new(threads),
                config,
            }),
        })
    }

    pub(crate) fn queue(&self) -> &Queue {
        &self.inner.queue
    }

    fn item(event: Event, reply: Option<Responder>) -> Item {
        Item {
            event,
            reply,
            accepted_at: Instant::now(),
        }
    }

    /// Queues `event` if there is room now; never waits.
    pub fn try_send(&self, event: Event) -> Result<(), TrySendError> {
        self.queue()
            .try_push(Self::item(event, None))
            .map_err(|(e, _)| e)
    }

    /// Like [`try_send`](Self::try_send), returning the event's [`Reply`].
    pub fn try_send_with_reply(&self, event: Event) -> Result<Reply, TrySendError> {
        let (responder, reply) = channel();
        match self.queue().try_push(Self::item(event, Some(responder))) {
            Ok(()) => Ok(reply),
            // Never queued: the reply is dropped with its responder.
            Err((e, _)) => Err(e),
        }
    }

    /// Queues `event`, blocking the thread while the queue is full. Fails
    /// only when the batcher is shut down.
    pub fn send(&self, event: Event) -> Result<(), SendError> {
        self.queue()
            .push(Self::item(event, None))
            .map_err(|item| SendError(Box::new(item.event)))
    }

    /// Like [`send`](Self::send), returning the event's [`Reply`].
    pub fn send_with_reply(&self, event: Event) -> Result<Reply, SendError> {
        let (responder, reply) = channel();
        match self.queue().push(Self::item(event, Some(responder))) {
            Ok(()) => Ok(reply),
            Err(item) => Err(SendError(Box::new(item.event))),
        }
    }

    /// Queues `event`, waiting (without blocking the thread) while the queue
    /// is full: `batcher.send_async(event).await`. Works on any executor.
    pub fn send_async(&self, event: Event) -> SendFuture<'_> {
        SendFuture {
            queue: self.queue(),
            item: Some(Self::item(event, None)),
        }
    }

    /// Like [`send_async`](Self::send_async), resolving to the event's
    /// [`Reply`] (itself a future): `batcher.send_async_with_reply(e).await?.await`.
    pub fn send_async_with_reply(&self, event: Event) -> SendReplyFuture<'_> {
        let (responder, reply) = channel();
        SendReplyFuture {
            inner: SendFuture {
                queue: self.queue(),
                item: Some(Self::item(event, Some(responder))),
            },
            reply: Some(reply),
        }
    }

    /// What the batcher has done so far.
    pub fn stats(&self) -> BatcherStats {
        self.queue().stats()
    }

    /// The configuration in force.
    pub fn config(&self) -> &BatcherConfig {
        &self.inner.config
    }

    /// Stops accepting events (sends fail with the event handed back),
    /// waits until the workers applied every accepted event, joins them and
    /// returns the final stats. Returns at once if already shut down. Any
    /// clone may call it; it affects all.
    pub fn shutdown(&self) -> BatcherStats {
        self.inner.queue.close();
        let threads = std::mem::take(&mut *self.inner.threads.lock());
        for t in threads {
            if t.join().is_err() {
                log::error!("a batcher worker panicked");
            }
        }
        self.stats()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.queue.close();
        let threads = std::mem::take(&mut *self.threads.lock());
        if threads.is_empty() {
            return;
        }
        if self.queue.wait_exited(Some(self.config.drop_timeout())) {
            for t in threads {
                if t.join().is_err() {
                    log::error!("a batcher worker panicked");
                }
            }
        } else {
            log::warn!(
                "batcher dropped: workers still flushing after {:?} ({} events queued); they go on in the background",
                self.config.drop_timeout(),
                self.queue.stats().queued
            );
        }
    }
}

/// One worker thread's state.
struct Worker<S> {
    queue: Arc<Queue>,
    calc: MetricsCalculator<S>,
    max_batch: usize,
    max_delay: std::time::Duration,
    items: Vec<Item>,
    events: Vec<Event>,
    replies: Vec<Option<Responder>>,
    out: Vec<Metric>,
    deliveries: Vec<(Delivery, usize)>,
}

/// Marks the worker as exited even if it panics.
struct ExitGuard(Arc<Queue>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        self.0.worker_exited();
    }
}

impl<S: CompositeScheduler> Worker<S> {
    fn new(queue: Arc<Queue>, calc: MetricsCalculator<S>, config: &BatcherConfig) -> Self {
        let n = config.max_batch();
        Self {
            queue,
            calc,
            max_batch: n,
            max_delay: config.max_delay(),
            items: Vec::with_capacity(n),
            events: Vec::with_capacity(n),
            replies: Vec::with_capacity(n),
            out: Vec::with_capacity(n * 8),
            deliveries: Vec::with_capacity(n),
        }
    }

    fn run(mut self) {
        let _exit = ExitGuard(Arc::clone(&self.queue));
        loop {
            self.items.clear();
            match self
                .queue
                .gather(&mut self.items, self.max_batch, self.max_delay)
            {
                Gathered::Done => break,
                Gathered::Batch => self.apply(),
            }
        }
        self.calc.shutdown();
    }

    fn apply(&mut self) {
        let counters = &self.queue.counters;
        self.events.clear();
        self.replies.clear();
        let mut rejected = 0;
        for item in self.items.drain(..) {
            match item.event.validate() {
                Ok(()) => {
                    self.events.push(item.event);
                    self.replies.push(item.reply);
                }
                Err(e) => {
                    rejected += 1;
                    if let Some(r) = item.reply {
                        r.answer(Err(IngestError::Rejected(e)));
                    }
                }
            }
        }
        counters.rejected.fetch_add(rejected, Ordering::Relaxed);
        if self.events.is_empty() {
            return;
        }
        counters.batches.fetch_add(1, Ordering::Relaxed);
        self.out.clear();
        let result =
            self.calc
                .process_batch_into(&self.events, &mut self.out, &mut self.deliveries);
        match result {
            Ok(()) => {
                let duplicates = self
                    .deliveries
                    .iter()
                    .filter(|(d, _)| *d == Delivery::Duplicate)
                    .count() as u64;
                counters.duplicates.fetch_add(duplicates, Ordering::Relaxed);
                counters
                    .applied
                    .fetch_add(self.events.len() as u64 - duplicates, Ordering::Relaxed);
                let last = self.replies.len().saturating_sub(1);
                let mut start = 0;
                for (i, (reply, (delivery, end))) in
                    self.replies.drain(..).zip(&self.deliveries).enumerate()
                {
                    // `end` only grows and is at most `out.len()` (see
                    // `process_batch_into`); the last event also takes the
                    // batch's composite, after every event's metrics.
                    let end = if i == last { self.out.len() } else { *end };
                    if let Some(r) = reply {
                        let metrics = self.out.get(start..end).unwrap_or_default();
                        r.answer(Ok(Applied::new(*delivery, metrics)));
                    }
                    start = end;
                }
            }
            Err(e) => {
                counters
                    .failed
                    .fetch_add(self.events.len() as u64, Ordering::Relaxed);
                log::warn!(
                    "batcher: a batch of {} events failed and was not applied: {e}",
                    self.events.len()
                );
                let shared = Arc::new(e);
                for r in self.replies.drain(..).flatten() {
                    r.answer(Err(IngestError::Batch(Arc::clone(&shared))));
                }
            }
        }
    }
}
