use super::session_table::SessionTable;
use super::{CompositeScheduler, CompositeScope, Decision, EventContext, SchedulerEnv, Ticket};
use crate::error::{BackendError, ConfigError, Error};

/// Computes on every N-th event seen by this calculator instance.
///
/// The counter is local to the instance (the worker), so the decision costs
/// an increment and a compare, and no backend call. There is no ceiling: the
/// calculation rate grows with the event rate (at 1000 events/s and N = 100,
/// 10 per second), and no floor: at 1 event/min it computes once in 100 min.
///
/// With [`CompositeScope::PerSession`] the count is kept per session id
/// (sessions idle for an hour are forgotten).
///
/// # Default
///
/// N = 100.
///
/// ```
/// use composite_metrics::{EventBased, Event, MetricsCalculator};
/// let mut calc = MetricsCalculator::builder().scheduler(EventBased::every(100)).build()?;
/// for _ in 0..250 {
///     calc.process(&Event::tool_use("s1", "bash"))?;
/// }
/// assert_eq!(calc.stats().composites, 2); // events 100 and 200
/// # Ok::<(), composite_metrics::Error>(())
/// ```
#[derive(Debug)]
pub struct EventBased {
    every: u64,
    seen: u64,
    sessions: Option<SessionTable<u64>>,
}

impl Default for EventBased {
    fn default() -> Self {
        Self::every(100)
    }
}

impl EventBased {
    /// Computes on every `n`-th event. Zero is rejected when the calculator is built.
    pub fn every(n: u64) -> Self {
        Self {
            every: n,
            seen: 0,
            sessions: None,
        }
    }

    /// N.
    pub fn n(&self) -> u64 {
        self.every
    }
}

impl CompositeScheduler for EventBased {
    fn name(&self) -> &'static str {
        "event-based"
    }

    fn attach(&mut self, env: &SchedulerEnv) -> Result<(), Error> {
        if self.every == 0 {
            return Err(ConfigError::Zero { field: "every" }.into());
        }
        if env.scope() == CompositeScope::PerSession {
            self.sessions = Some(SessionTable::default());
        }
        Ok(())
    }

    #[inline]
    fn on_event(&mut self, ctx: &EventContext<'_>) -> Result<Decision, BackendError> {
        let seen = match &mut self.sessions {
            None => &mut self.seen,
            Some(table) => table.get(ctx.session, ctx.now),
        };
        *seen += 1;
        Ok(if *seen >= self.every {
            *seen = 0;
            Decision::Compute(Ticket::free())
        } else {
            Decision::Skip
        })
    }

    /// The global count below `every` after this event: counted here.
    #[inline]
    fn skip_fast(&mut self, _now: std::time::Duration) -> bool {
        if self.sessions.is_none() && self.seen + 1 < self.every {
            self.seen += 1;
            return true;
        }
        false
    }
}
