//! Issue 2, point 7: the first schedulers on ManualClock, rule by rule.

use std::sync::Arc;
use std::time::Duration;

use composite_metrics::clock::{Clock, ManualClock};
use composite_metrics::schedule::{Decision, EventContext, Ticket};
use composite_metrics::{
    BackendError, Category, CompositeScheduler, CompositeScope, ConfigError, Error, Event,
    EventBased, EventType, MemoryState, Metric, MetricsCalculator, Never, TimeBased,
};
use proptest::prelude::*;

// Compile-time checks: the trait is object-safe, and a boxed scheduler is
// `Send + Sync` and is the calculator's default type parameter.
const _: Option<&dyn CompositeScheduler> = None;
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Box<dyn CompositeScheduler>>();
    send_sync::<MetricsCalculator>();
    fn takes_default(_: MetricsCalculator<Box<dyn CompositeScheduler>>) {}
    fn takes_elided(c: MetricsCalculator) {
        takes_default(c)
    }
    let _ = takes_elided;
};

fn is_score(m: &Metric) -> bool {
    m.is(Category::Composite, "productivity_score")
}

/// A calculator on a manual clock at `start_ms`, over a state that already
/// holds both rates, so every composite yields a score metric.
fn calc_at<S: CompositeScheduler>(
    start_ms: u64,
    scheduler: S,
) -> (MetricsCalculator<S>, ManualClock) {
    let clock = ManualClock::new(Duration::from_millis(start_ms));
    let state = MemoryState::with_clock(clock.clone());
    let mut seed = MetricsCalculator::builder()
        .clock(clock.clone())
        .state(state.clone())
        .build()
        .unwrap();
    seed.process(&Event::tool_use("seed", "bash").with_success(true))
        .unwrap();
    seed.process(&Event::new(EventType::FileEdit, "seed").with_accepted(true))
        .unwrap();
    let calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .state(state)
        .scheduler(scheduler)
        .build()
        .unwrap();
    (calc, clock)
}

fn event() -> Event {
    Event::tool_use("s", "bash").with_success(true)
}

/// Processes one event; returns whether it carried a composite.
fn fired<S: CompositeScheduler>(calc: &mut MetricsCalculator<S>) -> bool {
    let before = calc.stats().composites;
    let m = calc.process(&event()).unwrap();
    let scores = m.iter().filter(|m| is_score(m)).count();
    assert!(scores <= 1);
    assert_eq!(calc.stats().composites - before, scores as u64);
    scores == 1
}

#[test]
fn time_based_fires_on_every_event_inside_a_matching_second() {
    let (mut calc, clock) = calc_at(1_000_000, TimeBased::default());
    assert_eq!(TimeBased::default().period_secs(), 10);
    // Five events inside second 1000 (a multiple of 10): five composites.
    for _ in 0..5 {
        assert!(fired(&mut calc));
        clock.advance(Duration::from_millis(150));
    }
    assert_eq!(calc.stats().composites, 5);
    // Second 1001: none.
    clock.set(Duration::from_millis(1_001_000));
    assert!(!fired(&mut calc));
    assert_eq!(calc.stats().composites, 5);
}

#[test]
fn time_based_never_fires_when_no_event_lands_in_a_matching_second() {
    let (mut calc, clock) = calc_at(999_000, TimeBased::default());
    for ms in [999_000, 999_500, 999_999, 1_001_000, 1_001_999, 1_009_999] {
        clock.set(Duration::from_millis(ms));
        assert!(!fired(&mut calc), "at {ms} ms");
    }
    assert_eq!(calc.stats().composites, 0);
    clock.set(Duration::from_millis(1_010_000));
    assert!(fired(&mut calc));
}

#[test]
fn time_based_period_is_whole_seconds_and_zero_is_rejected() {
    assert_eq!(
        TimeBased::every(Duration::from_millis(2_900)).period_secs(),
        2
    );
    for period in [Duration::ZERO, Duration::from_millis(999)] {
        match MetricsCalculator::builder()
            .scheduler(TimeBased::every(period))
            .build()
        {
            Err(Error::Config(ConfigError::Zero { field })) => assert_eq!(field, "period"),
            other => panic!("{period:?}: {other:?}"),
        }
    }
    let (mut calc, clock) = calc_at(9_000, TimeBased::every(Duration::from_secs(3)));
    let mut hits = Vec::new();
    for sec in 9..=20u64 {
        clock.set(Duration::from_secs(sec));
        if fired(&mut calc) {
            hits.push(sec);
        }
    }
    assert_eq!(hits, [9, 12, 15, 18]);
}

#[test]
fn event_based_fires_on_exactly_every_nth_event() {
    assert_eq!(EventBased::default().n(), 100);
    let (mut calc, _) = calc_at(5_000, EventBased::every(7));
    let hits: Vec<u64> = (1..=50).filter(|_| fired(&mut calc)).collect();
    assert_eq!(hits, [7, 14, 21, 28, 35, 42, 49]);
    let (mut calc, _) = calc_at(5_000, EventBased::default());
    let hits: Vec<u64> = (1..=350).filter(|_| fired(&mut calc)).collect();
    assert_eq!(hits, [100, 200, 300]);
}

