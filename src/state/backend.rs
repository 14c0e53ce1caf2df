use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{LockOutcome, LockToken, Observation, OpCounts, Scope};
use crate::error::BackendError;
use crate::event::Event;
use crate::score::CompositeInputs;

/// Where shared state lives: counters, windows, sessions, and the lock and
/// "last computed" marker that coordinate composite calculations.
///
/// Every method is one atomic operation, and on a remote backend one round
/// trip. An operation that fails leaves the state as it was.
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

    /// The sessions currently alive (seen within their idle TTL and not ended).
    fn active_sessions(&self) -> Result<Vec<Arc<str>>, BackendError>;

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

    fn active_sessions(&self) -> Result<Vec<Arc<str>>, BackendError> {
        (**self).active_sessions()
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
}
