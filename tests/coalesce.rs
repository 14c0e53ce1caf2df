//! Coalesce's guarantees C1-C5 (DESIGN.md section 3b), on `ManualClock`,
//! with proptests over random arrivals, worker counts, parameters, and
//! workers that stop, resume and die.

mod common;

use std::time::Duration;

use common::{tool_event, Call, CountingClock, Recording};
use composite_metrics::clock::{Clock, ManualClock};
use composite_metrics::sink::MemorySink;
use composite_metrics::state::{LockOutcome, MemoryState};
use composite_metrics::{
    Coalesce, CoalesceConfig, CompositeScheduler, CompositeScope, ConfigError, Event,
    MetricsCalculator,
};
use proptest::prelude::*;

const MS: Duration = Duration::from_millis(1);

type Calc = MetricsCalculator<Coalesce>;

fn worker(clock: &ManualClock, backend: &Recording, cfg: CoalesceConfig) -> Calc {
    MetricsCalculator::builder()
        .clock(clock.clone())
        .state(backend.clone())
        .scheduler(Coalesce::manual(cfg).unwrap())
        .build()
        .unwrap()
}

#[derive(Debug, Clone, Copy)]
enum Step {
    /// After `gap`, worker `w` records an event.
    Event { gap: Duration, w: usize },
    /// Worker `w` stops: no events, no timer, until resumed.
    Stop { w: usize },
    /// Worker `w` resumes.
    Resume { w: usize },
    /// Worker `w` dies (dropped, never back).
    Kill { w: usize },
}

struct World {
    clock: ManualClock,
    backend: Recording,
    cfg: CoalesceConfig,
    calcs: Vec<Option<Calc>>,
    stopped: Vec<bool>,
    /// (time, worker) of every recorded event; event k is the (k+1)-th record.
    events: Vec<(Duration, usize)>,
}

impl World {
    fn new(workers: usize, cfg: CoalesceConfig) -> Self {
        let clock = ManualClock::new(Duration::from_secs(1_000_000));
        let backend = Recording::new(&clock);
        let calcs = (0..workers)
            .map(|_| Some(worker(&clock, &backend, cfg)))
            .collect();
        Self {
            clock,
            backend,
            cfg,
            calcs,
            stopped: vec![false; workers],
            events: Vec::new(),
        }
    }

    /// Moves time forward in steps of at most `tick`, running every live
    /// worker's timer after each step (as a host loop would).
    fn advance(&mut self, gap: Duration) {
        let mut left = gap;
        while !left.is_zero() {
            let d = left.min(self.cfg.tick());
            self.clock.advance(d);
            left -= d;
            self.poll_all();
        }
    }

    fn poll_all(&mut self) {
        for (calc, stopped) in self.calcs.iter_mut().zip(&self.stopped) {
            if let (Some(c), false) = (calc, stopped) {
                c.scheduler_mut().poll();
            }
        }
    }

    fn run(&mut self, steps: &[Step]) {
        let n = self.calcs.len();
        for step in steps {
            match *step {
                Step::Event { gap, w } => {
                    self.advance(gap);
                    let w = w % n;
                    if let (Some(c), false) = (&mut self.calcs[w], self.stopped[w]) {
                        c.process(&tool_event(&format!("s{w}"))).unwrap();
                        self.events.push((self.clock.now(), w));
                    }
                }
                // Worker 0 never stops or dies: C2 needs one live worker.
                Step::Stop { w } if w % n != 0 => self.stopped[w % n] = true,
                Step::Resume { w } => self.stopped[w % n] = false,
                Step::Kill { w } if w % n != 0 => self.calcs[w % n] = None,
                _ => {}
            }
        }
        // Let every deadline pass with nothing else happening.
        self.advance(self.cfg.max_staleness() + self.cfg.tick() * 3);
    }
}

