use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::{
    BackgroundConfig, CompositeScheduler, CompositeScope, Decision, EventContext, SchedulerEnv,
    SchedulerStats,
};
use crate::clock::Wake;
use crate::error::{BackendError, ConfigError, Error};
use crate::metric::Metric;
use crate::state::{LockOutcome, LockToken, Scope};

/// Sessions asked for per listing page in a per-session run.
const LISTING_PAGE: usize = 1_000;

/// Recomputes the composite on its own thread every interval; the event path
/// does no work at all.
///
/// Missed ticks (the thread woke late) are skipped and counted, never run in
/// a burst. A run that returns an error or panics is counted in
/// [`Stats`](crate::Stats) and logged, and the next tick runs as usual.
/// [`shutdown`](CompositeScheduler::shutdown) returns without waiting out the
/// interval, and dropping the scheduler (or its calculator) stops the thread.
/// With [`CompositeScope::PerSession`] each run recomputes every active
/// session, listing them a page of about 1 000 at a time
/// ([`StateBackend::active_sessions_page`](crate::state::StateBackend::active_sessions_page)),
/// reading each page's inputs in one operation
/// ([`StateBackend::session_inputs`](crate::state::StateBackend::session_inputs))
/// and recording its composites before reading the next, so a run
/// works at a million sessions on Redis without any call nearing the read
/// timeout. With coordination, the composites carry the lock's fencing
/// generation ([`Metric::generation`](crate::Metric::generation)).
///
/// It runs on the calculator's clock, so with a
/// [`ManualClock`](crate::clock::ManualClock) it ticks when the clock is advanced.
///
/// ```
/// use std::time::Duration;
/// use composite_metrics::clock::ManualClock;
/// use composite_metrics::{Background, BackgroundConfig, Event, MemoryState, MetricsCalculator};
///
/// let clock = ManualClock::default();
/// let mut calc = MetricsCalculator::builder()
///     .clock(clock.clone())
///     .state(MemoryState::with_clock(clock.clone()))
///     .scheduler(Background::new(BackgroundConfig::default())?)
///     .build()?;
/// calc.process(&Event::tool_use("s1", "bash").with_success(true))?;
/// assert_eq!(calc.stats().composites, 0); // nothing on the event path
/// clock.advance(Duration::from_secs(30));
/// let deadline = std::time::Instant::now() + Duration::from_secs(5);
/// while calc.stats().composites == 0 && std::time::Instant::now() < deadline {
///     std::thread::yield_now();
/// }
/// assert_eq!(calc.stats().composites, 1);
/// calc.shutdown();
/// # Ok::<(), composite_metrics::Error>(())
/// ```
#[derive(Debug)]
pub struct Background {
    config: BackgroundConfig,
    counters: Arc<Counters>,
    runtime: Option<Runtime>,
    threaded: bool,
    manual: Option<Worker>,
}

#[derive(Debug, Default)]
struct Counters {
    composites: AtomicU64,
    composites_without_data: AtomicU64,
    errors: AtomicU64,
    state_resets: AtomicU64,
    panics: AtomicU64,
    skipped_ticks: AtomicU64,
    lock_attempts: AtomicU64,
    locks_acquired: AtomicU64,
    leases_lost: AtomicU64,
}

#[derive(Debug)]
struct Runtime {
    stop: Arc<AtomicBool>,
    wake: Arc<Wake>,
    handle: JoinHandle<()>,
}

impl Default for Background {
    fn default() -> Self {
        Self::from_valid(BackgroundConfig::default())
    }
}

impl Background {
    /// A background scheduler with `config`, rejected if invalid
    /// (see [`BackgroundConfig::validate`]).
    pub fn new(config: BackgroundConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self::from_valid(config))
    }

    /// A background scheduler that starts no thread: the host (or the
    /// simulator) calls [`poll`](Self::poll) instead, and each call runs the
    /// tick that is due, with the same skipping, jitter and coordination as
    /// the thread.
    pub fn manual(config: BackgroundConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut scheduler = Self::from_valid(config);
        scheduler.threaded = false;
        Ok(scheduler)
    }

    fn from_valid(config: BackgroundConfig) -> Self {
        Self {
            config,
            counters: Arc::default(),
            runtime: None,
            threaded: true,
            manual: None,
        }
    }

    /// For a [`manual`](Self::manual) scheduler: runs the due tick, if any,
    /// on this thread (missed ticks are skipped and counted). Returns how many
    /// calculations it ran (counted in
    /// [`SchedulerStats::composites`](crate::schedule::SchedulerStats::composites),
    /// those before a failure included). Does nothing for a threaded
    /// scheduler.
    pub fn poll(&mut self) -> u64 {
        let Some(worker) = &mut self.manual else {
            return 0;
        };
        let now = worker.env.clock().now();
        if now < worker.deadline {
            return 0;
        }
        worker.advance(now);
        worker.run_once()
    }

    /// The configuration.
    pub fn config(&self) -> BackgroundConfig {
        self.config
    }

    /// Whether the thread is running.
    pub fn is_running(&self) -> bool {
        self.runtime.is_some()
    }
}

