//! HybridLock's guarantees G1-G5 (DESIGN.md section 3), on `ManualClock`,
//! with proptests over random arrivals, worker counts and parameters.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{tool_event, Call, CountingClock, Recording};
use composite_metrics::clock::{Clock, ManualClock};
use composite_metrics::schedule::{CompositeScheduler, Decision, EventContext, Ticket};
use composite_metrics::state::{LockOutcome, LockToken, Scope, StateBackend};
use composite_metrics::{
    CompositeScope, ConfigError, HybridLock, HybridLockConfig, MetricsCalculator,
};
use proptest::prelude::*;

const MS: Duration = Duration::from_millis(1);

fn config(
    min_interval_ms: u64,
    extra_staleness_ms: u64,
    every: u64,
    lease_pct: u64,
) -> HybridLockConfig {
    let min_interval = MS * min_interval_ms as u32;
    let lease = (min_interval * lease_pct as u32 / 100).max(MS);
    HybridLockConfig::default()
        .with_min_interval(min_interval)
        .with_max_staleness(min_interval + MS * extra_staleness_ms as u32)
        .with_every_events(every)
        .with_lease(lease)
}

struct Run {
    backend: Recording,
    /// (time, worker) of every event, in processing order; event k (0-based)
    /// is the (k+1)-th record the backend saw.
    events: Vec<(Duration, usize)>,
    tokens: Vec<LockToken>,
}

fn run(workers: usize, cfg: HybridLockConfig, arrivals: &[(u64, usize)]) -> Run {
    let clock = ManualClock::default();
    let backend = Recording::new(&clock);
    let mut calcs: Vec<_> = (0..workers)
        .map(|_| {
            MetricsCalculator::builder()
                .clock(clock.clone())
                .state(backend.clone())
                .scheduler(HybridLock::new(cfg).unwrap())
                .build()
                .unwrap()
        })
        .collect();
    let tokens = calcs.iter().map(|c| c.scheduler().token()).collect();
    let mut events = Vec::with_capacity(arrivals.len());
    for &(gap_ms, w) in arrivals {
        clock.advance(MS * gap_ms as u32);
        let w = w % workers;
        calcs[w].process(&tool_event(&format!("s{w}"))).unwrap();
        events.push((clock.now(), w));
    }
    Run {
        backend,
        events,
        tokens,
    }
}

fn arrivals() -> impl Strategy<Value = Vec<(u64, usize)>> {
    let gap = prop_oneof![0u64..20, 0u64..2_000, 0u64..40_000];
    proptest::collection::vec((gap, 0usize..8), 1..300)
}

