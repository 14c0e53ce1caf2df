use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use foldhash::HashMap;
use parking_lot::Mutex;

use super::session_table::SessionTable;
use super::{
    CoalesceConfig, CompositeScheduler, CompositeScope, Decision, EventContext, SchedulerEnv,
    SchedulerStats, Ticket,
};
use crate::clock::Wake;
use crate::error::{BackendError, ConfigError, Error};
use crate::state::{LockOutcome, LockToken, Scope};

/// The design note's hybrid with every promise kept at once: a leading edge
/// like [`HybridLock`](super::HybridLock), plus a trailing deadline fired by a
/// timer the strategy owns, and "lock if dirty" on the backend.
///
/// Guarantees (each one a test; see [`CoalesceConfig`] for the rules):
///
/// - **C1 ceiling**: across all workers sharing a backend, two calculations
///   never start within `min_interval` of each other (backend time).
/// - **C2 freshness without more events**: every recorded event is included
///   in a calculation that starts at most `max_staleness` + `tick` (+ the
///   lock's round trip) after it was recorded, even if no other event ever
///   arrives, while one worker lives and the backend is reachable. With the
///   global scope, a worker whose timer has nothing armed asks the backend
///   once per `max_staleness` whether any event is unreflected (the backend
///   keeps, per scope, how many events were recorded and how many the last
///   composite read saw), so a dead worker's events are taken over.
/// - **C3 no idle work**: every calculation includes at least one event that
///   the previous calculation (cluster-wide) did not: the lock is taken only
///   if the scope is dirty, in the same backend operation
///   ([`StateBackend::try_lock_if_dirty`](crate::StateBackend::try_lock_if_dirty)).
/// - **C4 hot path**: an event that does not make the strategy due costs no
///   backend call and no shared lock; it reads no clock of its own. The first
///   such event after a calculation arms the deadline in this worker's own
///   timer queue (one uncontended lock, once per quiet period per scope).
/// - **C5 one at a time, safe release**: as HybridLock's G4 and G5 (the same
///   lock with a lease and a token).
///
/// The timer runs on its own thread (`Coalesce::new`), or, with
/// [`Coalesce::manual`], whenever the host calls [`poll`](Coalesce::poll)
/// (a host driving its own loop, or the simulator on virtual time; call it
/// at least every `tick`). A timer calculation is recorded to the sink like a
/// [`Background`](super::Background) run; its errors and panics are counted
/// and logged, and the timer goes on. `shutdown` and `Drop` stop the thread.
///
/// With [`CompositeScope::PerSession`] each session has its own deadline and
/// lock; the idle takeover check covers the global scope only.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use composite_metrics::{Coalesce, CoalesceConfig, Event, ManualClock, MetricsCalculator};
///
/// let clock = ManualClock::new(Duration::from_secs(1_000));
/// let coalesce = Coalesce::manual(CoalesceConfig::default())?;
/// let mut calc = MetricsCalculator::builder().clock(clock.clone()).scheduler(coalesce).build()?;
/// calc.process(&Event::tool_use("s1", "bash").with_success(true))?; // leading edge: computes
/// clock.advance(Duration::from_secs(5));
/// calc.process(&Event::tool_use("s1", "bash").with_success(false))?; // too soon: armed
/// assert_eq!(calc.stats().composites, 1);
/// // No other event arrives; the timer reflects the second one within 30 s + tick.
/// clock.advance(Duration::from_secs(26));
/// assert_eq!(calc.scheduler_mut().poll(), 1);
/// assert_eq!(calc.stats().composites, 2);
/// # Ok::<(), composite_metrics::Error>(())
/// ```
#[derive(Debug)]
pub struct Coalesce {
    config: CoalesceConfig,
    token: LockToken,
    global: WorkerState,
    sessions: Option<SessionTable<WorkerState>>,
    stats: SchedulerStats,
    shared: Arc<Shared>,
    threaded: bool,
    runtime: Option<JoinHandle<()>>,
    manual: Option<Timer>,
}

