//! Fencing (issue 8, point 7): a lock holder paused past its lease (GC,
//! `SIGSTOP`) must not overwrite the score of the holder that took over.
//! Worker A takes the lock and is paused in the middle of its calculation;
//! its lease runs out; worker B takes the lock and records its score; A
//! resumes and records a stale score, which the sink refuses and counts.
//! Run on `MemoryState` + `MemorySink` and on a real redis-server with
//! `RedisState` + `RedisSink`.

mod support;

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use composite_metrics::clock::{Clock, ManualClock};
use composite_metrics::metric::names;
use composite_metrics::score::CompositeInputs;
use composite_metrics::sink::Fenced;
use composite_metrics::state::{LockToken, Observation, OpCounts, RedisConfig, RedisState, Scope};
use composite_metrics::{
    BackendError, Category, CompositeScheduler, CompositeScope, Event, EventType, HybridLock,
    HybridLockConfig, MemorySink, MemoryState, Metric, MetricSink, MetricsCalculator, RedisSink,
    StateBackend,
};
use parking_lot::Mutex;
use support::RedisServer;

const LEASE: Duration = Duration::from_millis(100);

fn config() -> HybridLockConfig {
    HybridLockConfig::default()
        .with_lease(LEASE)
        .with_min_interval(LEASE)
        .with_max_staleness(LEASE)
}

/// A backend whose next composite read, once armed, reads the inputs and
/// then stops until the test lets it go: a holder paused mid-calculation.
#[derive(Debug)]
struct Pausable {
    inner: Arc<dyn StateBackend>,
    gate: Mutex<Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>>,
}

impl Pausable {
    /// Arms the pause: returns (paused, resume).
    fn arm(&self) -> (mpsc::Receiver<()>, mpsc::Sender<()>) {
        let (paused_tx, paused_rx) = mpsc::channel();
        let (resume_tx, resume_rx) = mpsc::channel();
        *self.gate.lock() = Some((paused_tx, resume_rx));
        (paused_rx, resume_tx)
    }
}

impl StateBackend for Pausable {
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
        let inputs = self.inner.composite_inputs(scope)?;
        if let Some((paused, resume)) = self.gate.lock().take() {
            paused.send(()).unwrap();
            resume.recv_timeout(Duration::from_secs(30)).unwrap();
        }
        Ok(inputs)
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
    ) -> Result<composite_metrics::state::LockOutcome, BackendError> {
        self.inner.try_lock(scope, token, lease, min_interval)
    }
    fn unlock(&self, scope: Scope<'_>, token: LockToken) -> Result<bool, BackendError> {
        self.inner.unlock(scope, token)
    }
    fn last_computed(&self, scope: Scope<'_>) -> Result<Option<Duration>, BackendError> {
        self.inner.last_computed(scope)
    }
    fn op_counts(&self) -> OpCounts {
        self.inner.op_counts()
    }
}

/// Reads the latest recorded composite for a session (None: global).
type Latest = Box<dyn Fn(Option<&str>) -> Option<f64>>;

/// One shared state and sink, handed to two workers.
struct Setup {
    clock: ManualClock,
    /// Lets time pass on the backend's clock.
    pass: Box<dyn Fn(Duration)>,
    state: [Arc<dyn StateBackend>; 2],
    sink: [Arc<dyn MetricSink>; 2],
    /// The latest recorded composite for `session` (None: global).
    latest: Latest,
    /// Metrics the sinks refused.
    refused: Box<dyn Fn() -> u64>,
}

fn score(metrics: &[Metric]) -> Option<&Metric> {
    metrics
        .iter()
        .find(|m| m.is(Category::Composite, names::PRODUCTIVITY_SCORE))
}

