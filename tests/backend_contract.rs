//! The backend contract, written once and run against `MemoryState`,
//! `RedisState` on one server (a real redis-server started per test) and
//! `RedisState` on a local 3-primary Redis Cluster (shared by the tests that
//! run at the same time, started again when none holds it).
//!
//! Event times are the calculator's `now` (a `ManualClock`); coordination runs
//! on the backend's time: the same `ManualClock` for `MemoryState`, the
//! server's real clock for Redis, so `Fixture::pass` advances the manual clock
//! and, for Redis, also sleeps (scaled-down durations keep that short).

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use composite_metrics::clock::{Clock, ManualClock};
use composite_metrics::event::MAX_DURATION_MS;
use composite_metrics::state::{
    LockOutcome, LockToken, MemoryConfig, Observation, RedisConfig, RedisState, Scope,
    SessionCursor,
};
use composite_metrics::{
    BackendError, Coalesce, CoalesceConfig, Error, Event, EventError, EventType, HybridLock,
    HybridLockConfig, MemoryState, MetricsCalculator, StateBackend,
};
use proptest::prelude::*;
use support::{RedisCluster, RedisServer};

/// Limits a fixture's backend is built with.
#[derive(Debug, Clone, Copy)]
struct Limits {
    session_ttl: Duration,
    max_sessions: usize,
    max_tools: usize,
    dedup_horizon: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        LIMITS
    }
}

enum Kind {
    Memory(MemoryState),
    Redis {
        url: String,
        config: RedisConfig,
    },
    Cluster {
        urls: Vec<String>,
        config: RedisConfig,
    },
}

/// One shared state, handed out as any number of handles (workers).
struct Fixture {
    clock: ManualClock,
    kind: Kind,
    _server: Option<RedisServer>,
    _cluster: Option<Arc<RedisCluster>>,
}

/// The cluster the running tests share; dropped (its servers killed) when
/// the last fixture holding it ends.
static CLUSTER: Mutex<Weak<RedisCluster>> = Mutex::new(Weak::new());

fn shared_cluster() -> Arc<RedisCluster> {
    let mut shared = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = shared.upgrade() {
        return c;
    }
    let c = Arc::new(RedisCluster::start(3));
    *shared = Arc::downgrade(&c);
    c
}

static NAMESPACE: AtomicU64 = AtomicU64::new(0);

impl Fixture {
    fn memory(limits: Limits) -> Self {
        let clock = ManualClock::default();
        let config = MemoryConfig::default()
            .with_session_ttl(limits.session_ttl)
            .with_max_sessions(limits.max_sessions)
            .with_max_tools(limits.max_tools)
            .with_dedup_horizon(limits.dedup_horizon);
        let state = MemoryState::with_config(config, clock.clone()).expect("valid config");
        Self {
            clock,
            kind: Kind::Memory(state),
            _server: None,
            _cluster: None,
        }
    }

    fn redis(limits: Limits) -> Self {
        let server = RedisServer::start();
        let mut f = Self::redis_on(&server, limits);
        f._server = Some(server);
        f
    }

    fn redis_on(server: &RedisServer, limits: Limits) -> Self {
        Self {
            clock: ManualClock::default(),
            kind: Kind::Redis {
                url: server.url(),
                config: redis_config(limits),
            },
            _server: None,
            _cluster: None,
        }
    }

    /// `RedisState` on the shared local cluster, in a namespace of its own.
    fn cluster(limits: Limits) -> Self {
        let cluster = shared_cluster();
        Self {
            clock: ManualClock::default(),
            kind: Kind::Cluster {
                urls: cluster.urls(),
                config: redis_config(limits),
            },
            _server: None,
            _cluster: Some(cluster),
        }
    }

    fn is_redis(&self) -> bool {
        matches!(self.kind, Kind::Redis { .. } | Kind::Cluster { .. })
    }

    /// A new handle on the shared state (one per worker).
    fn handle(&self) -> Arc<dyn StateBackend> {
        match &self.kind {
            Kind::Memory(m) => Arc::new(m.clone()),
            Kind::Redis { url, config } => {
                Arc::new(RedisState::connect(url, config.clone()).expect("connect to redis"))
            }
            Kind::Cluster { urls, config } => {
                let seeds: Vec<&str> = urls.iter().map(String::as_str).collect();
                Arc::new(
                    RedisState::connect_cluster(&seeds, config.clone())
                        .expect("connect to the cluster"),
                )
            }
        }
    }

    fn now(&self) -> Duration {
        self.clock.now()
    }

    /// Lets `d` pass on the calculator's clock and on the backend's.
    fn pass(&self, d: Duration) {
        self.clock.advance(d);
        if self.is_redis() {
            std::thread::sleep(d);
        }
    }

    /// Lets idle sessions expire (the TTL plus a margin) and makes the backend forget them.
    fn expire_idle(&self, ttl: Duration) {
        self.pass(ttl + ttl / 2);
        if let Kind::Memory(m) = &self.kind {
            m.expire_idle();
        }
    }

    /// Tolerance for durations measured on the backend's clock.
    fn slack(&self) -> Duration {
        if self.is_redis() {
            Duration::from_millis(60)
        } else {
            Duration::ZERO
        }
    }
}

/// A fresh namespace with `limits`.
fn redis_config(limits: Limits) -> RedisConfig {
    let ns = format!("contract-{}", NAMESPACE.fetch_add(1, Ordering::Relaxed));
    RedisConfig::default()
        .with_namespace(&ns)
        .with_session_ttl(limits.session_ttl)
        .with_max_sessions(limits.max_sessions)
        .with_max_tools(limits.max_tools)
        .with_dedup_horizon(limits.dedup_horizon)
}

fn tool(session: &str, name: &str) -> Event {
    Event::tool_use(session, name)
}

fn edit(session: &str, accepted: bool) -> Event {
    Event::new(EventType::FileEdit, session).with_accepted(accepted)
}

fn close(a: Duration, b: Duration, slack: Duration) -> bool {
    a.abs_diff(b) <= slack
}

// ---------------------------------------------------------------- the contract

/// The fencing generation of an acquisition; panics on any other outcome.
fn acquired(outcome: LockOutcome) -> u64 {
    match outcome {
        LockOutcome::Acquired { generation } => generation,
        other => panic!("expected Acquired, got {other:?}"),
    }
}

