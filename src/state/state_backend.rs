use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{LockOutcome, LockToken, Observation, OpCounts, Scope, SessionCursor, SessionPage};
use crate::error::BackendError;
use crate::event::Event;
use crate::score::CompositeInputs;

/// Where shared state lives: counters, windows, sessions, and the lock and
/// "last computed" marker that coordinate composite calculations.
///
/// Every method is one atomic operation, and on a remote backend one round
/// trip. An operation that fails leaves the state as it was.
///
/// Each lock acquisition carries a fencing generation
/// ([`LockOutcome::Acquired`]) larger than every earlier one of its scope;
/// the calculator stamps it on the composite it computes under the lock, so
/// sinks can refuse a score from a holder that was overtaken.
///
/// Coordination uses the backend's own time (for
/// [`MemoryState`](super::MemoryState) its clock, for Redis the server's), so
/// workers on different machines never compare their wall clocks.
///
/// # Implementing a backend
///
/// A host can bring its own store, or wrap one. This wrapper counts lock
/// attempts and forwards everything to a [`MemoryState`](super::MemoryState):
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
/// use composite_metrics::score::CompositeInputs;
/// use composite_metrics::state::{LockOutcome, LockToken, MemoryState, Observation, OpCounts, Scope};
/// use composite_metrics::{BackendError, Event, HybridLock, MetricsCalculator, StateBackend};
///
/// #[derive(Debug, Default)]
/// struct Counting {
///     inner: MemoryState,
///     lock_attempts: AtomicU64,
/// }
///
/// impl StateBackend for Counting {
///     fn record(&self, event: &Event, now: Duration) -> Result<Observation, BackendError> {
///         self.inner.record(event, now)
///     }
///     fn record_batch(&self, events: &[Event], now: Duration, out: &mut Vec<Observation>) -> Result<(), BackendError> {
///         self.inner.record_batch(events, now, out)
///     }
///     fn composite_inputs(&self, scope: Scope<'_>) -> Result<CompositeInputs, BackendError> {
///         self.inner.composite_inputs(scope)
///     }
///     fn active_sessions(&self) -> Result<Vec<Arc<str>>, BackendError> {
///         self.inner.active_sessions()
///     }
///     fn try_lock(&self, scope: Scope<'_>, token: LockToken, lease: Duration, min_interval: Duration) -> Result<LockOutcome, BackendError> {
///         self.lock_attempts.fetch_add(1, Ordering::Relaxed);
///         self.inner.try_lock(scope, token, lease, min_interval)
///     }
///     fn unlock(&self, scope: Scope<'_>, token: LockToken) -> Result<bool, BackendError> {
///         self.inner.unlock(scope, token)
///     }
///     fn last_computed(&self, scope: Scope<'_>) -> Result<Option<Duration>, BackendError> {
///         self.inner.last_computed(scope)
///     }
///     fn op_counts(&self) -> OpCounts {
///         self.inner.op_counts()
///     }
/// }
///
/// let backend = Arc::new(Counting::default());
/// let mut calc = MetricsCalculator::builder()
///     .state(Arc::clone(&backend))
///     .scheduler(HybridLock::default())
///     .build()?;
/// for _ in 0..1_000 {
///     calc.process(&Event::tool_use("s1", "bash"))?;
/// }
/// // The first event found no calculation and took the lock; the other 999
/// // were not due and asked nothing.
/// assert_eq!(backend.lock_attempts.load(Ordering::Relaxed), 1);
/// # Ok::<(), composite_metrics::Error>(())
/// ```
pub trait StateBackend: Send + Sync + fmt::Debug {
    /// Applies one validated event at time `now` and returns what the
    /// per-event metrics need.
    ///
    /// An event whose [`event_id`](Event::event_id) was already applied
    /// within the backend's dedup horizon changes nothing and returns an
    /// observation with only [`duplicate`](Observation::duplicate) set (the
    /// same in [`record_batch`](Self::record_batch), where an id repeated
    /// within the batch is applied once, at its first occurrence).
    fn record(&self, event: &Event, now: Duration) -> Result<Observation, BackendError>;

    /// Applies validated events in order, all or none, appending one
    /// observation per event to `out`.
    fn record_batch(
        &self,
        events: &[Event],
        now: Duration,
        out: &mut Vec<Observation>,
    ) -> Result<(), BackendError>;

