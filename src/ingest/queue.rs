//! The bounded queue between a batcher's senders and its workers.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::reply::Responder;
use super::{BatcherStats, TrySendError};
use crate::event::Event;

/// One accepted event.
#[derive(Debug)]
pub(crate) struct Item {
    pub(crate) event: Event,
    pub(crate) reply: Option<Responder>,
    pub(crate) accepted_at: Instant,
}

#[derive(Debug)]
struct State {
    items: VecDeque<Item>,
    closed: bool,
    /// Queued events the gathering worker waits for before it wants a wake-up.
    wanted: usize,
    /// Async senders waiting for room.
    waiters: Vec<Waker>,
    accepted: u64,
    refused_full: u64,
}

/// Counters the workers add to once per batch.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) batches: AtomicU64,
    pub(crate) applied: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) failed: AtomicU64,
}

#[derive(Debug)]
pub(crate) struct Queue {
    state: Mutex<State>,
    /// The gathering worker waits here.
    not_empty: Condvar,
    /// Blocking senders wait here.
    not_full: Condvar,
    /// One worker gathers a batch at a time; the others process theirs.
    gather: Mutex<()>,
    capacity: usize,
    pub(crate) counters: Counters,
    /// Workers still running.
    running: Mutex<usize>,
    exited: Condvar,
}

/// What a gathering worker got.
pub(crate) enum Gathered {
    Batch,
    /// Closed and empty: the worker may exit.
    Done,
}

impl Queue {
    pub(crate) fn new(capacity: usize, workers: usize) -> Self {
        Self {
            state: Mutex::new(State {
                items: VecDeque::with_capacity(capacity.min(1 << 16)),
                closed: false,
                wanted: 1,
                waiters: Vec::new(),
                accepted: 0,
                refused_full: 0,
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            gather: Mutex::new(()),
            capacity,
            counters: Counters::default(),
            running: Mutex::new(workers),
            exited: Condvar::new(),
        }
    }

    fn push_locked(&self, state: &mut State, item: Item) {
        state.items.push_back(item);
        state.accepted += 1;
        if state.items.len() >= state.wanted {
            self.not_empty.notify_one();
        }
    }

    // The event goes back to the caller unboxed: no allocation on the send path.
    #[allow(clippy::result_large_err)]
    pub(crate) fn try_push(&self, item: Item) -> Result<(), (TrySendError, Option<Responder>)> {
        let mut state = self.state.lock();
        if state.closed {
            return Err((TrySendError::Closed(Box::new(item.event)), item.reply));
        }
        if state.items.len() >= self.capacity {
            state.refused_full += 1;
            return Err((TrySendError::Full(Box::new(item.event)), item.reply));
        }
        self.push_locked(&mut state, item);
        Ok(())
    }

    /// Waits for room; hands the item back when the queue is closed.
    // The event goes back to the caller unboxed: no allocation on the send path.
    #[allow(clippy::result_large_err)]
    pub(crate) fn push(&self, item: Item) -> Result<(), Item> {
        let mut state = self.state.lock();
        loop {
            if state.closed {
                return Err(item);
            }
            if state.items.len() < self.capacity {
                self.push_locked(&mut state, item);
                return Ok(());
            }
            self.not_full.wait(&mut state);
        }
    }

    /// One poll of an async send: pushes if there is room, or registers the
    /// task to be woken when there may be.
    pub(crate) fn poll_push(&self, item: Item, cx: &mut Context<'_>) -> PollPush {
        let mut state = self.state.lock();
        if state.closed {
            return PollPush::Closed(item);
        }
        if state.items.len() < self.capacity {
            self.push_locked(&mut state, item);
            return PollPush::Pushed;
        }
        if !state.waiters.iter().any(|w| w.will_wake(cx.waker())) {
            state.waiters.push(cx.waker().clone());
        }
        PollPush::Full(item)
    }

    /// Closes the queue: sends fail from now on; workers drain what is
    /// queued, then exit.
    pub(crate) fn close(&self) {
        let waiters = {
            let mut state = self.state.lock();
            state.closed = true;
            std::mem::take(&mut state.waiters)
        };
        self.not_empty.notify_all();
        self.not_full.notify_all();
        for w in waiters {
            w.wake();
        }
    }

    /// Fills `batch` with up to `max_batch` items: waits for a first item,
    /// then until `max_batch` are there or `max_delay` has passed since the
    /// oldest was accepted.
    pub(crate) fn gather(
        &self,
        batch: &mut Vec<Item>,
        max_batch: usize,
        max_delay: Duration,
    ) -> Gathered {
        let _one_gatherer = self.gather.lock();
        let mut state = self.state.lock();
        let deadline = loop {
            if let Some(first) = state.items.front() {
                // `None` (a delay beyond the clock's range): wait until full.
                break first.accepted_at.checked_add(max_delay);
            }
            if state.closed {
                return Gathered::Done;
            }
            state.wanted = 1;
            self.not_empty.wait(&mut state);
        };
        loop {
            let take = max_batch.saturating_sub(batch.len()).min(state.items.len());
            batch.extend(state.items.drain(..take));
            let due = deadline.is_some_and(|d| Instant::now() >= d);
            if batch.len() >= max_batch || state.closed || due {
                break;
            }
            state.wanted = max_batch.saturating_sub(batch.len());
            match deadline {
                Some(d) => {
                    if self.not_empty.wait_until(&mut state, d).timed_out() {
                        let take = max_batch.saturating_sub(batch.len()).min(state.items.len());
                        batch.extend(state.items.drain(..take));
                        break;
                    }
                }
                None => self.not_empty.wait(&mut state),
            }
        }
        state.wanted = 1;
        let waiters = std::mem::take(&mut state.waiters);
        drop(state);
        self.not_full.notify_all();
        for w in waiters {
            w.wake();
        }
        Gathered::Batch
    }

    pub(crate) fn stats(&self) -> BatcherStats {
        let (accepted, refused_full, queued) = {
            let s = self.state.lock();
            (s.accepted, s.refused_full, s.items.len())
        };
        let c = &self.counters;
        BatcherStats {
            accepted,
            refused_full,
            queued,
            batches: c.batches.load(Ordering::Relaxed),
            applied: c.applied.load(Ordering::Relaxed),
            duplicates: c.duplicates.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn worker_exited(&self) {
        let mut running = self.running.lock();
        *running = running.saturating_sub(1);
        self.exited.notify_all();
    }

    /// Waits until every worker exited or `timeout` passed; true if they all did.
    pub(crate) fn wait_exited(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut running = self.running.lock();
        while *running > 0 {
            match deadline {
                Some(d) => {
                    if self.exited.wait_until(&mut running, d).timed_out() {
                        return *running == 0;
                    }
                }
                None => self.exited.wait(&mut running),
            }
        }
        true
    }
}

pub(crate) enum PollPush {
    Pushed,
    Full(Item),
    Closed(Item),
}