/// What this worker knows, on its event path.
#[derive(Debug, Default, Clone, Copy)]
struct WorkerState {
    /// The leading edge fires from here on (last known start + max_staleness).
    stale_at: Duration,
    /// ...or from here on, after `every_events` events (start + min_interval).
    busy_at: Duration,
    events: u64,
    /// The deadline armed in the timer; an event before it arms nothing.
    armed_until: Duration,
    /// The hot path's whole test: before `check_at` and under
    /// `check_last + 1` events nothing can change (not due, armed).
    check_at: Duration,
    check_last: u64,
    /// `check_at` in whole seconds, rounded down: the fast path's one
    /// compare (an event in the deadline's last second takes `on_event`).
    check_sec: u64,
}

impl WorkerState {
    fn knowing_of(started: Duration, config: &CoalesceConfig) -> Self {
        Self {
            stale_at: started + config.max_staleness(),
            busy_at: started + config.min_interval(),
            events: 0,
            armed_until: Duration::ZERO,
            check_at: Duration::ZERO,
            check_last: 0,
            check_sec: 0,
        }
    }

    fn is_due(&self, now: Duration, every_events: u64) -> bool {
        now >= self.stale_at || (self.events >= every_events && now >= self.busy_at)
    }

    /// After a skip: the next event that can change anything.
    fn skipped(&mut self, every_events: u64) {
        self.check_at = self.deadline(every_events).min(self.armed_until);
        self.check_sec = self.check_at.as_secs();
        self.check_last = if self.events >= every_events {
            u64::MAX
        } else {
            every_events - 1
        };
    }

    /// When the leading rule next allows a calculation.
    fn deadline(&self, every_events: u64) -> Duration {
        if self.events >= every_events {
            self.busy_at
        } else {
            self.stale_at
        }
    }
}

/// Shared between the event path and the timer of one worker.
#[derive(Debug, Default)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Arc<Wake>,
    stop: AtomicBool,
    /// The newest global calculation start this worker knows of (nanoseconds
    /// on its clock, 0: none), written by the timer and the event path's
    /// cold paths, read by the event path only when it is due.
    known_start: AtomicU64,
    composites: AtomicU64,
    composites_without_data: AtomicU64,
    errors: AtomicU64,
    state_resets: AtomicU64,
    panics: AtomicU64,
    lock_attempts: AtomicU64,
    locks_acquired: AtomicU64,
    leases_lost: AtomicU64,
}

/// One scope's key in the queue: `None` for the global scope.
type ScopeKey = Option<Arc<str>>;

#[derive(Debug, Default)]
struct Queue {
    /// Armed deadlines by scope: (fire at, covering events recorded from).
    armed: HashMap<ScopeKey, (Duration, Duration)>,
    /// The same deadlines in firing order.
    order: BTreeSet<(Duration, ScopeKey)>,
    /// The next idle takeover check (global scope).
    next_poll: Duration,
}

/// A trailing deadline: fire at `fire_at` for `session` (global: `None`),
/// covering this worker's events recorded from `since` on.
#[derive(Debug, Clone)]
struct Armed {
    fire_at: Duration,
    since: Duration,
    session: ScopeKey,
}

