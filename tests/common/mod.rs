//! Test helpers shared by the scheduler tests: a backend wrapper that logs and
//! counts every call, and a clock that counts its reads.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use composite_metrics::clock::{Clock, ManualClock, Wake};
use composite_metrics::score::CompositeInputs;
use composite_metrics::state::{
    LockOutcome, LockToken, MemoryState, Observation, OpCounts, Scope, StateBackend,
};
use composite_metrics::{BackendError, Event};
use parking_lot::Mutex;

/// One coordination or composite call, as the wrapper saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    TryLock {
        at: Duration,
        token: LockToken,
        outcome: LockOutcome,
    },
    Unlock {
        at: Duration,
        token: LockToken,
        released: bool,
    },
    LastComputed {
        at: Duration,
    },
    CompositeRead {
        at: Duration,
        /// Events recorded before this read.
        records: u64,
    },
}

/// How a wrapped backend should misbehave on composite reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    Error,
    Panic,
}

/// Wraps a `MemoryState`, logging every coordination and composite call with
/// the clock's time, and injecting faults on composite reads when told to.
#[derive(Debug, Clone)]
pub struct Recording {
    pub inner: MemoryState,
    pub clock: ManualClock,
    pub log: Arc<Mutex<Vec<Call>>>,
    pub faults: Arc<Mutex<Vec<Fault>>>,
    pub coordination_calls: Arc<AtomicU64>,
}

impl Recording {
    pub fn new(clock: &ManualClock) -> Self {
        Self {
            inner: MemoryState::with_clock(clock.clone()),
            clock: clock.clone(),
            log: Arc::default(),
            faults: Arc::default(),
            coordination_calls: Arc::default(),
        }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.log.lock().clone()
    }

    pub fn coordination(&self) -> u64 {
        self.coordination_calls.load(Ordering::SeqCst)
    }

    /// Times at which a lock was acquired, in order.
    pub fn acquisitions(&self) -> Vec<(Duration, LockToken)> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::TryLock {
                    at,
                    token,
                    outcome: LockOutcome::Acquired { .. },
                } => Some((at, token)),
                _ => None,
            })
            .collect()
    }

    /// (time, events recorded before) of every composite read, in order.
    pub fn composite_reads(&self) -> Vec<(Duration, u64)> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::CompositeRead { at, records } => Some((at, records)),
                _ => None,
            })
            .collect()
    }

    /// Queue faults for the next composite reads, in order.
    pub fn inject(&self, faults: &[Fault]) {
        self.faults.lock().extend_from_slice(faults);
    }
}

impl StateBackend for Recording {
    fn record(&self, event: &Event, now: Duration) -> Result<Observation, BackendError> {
        self.inner.record(event, now)
    }

    fn record_batch(
        &self,
        events: &[Event],
        now: Duration,
        out: &mut Vec<Observation>,
    ) -> Result<(), BackendError> {
        self.inner.record_batch(events, now, out)
    }

    fn composite_inputs(&self, scope: Scope<'_>) -> Result<CompositeInputs, BackendError> {
        let fault = {
            let mut faults = self.faults.lock();
            if faults.is_empty() {
                Fault::None
            } else {
                faults.remove(0)
            }
        };
        match fault {
            Fault::None => {}
            Fault::Error => {
                return Err(BackendError::Other {
                    op: "composite_inputs",
                    source: "injected failure".into(),
                })
            }
            Fault::Panic => panic!("injected panic in composite_inputs"),
        }
        let records = self.inner.op_counts().records;
        self.log.lock().push(Call::CompositeRead {
            at: self.clock.now(),
            records,
        });
        self.inner.composite_inputs(scope)
    }

    fn active_sessions(&self) -> Result<Vec<Arc<str>>, BackendError> {
        self.inner.active_sessions()
    }

    fn try_lock(
        &self,
        scope: Scope<'_>,
        token: LockToken,
        lease: Duration,
        min_interval: Duration,
    ) -> Result<LockOutcome, BackendError> {
        self.coordination_calls.fetch_add(1, Ordering::SeqCst);
        let outcome = self.inner.try_lock(scope, token, lease, min_interval)?;
        self.log.lock().push(Call::TryLock {
            at: self.clock.now(),
            token,
            outcome,
        });
        Ok(outcome)
    }

    fn try_lock_if_dirty(
        &self,
        scope: Scope<'_>,
        token: LockToken,
        lease: Duration,
        min_interval: Duration,
    ) -> Result<LockOutcome, BackendError> {
        self.coordination_calls.fetch_add(1, Ordering::SeqCst);
        let outcome = self
            .inner
            .try_lock_if_dirty(scope, token, lease, min_interval)?;
        self.log.lock().push(Call::TryLock {
            at: self.clock.now(),
            token,
            outcome,
        });
        Ok(outcome)
    }

    fn unlock(&self, scope: Scope<'_>, token: LockToken) -> Result<bool, BackendError> {
        self.coordination_calls.fetch_add(1, Ordering::SeqCst);
        let released = self.inner.unlock(scope, token)?;
        self.log.lock().push(Call::Unlock {
            at: self.clock.now(),
            token,
            released,
        });
        Ok(released)
    }

    fn last_computed(&self, scope: Scope<'_>) -> Result<Option<Duration>, BackendError> {
        self.coordination_calls.fetch_add(1, Ordering::SeqCst);
        self.log.lock().push(Call::LastComputed {
            at: self.clock.now(),
        });
        self.inner.last_computed(scope)
    }

    fn op_counts(&self) -> OpCounts {
        self.inner.op_counts()
    }
}

/// A clock that counts how often it is read.
#[derive(Debug, Clone)]
pub struct CountingClock {
    pub inner: ManualClock,
    pub reads: Arc<AtomicU64>,
}

impl CountingClock {
    pub fn new(inner: &ManualClock) -> Self {
        Self {
            inner: inner.clone(),
            reads: Arc::default(),
        }
    }

    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::SeqCst)
    }
}

impl Clock for CountingClock {
    fn now(&self) -> Duration {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.now()
    }

    fn wait_until(&self, deadline: Duration, wake: &Arc<Wake>) {
        self.inner.wait_until(deadline, wake)
    }
}

/// Polls `cond` until it holds or `limit` of real time passes; returns whether it held.
/// For observing a background thread's progress, never for timing logic.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    cond()
}

/// A tool event with an explicit outcome, so the composite has data.
pub fn tool_event(session: &str) -> Event {
    Event::tool_use(session, "bash")
        .with_duration_ms(10.0)
        .with_success(true)
}

/// An edit with an explicit decision.
pub fn edit_event(session: &str, accepted: bool) -> Event {
    Event::new(composite_metrics::EventType::FileEdit, session).with_accepted(accepted)
}