#[derive(Debug)]
struct Worker {
    env: SchedulerEnv,
    calculations: crate::telemetry::TimerCalculations,
    tick: Duration,
    deadline: Duration,
    config: BackgroundConfig,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    wake: Arc<Wake>,
    token: LockToken,
    rng: u64,
}

impl Worker {
    fn jitter(&mut self) -> Duration {
        let bound = self.config.jitter().as_nanos() as u64;
        if bound == 0 {
            return Duration::ZERO;
        }
        // xorshift64*: good enough to spread processes, no dependency.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        Duration::from_nanos(self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) % bound)
    }

    fn run(mut self) {
        let clock = Arc::clone(self.env.clock());
        loop {
            while !self.stop.load(Ordering::Acquire) && clock.now() < self.deadline {
                clock.wait_until(self.deadline, &self.wake);
            }
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            self.advance(clock.now());
            self.run_once();
        }
    }

    /// Moves past the tick that is due at `now`, skipping (and counting) the
    /// ticks that `now` is already past, and draws the next deadline.
    fn advance(&mut self, now: Duration) {
        let interval = self.config.interval();
        let late = now.saturating_sub(self.deadline);
        let missed = (late.as_nanos() / interval.as_nanos()) as u64;
        self.counters
            .skipped_ticks
            .fetch_add(missed, Ordering::Relaxed);
        self.tick += interval * u32::try_from(missed + 1).unwrap_or(u32::MAX);
        self.deadline = self.tick + self.jitter();
    }

    /// One run; returns how many calculations it ran (each is counted as it
    /// runs, so a run that fails half-way keeps the ones before).
    fn run_once(&self) -> u64 {
        let mut runs = 0;
        match catch_unwind(AssertUnwindSafe(|| self.compute(&mut runs))) {
            Ok(Ok(())) => runs,
            Ok(Err(e)) => {
                let counter = match e {
                    BackendError::StateReset { .. } => &self.counters.state_resets,
                    _ => &self.counters.errors,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                crate::telemetry::backend_error(&e);
                log::warn!("background composite run failed: {e}");
                runs
            }
            Err(_) => {
                self.counters.panics.fetch_add(1, Ordering::Relaxed);
                log::error!("background composite run panicked; the next tick will run");
                runs
            }
        }
    }

    /// Counts `n` calculations run, `without_data` of them without a score.
    fn calculated(&self, runs: &mut u64, n: u64, without_data: u64) {
        *runs += n;
        self.counters.composites.fetch_add(n, Ordering::Relaxed);
        self.counters
            .composites_without_data
            .fetch_add(without_data, Ordering::Relaxed);
        self.calculations.add(n);
    }

    /// One run; adds the calculations it runs to `runs` as they run.
    fn compute(&self, runs: &mut u64) -> Result<(), BackendError> {
        let backend = self.env.backend();
        let mut generation = None;
        if self.config.coordinated() {
            self.counters.lock_attempts.fetch_add(1, Ordering::Relaxed);
            let outcome = backend.try_lock(
                Scope::Global,
                self.token,
                self.config.lease(),
                self.config.min_interval(),
            )?;
            crate::telemetry::lock_attempt("background", &outcome);
            let LockOutcome::Acquired { generation: g } = outcome else {
                return Ok(());
            };
            generation = Some(g);
            self.counters.locks_acquired.fetch_add(1, Ordering::Relaxed);
        }
        let result = self.compute_all(generation, runs);
        if self.config.coordinated() && !backend.unlock(Scope::Global, self.token)? {
            self.counters.leases_lost.fetch_add(1, Ordering::Relaxed);
            crate::telemetry::lease_lost("background");
        }
        result
    }

    /// Computes every composite of the scope, stamped with `generation` (the
    /// coordination lock's, if any). Per session, the sessions are listed a
    /// page at a time ([`StateBackend::active_sessions_page`]), each page's
    /// inputs are read in one operation ([`StateBackend::session_inputs`])
    /// and its composites recorded before the next page is read, so no
    /// backend or sink call grows with the number of sessions.
    ///
    /// [`StateBackend::active_sessions_page`]: crate::state::StateBackend::active_sessions_page
    /// [`StateBackend::session_inputs`]: crate::state::StateBackend::session_inputs
    fn compute_all(&self, generation: Option<u64>, runs: &mut u64) -> Result<(), BackendError> {
        let mut metrics = Vec::new();
        match self.env.scope() {
            CompositeScope::Global => {
                let m = self.env.composite(Scope::Global, None)?;
                metrics.extend(m.map(|m| m.with_generation(generation)));
                self.calculated(runs, 1, u64::from(metrics.is_empty()));
                self.record(&metrics);
            }
            CompositeScope::PerSession => {
                let mut cursor = None;
                loop {
                    let page = self
                        .env
                        .backend()
                        .active_sessions_page(cursor, LISTING_PAGE)?;
                    metrics.clear();
                    let read = self.env.session_composites(&page.sessions, &mut metrics)? as u64;
                    let scored = metrics.len() as u64;
                    self.calculated(runs, read, read.saturating_sub(scored));
                    for m in &mut metrics {
                        m.generation = generation;
                    }
                    self.record(&metrics);
                    match page.next {
                        Some(next) => cursor = Some(next),
                        None => break,
                    }
                }
            }
        }
        Ok(())
    }

    fn record(&self, metrics: &[Metric]) {
        if metrics.is_empty() {
            return;
        }
        if let Err(e) = self.env.record(metrics) {
            self.counters.errors.fetch_add(1, Ordering::Relaxed);
            crate::telemetry::sink_error(&e);
            log::warn!("background composite could not be recorded: {e}");
        }
    }
}

impl CompositeScheduler for Background {
    fn name(&self) -> &'static str {
        "background"
    }