impl Shared {
    /// Counts a failed backend call of the timer: in `state_resets` when the
    /// backend's state was lost, else in `errors`.
    fn failed(&self, e: &BackendError) {
        let counter = match e {
            BackendError::StateReset { .. } => &self.state_resets,
            _ => &self.errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Remembers a global calculation that started at `started`.
    fn learn(&self, started: Duration) {
        let nanos = u64::try_from(started.as_nanos()).unwrap_or(u64::MAX);
        self.known_start.fetch_max(nanos, Ordering::Relaxed);
    }
}

impl Queue {
    /// Arms (or moves earlier) the deadline of a scope: O(log n).
    fn arm(&mut self, armed: Armed) {
        let Armed {
            fire_at,
            since,
            session,
        } = armed;
        match self.armed.get_mut(&session) {
            Some((at, from)) => {
                *from = (*from).min(since);
                if fire_at < *at {
                    self.order.remove(&(*at, session.clone()));
                    *at = fire_at;
                    self.order.insert((fire_at, session));
                }
            }
            None => {
                self.order.insert((fire_at, session.clone()));
                self.armed.insert(session, (fire_at, since));
            }
        }
    }

    /// Drops the deadline of `session` if it covers only events recorded
    /// before `started` (a calculation that started then read them).
    fn covered(&mut self, session: Option<&str>, started: Duration) {
        let key: ScopeKey = session.map(Arc::from);
        if let Some(&(at, from)) = self.armed.get(&key) {
            if from < started {
                self.armed.remove(&key);
                self.order.remove(&(at, key));
            }
        }
    }

    /// Removes and returns every deadline due at `now`, in firing order.
    fn take_due(&mut self, now: Duration) -> Vec<Armed> {
        let mut due = Vec::new();
        while let Some((at, _)) = self.order.first() {
            if *at > now {
                break;
            }
            let Some((fire_at, session)) = self.order.pop_first() else {
                break;
            };
            let since = self.armed.remove(&session).map_or(fire_at, |(_, s)| s);
            due.push(Armed {
                fire_at,
                since,
                session,
            });
        }
        due
    }

    /// Everything recorded before some time is known to be read; the next
    /// takeover check is due at `check_by` at the latest.
    fn observed(&mut self, check_by: Duration) {
        self.next_poll = self.next_poll.max(check_by);
    }

    fn earliest(&self) -> Option<Duration> {
        self.order.first().map(|(at, _)| *at)
    }
}

impl Coalesce {
    /// A strategy whose timer runs on its own thread, started when the
    /// calculator is built.
    pub fn new(config: CoalesceConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self::from_valid(config, true))
    }

    /// A strategy without a thread: the host calls [`poll`](Self::poll).
    pub fn manual(config: CoalesceConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self::from_valid(config, false))
    }

    fn from_valid(config: CoalesceConfig, threaded: bool) -> Self {
        Self {
            config,
            token: LockToken::random(),
            global: WorkerState::default(),
            sessions: None,
            stats: SchedulerStats::default(),
            shared: Arc::default(),
            threaded,
            runtime: None,
            manual: None,
        }
    }