fn latency_window_keeps_duplicates(f: &Fixture) {
    let b = f.handle();
    let mut last = Observation::default();
    for _ in 0..100 {
        last = b
            .record(&tool("s1", "bash").with_duration_ms(7.0), f.now())
            .unwrap();
    }
    let l = last.latency.expect("latency");
    assert_eq!(
        (l.count, l.p50, l.p95, l.p99, l.avg),
        (100, 7.0, 7.0, 7.0, 7.0)
    );
    // 150 distinct values: the window holds the last 100 (50..150).
    for i in 0..150 {
        last = b
            .record(&tool("s1", "bash").with_duration_ms(f64::from(i)), f.now())
            .unwrap();
    }
    let l = last.latency.expect("latency");
    assert_eq!((l.count, l.p50, l.p95, l.p99), (100, 99.0, 144.0, 148.0));
    assert_eq!(l.avg, (50..150).map(f64::from).sum::<f64>() / 100.0);
    // Durations on non-tool events do not enter the window.
    let o = b
        .record(
            &Event::new(EventType::UserPrompt, "s1").with_duration_ms(1.0),
            f.now(),
        )
        .unwrap();
    assert_eq!(o.latency, None);
}

fn decisions_alternating_give_exactly_half(f: &Fixture) {
    let b = f.handle();
    let mut rate = None;
    for i in 0..100 {
        rate = b
            .record(&edit("s1", i % 2 == 0), f.now())
            .unwrap()
            .acceptance_rate;
    }
    assert_eq!(rate, Some(50.0));
    // 100 more acceptances push every earlier decision out.
    for _ in 0..100 {
        rate = b
            .record(&edit("s1", true), f.now())
            .unwrap()
            .acceptance_rate;
    }
    assert_eq!(rate, Some(100.0));
    let inputs = b.composite_inputs(Scope::Global).unwrap();
    assert_eq!(inputs.acceptance_rate, Some(100.0));
    assert_eq!(
        b.composite_inputs(Scope::Session("s1"))
            .unwrap()
            .acceptance_rate,
        Some(100.0)
    );
    // An edit without a decision does not count.
    let o = b
        .record(&Event::new(EventType::CodeChange, "s1"), f.now())
        .unwrap();
    assert_eq!(o.acceptance_rate, None);
}

fn success_rates_and_frequency(f: &Fixture) {
    let b = f.handle();
    b.record(&tool("s1", "bash").with_success(true), f.now())
        .unwrap();
    b.record(&tool("s1", "bash").with_success(false), f.now())
        .unwrap();
    let o = b
        .record(&tool("s2", "grep").with_success(true), f.now())
        .unwrap();
    assert_eq!(o.tool_success_rate, Some(100.0));
    assert_eq!(o.overall_success_rate, Some(200.0 / 3.0));
    assert_eq!(o.tool_frequency, Some(100.0 / 3.0));
    // No explicit outcome: no success rate, but the run counts.
    let o = b.record(&tool("s2", "bash"), f.now()).unwrap();
    assert_eq!((o.tool_success_rate, o.overall_success_rate), (None, None));
    assert_eq!(o.tool_frequency, Some(75.0));
    let g = b.composite_inputs(Scope::Global).unwrap();
    assert_eq!((g.success_rate, g.tool_runs), (Some(200.0 / 3.0), 4));
    let s = b.composite_inputs(Scope::Session("s1")).unwrap();
    assert_eq!((s.success_rate, s.tool_runs), (Some(50.0), 2));
    let none = b.composite_inputs(Scope::Session("nobody")).unwrap();
    assert_eq!(
        (none.success_rate, none.acceptance_rate, none.tool_runs),
        (None, None, 0)
    );
}

fn sessions_summarise_then_forget(f: &Fixture) {
    let b = f.handle();
    b.record(&Event::new(EventType::SessionStart, "s1"), f.now())
        .unwrap();
    f.clock.advance(Duration::from_secs(90));
    b.record(&tool("s1", "bash"), f.now()).unwrap();
    b.record(&tool("s1", "grep"), f.now()).unwrap();
    let p = b
        .record(&Event::new(EventType::UserPrompt, "s1"), f.now())
        .unwrap();
    assert_eq!(p.prompts_in_session, Some(1));
    let p = b
        .record(&Event::new(EventType::UserPrompt, "s1"), f.now())
        .unwrap();
    assert_eq!(p.prompts_in_session, Some(2));
    let mut active = b.active_sessions().unwrap();
    active.sort();
    assert_eq!(active, vec![Arc::from("s1")]);
    for _ in 0..3 {
        b.record(&Event::new(EventType::Error, "s1"), f.now())
            .unwrap();
    }
    f.clock.advance(Duration::from_secs(30));
    let end = b
        .record(&Event::new(EventType::SessionEnd, "s1"), f.now())
        .unwrap();
    let s = end.session_end.expect("summary");
    assert_eq!(
        (s.duration, s.tool_runs, s.prompts, s.errors),
        (Duration::from_secs(120), 2, 2, 3)
    );
    // Gone: a second end says nothing, and the session is no longer active.
    let again = b
        .record(&Event::new(EventType::SessionEnd, "s1"), f.now())
        .unwrap();
    assert_eq!(again.session_end, None);
    assert!(b.active_sessions().unwrap().is_empty());
    // An unknown event type counts toward throughput only.
    let o = b
        .record(&Event::new(EventType::Other, "s9"), f.now())
        .unwrap();
    assert!(o.events_per_second > 0.0);
    assert!(b.active_sessions().unwrap().is_empty());
}

fn events_per_second_over_sixty_seconds(f: &Fixture) {
    let b = f.handle();
    let mut o = Observation::default();
    for _ in 0..30 {
        o = b.record(&tool("s1", "bash"), f.now()).unwrap();
    }
    assert_eq!(o.events_per_second, 30.0 / 60.0);
    f.clock.advance(Duration::from_secs(59));
    o = b.record(&tool("s1", "bash"), f.now()).unwrap();
    assert_eq!(o.events_per_second, 31.0 / 60.0);
    f.clock.advance(Duration::from_secs(1));
    o = b.record(&tool("s1", "bash"), f.now()).unwrap();
    assert_eq!(o.events_per_second, 2.0 / 60.0);
    f.clock.advance(Duration::from_secs(600));
    o = b
        .record(&Event::new(EventType::Other, "x"), f.now())
        .unwrap();
    assert_eq!(o.events_per_second, 1.0 / 60.0);
}