/// Returns worker A's and B's generations.
fn stale_holder_is_refused(s: &Setup, scope: CompositeScope) -> (u64, u64) {
    let session = match scope {
        CompositeScope::Global => None,
        CompositeScope::PerSession => Some("s1"),
    };
    // Accepted edits, so the score has both inputs.
    s.state[0]
        .record(
            &Event::new(EventType::FileEdit, "s1").with_accepted(true),
            s.clock.now(),
        )
        .unwrap();
    let paused = Arc::new(Pausable {
        inner: Arc::clone(&s.state[0]),
        gate: Mutex::new(None),
    });
    let build = |state: Arc<dyn StateBackend>, sink: &Arc<dyn MetricSink>| {
        MetricsCalculator::builder()
            .clock(s.clock.clone())
            .state(state)
            .sink(Arc::clone(sink))
            .scope(scope)
            .scheduler(HybridLock::new(config()).unwrap())
            .build()
            .unwrap()
    };
    let mut a = build(paused.clone(), &s.sink[0]);
    let mut b = build(Arc::clone(&s.state[1]), &s.sink[1]);
    let (is_paused, resume) = paused.arm();
    // A: S = 100 %, A = 100 %: 85. It takes the lock, reads, and is paused.
    let worker_a = std::thread::spawn(move || {
        let metrics = a
            .process(&Event::tool_use("s1", "bash").with_success(true))
            .unwrap();
        (a, metrics)
    });
    is_paused.recv_timeout(Duration::from_secs(10)).unwrap();
    // A's lease runs out while it is paused.
    (s.pass)(LEASE + LEASE / 2);
    // B: S = 50 %: 65. Takes over and records its score.
    let b_metrics = b
        .process(&Event::tool_use("s1", "bash").with_success(false))
        .unwrap();
    let b_score = score(&b_metrics).expect("B computed").clone();
    assert_eq!(b_score.value, 65.0);
    assert_eq!((s.latest)(session), Some(65.0));
    assert_eq!(b.stats().sink_errors, 0);
    // A resumes and records its stale 85: refused, counted, reported.
    resume.send(()).unwrap();
    let (a, a_metrics) = worker_a.join().unwrap();
    let a_score = score(&a_metrics).expect("A computed").clone();
    assert_eq!(a_score.value, 85.0);
    let (ga, gb) = (a_score.generation.unwrap(), b_score.generation.unwrap());
    assert!(gb > ga, "B's generation {gb} is not newer than A's {ga}");
    assert_eq!(
        (s.latest)(session),
        Some(65.0),
        "the stale score overwrote the newer one"
    );
    assert_eq!((s.refused)(), 1);
    assert_eq!(a.stats().sink_errors, 1);
    assert_eq!(a.scheduler().stats().leases_lost, 1);
    // Only the composite was refused: A's per-event metrics were recorded.
    assert_eq!(a.stats().events, 1);
    (ga, gb)
}

fn memory() -> Setup {
    let clock = ManualClock::default();
    let state = MemoryState::with_clock(clock.clone());
    let sink = MemorySink::new();
    let read = sink.clone();
    let count = sink.clone();
    let pass_clock = clock.clone();
    Setup {
        clock,
        pass: Box::new(move |d| pass_clock.advance(d)),
        state: [Arc::new(state.clone()), Arc::new(state)],
        sink: [Arc::new(sink.clone()), Arc::new(sink)],
        // Per-session composites share one series; the latest is the newest written.
        latest: Box::new(move |_| read.latest_of(Category::Composite, names::PRODUCTIVITY_SCORE)),
        refused: Box::new(move || count.refused()),
    }
}

fn redis(server: &RedisServer, ns: &str) -> Setup {
    let config = RedisConfig::default().with_namespace(ns);
    let url = server.url();
    let state = |c: &RedisConfig| -> Arc<dyn StateBackend> {
        Arc::new(RedisState::connect(&url, c.clone()).unwrap())
    };
    let sinks = [
        Arc::new(RedisSink::connect(&url, config.clone()).unwrap()),
        Arc::new(RedisSink::connect(&url, config.clone()).unwrap()),
    ];
    let counted = sinks.clone();
    let latest_key = sinks[0].latest_key();
    let inspect = Mutex::new(server.connection());
    Setup {
        clock: ManualClock::default(),
        pass: Box::new(std::thread::sleep),
        state: [state(&config), state(&config)],
        sink: [sinks[0].clone(), sinks[1].clone()],
        latest: Box::new(move |_| {
            redis::cmd("HGET")
                .arg(&latest_key)
                .arg("composite/productivity_score")
                .query::<Option<f64>>(&mut *inspect.lock())
                .unwrap()
        }),
        refused: Box::new(move || counted.iter().map(|s| s.refused()).sum()),
    }
}

#[test]
fn memory_global_stale_holder_is_refused() {
    stale_holder_is_refused(&memory(), CompositeScope::Global);
}

#[test]
fn memory_per_session_stale_holder_is_refused() {
    stale_holder_is_refused(&memory(), CompositeScope::PerSession);
}

#[test]
fn redis_global_stale_holder_is_refused() {
    let server = RedisServer::start();
    let (ga, gb) = stale_holder_is_refused(&redis(&server, "fence"), CompositeScope::Global);
    // The calc log records each acquisition's generation, last field.
    let log: Vec<String> = server.cmd(&["LRANGE", "{fence}:calc_log", "0", "-1"]);
    let starts: Vec<u64> = log
        .iter()
        .filter(|l| l.starts_with("start "))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(starts, vec![gb, ga], "{log:?}");
    let newest: u64 = server.cmd(&["GET", "{fence}:latest_generation"]);
    assert_eq!(newest, gb);
    let ttl: i64 = server.cmd(&["PTTL", "{fence}:fence"]);
    assert_eq!(ttl, -1, "the global generation must never expire");
}