    /// Runs the timer once at the clock's current time (manual mode): fires
    /// every deadline that is due and the idle takeover check. Returns the
    /// calculations it ran (0 in threaded mode or before the calculator is
    /// built).
    pub fn poll(&mut self) -> u64 {
        match &mut self.manual {
            Some(timer) => {
                let now = timer.env.clock().now();
                timer.run_due(now)
            }
            None => 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> CoalesceConfig {
        self.config
    }

    /// This worker's lock token.
    pub fn token(&self) -> LockToken {
        self.token
    }

    /// Whether the timer thread is running.
    pub fn is_running(&self) -> bool {
        self.runtime.is_some()
    }
}

impl Default for Coalesce {
    /// The default configuration, with a timer thread.
    fn default() -> Self {
        Self::from_valid(CoalesceConfig::default(), true)
    }
}

impl CompositeScheduler for Coalesce {
    fn name(&self) -> &'static str {
        "coalesce"
    }

    fn attach(&mut self, env: &SchedulerEnv) -> Result<(), Error> {
        self.config.validate()?;
        self.shutdown();
        self.shared = Arc::default();
        if env.scope() == CompositeScope::PerSession {
            self.sessions = Some(SessionTable::default());
        }
        let now = env.clock().now();
        self.shared.queue.lock().next_poll = now + self.config.max_staleness();
        let timer = Timer {
            env: env.clone(),
            calculations: crate::telemetry::TimerCalculations::new("coalesce"),
            config: self.config,
            token: self.token,
            shared: Arc::clone(&self.shared),
        };
        if !self.threaded {
            self.manual = Some(timer);
            return Ok(());
        }
        let handle = std::thread::Builder::new()
            .name("composite-coalesce".into())
            .spawn(move || timer.run())
            .map_err(Error::Spawn)?;
        self.runtime = Some(handle);
        Ok(())
    }

    #[inline]
    fn on_event(&mut self, ctx: &EventContext<'_>) -> Result<Decision, BackendError> {
        let now = ctx.now;
        let every_events = self.config.every_events();
        let worker = match &mut self.sessions {
            None => &mut self.global,
            Some(table) => table.get(ctx.session, now),
        };
        worker.events += 1;
        if now < worker.check_at && worker.events <= worker.check_last {
            return Ok(Decision::Skip);
        }
        if !worker.is_due(now, every_events) {
            // Not due, but the deadline must be armed (or moved earlier,
            // now that `every_events` is reached).
            arm(&self.config, &self.shared, worker, ctx);
            worker.skipped(every_events);
            return Ok(Decision::Skip);
        }
        due(
            &self.config,
            self.token,
            &mut self.stats,
            &self.shared,
            worker,
            ctx,
        )
    }

    /// The global scope's not-due, already-armed path, counted here. (With
    /// the per-session scope `global` is never armed: its `check_at` stays
    /// zero and every event goes to `on_event`.)
    #[inline]
    fn skip_fast(&mut self, now: Duration) -> bool {
        let w = &mut self.global;
        if w.events < w.check_last && now.as_secs() < w.check_sec {
            w.events += 1;
            return true;
        }
        false
    }

    fn on_computed(&mut self, ctx: &EventContext<'_>, ticket: Ticket) -> Result<(), BackendError> {
        if let Some(token) = ticket.lock() {
            if !ctx.backend.unlock(ctx.state_scope(), token)? {
                self.stats.leases_lost += 1;
                crate::telemetry::lease_lost("coalesce");
            }
        }
        Ok(())
    }

    fn stats(&self) -> SchedulerStats {
        let s = &self.shared;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SchedulerStats {
            composites: get(&s.composites),
            composites_without_data: get(&s.composites_without_data),
            errors: get(&s.errors),
            state_resets: get(&s.state_resets),
            panics: get(&s.panics),
            skipped_ticks: 0,
            lock_attempts: self.stats.lock_attempts + get(&s.lock_attempts),
            locks_acquired: self.stats.locks_acquired + get(&s.locks_acquired),
            leases_lost: self.stats.leases_lost + get(&s.leases_lost),
        }
    }

    fn shutdown(&mut self) {
        if let Some(handle) = self.runtime.take() {
            self.shared.stop.store(true, Ordering::Release);
            self.shared.wake.notify();
            // The timer catches panics from composite runs, so a join error
            // can only mean a bug in the loop itself; nothing to do with it
            // here but not propagate it into Drop.
            let _ = handle.join();
        }
    }
}

impl Drop for Coalesce {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Arms the trailing deadline for the worker's pending events (cold: once
/// per quiet period per scope).
#[cold]
fn arm(config: &CoalesceConfig, shared: &Shared, worker: &mut WorkerState, ctx: &EventContext<'_>) {
    let deadline = worker.deadline(config.every_events());
    worker.armed_until = deadline;
    let armed = Armed {
        fire_at: deadline,
        since: ctx.now,
        session: match ctx.scope {
            CompositeScope::Global => None,
            CompositeScope::PerSession => Some(Arc::clone(ctx.session)),
        },
    };
    let earlier = {
        let mut queue = shared.queue.lock();
        let earlier = queue.earliest().is_none_or(|e| armed.fire_at < e);
        queue.arm(armed);
        earlier
    };
    if earlier {
        shared.wake.notify();
    }
}

/// The leading edge: the event made the strategy due.
#[cold]
fn due(
    config: &CoalesceConfig,
    token: LockToken,
    stats: &mut SchedulerStats,
    shared: &Shared,
    worker: &mut WorkerState,
    ctx: &EventContext<'_>,
) -> Result<Decision, BackendError> {
    let now = ctx.now;
    let scope = ctx.state_scope();
    if scope.session().is_none() {
        // The timer may have computed since this worker's event path last
        // learned: then nothing is due yet (no backend call).
        let nanos = shared.known_start.load(Ordering::Relaxed);
        let known = Duration::from_nanos(nanos);
        if nanos > 0 && known + config.max_staleness() > worker.stale_at {
            let events = worker.events;
            *worker = WorkerState::knowing_of(known, config);
            worker.events = events;
            if !worker.is_due(now, config.every_events()) {
                arm(config, shared, worker, ctx);
                worker.skipped(config.every_events());
                return Ok(Decision::Skip);
            }
        }
    }
    stats.lock_attempts += 1;
    let outcome =
        ctx.backend
            .try_lock_if_dirty(scope, token, config.lease(), config.min_interval())?;
    crate::telemetry::lock_attempt("coalesce", &outcome);
    if let LockOutcome::Acquired { generation } = outcome {
        stats.locks_acquired += 1;
        *worker = WorkerState::knowing_of(now, config);
        if scope.session().is_none() {
            shared.learn(now);
        }
        let mut queue = shared.queue.lock();
        queue.covered(scope.session(), now);
        if scope.session().is_none() {
            queue.observed(now + config.max_staleness());
        }
        return Ok(Decision::Compute(
            Ticket::locked(token).with_generation(generation),
        ));
    }
    if let Some(ago) = outcome.since_last() {
        // Refused: a calculation started `ago` before now (backend time) and
        // read every event recorded before it.
        let started = now.saturating_sub(ago);
        if scope.session().is_none() {
            shared.learn(started);
        }
        if started + config.max_staleness() > worker.stale_at {
            *worker = WorkerState::knowing_of(started, config);
            let mut queue = shared.queue.lock();
            queue.covered(scope.session(), started);
            if scope.session().is_none() {
                queue.observed(started + config.max_staleness());
            }
        }
    }
    // Not computed here and not known to be read by anyone: the timer
    // checks again at the next deadline (a tick from now if that has passed).
    if now >= worker.armed_until && !matches!(outcome, LockOutcome::Clean { .. }) {
        arm(config, shared, worker, ctx);
    }
    if !worker.is_due(now, config.every_events()) {
        worker.skipped(config.every_events());
    }
    Ok(Decision::Skip)
}

/// The trailing edge: fires armed deadlines and the idle takeover check.
#[derive(Debug)]
struct Timer {
    env: SchedulerEnv,
    calculations: crate::telemetry::TimerCalculations,
    config: CoalesceConfig,
    token: LockToken,
    shared: Arc<Shared>,
}

impl Timer {
    fn run(self) {
        let clock = Arc::clone(self.env.clock());
        loop {
            let now = clock.now();
            let next = {
                let q = self.shared.queue.lock();
                let poll = match self.env.scope() {
                    CompositeScope::Global => q.next_poll,
                    // No takeover check: sleep until armed (or a while).
                    CompositeScope::PerSession => now + self.config.max_staleness(),
                };
                q.earliest().map_or(poll, |e| e.min(poll))
            };
            if self.shared.stop.load(Ordering::Acquire) {
                return;
            }
            if now < next {
                clock.wait_until(next, &self.shared.wake);
                continue;
            }
            self.run_due(now);
        }
    }