fn batches_match_single_records_and_are_all_or_none(f: &Fixture) {
    let b = f.handle();
    // Warm up: a fresh server must first be sent the script (NOSCRIPT, then EVAL).
    b.record_batch(&[], f.now(), &mut Vec::new()).unwrap();
    b.record(&Event::new(EventType::Other, "warm-up"), f.now())
        .unwrap();
    let before = b.op_counts();
    let events = vec![
        tool("s1", "bash").with_duration_ms(5.0).with_success(true),
        edit("s1", true),
        Event::new(EventType::UserPrompt, "s1"),
        tool("s2", "grep").with_duration_ms(5.0).with_success(false),
        edit("s2", false),
        Event::new(EventType::SessionEnd, "s2"),
    ];
    let mut out = Vec::new();
    b.record_batch(&events, f.now(), &mut out).unwrap();
    assert_eq!(out.len(), events.len());
    assert_eq!(out[3].latency.map(|l| (l.count, l.avg)), Some((2, 5.0)));
    assert_eq!(out[4].acceptance_rate, Some(50.0));
    assert_eq!(out[5].session_end.map(|s| s.tool_runs), Some(1));
    assert_eq!(out[5].events_per_second, 7.0 / 60.0);
    let counts = b.op_counts();
    assert_eq!(
        (
            counts.records - before.records,
            counts.record_round_trips - before.record_round_trips
        ),
        (6, 1)
    );
}

fn capacity_rejects_the_whole_batch(f: &Fixture) {
    let b = f.handle();
    b.record(&tool("s1", "bash"), f.now()).unwrap();
    let batch = [tool("s2", "bash"), tool("s3", "bash")];
    let mut out = Vec::new();
    let err = b.record_batch(&batch, f.now(), &mut out).unwrap_err();
    assert!(
        matches!(
            err,
            BackendError::CapacityExceeded {
                what: "sessions",
                limit: 2
            }
        ),
        "{err:?}"
    );
    assert!(out.is_empty());
    assert_eq!(b.composite_inputs(Scope::Global).unwrap().tool_runs, 1);
    let err = b.record(&tool("s1", "third-tool"), f.now()).unwrap_err();
    assert!(
        matches!(
            err,
            BackendError::CapacityExceeded {
                what: "tool names",
                ..
            }
        ),
        "{err:?}"
    );
    b.record(&tool("s2", "bash"), f.now()).unwrap();
    assert_eq!(b.composite_inputs(Scope::Global).unwrap().tool_runs, 2);
}

fn idle_sessions_expire(f: &Fixture, ttl: Duration) {
    let b = f.handle();
    b.record(&Event::new(EventType::UserPrompt, "idle"), f.now())
        .unwrap();
    b.record(&tool("idle", "bash").with_success(true), f.now())
        .unwrap();
    assert_eq!(b.active_sessions().unwrap().len(), 1);
    f.expire_idle(ttl);
    assert!(b.active_sessions().unwrap().is_empty());
    assert_eq!(
        b.composite_inputs(Scope::Session("idle"))
            .unwrap()
            .tool_runs,
        0
    );
    let end = b
        .record(&Event::new(EventType::SessionEnd, "idle"), f.now())
        .unwrap();
    assert_eq!(end.session_end, None);
    // Global counters outlive sessions.
    assert_eq!(b.composite_inputs(Scope::Global).unwrap().tool_runs, 1);
    let p = b
        .record(&Event::new(EventType::UserPrompt, "idle"), f.now())
        .unwrap();
    assert_eq!(p.prompts_in_session, Some(1));
}

/// G1 and G4 at the backend: one holder; nobody starts within `min_interval`.
fn g1_g4_lock_and_marker(f: &Fixture) {
    let (a, b) = (f.handle(), f.handle());
    let (ta, tb) = (LockToken::from_u64(1), LockToken::from_u64(2));
    let lease = Duration::from_millis(100);
    let min = Duration::from_millis(200);
    assert_eq!(a.last_computed(Scope::Global).unwrap(), None);
    let gen1 = acquired(a.try_lock(Scope::Global, ta, lease, min).unwrap());
    match b.try_lock(Scope::Global, tb, lease, min).unwrap() {
        LockOutcome::Held {
            since_last: Some(d),
        } => assert!(d <= f.slack(), "{d:?}"),
        other => panic!("expected Held, got {other:?}"),
    }
    assert!(a.unlock(Scope::Global, ta).unwrap());
    f.pass(Duration::from_millis(50));
    match b.try_lock(Scope::Global, tb, lease, min).unwrap() {
        LockOutcome::TooSoon { since_last } => {
            assert!(
                close(since_last, Duration::from_millis(50), f.slack()),
                "{since_last:?}"
            )
        }
        other => panic!("expected TooSoon, got {other:?}"),
    }
    let since = b.last_computed(Scope::Global).unwrap().expect("marker");
    assert!(
        close(since, Duration::from_millis(50), f.slack()),
        "{since:?}"
    );
    f.pass(Duration::from_millis(160));
    let gen2 = acquired(b.try_lock(Scope::Global, tb, lease, min).unwrap());
    // Fencing: a later acquisition of the scope has a larger generation.
    assert!(gen2 > gen1, "{gen1} then {gen2}");
    // Scopes are independent.
    let gen3 = acquired(a.try_lock(Scope::Session("s1"), ta, lease, min).unwrap());
    assert!(gen3 > 0);
    assert!(matches!(
        b.try_lock(Scope::Session("s1"), tb, lease, min).unwrap(),
        LockOutcome::Held { .. }
    ));
    assert!(a.unlock(Scope::Session("s1"), ta).unwrap());
    assert!(b.unlock(Scope::Global, tb).unwrap());
    let c = a.op_counts();
    assert!(c.lock_attempts >= 2 && c.locks_acquired >= 2 && c.unlocks >= 1);
}