#[test]
fn redis_per_session_stale_holder_is_refused() {
    let server = RedisServer::start();
    let (_, gb) = stale_holder_is_refused(&redis(&server, "sfence"), CompositeScope::PerSession);
    let newest: u64 = server.cmd(&["GET", "{sfence}:g:s1"]);
    assert_eq!(newest, gb);
    // Session fences expire with the session (TTL set) instead of piling up.
    for key in ["{sfence}:g:s1", "{sfence}:f:s1"] {
        let ttl: i64 = server.cmd(&["PTTL", key]);
        assert!(ttl > 0, "{key} has no TTL");
    }
}

/// The sinks on their own: equal generations pass (one holder writing
/// twice), older ones are refused with a typed error, other metrics of the
/// batch are kept, and scopes are independent.
fn sink_rules(sink: &dyn MetricSink, latest: &dyn Fn() -> Option<f64>, refused: &dyn Fn() -> u64) {
    let at = Duration::from_secs(1_700_000_000);
    let composite = |v: f64, g: u64, session: Option<&str>| {
        let m = Metric::new(Category::Composite, names::PRODUCTIVITY_SCORE, v, at)
            .with_generation(Some(g));
        match session {
            Some(id) => m.with_session(Arc::from(id)),
            None => m,
        }
    };
    let plain = Metric::new(Category::Realtime, names::EVENTS_PER_SECOND, 3.0, at);
    sink.record(&[composite(60.0, 10, None)]).unwrap();
    sink.record(&[composite(61.0, 10, None)]).unwrap();
    assert_eq!(latest(), Some(61.0));
    let err = sink
        .record(&[
            plain.clone(),
            composite(10.0, 9, None),
            composite(11.0, 2, None),
        ])
        .unwrap_err();
    let fenced = err.source.downcast_ref::<Fenced>().expect("a Fenced error");
    assert_eq!(
        (fenced.refused, fenced.generation, fenced.newest),
        (2, 9, 10)
    );
    assert_eq!(fenced.session, None);
    assert_eq!(latest(), Some(61.0));
    assert_eq!(refused(), 2);
    // A session's generations are its own: 3 < 10 but another scope.
    sink.record(&[composite(70.0, 3, Some("s1"))]).unwrap();
    assert_eq!(latest(), Some(70.0));
    let err = sink.record(&[composite(5.0, 2, Some("s1"))]).unwrap_err();
    let fenced = err.source.downcast_ref::<Fenced>().expect("a Fenced error");
    assert_eq!(fenced.session.as_deref(), Some("s1"));
    assert_eq!(refused(), 3);
    // Unfenced metrics are never refused.
    sink.record(&[Metric::new(
        Category::Composite,
        names::PRODUCTIVITY_SCORE,
        1.0,
        at,
    )])
    .unwrap();
    assert_eq!(latest(), Some(1.0));
}

#[test]
fn memory_sink_rules() {
    let sink = MemorySink::new();
    let series = sink.clone();
    sink_rules(
        &sink,
        &|| series.latest_of(Category::Composite, names::PRODUCTIVITY_SCORE),
        &|| sink.refused(),
    );
    // The batch's plain metric was kept although its composites were refused.
    assert_eq!(
        sink.latest_of(Category::Realtime, names::EVENTS_PER_SECOND),
        Some(3.0)
    );
}

#[test]
fn redis_sink_rules() {
    let server = RedisServer::start();
    let sink = RedisSink::connect(
        &server.url(),
        RedisConfig::default().with_namespace("rules"),
    )
    .unwrap();
    let latest = || -> Option<f64> {
        server.cmd(&["HGET", "{rules}:latest", "composite/productivity_score"])
    };
    sink_rules(&sink, &latest, &|| sink.refused());
    let eps: Option<f64> = server.cmd(&["HGET", "{rules}:latest", "realtime/events_per_second"]);
    assert_eq!(eps, Some(3.0));
}

/// Generations are compared exactly, beyond the 2^53 of Lua's numbers.
#[test]
fn redis_sink_compares_large_generations_exactly() {
    let server = RedisServer::start();
    let sink =
        RedisSink::connect(&server.url(), RedisConfig::default().with_namespace("big")).unwrap();
    let at = Duration::from_secs(1);
    let m = |g: u64| {
        Metric::new(Category::Composite, names::PRODUCTIVITY_SCORE, g as f64, at)
            .with_generation(Some(g))
    };
    sink.record(&[m(u64::MAX)]).unwrap();
    assert!(sink.record(&[m(u64::MAX - 1)]).is_err());
    sink.record(&[m(u64::MAX)]).unwrap();
    assert_eq!(sink.refused(), 1);
}