fn params() -> impl Strategy<Value = (usize, HybridLockConfig)> {
    (
        1usize..=8,
        1u64..=10_000,
        0u64..=20_000,
        1u64..=50,
        1u64..=100,
    )
        .prop_map(|(w, mi, extra, every, lease)| (w, config(mi, extra, every, lease)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// G1: two calculations never start within `min_interval`, across all workers.
    #[test]
    fn g1_calculations_never_closer_than_min_interval((w, cfg) in params(), arr in arrivals()) {
        let run = run(w, cfg, &arr);
        let reads = run.backend.composite_reads();
        for pair in reads.windows(2) {
            prop_assert!(pair[1].0 - pair[0].0 >= cfg.min_interval(),
                "calculations at {:?} and {:?}, min_interval {:?}", pair[0].0, pair[1].0, cfg.min_interval());
        }
        let acquired = run.backend.acquisitions();
        prop_assert_eq!(acquired.len(), reads.len());
    }

    /// G2: while events flow, every event is reflected in a calculation within
    /// `max_staleness` plus the gap to its worker's next event after that.
    #[test]
    fn g2_every_event_reflected_within_staleness_plus_gap((w, cfg) in params(), arr in arrivals()) {
        let run = run(w, cfg, &arr);
        let reads = run.backend.composite_reads();
        for (k, &(t, worker)) in run.events.iter().enumerate() {
            let due = t + cfg.max_staleness();
            let Some(&(bound, _)) = run.events[k..].iter().find(|(u, v)| *v == worker && *u >= due) else {
                continue; // this worker's events stopped: nothing is promised
            };
            let reflected = reads.iter().find(|(_, records)| *records > k as u64);
            prop_assert!(reflected.is_some_and(|(s, _)| *s <= bound),
                "event {k} at {t:?} (worker {worker}) first reflected at {:?}, bound {bound:?}",
                reflected.map(|r| r.0));
        }
    }

    /// G3: a worker asks the backend only when due: after a lock attempt that
    /// tells it a calculation started at `c`, its next attempt is no earlier
    /// than `c + min_interval`. Every other event makes no coordination call.
    #[test]
    fn g3_no_backend_call_until_due((w, cfg) in params(), arr in arrivals()) {
        let run = run(w, cfg, &arr);
        let mut known: HashMap<LockToken, Duration> = HashMap::new();
        for call in run.backend.calls() {
            match call {
                Call::TryLock { at, token, outcome } => {
                    if let Some(c) = known.get(&token) {
                        prop_assert!(at >= *c + cfg.min_interval(),
                            "worker asked at {at:?}, knowing of a calculation at {c:?}");
                    }
                    if let Some(ago) = outcome.since_last() {
                        known.insert(token, at - ago);
                    }
                }
                Call::LastComputed { .. } => prop_assert!(false, "HybridLock never needs a bare marker read"),
                _ => {}
            }
        }
        // Every worker that processed an event asked at least once (it knew of
        // no calculation at its first event).
        for (i, token) in run.tokens.iter().enumerate() {
            if run.events.iter().any(|(_, w)| *w == i) {
                prop_assert!(known.contains_key(token), "worker {i} never asked");
            }
        }
    }
}

/// The scheduler driven directly, so a worker can hold its ticket (keep
/// "computing") while others process events.
struct Worker {
    scheduler: HybridLock,
    session: std::sync::Arc<str>,
    holding: Option<(Duration, Ticket)>,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// G4: at most one worker computes at a time (while its lease runs), and
    /// G5: a worker whose lease ran out releases nothing of the next holder's.
    #[test]
    fn g4_g5_one_holder_and_safe_release(
        (w, cfg) in params(),
        actions in proptest::collection::vec((prop_oneof![0u64..20, 0u64..5_000, 0u64..30_000], 0usize..8, any::<bool>()), 1..300),
    ) {
        let clock = ManualClock::default();
        let backend = Recording::new(&clock);
        let mut workers: Vec<Worker> = (0..w)
            .map(|i| Worker {
                scheduler: HybridLock::new(cfg).unwrap(),
                session: format!("s{i}").into(),
                holding: None,
            })
            .collect();
        for (gap_ms, i, finish) in actions {
            clock.advance(MS * gap_ms as u32);
            let now = clock.now();
            let worker = &mut workers[i % w];
            let ctx = EventContext { now, session: &worker.session, scope: CompositeScope::Global, backend: &backend };
            match (worker.holding.take(), finish) {
                (Some((_, ticket)), true) => {
                    let lease_ran_out = backend.inner.last_computed(Scope::Global).unwrap()
                        .is_some_and(|ago| ago >= cfg.lease());
                    let before = worker.scheduler.stats().leases_lost;
                    worker.scheduler.on_computed(&ctx, ticket).unwrap();
                    if lease_ran_out {
                        prop_assert_eq!(worker.scheduler.stats().leases_lost, before + 1);
                    }
                }
                (Some(held), false) => worker.holding = Some(held), // still computing: busy
                (None, _) => {
                    if let Decision::Compute(ticket) = worker.scheduler.on_event(&ctx).unwrap() {
                        worker.holding = Some((now, ticket));
                    }
                }
            }
            let live: Vec<_> = workers.iter()
                .filter_map(|w| w.holding)
                .filter(|(at, _)| *at + cfg.lease() > now)
                .collect();
            prop_assert!(live.len() <= 1, "{} workers hold a live lease at {now:?}", live.len());
            if let Some((_, ticket)) = live.first() {
                // The live holder still owns the lock: nobody else can take it.
                let probe = backend.inner.try_lock(Scope::Global, LockToken::from_u64(1), cfg.lease(), Duration::ZERO).unwrap();
                prop_assert!(matches!(probe, LockOutcome::Held { .. }), "holder {:?} lost its lock: {probe:?}", ticket.lock());
            }
        }
    }
}

#[test]
fn g3_not_due_event_makes_no_backend_call_and_one_clock_read() {
    let clock = ManualClock::default();
    let backend = Recording::new(&clock);
    let counting = CountingClock::new(&clock);
    let cfg = HybridLockConfig::default().with_every_events(10);
    let mut a = MetricsCalculator::builder()
        .clock(counting.clone())
        .state(backend.clone())
        .scheduler(HybridLock::new(cfg).unwrap())
        .build()
        .unwrap();
    for _ in 0..10 {
        a.process(&tool_event("a")).unwrap();
    }
    assert_eq!(a.stats().composites, 1, "only the first event computes");
    let calls = backend.coordination();
    let reads = counting.reads();
    for _ in 0..1_000 {
        clock.advance(Duration::from_millis(10)); // 10 s in all: below min_interval
        a.process(&tool_event("a")).unwrap();
    }
    assert_eq!(
        backend.coordination(),
        calls,
        "not-due events made backend calls"
    );
    assert_eq!(
        counting.reads() - reads,
        1_000,
        "one clock read per event, by the calculator"
    );
    assert_eq!(a.stats().composites, 1);
}

#[test]
fn g3_a_refused_worker_stays_quiet_until_the_marker_expires() {
    let clock = ManualClock::default();
    let backend = Recording::new(&clock);
    let cfg = HybridLockConfig::default().with_every_events(5);
    let build = || {
        MetricsCalculator::builder()
            .clock(clock.clone())
            .state(backend.clone())
            .scheduler(HybridLock::new(cfg).unwrap())
            .build()
            .unwrap()
    };
    let (mut a, mut b) = (build(), build());
    for _ in 0..5 {
        a.process(&tool_event("a")).unwrap();
    }
    assert_eq!(a.stats().composites, 1);
    clock.advance(Duration::from_secs(1));
    for _ in 0..5 {
        b.process(&tool_event("b")).unwrap(); // 5th: due locally, refused
    }
    let after_refusal = backend.coordination();
    assert_eq!(backend.acquisitions().len(), 1);
    for _ in 0..500 {
        clock.advance(Duration::from_millis(50)); // 25 s more: marker still alive
        b.process(&tool_event("b")).unwrap();
    }
    assert_eq!(backend.coordination(), after_refusal);
    clock.advance(Duration::from_secs(5)); // 31 s after a's calculation
    b.process(&tool_event("b")).unwrap();
    assert_eq!(b.stats().composites, 1);
}

#[test]
fn g5_expired_holder_cannot_release_the_next_holders_lock() {
    let clock = ManualClock::default();
    let backend = Recording::new(&clock);
    let (a, b, c) = (
        LockToken::from_u64(10),
        LockToken::from_u64(20),
        LockToken::from_u64(30),
    );
    let lease = Duration::from_secs(5);
    let min = Duration::from_secs(1);
    let first = backend.try_lock(Scope::Global, a, lease, min).unwrap();
    assert!(first.is_acquired(), "{first:?}");
    assert!(matches!(
        backend.try_lock(Scope::Global, b, lease, min).unwrap(),
        LockOutcome::Held { .. }
    ));
    clock.advance(Duration::from_secs(6)); // a's lease ran out
    let second = backend.try_lock(Scope::Global, b, lease, min).unwrap();
    // The next holder's fencing generation is newer than the expired one's.
    assert!(
        second.generation() > first.generation(),
        "{first:?} then {second:?}"
    );
    assert!(
        !backend.unlock(Scope::Global, a).unwrap(),
        "late holder released another's lock"
    );
    assert!(matches!(
        backend
            .try_lock(Scope::Global, c, lease, Duration::ZERO)
            .unwrap(),
        LockOutcome::Held { .. }
    ));
    assert!(backend.unlock(Scope::Global, b).unwrap());
    assert!(!backend.unlock(Scope::Global, b).unwrap(), "released twice");
    assert_eq!(
        backend.last_computed(Scope::Global).unwrap(),
        Some(Duration::ZERO)
    );
}

#[test]
fn invalid_configurations_are_rejected_with_typed_errors() {
    let zero_lease = HybridLockConfig::default().with_lease(Duration::ZERO);
    assert!(matches!(
        HybridLock::new(zero_lease),
        Err(ConfigError::OutOfRange { field: "lease", .. })
    ));
    let inverted = HybridLockConfig::default().with_min_interval(Duration::from_secs(60));
    assert!(matches!(
        HybridLock::new(inverted),
        Err(ConfigError::Order {
            lower: "min_interval",
            ..
        })
    ));
    let long_lease = HybridLockConfig::default().with_lease(Duration::from_secs(31));
    assert!(matches!(
        HybridLock::new(long_lease),
        Err(ConfigError::Order { lower: "lease", .. })
    ));
    let no_events = HybridLockConfig::default().with_every_events(0);
    assert!(matches!(
        HybridLock::new(no_events),
        Err(ConfigError::Zero {
            field: "every_events"
        })
    ));
    let d = HybridLockConfig::default();
    assert_eq!(
        (
            d.max_staleness(),
            d.min_interval(),
            d.every_events(),
            d.lease()
        ),
        (
            Duration::from_secs(30),
            Duration::from_secs(30),
            100,
            Duration::from_secs(5)
        )
    );
}

#[test]
fn quiet_worker_computes_on_staleness_alone() {
    let clock = ManualClock::default();
    let backend = Recording::new(&clock);
    let mut calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .state(backend.clone())
        .scheduler(HybridLock::default())
        .build()
        .unwrap();
    // One event a minute: far below every_events, so only the floor fires.
    for _ in 0..10 {
        calc.process(&tool_event("s")).unwrap();
        clock.advance(Duration::from_secs(60));
    }
    // Events at 0, 60, ..., 540: each finds the last calculation at least
    // max_staleness old, so each computes at once (reflect lag zero).
    assert_eq!(calc.stats().composites, 10);
}

/// The lock's fencing generation travels in the ticket onto the composite;
/// each calculation's is newer; a scheduler without a lock stamps none.
#[test]
fn composites_carry_their_lock_generation() {
    use composite_metrics::metric::names;
    use composite_metrics::{Category, EventBased, Metric};

    let score = |metrics: &[Metric]| {
        metrics
            .iter()
            .find(|m| m.is(Category::Composite, names::PRODUCTIVITY_SCORE))
            .cloned()
    };
    let clock = ManualClock::default();
    let state = composite_metrics::MemoryState::with_clock(clock.clone());
    // Recorded on the state directly, so the first calculation has both inputs.
    state
        .record(&common::edit_event("s1", true), clock.now())
        .unwrap();
    let mut calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .state(state)
        .scheduler(HybridLock::default())
        .build()
        .unwrap();
    let first = score(&calc.process(&tool_event("s1")).unwrap()).expect("computed");
    clock.advance(Duration::from_secs(31));
    let second = score(&calc.process(&tool_event("s1")).unwrap()).expect("computed");
    let (g1, g2) = (first.generation.unwrap(), second.generation.unwrap());
    assert!(g2 > g1, "{g1} then {g2}");

    let mut plain = MetricsCalculator::builder()
        .scheduler(EventBased::every(1))
        .build()
        .unwrap();
    plain.process(&common::edit_event("s1", true)).unwrap();
    let m = score(&plain.process(&tool_event("s1")).unwrap()).expect("computed");
    assert_eq!(m.generation, None);
}