/// G5: only the owner releases, and only while its lease runs.
fn g5_safe_release(f: &Fixture) {
    let (a, b) = (f.handle(), f.handle());
    let (ta, tb) = (LockToken::from_u64(10), LockToken::from_u64(20));
    let lease = Duration::from_millis(100);
    let min = Duration::from_millis(100);
    let gen4 = acquired(a.try_lock(Scope::Global, ta, lease, min).unwrap());
    assert!(
        !b.unlock(Scope::Global, tb).unwrap(),
        "a stranger released the lock"
    );
    assert!(matches!(
        b.try_lock(Scope::Global, tb, lease, min).unwrap(),
        LockOutcome::Held { .. }
    ));
    // a's lease runs out; b takes the lock; a's late release must not free it.
    f.pass(Duration::from_millis(150));
    let gen5 = acquired(b.try_lock(Scope::Global, tb, lease, min).unwrap());
    assert!(gen5 > gen4, "the next holder's generation {gen5} <= {gen4}");
    assert!(
        !a.unlock(Scope::Global, ta).unwrap(),
        "an expired holder released"
    );
    assert!(matches!(
        a.try_lock(Scope::Global, ta, lease, min).unwrap(),
        LockOutcome::Held { .. }
    ));
    assert!(b.unlock(Scope::Global, tb).unwrap());
}

/// G1 and G2 through `HybridLock`: three workers, events every 20 ms.
fn g1_g2_hybrid_lock_workers(f: &Fixture) {
    let config = HybridLockConfig::default()
        .with_max_staleness(Duration::from_millis(300))
        .with_min_interval(Duration::from_millis(150))
        .with_every_events(5)
        .with_lease(Duration::from_millis(100));
    let mut workers: Vec<_> = (0..3)
        .map(|_| {
            MetricsCalculator::builder()
                .clock(f.clock.clone())
                .state(f.handle())
                .scheduler(HybridLock::new(config).unwrap())
                .build()
                .unwrap()
        })
        .collect();
    let step = Duration::from_millis(20);
    let mut starts = Vec::new();
    let mut real_starts = Vec::new();
    let t0 = std::time::Instant::now();
    for i in 0..60u64 {
        let w = &mut workers[(i % 3) as usize];
        let before = w.stats().composites;
        let called = t0.elapsed();
        w.process(&tool("s1", "bash").with_success(true)).unwrap();
        if w.stats().composites > before {
            starts.push(f.now());
            real_starts.push(called);
        }
        f.pass(step);
    }
    // G1 on the backend's time: the manual clock for MemoryState; for Redis
    // the server's real clock, which real time between the calls bounds.
    let backend_starts = if f.is_redis() { &real_starts } else { &starts };
    for pair in backend_starts.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap + f.slack() >= Duration::from_millis(150),
            "{backend_starts:?}"
        );
    }
    // G3: deciding "not due" costs no backend call; 60 events make few.
    let coordination: Vec<u64> = workers
        .iter()
        .map(|w| w.state().op_counts().coordination_ops())
        .collect();
    // MemoryState handles share one counter; RedisState counts per connection.
    let total = if f.is_redis() {
        coordination.iter().sum()
    } else {
        coordination[0]
    };
    let composites: u64 = workers.iter().map(|w| w.stats().composites).sum();
    assert!(
        total <= 2 * composites + 12,
        "{total} coordination ops for 60 events"
    );
    // G2 on the calculators' clock: no event waits longer than
    // max_staleness plus one event gap.
    assert!(!starts.is_empty());
    let mut prev = Duration::ZERO;
    for s in &starts {
        if prev > Duration::ZERO {
            assert!(
                *s - prev <= Duration::from_millis(300) + step + f.slack(),
                "{starts:?}"
            );
        }
        prev = *s;
    }
}

/// Issue 8, point 3: an event id is applied at most once; a duplicate
/// changes nothing, also inside one batch.
fn event_ids_apply_at_most_once(f: &Fixture) {
    let b = f.handle();
    let e = tool("s1", "bash")
        .with_duration_ms(4.0)
        .with_success(true)
        .with_event_id("id-1");
    let first = b.record(&e, f.now()).unwrap();
    assert!(!first.duplicate);
    assert_eq!(first.events_per_second, 1.0 / 60.0);
    let inputs = b.composite_inputs(Scope::Global).unwrap();
    let records = b.op_counts().records;
    let again = b.record(&e, f.now()).unwrap();
    assert_eq!(
        again,
        Observation {
            duplicate: true,
            ..Observation::default()
        }
    );
    assert_eq!(b.composite_inputs(Scope::Global).unwrap(), inputs);
    assert_eq!(b.op_counts().records, records);
    // In a batch: the old id, a new one twice, and an event without an id.
    let batch = [
        e.clone(),
        tool("s2", "grep").with_success(false).with_event_id("id-2"),
        tool("s2", "grep").with_success(false).with_event_id("id-2"),
        tool("s2", "grep").with_success(false),
    ];
    let mut out = Vec::new();
    b.record_batch(&batch, f.now(), &mut out).unwrap();
    let dups: Vec<bool> = out.iter().map(|o| o.duplicate).collect();
    assert_eq!(dups, [true, false, true, false]);
    assert_eq!(out[1].tool_frequency, Some(50.0));
    assert_eq!(out[3].tool_frequency, Some(100.0 * 2.0 / 3.0));
    assert_eq!(out[3].events_per_second, 3.0 / 60.0);
    let g = b.composite_inputs(Scope::Global).unwrap();
    assert_eq!((g.tool_runs, g.success_rate), (3, Some(100.0 / 3.0)));
    // A batch of duplicates only changes nothing either.
    let records = b.op_counts().records;
    out.clear();
    b.record_batch(&batch[..3], f.now(), &mut out).unwrap();
    assert!(out.iter().all(|o| o.duplicate));
    assert_eq!(b.composite_inputs(Scope::Global).unwrap(), g);
    assert_eq!(b.op_counts().records, records);
    // Through the calculator: no metrics, a typed outcome, counted.
    let mut calc = MetricsCalculator::builder()
        .clock(f.clock.clone())
        .state(f.handle())
        .build()
        .unwrap();
    let mut metrics = Vec::new();
    assert_eq!(
        calc.process_into(&e, &mut metrics).unwrap(),
        composite_metrics::Delivery::Duplicate
    );
    assert!(metrics.is_empty());
    assert!(calc.process(&e).unwrap().is_empty());
    let applied = calc.process_batch(&batch).unwrap();
    assert_eq!(
        applied
            .iter()
            .filter(|m| m.name == "tool_frequency")
            .count(),
        1
    );
    let s = calc.stats();
    assert_eq!((s.events, s.duplicates), (1, 5));
}