fn config(
    min_interval_ms: u64,
    extra_ms: u64,
    every: u64,
    lease_pct: u64,
    tick_pct: u64,
) -> CoalesceConfig {
    let min_interval = MS * min_interval_ms as u32;
    let max_staleness = min_interval + MS * extra_ms as u32;
    let lease = (min_interval * lease_pct as u32 / 100).max(MS);
    let tick = (max_staleness * tick_pct as u32 / 100).max(MS);
    CoalesceConfig::default()
        .with_min_interval(min_interval)
        .with_max_staleness(max_staleness)
        .with_every_events(every)
        .with_lease(lease)
        .with_tick(tick)
}

fn params() -> impl Strategy<Value = (usize, CoalesceConfig)> {
    (
        1usize..=6,
        10u64..=5_000,
        0u64..=5_000,
        1u64..=30,
        1u64..=100,
        2u64..=50,
    )
        .prop_map(|(w, mi, extra, every, lease, tick)| (w, config(mi, extra, every, lease, tick)))
}

/// Steps with gaps in thousandths of `max_staleness` (so a run stays a few
/// hundred timer steps long whatever the parameters).
fn steps(max_staleness: Duration) -> impl Strategy<Value = Vec<Step>> {
    let gap = prop_oneof![0u32..50, 0u32..1_500, 0u32..4_000]
        .prop_map(move |g| max_staleness * g / 1_000);
    let step = prop_oneof![
        8 => (gap, 0usize..6).prop_map(|(gap, w)| Step::Event { gap, w }),
        1 => (0usize..6).prop_map(|w| Step::Stop { w }),
        1 => (0usize..6).prop_map(|w| Step::Resume { w }),
        1 => (0usize..6).prop_map(|w| Step::Kill { w }),
    ];
    proptest::collection::vec(step, 1..120)
}

fn scenario() -> impl Strategy<Value = (usize, CoalesceConfig, Vec<Step>)> {
    params().prop_flat_map(|(w, cfg)| steps(cfg.max_staleness()).prop_map(move |s| (w, cfg, s)))
}

fn play((workers, cfg, steps): (usize, CoalesceConfig, Vec<Step>)) -> World {
    let mut world = World::new(workers, cfg);
    world.run(&steps);
    world
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// C1: two calculations never start within `min_interval`, across all
    /// workers, and every calculation held the lock.
    #[test]
    fn c1_calculations_never_closer_than_min_interval(scn in scenario()) {
        let world = play(scn);
        let reads = world.backend.composite_reads();
        for pair in reads.windows(2) {
            prop_assert!(pair[1].0 - pair[0].0 >= world.cfg.min_interval(),
                "calculations at {:?} and {:?}, min_interval {:?}", pair[0].0, pair[1].0, world.cfg.min_interval());
        }
        prop_assert_eq!(world.backend.acquisitions().len(), reads.len());
    }

    /// C2: every event is in a calculation that starts within
    /// `max_staleness` + `tick` of its recording, with no later event needed,
    /// even when the worker that recorded it stopped or died.
    #[test]
    fn c2_every_event_reflected_within_staleness_plus_tick(scn in scenario()) {
        let world = play(scn);
        let reads = world.backend.composite_reads();
        let bound = world.cfg.max_staleness() + world.cfg.tick();
        for (k, &(t, w)) in world.events.iter().enumerate() {
            let reflected = reads.iter().find(|(_, records)| *records > k as u64);
            prop_assert!(reflected.is_some_and(|(s, _)| *s <= t + bound),
                "event {k} at {t:?} (worker {w}) first reflected at {:?}, bound {:?}",
                reflected.map(|r| r.0), t + bound);
        }
    }

    /// C3: every calculation reads at least one event the previous one did not.
    #[test]
    fn c3_no_idle_calculation(scn in scenario()) {
        let world = play(scn);
        let reads = world.backend.composite_reads();
        prop_assert!(reads.first().is_none_or(|r| r.1 > 0), "first read saw no event");
        for pair in reads.windows(2) {
            prop_assert!(pair[1].1 > pair[0].1,
                "calculation at {:?} read {} events, as the one at {:?}", pair[1].0, pair[1].1, pair[0].0);
        }
    }

    /// C5: a lock is released by its holder before anyone else takes it, and
    /// every release succeeds (no calculation outlived its lease here).
    #[test]
    fn c5_one_holder_at_a_time_safe_release(scn in scenario()) {
        let world = play(scn);
        let mut holder = None;
        for call in world.backend.calls() {
            match call {
                Call::TryLock { token, outcome: LockOutcome::Acquired { .. }, .. } => {
                    prop_assert!(holder.is_none(), "acquired while {holder:?} held the lock");
                    holder = Some(token);
                }
                Call::Unlock { token, released, .. } => {
                    prop_assert_eq!(holder, Some(token));
                    prop_assert!(released);
                    holder = None;
                }
                _ => {}
            }
        }
        prop_assert!(holder.is_none());
    }
}