    /// Reads the composite's inputs for `scope`.
    fn composite_inputs(&self, scope: Scope<'_>) -> Result<CompositeInputs, BackendError>;

    /// Reads the composite's inputs of many sessions, appending one per id
    /// to `out` in order: what [`composite_inputs`](Self::composite_inputs)
    /// gives for each [`Scope::Session`], in one operation (one round trip
    /// on a remote backend). A per-session [`Background`](crate::Background)
    /// run reads each page of its listing this way.
    ///
    /// On error `out` is left as it was. The default implementation calls
    /// [`composite_inputs`](Self::composite_inputs) once per session.
    fn session_inputs(
        &self,
        sessions: &[Arc<str>],
        out: &mut Vec<CompositeInputs>,
    ) -> Result<(), BackendError> {
        let start = out.len();
        for id in sessions {
            match self.composite_inputs(Scope::Session(id)) {
                Ok(inputs) => out.push(inputs),
                Err(e) => {
                    out.truncate(start);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// The sessions currently alive (seen within their idle TTL and not ended).
    ///
    /// One call lists them all; for many sessions use
    /// [`active_sessions_page`](Self::active_sessions_page).
    fn active_sessions(&self) -> Result<Vec<Arc<str>>, BackendError>;

    /// One page of the sessions currently alive, for listings too large for
    /// one call (on Redis, listing a million sessions at once takes longer
    /// than the default read timeout; a page is one short round trip).
    ///
    /// Start with `cursor` `None` and pass each page's
    /// [`next`](SessionPage::next) until it is `None`. A session alive for
    /// the whole listing is listed at least once (possibly twice); a session
    /// that starts or ends during it may or may not be. `limit` (taken as at
    /// least 1) bounds the work of one call: a page holds about `limit`
    /// sessions, and may hold fewer, even none, before the end.
    ///
    /// The default implementation lists every session with
    /// [`active_sessions`](Self::active_sessions) on the first call, keeps
    /// that snapshot in the cursor and serves it `limit` at a time (so it
    /// lists each session present at the start exactly once). A cursor it did
    /// not make (from another backend) is rejected with
    /// [`BackendError::Other`].
    ///
    /// ```
    /// use composite_metrics::{Clock, Event, ManualClock, MemoryState, StateBackend};
    ///
    /// let clock = ManualClock::default();
    /// let state = MemoryState::with_clock(clock.clone());
    /// for i in 0..25 {
    ///     state.record(&Event::tool_use(format!("s{i}"), "bash"), clock.now())?;
    /// }
    /// let (mut cursor, mut listed) = (None, Vec::new());
    /// loop {
    ///     let page = state.active_sessions_page(cursor, 10)?;
    ///     assert!(page.sessions.len() <= 10);
    ///     listed.extend(page.sessions);
    ///     match page.next {
    ///         Some(next) => cursor = Some(next),
    ///         None => break,
    ///     }
    /// }
    /// assert_eq!(listed.len(), 25);
    /// # Ok::<(), composite_metrics::BackendError>(())
    /// ```
    fn active_sessions_page(
        &self,
        cursor: Option<SessionCursor>,
        limit: usize,
    ) -> Result<SessionPage, BackendError> {
        let (ids, start) = match &cursor {
            None => (Arc::<[Arc<str>]>::from(self.active_sessions()?), 0),
            Some(c) => match c.as_snapshot() {
                Some((ids, next)) => (Arc::clone(ids), next),
                None => {
                    return Err(BackendError::Other {
                        op: "active_sessions_page",
                        source: "a session cursor made by another backend".into(),
                    })
                }
            },
        };
        let start = start.min(ids.len());
        let end = start.saturating_add(limit.max(1)).min(ids.len());
        // `start <= end <= ids.len()` by the two `min`s above.
        let sessions = ids[start..end].to_vec();
        let next = (end < ids.len()).then(|| SessionCursor::snapshot(ids, end));
        Ok(SessionPage { sessions, next })
    }

    /// Tries to start a calculation for `scope`: succeeds when no other
    /// holder's lease is running and the last calculation started at least
    /// `min_interval` ago; then takes the lock for `lease` under `token` and
    /// sets the "last computed" marker to the backend's current time, in one
    /// atomic step.
    fn try_lock(
        &self,
        scope: Scope<'_>,
        token: LockToken,
        lease: Duration,
        min_interval: Duration,
    ) -> Result<LockOutcome, BackendError>;

    /// [`try_lock`](Self::try_lock), refused with [`LockOutcome::Clean`] when
    /// the scope is not dirty: its last composite read
    /// ([`composite_inputs`](Self::composite_inputs)) saw every event recorded
    /// in it. Decided in the same atomic step as the lock ("lock if dirty"),
    /// so two workers arriving at their deadlines one after the other compute
    /// once. [`Coalesce`](crate::Coalesce) relies on it.
    ///
    /// The default implementation cannot tell and calls `try_lock` (never
    /// answering `Clean`); both crate backends override it.
    fn try_lock_if_dirty(
        &self,
        scope: Scope<'_>,
        token: LockToken,
        lease: Duration,
        min_interval: Duration,
    ) -> Result<LockOutcome, BackendError> {
        self.try_lock(scope, token, lease, min_interval)
    }

    /// Releases the lock of `scope` if `token` still holds it. Returns whether
    /// it did; a holder whose lease ran out releases nothing.
    fn unlock(&self, scope: Scope<'_>, token: LockToken) -> Result<bool, BackendError>;

    /// How long ago, by the backend's time, the last calculation for `scope`
    /// started, if one is remembered.
    fn last_computed(&self, scope: Scope<'_>) -> Result<Option<Duration>, BackendError>;

    /// What this backend has served so far.
    fn op_counts(&self) -> OpCounts;

    /// The clock this backend runs its own time on, if it has one in this
    /// process ([`MemoryState`](super::MemoryState): its clock; Redis: none,
    /// the server's time). A calculator built without
    /// [`Builder::clock`](crate::Builder::clock) adopts it, so one clock
    /// given once is enough. The default: `None`.
    fn clock(&self) -> Option<Arc<dyn crate::clock::Clock>> {
        None
    }
}

/// Compile-time check that the trait stays object-safe.
const _: Option<&dyn StateBackend> = None;

impl<B: StateBackend + ?Sized> StateBackend for Arc<B> {
    fn record(&self, event: &Event, now: Duration) -> Result<Observation, BackendError> {
        (**self).record(event, now)
    }

    fn record_batch(
        &self,
        events: &[Event],
        now: Duration,
        out: &mut Vec<Observation>,
    ) -> Result<(), BackendError> {
        (**self).record_batch(events, now, out)
    }

    fn composite_inputs(&self, scope: Scope<'_>) -> Result<CompositeInputs, BackendError> {
        (**self).composite_inputs(scope)
    }

    fn session_inputs(
        &self,
        sessions: &[Arc<str>],
        out: &mut Vec<CompositeInputs>,
    ) -> Result<(), BackendError> {
        (**self).session_inputs(sessions, out)
    }

    fn active_sessions(&self) -> Result<Vec<Arc<str>>, BackendError> {
        (**self).active_sessions()
    }

    fn active_sessions_page(
        &self,
        cursor: Option<SessionCursor>,
        limit: usize,
    ) -> Result<SessionPage, BackendError> {
        (**self).active_sessions_page(cursor, limit)
    }

    fn try_lock(
        &self,
        scope: Scope<'_>,
        token: LockToken,
        lease: Duration,
        min_interval: Duration,
    ) -> Result<LockOutcome, BackendError> {
        (**self).try_lock(scope, token, lease, min_interval)
    }

    fn try_lock_if_dirty(
        &self,
        scope: Scope<'_>,
        token: LockToken,
        lease: Duration,
        min_interval: Duration,
    ) -> Result<LockOutcome, BackendError> {
        (**self).try_lock_if_dirty(scope, token, lease, min_interval)
    }

    fn unlock(&self, scope: Scope<'_>, token: LockToken) -> Result<bool, BackendError> {
        (**self).unlock(scope, token)
    }

    fn last_computed(&self, scope: Scope<'_>) -> Result<Option<Duration>, BackendError> {
        (**self).last_computed(scope)
    }

    fn op_counts(&self) -> OpCounts {
        (**self).op_counts()
    }

    fn clock(&self) -> Option<Arc<dyn crate::clock::Clock>> {
        (**self).clock()
    }
}