/// After the dedup horizon an id counts again.
fn event_ids_expire_after_the_horizon(f: &Fixture, horizon: Duration) {
    let b = f.handle();
    let e = Event::new(EventType::UserPrompt, "s1").with_event_id("once");
    assert_eq!(b.record(&e, f.now()).unwrap().prompts_in_session, Some(1));
    assert!(b.record(&e, f.now()).unwrap().duplicate);
    f.pass(horizon + horizon / 2);
    let later = b.record(&e, f.now()).unwrap();
    assert!(!later.duplicate);
    assert_eq!(later.prompts_in_session, Some(2));
}

/// Issue 8, point 10: the same answers at the edges. An empty tool name is
/// an absent one (the run counts, for no tool, and uses no tool-name slot);
/// an empty session id and a duration above `MAX_DURATION_MS` are rejected
/// with a typed error naming the field, changing nothing; the largest
/// durations keep averages finite. (Built with `max_tools` 1.)
fn edges_give_the_same_answers(f: &Fixture) {
    let mut calc = MetricsCalculator::builder()
        .clock(f.clock.clone())
        .state(f.handle())
        .build()
        .unwrap();
    let b = f.handle();
    let metrics = calc.process(&tool("s1", "").with_success(true)).unwrap();
    let names: Vec<&str> = metrics.iter().map(|m| m.name).collect();
    assert!(names.contains(&"overall_success_rate"), "{names:?}");
    assert!(metrics.iter().all(|m| m.tool.is_none()), "{metrics:?}");
    let o = b.record(&tool("s1", ""), f.now()).unwrap();
    assert_eq!((o.tool_frequency, o.tool_success_rate), (None, None));
    // The one tool-name slot is still free.
    let o = b.record(&tool("s1", "bash"), f.now()).unwrap();
    assert_eq!(o.tool_frequency, Some(100.0 / 3.0));
    assert!(matches!(
        b.record(&tool("s1", "grep"), f.now()),
        Err(BackendError::CapacityExceeded { .. })
    ));
    assert_eq!(b.composite_inputs(Scope::Global).unwrap().tool_runs, 3);

    let records = b.op_counts().records;
    let line = r#"{"event_type":"tool_use","session_id":"","timestamp":"2024-05-01T12:00:00Z"}"#;
    assert_eq!(
        calc.process_json(line).unwrap_err().to_string(),
        "rejected event: field `session_id` must not be empty"
    );
    let err = calc.process(&tool("", "bash")).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Event(EventError::Empty {
                field: "session_id"
            })
        ),
        "{err:?}"
    );
    let err = calc
        .process(&tool("s1", "bash").with_duration_ms(1.7e308))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Event(EventError::TooLarge {
                field: "duration_ms",
                ..
            })
        ),
        "{err:?}"
    );
    let err = calc
        .process_batch(&[
            tool("s1", "bash"),
            tool("s1", "bash").with_duration_ms(MAX_DURATION_MS * 2.0),
        ])
        .unwrap_err();
    assert!(matches!(err, Error::BatchEvent { index: 1, .. }), "{err:?}");
    assert_eq!(b.op_counts().records, records);
    assert_eq!(b.composite_inputs(Scope::Global).unwrap().tool_runs, 3);

    let mut last = Observation::default();
    for _ in 0..100 {
        last = b
            .record(
                &tool("s1", "bash").with_duration_ms(MAX_DURATION_MS),
                f.now(),
            )
            .unwrap();
    }
    let l = last.latency.expect("latency");
    assert_eq!((l.avg, l.p99), (MAX_DURATION_MS, MAX_DURATION_MS));
}

/// Paged listing: every live session once or more, in pages of about the
/// limit; inputs of many sessions equal the one-by-one reads.
fn paged_listing_and_session_inputs(f: &Fixture) {
    let b = f.handle();
    let ids: Vec<String> = (0..2_500).map(|i| format!("p{i}")).collect();
    let mut out = Vec::new();
    for chunk in ids.chunks(500) {
        let events: Vec<Event> = chunk
            .iter()
            .enumerate()
            .map(|(i, id)| tool(id, "bash").with_success(i % 3 == 0))
            .collect();
        b.record_batch(&events, f.now(), &mut out).unwrap();
    }
    b.record(&edit("p1", true), f.now()).unwrap();
    let (mut cursor, mut listed, mut pages) = (None, Vec::new(), 0);
    loop {
        let page = b.active_sessions_page(cursor, 100).unwrap();
        pages += 1;
        // ZSCAN's count is a hint: allow a little over.
        assert!(page.sessions.len() <= 200, "{}", page.sessions.len());
        listed.extend(page.sessions);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages < 1_000, "the listing does not end");
    }
    assert!(pages >= 10, "{pages} pages of at most about 100 for 2500");
    let unique: std::collections::HashSet<Arc<str>> = listed.iter().cloned().collect();
    assert_eq!(unique.len(), ids.len());
    assert!(ids.iter().all(|id| unique.contains(id.as_str())));
    if !f.is_redis() {
        // The default implementation serves a snapshot: each exactly once.
        assert_eq!(listed.len(), ids.len());
    }
    let asked: Vec<Arc<str>> = ["p0", "p1", "p2", "nobody"]
        .iter()
        .map(|s| Arc::from(*s))
        .collect();
    let mut inputs = Vec::new();
    b.session_inputs(&asked, &mut inputs).unwrap();
    let one_by_one: Vec<_> = asked
        .iter()
        .map(|id| b.composite_inputs(Scope::Session(id)).unwrap())
        .collect();
    assert_eq!(inputs, one_by_one);
    assert_eq!(inputs[0].success_rate, Some(100.0));
    assert_eq!(inputs[1].acceptance_rate, Some(100.0));
    assert_eq!(inputs[3], Default::default());
    // A cursor the backend did not make is an error, not a silent restart.
    assert!(b
        .active_sessions_page(Some(SessionCursor::new("elsewhere")), 10)
        .is_err());
}