    /// Fires what is due at `now`; returns the calculations run.
    fn run_due(&self, now: Duration) -> u64 {
        let (due, poll) = {
            let mut q = self.shared.queue.lock();
            let fires = q.earliest().is_some_and(|e| e <= now);
            // The takeover check, when nothing was observed for
            // `max_staleness` and no deadline fires now (it would observe).
            let poll = !fires && self.env.scope() == CompositeScope::Global && now >= q.next_poll;
            if !poll && !fires {
                return 0;
            }
            let due = q.take_due(now);
            (due, poll)
        };
        let mut runs = 0;
        for armed in due {
            runs += self.fire(now, armed.session.as_deref(), Some(armed.since));
        }
        if poll {
            runs += self.fire(now, None, None);
        }
        runs
    }

    /// Tries "lock if dirty" for one scope and computes if it got the lock.
    /// `since`: the armed events' first recording (None: takeover check).
    fn fire(&self, now: Duration, session: Option<&str>, since: Option<Duration>) -> u64 {
        let scope = session.map_or(Scope::Global, Scope::Session);
        let backend = self.env.backend();
        self.shared.lock_attempts.fetch_add(1, Ordering::Relaxed);
        // Ask again at `at`: the armed deadline, or the takeover check.
        let retry = |at: Duration| {
            let mut q = self.shared.queue.lock();
            match since {
                Some(since) => q.arm(Armed {
                    fire_at: at,
                    since,
                    session: session.map(Arc::from),
                }),
                None => q.next_poll = at,
            }
        };
        let outcome = match backend.try_lock_if_dirty(
            scope,
            self.token,
            self.config.lease(),
            self.config.min_interval(),
        ) {
            Ok(o) => o,
            Err(e) => {
                self.shared.failed(&e);
                crate::telemetry::backend_error(&e);
                log::warn!("coalesce timer could not ask for the lock: {e}");
                retry(now + self.config.tick());
                return 0;
            }
        };
        crate::telemetry::lock_attempt("coalesce", &outcome);
        if session.is_none() {
            if let Some(ago) = outcome.since_last() {
                self.shared.learn(now.saturating_sub(ago));
            }
        }
        match outcome {
            LockOutcome::Acquired { generation } => {
                self.shared.locks_acquired.fetch_add(1, Ordering::Relaxed);
                {
                    let mut q = self.shared.queue.lock();
                    q.covered(session, now);
                    q.observed(now + self.config.max_staleness());
                }
                let runs = self.compute(scope, session, generation);
                match backend.unlock(scope, self.token) {
                    Ok(true) => {}
                    Ok(false) => {
                        self.shared.leases_lost.fetch_add(1, Ordering::Relaxed);
                        crate::telemetry::lease_lost("coalesce");
                    }
                    Err(e) => {
                        self.shared.failed(&e);
                        crate::telemetry::backend_error(&e);
                        log::warn!("coalesce timer could not release the lock: {e}");
                    }
                }
                runs
            }
            LockOutcome::Clean { .. } => {
                self.shared
                    .queue
                    .lock()
                    .observed(now + self.config.max_staleness());
                0
            }
            LockOutcome::TooSoon { since_last } => {
                // That calculation read every event recorded before it
                // started. This worker's armed events recorded later are
                // tried again when the ceiling allows; anyone else's are
                // checked by `max_staleness` after it.
                let started = now.saturating_sub(since_last);
                if since.is_some_and(|s| s > started) {
                    retry(started + self.config.min_interval());
                }
                if session.is_none() {
                    self.shared
                        .queue
                        .lock()
                        .observed(started + self.config.max_staleness());
                }
                0
            }
            LockOutcome::Held { .. } => {
                retry(now + self.config.tick());
                0
            }
        }
    }