/// C4: events that do not make the strategy due make no backend call beyond
/// the record, and the calculator reads the clock once per event.
#[test]
fn c4_not_due_events_cost_no_coordination_and_one_clock_read() {
    let clock = ManualClock::new(Duration::from_secs(1_000));
    let backend = Recording::new(&clock);
    let counting = CountingClock::new(&clock);
    let mut calc = MetricsCalculator::builder()
        .clock(counting.clone())
        .state(backend.clone())
        .scheduler(Coalesce::manual(CoalesceConfig::default()).unwrap())
        .build()
        .unwrap();
    calc.process(&tool_event("s1")).unwrap(); // leading edge: lock + unlock
    assert_eq!(backend.coordination(), 2);
    let reads_before = counting.reads();
    for _ in 0..1_000 {
        clock.advance(MS * 10);
        calc.process(&tool_event("s1")).unwrap();
    }
    assert_eq!(
        backend.coordination(),
        2,
        "not-due events asked the backend"
    );
    assert_eq!(counting.reads() - reads_before, 1_000);
    assert_eq!(calc.stats().composites, 1);
    // The armed deadline fires once, on the timer.
    clock.advance(Duration::from_secs(21));
    assert_eq!(calc.scheduler_mut().poll(), 1);
    assert_eq!(backend.coordination(), 4);
    assert_eq!(calc.stats().composites, 2);
}

/// A worker killed right after recording: another worker's idle check takes
/// its deadline over, within `max_staleness` + `tick`, and computes once.
#[test]
fn a_dead_workers_event_is_taken_over() {
    let cfg = CoalesceConfig::default();
    let clock = ManualClock::new(Duration::from_secs(1_000));
    let backend = Recording::new(&clock);
    let mut a = worker(&clock, &backend, cfg);
    let mut b = worker(&clock, &backend, cfg);
    a.process(&tool_event("s1")).unwrap(); // computes at 1000 s
    clock.advance(Duration::from_secs(3));
    a.process(&tool_event("s1")).unwrap(); // armed on a's timer
    let recorded = clock.now();
    drop(a);
    let mut step = 0;
    while backend.composite_reads().len() < 2 && step < 100 {
        clock.advance(cfg.tick());
        b.scheduler_mut().poll();
        step += 1;
    }
    let reads = backend.composite_reads();
    assert_eq!(reads.len(), 2, "b never took over");
    assert_eq!(reads[1].1, 2);
    assert!(
        reads[1].0 <= recorded + cfg.max_staleness() + cfg.tick(),
        "{reads:?}"
    );
    assert_eq!(b.stats().composites, 1);
    // Nothing new: b's later checks find the backend clean and compute nothing.
    for _ in 0..200 {
        clock.advance(cfg.tick());
        b.scheduler_mut().poll();
    }
    assert_eq!(backend.composite_reads().len(), 2);
}