/// Issue 10: "lock if dirty" refuses as `Clean` when the scope's last
/// composite read saw every event recorded in it, and locks when an event
/// came after that read; `try_lock` itself ignores dirtiness.
fn lock_if_dirty_then_clean(f: &Fixture) {
    let b = f.handle();
    let (lease, min) = (Duration::from_millis(50), Duration::from_millis(1));
    let t = LockToken::from_u64(0x00c0_ffee);
    for scope in [Scope::Global, Scope::Session("s1")] {
        b.record(&tool("s1", "bash").with_success(true), f.now())
            .unwrap();
        let got = b.try_lock_if_dirty(scope, t, lease, min).unwrap();
        assert!(got.is_acquired(), "{scope:?}: {got:?}");
        b.composite_inputs(scope).unwrap();
        assert!(b.unlock(scope, t).unwrap());
        f.pass(Duration::from_millis(5));
        let got = b.try_lock_if_dirty(scope, t, lease, min).unwrap();
        assert!(
            matches!(
                got,
                LockOutcome::Clean {
                    since_last: Some(_)
                }
            ),
            "{scope:?}: {got:?}"
        );
        // Plain try_lock does not look at dirtiness.
        let got = b.try_lock(scope, t, lease, min).unwrap();
        assert!(got.is_acquired(), "{scope:?}: {got:?}");
        assert!(b.unlock(scope, t).unwrap());
        f.pass(Duration::from_millis(5));
        b.record(&edit("s1", true), f.now()).unwrap();
        let got = b.try_lock_if_dirty(scope, t, lease, min).unwrap();
        assert!(got.is_acquired(), "{scope:?} after a new event: {got:?}");
        b.composite_inputs(scope).unwrap();
        assert!(b.unlock(scope, t).unwrap());
        f.pass(Duration::from_millis(5));
    }
    // An event of another session does not make s1 dirty; it makes the global scope dirty.
    b.record(&tool("s2", "bash"), f.now()).unwrap();
    let got = b
        .try_lock_if_dirty(Scope::Session("s1"), t, lease, min)
        .unwrap();
    assert!(matches!(got, LockOutcome::Clean { .. }), "{got:?}");
    let got = b.try_lock_if_dirty(Scope::Global, t, lease, min).unwrap();
    assert!(got.is_acquired(), "{got:?}");
}

/// Issue 10: Coalesce workers sharing the backend keep C1 (ceiling, on the
/// backend's time), C2 (every event in a calculation within max_staleness +
/// tick, with no later event) and C3 (no calculation without a new event).
fn coalesce_c1_c2_c3_workers(f: &Fixture) {
    // Events on the first 40 steps only (not every fourth), then quiet: the
    // last ones need the timer.
    let plan: Vec<Plan> = (0..40u8)
        .map(|i| match i % 4 {
            3 => Plan::Quiet,
            _ => Plan::Event(usize::from(i % 3)),
        })
        .collect();
    coalesce_plan(f, &plan);
}

/// One 20 ms step of a Coalesce scenario.
#[derive(Debug, Clone, Copy)]
enum Plan {
    Quiet,
    /// Worker `w` (mod 3) records an event.
    Event(usize),
    /// Worker `w` stops: no events, no timer (worker 0 never stops).
    Stop(usize),
    /// Worker `w` resumes.
    Resume(usize),
    /// Worker `w` dies for good (worker 0 never dies).
    Kill(usize),
}

/// Runs `plan` (then 20 quiet steps) with three Coalesce workers and checks
/// C1, C2 (for every event, whoever recorded it and whatever became of that
/// worker) and C3.
fn coalesce_plan(f: &Fixture, plan: &[Plan]) {
    let config = CoalesceConfig::default()
        .with_max_staleness(Duration::from_millis(300))
        .with_min_interval(Duration::from_millis(150))
        .with_every_events(5)
        .with_lease(Duration::from_millis(100))
        .with_tick(Duration::from_millis(20));
    let mut workers: Vec<Option<MetricsCalculator<Coalesce>>> = (0..3)
        .map(|_| {
            Some(
                MetricsCalculator::builder()
                    .clock(f.clock.clone())
                    .state(f.handle())
                    .scheduler(Coalesce::manual(config).unwrap())
                    .build()
                    .unwrap(),
            )
        })
        .collect();
    let mut stopped = [false; 3];
    let step = Duration::from_millis(20);
    // Per calculation: when on the calculators' clock, when in real time
    // (which bounds the Redis server's clock), and how many events had been
    // recorded before it.
    let mut calcs: Vec<(Duration, std::time::Duration, usize)> = Vec::new();
    let mut events: Vec<Duration> = Vec::new();
    let mut composites_of_dead = 0;
    let t0 = std::time::Instant::now();
    let quiet = vec![Plan::Quiet; 20];
    for p in plan.iter().chain(&quiet) {
        match *p {
            Plan::Quiet => {}
            Plan::Event(w) => {
                let w = w % 3;
                if let (Some(c), false) = (&mut workers[w], stopped[w]) {
                    let before = c.stats().composites;
                    let called = t0.elapsed();
                    c.process(&tool("s1", "bash").with_success(true)).unwrap();
                    events.push(f.now());
                    if c.stats().composites > before {
                        calcs.push((f.now(), called, events.len()));
                    }
                }
            }
            Plan::Stop(w) if w % 3 != 0 => stopped[w % 3] = true,
            Plan::Resume(w) => stopped[w % 3] = false,
            Plan::Kill(w) if w % 3 != 0 => {
                if let Some(c) = workers[w % 3].take() {
                    composites_of_dead += c.stats().composites;
                }
            }
            _ => {}
        }
        f.pass(step);
        for (c, stop) in workers.iter_mut().zip(stopped) {
            if let (Some(c), false) = (c, stop) {
                let before = c.stats().composites;
                let called = t0.elapsed();
                c.scheduler_mut().poll();
                if c.stats().composites > before {
                    calcs.push((f.now(), called, events.len()));
                }
            }
        }
    }
    for pair in calcs.windows(2) {
        // C1 on the backend's time (real time bounds the server's clock).
        let gap = if f.is_redis() {
            pair[1].1 - pair[0].1
        } else {
            pair[1].0 - pair[0].0
        };
        assert!(
            gap + f.slack() >= Duration::from_millis(150),
            "C1: {calcs:?}"
        );
    }
    // C2 on the calculators' clock: each event is before a calculation that
    // starts within max_staleness + tick of it.
    let bound = config.max_staleness() + config.tick();
    for &e in &events {
        assert!(
            calcs.iter().any(|&(at, _, _)| at >= e && at <= e + bound),
            "C2: event at {e:?} not reflected by {:?}: {calcs:?}",
            e + bound
        );
    }
    // C3: no calculation without an event the previous one did not see.
    let total: u64 = workers
        .iter()
        .flatten()
        .map(|w| w.stats().composites)
        .sum::<u64>()
        + composites_of_dead;
    assert_eq!(total as usize, calcs.len());
    for pair in calcs.windows(2) {
        assert!(pair[1].2 > pair[0].2, "C3: idle calculation: {calcs:?}");
    }
}

