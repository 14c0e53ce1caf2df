use std::fmt;
use std::time::Duration;

use super::{Decision, EventContext, SchedulerEnv, SchedulerStats, Ticket};
use crate::error::{BackendError, Error};

/// Decides when the composite is recomputed.
///
/// One scheduler instance belongs to one calculator (one worker). On every
/// recorded event the calculator asks [`on_event`](Self::on_event); on
/// [`Decision::Compute`] it reads the composite's inputs, scores them, and
/// hands the ticket back to [`on_computed`](Self::on_computed).
///
/// The trait is synchronous and object-safe: use it as a generic parameter
/// (`MetricsCalculator<EventBased>`) or boxed (`Box<dyn CompositeScheduler>`).
///
/// # Implementing a scheduler
///
/// ```
/// use composite_metrics::schedule::{CompositeScheduler, Decision, EventContext, Ticket};
/// use composite_metrics::{BackendError, Event, MetricsCalculator};
///
/// /// Computes on every session's end, and never otherwise.
/// #[derive(Debug, Default)]
/// struct OnSessionEnd {
///     pending_end: bool,
/// }
///
/// impl CompositeScheduler for OnSessionEnd {
///     fn name(&self) -> &'static str {
///         "on-session-end"
///     }
///
///     fn on_event(&mut self, _ctx: &EventContext<'_>) -> Result<Decision, BackendError> {
///         Ok(if std::mem::take(&mut self.pending_end) {
///             Decision::Compute(Ticket::free())
///         } else {
///             Decision::Skip
///         })
///     }
/// }
///
/// let mut calc = MetricsCalculator::builder()
///     .scheduler(Box::new(OnSessionEnd::default()) as Box<dyn CompositeScheduler>)
///     .build()?;
/// calc.process(&Event::tool_use("s1", "bash").with_success(true))?;
/// assert_eq!(calc.stats().composites, 0);
/// # Ok::<(), composite_metrics::Error>(())
/// ```
pub trait CompositeScheduler: Send + Sync + fmt::Debug {
    /// A short name for reports (`"event-based"`, ...).
    fn name(&self) -> &'static str;

    /// Called once when the calculator is built. Background schedulers start
    /// their thread here; others may check their configuration.
    fn attach(&mut self, env: &SchedulerEnv) -> Result<(), Error> {
        let _ = env;
        Ok(())
    }

    /// Decides for one recorded event. Keep this cheap: it runs on every event.
    /// An error counts in [`Stats::coordination_errors`](crate::Stats::coordination_errors)
    /// and skips the composite for this event.
    fn on_event(&mut self, ctx: &EventContext<'_>) -> Result<Decision, BackendError>;

    /// An optional fast path, called before [`on_event`](Self::on_event)
    /// with only the event's time (the calculator builds no context for
    /// it): `true` means "not due", the scheduler has accounted for the
    /// event itself (e.g. counted it), and `on_event` is not called for this
    /// event; `false` means "ask `on_event`" (which then accounts for it).
    /// Must not call the backend. The default answers `false`, so a
    /// scheduler that only implements `on_event` behaves as before; the
    /// crate's strategies answer `true` on their not-due path, which keeps
    /// their event-path cost within about 1 % of [`Never`](crate::Never).
    #[inline]
    fn skip_fast(&mut self, now: Duration) -> bool {
        let _ = now;
        false
    }

    /// Called after a composite decided by [`Decision::Compute`] ran
    /// (successfully or not), e.g. to release a lock.
    fn on_computed(&mut self, ctx: &EventContext<'_>, ticket: Ticket) -> Result<(), BackendError> {
        let _ = (ctx, ticket);
        Ok(())
    }

    /// Counters about the scheduler itself.
    fn stats(&self) -> SchedulerStats {
        SchedulerStats::default()
    }

    /// Stops any background work; returns promptly. Called on calculator shutdown.
    fn shutdown(&mut self) {}
}

impl<S: CompositeScheduler + ?Sized> CompositeScheduler for Box<S> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn attach(&mut self, env: &SchedulerEnv) -> Result<(), Error> {
        (**self).attach(env)
    }

    fn on_event(&mut self, ctx: &EventContext<'_>) -> Result<Decision, BackendError> {
        (**self).on_event(ctx)
    }

    #[inline]
    fn skip_fast(&mut self, now: Duration) -> bool {
        (**self).skip_fast(now)
    }

    fn on_computed(&mut self, ctx: &EventContext<'_>, ticket: Ticket) -> Result<(), BackendError> {
        (**self).on_computed(ctx, ticket)
    }

    fn stats(&self) -> SchedulerStats {
        (**self).stats()
    }

    fn shutdown(&mut self) {
        (**self).shutdown()
    }
}

/// Compile-time check that the trait stays object-safe.
const _: Option<&dyn CompositeScheduler> = None;