/// Two workers reach their deadlines one after the other: the second finds
/// the backend clean ("lock if dirty") and skips without computing.
#[test]
fn a_second_deadline_after_someone_computed_skips() {
    let cfg = CoalesceConfig::default();
    let clock = ManualClock::new(Duration::from_secs(1_000));
    let backend = Recording::new(&clock);
    let mut a = worker(&clock, &backend, cfg);
    let mut b = worker(&clock, &backend, cfg);
    a.process(&tool_event("s1")).unwrap(); // computes
    clock.advance(Duration::from_secs(1));
    a.process(&tool_event("s1")).unwrap(); // a arms 1031 s
    b.process(&tool_event("s2")).unwrap(); // b learns, arms 1031 s
    clock.advance(Duration::from_secs(30));
    assert_eq!(a.scheduler_mut().poll() + b.scheduler_mut().poll(), 1);
    let clean = backend
        .calls()
        .into_iter()
        .filter(|c| {
            matches!(
                c,
                Call::TryLock {
                    outcome: LockOutcome::Clean { .. },
                    ..
                }
            )
        })
        .count();
    assert_eq!(clean, 1);
    assert_eq!(backend.composite_reads().len(), 2);
}

#[test]
fn per_session_deadlines_compute_each_session() {
    let clock = ManualClock::new(Duration::from_secs(1_000));
    let state = MemoryState::with_clock(clock.clone());
    let sink = MemorySink::new();
    let mut calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .state(state)
        .sink(sink.clone())
        .scope(CompositeScope::PerSession)
        .scheduler(Coalesce::manual(CoalesceConfig::default()).unwrap())
        .build()
        .unwrap();
    calc.process(&tool_event("a")).unwrap();
    calc.process(&tool_event("b")).unwrap();
    assert_eq!(calc.stats().composites, 2); // one leading edge per session
    clock.advance(Duration::from_secs(2));
    calc.process(&tool_event("a").with_success(false)).unwrap();
    clock.advance(Duration::from_secs(30));
    assert_eq!(
        calc.scheduler_mut().poll(),
        1,
        "only session a has a new event"
    );
    assert_eq!(calc.stats().composites, 3);
}

#[test]
fn the_timer_thread_fires_deadlines_and_stops() {
    let clock = ManualClock::new(Duration::from_secs(1_000));
    let mut calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .scheduler(Coalesce::new(CoalesceConfig::default()).unwrap())
        .build()
        .unwrap();
    assert!(calc.scheduler().is_running());
    calc.process(&tool_event("s1")).unwrap();
    clock.advance(Duration::from_secs(1));
    calc.process(&tool_event("s1")).unwrap();
    assert_eq!(calc.stats().composites, 1);
    clock.advance(Duration::from_secs(31));
    assert!(
        common::eventually(Duration::from_secs(10), || calc.stats().composites == 2),
        "the timer thread did not fire: {:?}",
        calc.stats()
    );
    calc.shutdown();
    assert!(!calc.scheduler().is_running());
}

#[test]
fn invalid_configurations_are_rejected() {
    let cases = [
        (CoalesceConfig::default().with_tick(Duration::ZERO), "tick"),
        (
            CoalesceConfig::default().with_tick(Duration::from_secs(31)),
            "tick",
        ),
        (
            CoalesceConfig::default().with_min_interval(Duration::from_secs(31)),
            "min_interval",
        ),
        (
            CoalesceConfig::default().with_every_events(0),
            "every_events",
        ),
    ];
    for (cfg, field) in cases {
        let err = Coalesce::manual(cfg).unwrap_err();
        let named = match &err {
            ConfigError::Zero { field } | ConfigError::OutOfRange { field, .. } => *field,
            ConfigError::Order { lower, .. } => *lower,
            _ => "",
        };
        assert_eq!(named, field, "{err}");
    }
}

#[test]
fn it_is_a_composite_scheduler_named_coalesce() {
    let s: Box<dyn CompositeScheduler> =
        Box::new(Coalesce::manual(CoalesceConfig::default()).unwrap());
    assert_eq!(s.name(), "coalesce");
    let _ = Event::tool_use("s", "t");
}