/// A wrong-typed key fails the whole call before any write.
#[test]
fn redis_sink_wrong_typed_key_changes_nothing() {
    let server = RedisServer::start();
    let sink =
        RedisSink::connect(&server.url(), RedisConfig::default().with_namespace("wt")).unwrap();
    server.cmd::<()>(&["SET", "{wt}:series:composite/productivity_score", "x"]);
    let digest: String = server.cmd(&["DEBUG", "DIGEST"]);
    let at = Duration::from_secs(1);
    let batch = [
        Metric::new(Category::Realtime, names::EVENTS_PER_SECOND, 1.0, at),
        Metric::new(Category::Composite, names::PRODUCTIVITY_SCORE, 50.0, at)
            .with_generation(Some(4)),
    ];
    assert!(sink.record(&batch).is_err());
    let after: String = server.cmd(&["DEBUG", "DIGEST"]);
    assert_eq!(digest, after);
}

/// Generations keep growing when the fence key is lost (deleted, flushed):
/// the next one is at least the server's time in microseconds.
#[test]
fn redis_generation_grows_after_the_fence_key_is_lost() {
    let server = RedisServer::start();
    let state =
        RedisState::connect(&server.url(), RedisConfig::default().with_namespace("lost")).unwrap();
    let t = LockToken::from_u64(1);
    let lease = Duration::from_millis(50);
    let first = state
        .try_lock(Scope::Global, t, lease, Duration::from_millis(1))
        .unwrap()
        .generation()
        .expect("acquired");
    assert!(state.unlock(Scope::Global, t).unwrap());
    server.cmd::<()>(&["DEL", "{lost}:fence"]);
    std::thread::sleep(Duration::from_millis(5));
    let second = state
        .try_lock(Scope::Global, t, lease, Duration::from_millis(1))
        .unwrap()
        .generation()
        .expect("acquired");
    assert!(
        second > first,
        "{first} then {second} after the fence was lost"
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Step {
        Lock { worker: u8, session: bool },
        Unlock { worker: u8, session: bool },
        Advance(u16),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0u8..3, any::<bool>()).prop_map(|(worker, session)| Step::Lock { worker, session }),
            (0u8..3, any::<bool>()).prop_map(|(worker, session)| Step::Unlock { worker, session }),
            (0u16..300).prop_map(Step::Advance),
        ]
    }

    proptest! {
        /// On MemoryState, every acquisition's generation is larger than
        /// every earlier one of the same scope, whatever the interleaving.
        #[test]
        fn memory_generations_only_grow(steps in proptest::collection::vec(step(), 1..80)) {
            let clock = ManualClock::default();
            let state = MemoryState::with_clock(clock.clone());
            let lease = Duration::from_millis(100);
            let mut newest = [0u64; 2];
            for s in steps {
                match s {
                    Step::Lock { worker, session } => {
                        let scope = if session { Scope::Session("s") } else { Scope::Global };
                        let token = LockToken::from_u64(u64::from(worker) + 1);
                        let outcome = state.try_lock(scope, token, lease, Duration::ZERO).unwrap();
                        if let Some(g) = outcome.generation() {
                            let slot = &mut newest[usize::from(session)];
                            prop_assert!(g > *slot, "{} after {}", g, *slot);
                            *slot = g;
                        }
                    }
                    Step::Unlock { worker, session } => {
                        let scope = if session { Scope::Session("s") } else { Scope::Global };
                        state.unlock(scope, LockToken::from_u64(u64::from(worker) + 1)).unwrap();
                    }
                    Step::Advance(ms) => clock.advance(Duration::from_millis(u64::from(ms))),
                }
            }
        }

        /// Whatever order fenced composites reach a MemorySink in, the
        /// latest value is one written with the largest generation, and
        /// exactly the writes older than the newest at their arrival are
        /// refused.
        #[test]
        fn memory_sink_keeps_the_newest_generation(
            writes in proptest::collection::vec((0u64..20, 0u32..1000), 1..40),
        ) {
            let sink = MemorySink::new();
            let at = Duration::from_secs(1);
            let (mut newest, mut refused, mut latest) = (0u64, 0u64, None);
            for (g, v) in &writes {
                let m = Metric::new(Category::Composite, names::PRODUCTIVITY_SCORE, f64::from(*v), at)
                    .with_generation(Some(*g));
                let result = sink.record(&[m]);
                if *g < newest {
                    refused += 1;
                    prop_assert!(result.is_err());
                } else {
                    newest = *g;
                    latest = Some(f64::from(*v));
                    prop_assert!(result.is_ok());
                }
            }
            prop_assert_eq!(sink.refused(), refused);
            prop_assert_eq!(sink.latest_of(Category::Composite, names::PRODUCTIVITY_SCORE), latest);
        }
    }
}