    /// Computes one composite under the lock of `generation` and records it.
    fn compute(&self, scope: Scope<'_>, session: Option<&str>, generation: u64) -> u64 {
        let session: Option<Arc<str>> = session.map(Arc::from);
        let result = catch_unwind(AssertUnwindSafe(|| {
            self.env.composite(scope, session.as_ref())
        }));
        match result {
            Ok(Ok(metric)) => {
                self.shared.composites.fetch_add(1, Ordering::Relaxed);
                self.calculations.add(1);
                if metric.is_none() {
                    self.shared
                        .composites_without_data
                        .fetch_add(1, Ordering::Relaxed);
                }
                if let Some(m) = metric {
                    let m = m.with_generation(Some(generation));
                    if let Err(e) = self.env.record(std::slice::from_ref(&m)) {
                        self.shared.errors.fetch_add(1, Ordering::Relaxed);
                        crate::telemetry::sink_error(&e);
                        log::warn!("coalesce composite could not be recorded: {e}");
                    }
                }
                1
            }
            Ok(Err(e)) => {
                self.shared.failed(&e);
                crate::telemetry::backend_error(&e);
                log::warn!("coalesce composite failed: {e}");
                0
            }
            Err(_) => {
                self.shared.panics.fetch_add(1, Ordering::Relaxed);
                log::error!("coalesce composite panicked; the timer goes on");
                0
            }
        }
    }
}
