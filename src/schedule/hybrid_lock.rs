use std::time::Duration;

use super::session_table::SessionTable;
use super::{
    CompositeScheduler, CompositeScope, Decision, EventContext, HybridLockConfig, SchedulerEnv,
    SchedulerStats, Ticket,
};
use crate::error::{BackendError, ConfigError, Error};
use crate::state::{LockOutcome, LockToken};

/// The design note's hybrid, done so that it keeps what the note promises.
///
/// On an event, a calculation is due when either `max_staleness` has passed
/// since the last calculation this worker knows of (freshness floor; a worker
/// that knows of none is due at once), or this worker has seen `every_events`
/// events since then and `min_interval` has passed (activity trigger). A due
/// worker asks the backend, in one atomic operation, for the lock and the
/// "last computed" marker ([`StateBackend::try_lock`]):
///
/// - **G1 ceiling**: the backend refuses if any worker started less than
///   `min_interval` ago, by the backend's time;
/// - **G2 floor**: while events flow, every event is reflected in a
///   calculation within `max_staleness` plus the gap to its worker's next
///   event (a worker only decides when it has an event; use
///   [`Background`](crate::Background) for freshness without events);
/// - **G3 hot path**: when not due the decision uses worker-local state only:
///   no backend call, no shared lock, no clock read beyond the calculator's one;
/// - **G4** at most one worker computes at a time (the lock);
/// - **G5** release compares the token: a worker whose lease ran out releases nothing.
///
/// Each acquisition's fencing generation goes on the composite computed under
/// it ([`Metric::generation`](crate::Metric::generation)), so a worker paused
/// past its lease (GC, `SIGSTOP`) cannot overwrite the score of the worker
/// that took over: [`MemorySink`](crate::MemorySink) and `RedisSink` refuse it.
///
/// When the backend refuses, the worker learns how long ago the last
/// calculation started and stays quiet until the marker expires, so a busy
/// cluster makes no backend calls between calculations.
///
/// [`StateBackend::try_lock`]: crate::state::StateBackend::try_lock
///
/// ```
/// use std::time::Duration;
/// use composite_metrics::clock::ManualClock;
/// use composite_metrics::{Event, HybridLock, HybridLockConfig, MemoryState, MetricsCalculator};
///
/// let clock = ManualClock::default();
/// let state = MemoryState::with_clock(clock.clone());
/// let config = HybridLockConfig::default().with_every_events(10);
/// let mut calc = MetricsCalculator::builder()
///     .clock(clock.clone())
///     .state(state)
///     .scheduler(HybridLock::new(config)?)
///     .build()?;
/// calc.process(&Event::tool_use("s1", "bash"))?; // no calculation known yet: computes
/// for _ in 0..100 {
///     calc.process(&Event::tool_use("s1", "bash"))?; // within min_interval: quiet
/// }
/// clock.advance(Duration::from_secs(30));
/// calc.process(&Event::tool_use("s1", "bash"))?; // stale: computes
/// assert_eq!(calc.stats().composites, 2);
/// # Ok::<(), composite_metrics::Error>(())
/// ```
#[derive(Debug)]
pub struct HybridLock {
    config: HybridLockConfig,
    token: LockToken,
    global: WorkerState,
    sessions: Option<SessionTable<WorkerState>>,
    stats: SchedulerStats,
}

/// What a worker knows, kept as the two deadlines the not-due check compares
/// against: the calculation it knows of started at `stale_at - max_staleness`.
/// Zero deadlines (no calculation known) make the first event due.
#[derive(Debug, Default, Clone, Copy)]
struct WorkerState {
    /// From here on an event is due (freshness floor).
    stale_at: Duration,
    /// From here on an event is due once `every_events` have been seen.
    busy_at: Duration,
    /// Events seen since the calculation it knows of.
    events: u64,
    /// `busy_at` in whole seconds, rounded down: before it nothing is due
    /// whatever the count (the fast path's one compare).
    busy_sec: u64,
}

impl WorkerState {
    fn knowing_of(started: Duration, config: &HybridLockConfig) -> Self {
        let busy_at = started + config.min_interval();
        Self {
            stale_at: started + config.max_staleness(),
            busy_at,
            events: 0,
            busy_sec: busy_at.as_secs(),
        }
    }
}