    fn attach(&mut self, env: &SchedulerEnv) -> Result<(), Error> {
        self.config.validate()?;
        self.shutdown();
        let stop = Arc::new(AtomicBool::new(false));
        let wake = Arc::new(Wake::new());
        let token = LockToken::random();
        // The first deadline is fixed now, so a test that advances a manual
        // clock right after building never races the thread's start.
        let first = env.clock().now() + self.config.interval();
        let mut worker = Worker {
            env: env.clone(),
            calculations: crate::telemetry::TimerCalculations::new("background"),
            tick: first,
            deadline: first,
            config: self.config,
            counters: Arc::clone(&self.counters),
            stop: Arc::clone(&stop),
            wake: Arc::clone(&wake),
            token,
            rng: token.as_u64() | 1,
        };
        let first_jitter = worker.jitter();
        worker.deadline += first_jitter;
        if !self.threaded {
            self.manual = Some(worker);
            return Ok(());
        }
        let handle = std::thread::Builder::new()
            .name("composite-background".into())
            .spawn(move || worker.run())
            .map_err(Error::Spawn)?;
        self.runtime = Some(Runtime { stop, wake, handle });
        Ok(())
    }

    #[inline]
    fn on_event(&mut self, _ctx: &EventContext<'_>) -> Result<Decision, BackendError> {
        Ok(Decision::Skip)
    }

    #[inline]
    fn skip_fast(&mut self, _now: Duration) -> bool {
        true
    }

    fn stats(&self) -> SchedulerStats {
        let c = &self.counters;
        SchedulerStats {
            composites: c.composites.load(Ordering::Relaxed),
            composites_without_data: c.composites_without_data.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            state_resets: c.state_resets.load(Ordering::Relaxed),
            panics: c.panics.load(Ordering::Relaxed),
            skipped_ticks: c.skipped_ticks.load(Ordering::Relaxed),
            lock_attempts: c.lock_attempts.load(Ordering::Relaxed),
            locks_acquired: c.locks_acquired.load(Ordering::Relaxed),
            leases_lost: c.leases_lost.load(Ordering::Relaxed),
        }
    }

    fn shutdown(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.stop.store(true, Ordering::Release);
            rt.wake.notify();
            // The worker catches panics from composite runs, so a join error
            // can only mean a bug in the loop itself; there is nothing to do
            // with it here but not propagate it into Drop.
            let _ = rt.handle.join();
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.shutdown();
    }
}