#[test]
fn event_based_zero_is_rejected() {
    match MetricsCalculator::builder()
        .scheduler(EventBased::every(0))
        .build()
    {
        Err(Error::Config(ConfigError::Zero { field })) => assert_eq!(field, "every"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn event_based_counts_per_calculator_instance() {
    let clock = ManualClock::default();
    let state = MemoryState::with_clock(clock.clone());
    let build = || {
        MetricsCalculator::builder()
            .clock(clock.clone())
            .state(state.clone())
            .scheduler(EventBased::every(4))
            .build()
            .unwrap()
    };
    let (mut a, mut b) = (build(), build());
    for _ in 0..3 {
        a.process(&event()).unwrap();
        b.process(&event()).unwrap();
    }
    // Six events on the shared state, but each worker has seen three.
    assert_eq!(a.stats().composites + b.stats().composites, 0);
    a.process(&event()).unwrap();
    assert_eq!((a.stats().composites, b.stats().composites), (1, 0));
}

#[test]
fn event_based_per_session_counts_each_session() {
    let clock = ManualClock::default();
    let state = MemoryState::with_clock(clock.clone());
    let mut calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .state(state)
        .scheduler(EventBased::every(2))
        .scope(CompositeScope::PerSession)
        .build()
        .unwrap();
    let step = |calc: &mut MetricsCalculator<EventBased>, s: &str| {
        let m = calc
            .process(&Event::new(EventType::FileEdit, s).with_accepted(s == "a"))
            .unwrap();
        calc.process(&Event::tool_use(s, "bash").with_success(true))
            .unwrap();
        m
    };
    // Each step is two events of one session: the second event of a session fires.
    let _ = step(&mut calc, "a");
    let _ = step(&mut calc, "b");
    assert_eq!(calc.stats().composites, 2);
    // The scores are per session: a has A = 100, b has A = 0; both S = 100.
    let a = calc.compute_now(Some(&Arc::from("a"))).unwrap().unwrap();
    let b = calc.compute_now(Some(&Arc::from("b"))).unwrap().unwrap();
    assert_eq!((a.value, b.value), (85.0, 75.0));
    assert_eq!(a.session.as_deref(), Some("a"));
}

#[test]
fn never_never_fires() {
    let (mut calc, clock) = calc_at(1_000_000, Never);
    for _ in 0..1_000 {
        assert!(!fired(&mut calc));
        clock.advance(Duration::from_millis(10));
    }
    assert_eq!(calc.stats().composites, 0);
    assert_eq!(calc.scheduler_name(), "never");
}

/// A host's own scheduler: fires for one session only.
#[derive(Debug)]
struct OnlyFor(&'static str);

impl CompositeScheduler for OnlyFor {
    fn name(&self) -> &'static str {
        "only-for"
    }
    fn on_event(&mut self, ctx: &EventContext<'_>) -> Result<Decision, BackendError> {
        Ok(if &**ctx.session == self.0 {
            Decision::Compute(Ticket::free())
        } else {
            Decision::Skip
        })
    }
}

#[test]
fn boxed_schedulers_work_as_the_calculators_scheduler() {
    let schedulers: Vec<(Box<dyn CompositeScheduler>, [bool; 4])> = vec![
        (Box::new(Never), [false; 4]),
        (Box::new(EventBased::every(2)), [false, true, false, true]),
        // Clock at second 2000: a multiple of 10.
        (Box::new(TimeBased::default()), [true; 4]),
        (Box::new(OnlyFor("s")), [true; 4]),
        (Box::new(OnlyFor("other")), [false; 4]),
    ];
    for (scheduler, want) in schedulers {
        let name = scheduler.name();
        let (mut calc, _): (MetricsCalculator, _) = calc_at(2_000_000, scheduler);
        assert_eq!(calc.scheduler_name(), name);
        let got: Vec<bool> = (0..4).map(|_| fired(&mut calc)).collect();
        assert_eq!(got, want, "{name}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// TimeBased fires on an event exactly when its second is a multiple of the period.
    #[test]
    fn time_based_rule(period in 1u64..15, gaps in prop::collection::vec(0u64..2_500, 1..120)) {
        let (mut calc, clock) = calc_at(1_700_000_000_000, TimeBased::every(Duration::from_secs(period)));
        let mut want = 0;
        for gap in gaps {
            clock.advance(Duration::from_millis(gap));
            let matching = clock.now().as_secs() % period == 0;
            want += u64::from(matching);
            prop_assert_eq!(fired(&mut calc), matching);
        }
        prop_assert_eq!(calc.stats().composites, want);
    }

    /// EventBased fires on events n, 2n, ... and nothing else, whatever the clock does.
    #[test]
    fn event_based_rule(n in 1u64..20, gaps in prop::collection::vec(0u64..100_000, 1..150)) {
        let (mut calc, clock) = calc_at(1_700_000_000_000, EventBased::every(n));
        for (i, gap) in gaps.iter().enumerate() {
            clock.advance(Duration::from_millis(*gap));
            prop_assert_eq!(fired(&mut calc), (i as u64 + 1).is_multiple_of(n));
        }
        prop_assert_eq!(calc.stats().composites, gaps.len() as u64 / n);
    }
}

#[test]
fn decisions_read_the_calculators_clock() {
    // The event's own timestamp says second 1000; the clock says 1001: no fire.
    let (mut calc, clock) = calc_at(1_001_000, TimeBased::default());
    let stamped = std::time::UNIX_EPOCH + Duration::from_secs(1_000);
    let m = calc.process(&event().with_timestamp(stamped)).unwrap();
    assert!(!m.iter().any(is_score));
    clock.set(Duration::from_secs(1_010));
    assert_eq!(clock.now(), Duration::from_secs(1_010));
    let m = calc.process(&event()).unwrap();
    assert!(m.iter().any(is_score));
}