impl Default for HybridLock {
    fn default() -> Self {
        Self::from_valid(HybridLockConfig::default())
    }
}

impl HybridLock {
    /// A scheduler with `config`, rejected if the configuration cannot keep
    /// the guarantees (see [`HybridLockConfig::validate`]).
    pub fn new(config: HybridLockConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self::from_valid(config))
    }

    fn from_valid(config: HybridLockConfig) -> Self {
        Self {
            config,
            token: LockToken::random(),
            global: WorkerState::default(),
            sessions: None,
            stats: SchedulerStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> HybridLockConfig {
        self.config
    }

    /// This worker's lock token.
    pub fn token(&self) -> LockToken {
        self.token
    }
}

impl CompositeScheduler for HybridLock {
    fn name(&self) -> &'static str {
        "hybrid-lock"
    }

    fn attach(&mut self, env: &SchedulerEnv) -> Result<(), Error> {
        if env.scope() == CompositeScope::PerSession {
            self.sessions = Some(SessionTable::default());
        }
        Ok(())
    }

    #[inline]
    fn on_event(&mut self, ctx: &EventContext<'_>) -> Result<Decision, BackendError> {
        let now = ctx.now;
        let every_events = self.config.every_events;
        let worker = match &mut self.sessions {
            None => &mut self.global,
            Some(table) => table.get(ctx.session, now),
        };
        worker.events += 1;
        if now < worker.stale_at && (worker.events < every_events || now < worker.busy_at) {
            return Ok(Decision::Skip);
        }
        due(&self.config, self.token, &mut self.stats, worker, ctx)
    }

    /// The global scope's not-due path, counted here. (With the
    /// per-session scope `global` never learns of a calculation: its
    /// `stale_at` stays zero and every event goes to `on_event`.)
    #[inline]
    fn skip_fast(&mut self, now: Duration) -> bool {
        let w = &mut self.global;
        // Before `busy_at` (<= `stale_at`) nothing is due; after it, the
        // full rule.
        if now.as_secs() < w.busy_sec
            || (now < w.stale_at && (w.events + 1 < self.config.every_events || now < w.busy_at))
        {
            w.events += 1;
            return true;
        }
        false
    }

    fn on_computed(&mut self, ctx: &EventContext<'_>, ticket: Ticket) -> Result<(), BackendError> {
        if let Some(token) = ticket.lock() {
            if !ctx.backend.unlock(ctx.state_scope(), token)? {
                self.stats.leases_lost += 1;
                crate::telemetry::lease_lost("hybrid-lock");
            }
        }
        Ok(())
    }

    fn stats(&self) -> SchedulerStats {
        self.stats
    }
}

/// The due path, kept out of line so the not-due check inlines small: one
/// atomic lock attempt on the backend, and what the worker learns from it.
#[cold]
fn due(
    config: &HybridLockConfig,
    token: LockToken,
    stats: &mut SchedulerStats,
    worker: &mut WorkerState,
    ctx: &EventContext<'_>,
) -> Result<Decision, BackendError> {
    let now = ctx.now;
    stats.lock_attempts += 1;
    let outcome = ctx.backend.try_lock(
        ctx.state_scope(),
        token,
        config.lease(),
        config.min_interval(),
    )?;
    crate::telemetry::lock_attempt("hybrid-lock", &outcome);
    if let LockOutcome::Acquired { generation } = outcome {
        stats.locks_acquired += 1;
        *worker = WorkerState::knowing_of(now, config);
        return Ok(Decision::Compute(
            Ticket::locked(token).with_generation(generation),
        ));
    }
    if let Some(ago) = outcome.since_last() {
        // Refused: another worker's calculation started `ago` before now (by
        // the backend's time) and read every event recorded before it.
        // Remember it if it is newer than what this worker knew, and stay
        // quiet until `min_interval` after it.
        let known = WorkerState::knowing_of(now.saturating_sub(ago), config);
        if known.stale_at > worker.stale_at {
            *worker = known;
        }
    }
    Ok(Decision::Skip)
}