fn plan_step() -> impl Strategy<Value = Plan> {
    prop_oneof![
        3 => Just(Plan::Quiet),
        8 => (0usize..3).prop_map(Plan::Event),
        1 => (0usize..3).prop_map(Plan::Stop),
        1 => (0usize..3).prop_map(Plan::Resume),
        1 => (0usize..3).prop_map(Plan::Kill),
    ]
}

/// C1-C3 with workers that record, stop, resume and die at random, on
/// `MemoryState` (virtual time) and on Redis (real time, so fewer cases).
#[test]
fn coalesce_workers_at_random_keep_c1_c2_c3() {
    let config = ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(plan in prop::collection::vec(plan_step(), 1..40))| {
        coalesce_plan(&Fixture::memory(LIMITS), &plan);
    });
    let server = RedisServer::start();
    let config = ProptestConfig {
        cases: 4,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(plan in prop::collection::vec(plan_step(), 1..30))| {
        coalesce_plan(&Fixture::redis_on(&server, LIMITS), &plan);
    });
}

// ---------------------------------------------------------------- instantiation

macro_rules! both {
    ($($name:ident => $body:expr;)*) => {
        mod memory {
            use super::*;
            $( #[test] fn $name() { let run: fn(&Fixture) = $body; run(&Fixture::memory(LIMITS)); } )*
        }
        mod redis {
            use super::*;
            $( #[test] fn $name() { let run: fn(&Fixture) = $body; run(&Fixture::redis(LIMITS)); } )*
        }
        mod cluster {
            use super::*;
            $( #[test] fn $name() { let run: fn(&Fixture) = $body; run(&Fixture::cluster(LIMITS)); } )*
        }
    };
}

const LIMITS: Limits = Limits {
    session_ttl: Duration::from_secs(24 * 3600),
    max_sessions: 1_000_000,
    max_tools: 10_000,
    dedup_horizon: Duration::from_secs(24 * 3600),
};

both! {
    latency_window => latency_window_keeps_duplicates;
    decisions => decisions_alternating_give_exactly_half;
    success_and_frequency => success_rates_and_frequency;
    sessions => sessions_summarise_then_forget;
    events_per_second => events_per_second_over_sixty_seconds;
    batches => batches_match_single_records_and_are_all_or_none;
    g1_g4 => g1_g4_lock_and_marker;
    g5 => g5_safe_release;
    g1_g2_workers => g1_g2_hybrid_lock_workers;
    event_ids => event_ids_apply_at_most_once;
    paged_listing => paged_listing_and_session_inputs;
    lock_if_dirty => lock_if_dirty_then_clean;
    coalesce_workers => coalesce_c1_c2_c3_workers;
}

const SMALL: Limits = Limits {
    session_ttl: Duration::from_millis(300),
    max_sessions: 2,
    max_tools: 1,
    dedup_horizon: Duration::from_secs(24 * 3600),
};

#[test]
fn memory_capacity() {
    capacity_rejects_the_whole_batch(&Fixture::memory(SMALL));
}

#[test]
fn redis_capacity() {
    capacity_rejects_the_whole_batch(&Fixture::redis(SMALL));
}

#[test]
fn cluster_capacity() {
    capacity_rejects_the_whole_batch(&Fixture::cluster(SMALL));
}

/// A short dedup horizon; sessions live long.
const SHORT_HORIZON: Limits = Limits {
    dedup_horizon: Duration::from_millis(300),
    ..LIMITS
};

#[test]
fn memory_event_id_horizon() {
    let f = Fixture::memory(SHORT_HORIZON);
    event_ids_expire_after_the_horizon(&f, SHORT_HORIZON.dedup_horizon);
}

#[test]
fn redis_event_id_horizon() {
    let f = Fixture::redis(SHORT_HORIZON);
    event_ids_expire_after_the_horizon(&f, SHORT_HORIZON.dedup_horizon);
}

#[test]
fn cluster_event_id_horizon() {
    let f = Fixture::cluster(SHORT_HORIZON);
    event_ids_expire_after_the_horizon(&f, SHORT_HORIZON.dedup_horizon);
}

const ONE_TOOL: Limits = Limits {
    max_tools: 1,
    ..LIMITS
};

#[test]
fn memory_edges() {
    edges_give_the_same_answers(&Fixture::memory(ONE_TOOL));
}

#[test]
fn redis_edges() {
    edges_give_the_same_answers(&Fixture::redis(ONE_TOOL));
}

#[test]
fn cluster_edges() {
    edges_give_the_same_answers(&Fixture::cluster(ONE_TOOL));
}

#[test]
fn memory_ttl_expiry() {
    let limits = Limits {
        max_sessions: 10,
        max_tools: 10,
        ..SMALL
    };
    idle_sessions_expire(&Fixture::memory(limits), limits.session_ttl);
}

#[test]
fn redis_ttl_expiry() {
    let limits = Limits {
        max_sessions: 10,
        max_tools: 10,
        ..SMALL
    };
    idle_sessions_expire(&Fixture::redis(limits), limits.session_ttl);
}

#[test]
fn cluster_ttl_expiry() {
    let limits = Limits {
        max_sessions: 10,
        max_tools: 10,
        ..SMALL
    };
    idle_sessions_expire(&Fixture::cluster(limits), limits.session_ttl);
}

// ---------------------------------------------------------------- same values

#[derive(Debug, Clone)]
enum Step {
    One(Event),
    Batch(Vec<Event>),
    /// Enough events to push values out of the 100-value windows.
    Flood(Vec<Event>),
    Advance(u64),
    /// The wall clock steps back.
    ClockBack(u64),
    Composite(Option<u8>),
}

fn event() -> impl Strategy<Value = Event> {
    let kind = prop::sample::select(vec![
        EventType::ToolUse,
        EventType::McpExecution,
        EventType::FileEdit,
        EventType::CodeChange,
        EventType::UserPrompt,
        EventType::SessionStart,
        EventType::SessionEnd,
        EventType::Error,
        EventType::Other,
    ]);
    let duration = prop_oneof![
        Just(None),
        Just(Some(7.0)),
        Just(Some(0.0)),
        Just(Some(MAX_DURATION_MS)),
        (0u32..2_000_000).prop_map(|x| Some(f64::from(x) / 1000.0)),
        Just(Some(0.1 + 0.2)),
    ];
    // Tool names include the empty one (treated as absent); event ids come
    // from a small pool, so that duplicates happen across steps and batches.
    let tool_name = prop::option::of(prop::sample::select(vec!["tool0", "tool1", "tool2", ""]));
    (
        (kind, 0u8..3, tool_name, duration),
        prop::option::of(any::<bool>()),
        prop::option::of(any::<bool>()),
        prop::option::of(0u64..5000),
        prop::option::of(0u8..12),
    )
        .prop_map(|((kind, s, t, d), success, accepted, len, id)| {
            let mut e = Event::new(kind, format!("s{s}"));
            e.tool_name = t.map(Arc::from);
            e.event_id = id.map(|i| Arc::from(format!("id{i}")));
            e.duration_ms = d;
            e.payload.success = success;
            e.payload.accepted = accepted;
            e.payload.prompt_length = len;
            e
        })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => event().prop_map(Step::One),
        2 => prop::collection::vec(event(), 0..12).prop_map(Step::Batch),
        1 => (prop::collection::vec(event(), 1..4), 40usize..120).prop_map(|(es, n)| {
            Step::Flood(es.iter().cycle().take(n).cloned().collect())
        }),
        2 => (0u64..90_000).prop_map(Step::Advance),
        1 => (0u64..90_000).prop_map(Step::ClockBack),
        1 => prop::option::of(0u8..3).prop_map(Step::Composite),
    ]
}

#[test]
fn memory_and_redis_give_the_same_metrics() {
    let server = RedisServer::start();
    let config = ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(steps in prop::collection::vec(step(), 1..80))| {
        let mem = Fixture::memory(Limits::default());
        let red = Fixture::redis_on(&server, Limits::default());
        let clock = mem.clock.clone();
        let build = |state: Arc<dyn StateBackend>| {
            MetricsCalculator::builder().clock(clock.clone()).state(state).build().unwrap()
        };
        let (mut m, mut r) = (build(mem.handle()), build(red.handle()));
        for (i, s) in steps.iter().enumerate() {
            match s {
                Step::One(e) => prop_assert_eq!(m.process(e).unwrap(), r.process(e).unwrap(), "step {}", i),
                Step::Batch(es) => prop_assert_eq!(m.process_batch(es).unwrap(), r.process_batch(es).unwrap(), "step {}", i),
                Step::Flood(es) => {
                    for e in &es[..es.len() / 2] {
                        prop_assert_eq!(m.process(e).unwrap(), r.process(e).unwrap(), "step {}", i);
                    }
                    let rest = &es[es.len() / 2..];
                    prop_assert_eq!(m.process_batch(rest).unwrap(), r.process_batch(rest).unwrap(), "step {}", i);
                }
                Step::Advance(ms) => clock.advance(Duration::from_millis(*ms)),
                Step::ClockBack(ms) => clock.set(clock.now() - Duration::from_millis(*ms)),
                Step::Composite(session) => {
                    let id = session.map(|s| Arc::<str>::from(format!("s{s}")));
                    prop_assert_eq!(m.compute_now(id.as_ref()).unwrap(), r.compute_now(id.as_ref()).unwrap(), "step {}", i);
                }
            }
        }
    });
}

/// Issue 21, point 4: the expiry rule both backends keep. A session idle for
/// less than the TTL minus one second is live (listed, and its next event
/// continues it); one idle for the TTL or longer is gone (not listed, and its
/// next event starts it afresh).
fn sessions_expire_within_a_second_before_their_ttl(f: &Fixture, ttl: Duration) {
    let b = f.handle();
    let prompt = || Event::new(EventType::UserPrompt, "ttl");
    assert_eq!(
        b.record(&prompt(), f.now()).unwrap().prompts_in_session,
        Some(1)
    );
    // Idle for less than TTL - 1 s (a margin for the test's own round trips).
    f.pass(ttl - Duration::from_millis(1_300));
    assert_eq!(b.active_sessions().unwrap(), vec![Arc::from("ttl")]);
    assert_eq!(
        b.record(&prompt(), f.now()).unwrap().prompts_in_session,
        Some(2)
    );
    // Idle for the TTL and a margin: gone.
    f.pass(ttl + f.slack());
    if let Kind::Memory(m) = &f.kind {
        // Listing by the state's clock; no sweep has run.
        assert_eq!(m.footprint().sessions, 1);
    }
    assert!(b.active_sessions().unwrap().is_empty());
    assert_eq!(
        b.record(&prompt(), f.now()).unwrap().prompts_in_session,
        Some(1)
    );
}

const TTL_RULE: Limits = Limits {
    session_ttl: Duration::from_millis(2_500),
    max_sessions: 1_000,
    max_tools: 100,
    dedup_horizon: Duration::from_secs(24 * 3600),
};

#[test]
fn memory_sessions_expire_within_a_second_before_their_ttl() {
    sessions_expire_within_a_second_before_their_ttl(
        &Fixture::memory(TTL_RULE),
        TTL_RULE.session_ttl,
    );
}

#[test]
fn redis_sessions_expire_within_a_second_before_their_ttl() {
    sessions_expire_within_a_second_before_their_ttl(
        &Fixture::redis(TTL_RULE),
        TTL_RULE.session_ttl,
    );
}
