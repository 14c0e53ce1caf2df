//! Issue 21, point 2: the calculations the schedulers' timers run
//! (`Background`'s runs, `Coalesce`'s trailing deadlines) are counted like
//! the event path's: in `SchedulerStats::composites` and
//! `composites_without_data`, merged into `Stats`, and in the health metrics
//! (`composite_metrics_calculations_total{trigger="timer"}`, the
//! calculation-time histogram and the staleness gauge). Time is a
//! `ManualClock`; the timers are polled (`manual`), never slept on.

mod common;

use std::time::Duration;

use common::{edit_event, tool_event};
use composite_metrics::clock::ManualClock;
use composite_metrics::{
    Background, BackgroundConfig, Coalesce, CoalesceConfig, CompositeScheduler, CompositeScope,
    MemoryState, MetricsCalculator,
};
use proptest::prelude::*;

fn background(clock: &ManualClock, scope: CompositeScope) -> MetricsCalculator<Background> {
    MetricsCalculator::builder()
        .clock(clock.clone())
        .state(MemoryState::with_clock(clock.clone()))
        .scope(scope)
        .scheduler(Background::manual(BackgroundConfig::default()).unwrap())
        .build()
        .unwrap()
}

/// Advances past the next tick and polls.
fn tick(calc: &mut MetricsCalculator<Background>, clock: &ManualClock) -> u64 {
    clock.advance(BackgroundConfig::default().interval());
    calc.scheduler_mut().poll()
}

#[test]
fn a_global_background_run_is_counted_with_or_without_data() {
    let clock = ManualClock::new(Duration::from_secs(1_000));
    let mut calc = background(&clock, CompositeScope::Global);
    // Nothing recorded yet: a calculation without data.
    assert_eq!(tick(&mut calc, &clock), 1);
    let s = calc.stats();
    assert_eq!((s.composites, s.composites_without_data), (1, 1));
    calc.process(&tool_event("s1")).unwrap();
    calc.process(&edit_event("s1", true)).unwrap();
    assert_eq!(tick(&mut calc, &clock), 1);
    let s = calc.stats();
    assert_eq!((s.composites, s.composites_without_data), (2, 1));
    let t = calc.scheduler().stats();
    assert_eq!((t.composites, t.composites_without_data), (2, 1));
}

#[test]
fn a_per_session_background_run_counts_each_session_read() {
    let clock = ManualClock::new(Duration::from_secs(1_000));
    let mut calc = background(&clock, CompositeScope::PerSession);
    calc.process(&tool_event("full")).unwrap();
    calc.process(&edit_event("full", true)).unwrap();
    calc.process(&tool_event("no-decision")).unwrap();
    calc.process(&edit_event("no-outcome", false)).unwrap();
    assert_eq!(tick(&mut calc, &clock), 3);
    let s = calc.stats();
    assert_eq!((s.composites, s.composites_without_data), (3, 2));
}

#[test]
fn coalesce_counts_its_trailing_calculation_beside_the_leading_edge() {
    let clock = ManualClock::new(Duration::from_secs(1_000));
    let mut calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .scheduler(Coalesce::manual(CoalesceConfig::default()).unwrap())
        .build()
        .unwrap();
    calc.process(&tool_event("s1")).unwrap(); // leading edge: the event path
    clock.advance(Duration::from_secs(5));
    calc.process(&tool_event("s1")).unwrap(); // too soon: armed
    clock.advance(Duration::from_secs(26));
    assert_eq!(calc.scheduler_mut().poll(), 1); // the timer
    let t = calc.scheduler().stats();
    assert_eq!((t.composites, t.composites_without_data), (1, 1));
    let s = calc.stats();
    // Both calculations found no acceptance rate: no score either time.
    assert_eq!((s.composites, s.composites_without_data), (2, 2));
}

/// One step of the property below.
#[derive(Debug, Clone)]
enum Step {
    /// A tool run with an outcome in session `0..4`.
    Tool(usize),
    /// An edit with a decision in session `0..4`.
    Edit(usize),
    /// A background tick.
    Tick,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..4usize).prop_map(Step::Tool),
        (0..4usize).prop_map(Step::Edit),
        Just(Step::Tick),
    ]
}

proptest! {
    /// Whatever the events and ticks, a per-session `Background` counts one
    /// calculation per session it read, and without data exactly the
    /// sessions that lack a success or an acceptance rate; `Stats` holds the
    /// same numbers (nothing is computed on the event path).
    #[test]
    fn every_session_read_is_counted_and_without_data_is_exact(
        steps in prop::collection::vec(step(), 1..40)
    ) {
        let clock = ManualClock::new(Duration::from_secs(1_000));
        let mut calc = background(&clock, CompositeScope::PerSession);
        let (mut outcome, mut decision) = ([false; 4], [false; 4]);
        let (mut composites, mut without_data, mut polled) = (0u64, 0u64, 0u64);
        for step in &steps {
            let session = |i: usize| format!("s{i}");
            match *step {
                Step::Tool(i) => {
                    calc.process(&tool_event(&session(i))).unwrap();
                    outcome[i] = true;
                }
                Step::Edit(i) => {
                    calc.process(&edit_event(&session(i), i % 2 == 0)).unwrap();
                    decision[i] = true;
                }
                Step::Tick => {
                    polled += tick(&mut calc, &clock);
                    let seen = (0..4).filter(|&i| outcome[i] || decision[i]);
                    let (n, lacking) = seen.fold((0, 0), |(n, l), i| {
                        (n + 1, l + u64::from(!(outcome[i] && decision[i])))
                    });
                    composites += n;
                    without_data += lacking;
                }
            }
        }
        let t = calc.scheduler().stats();
        prop_assert_eq!((t.composites, t.composites_without_data), (composites, without_data));
        prop_assert_eq!(polled, composites);
        let s = calc.stats();
        prop_assert_eq!((s.composites, s.composites_without_data), (composites, without_data));
    }
}

#[cfg(feature = "metrics")]
mod health {
    use super::*;
    use composite_metrics::telemetry::names;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
    use metrics_util::MetricKind;

    /// The value of one series in a snapshot (which resets what it reads).
    fn read(
        snapshotter: &Snapshotter,
        kind: MetricKind,
        name: &str,
        labels: &[(&str, &str)],
    ) -> Option<DebugValue> {
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .find_map(|(ck, _, _, value)| {
                let key = ck.key();
                let matches = ck.kind() == kind
                    && key.name() == name
                    && key.labels().count() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| key.labels().any(|l| l.key() == *k && l.value() == *v));
                matches.then_some(value)
            })
    }

    fn timer_calculations(snapshotter: &Snapshotter, strategy: &str) -> u64 {
        match read(
            snapshotter,
            MetricKind::Counter,
            names::CALCULATIONS,
            &[("strategy", strategy), ("trigger", "timer")],
        ) {
            Some(DebugValue::Counter(n)) => n,
            other => panic!("{other:?}"),
        }
    }

    /// A per-session run: counted per session read, timed once per session,
    /// and it moves the staleness gauge (read by the next event's
    /// publication). The clock is far beyond any other test's, so the
    /// process-wide "latest calculation" is this test's.
    #[test]
    fn a_per_session_background_run_is_in_the_health_metrics() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let clock = ManualClock::new(Duration::from_secs(4_000_000_000));
        let mut calc = metrics::with_local_recorder(&recorder, || {
            background(&clock, CompositeScope::PerSession)
        });
        metrics::with_local_recorder(&recorder, || {
            for s in ["a", "b", "c"] {
                calc.process(&tool_event(s)).unwrap();
            }
            assert_eq!(tick(&mut calc, &clock), 3);
        });
        assert_eq!(timer_calculations(&snapshotter, "background"), 3);
        metrics::with_local_recorder(&recorder, || {
            clock.advance(Duration::from_secs(7));
            calc.process(&tool_event("a")).unwrap(); // publishes the staleness
            assert_eq!(tick(&mut calc, &clock), 3);
        });
        let snapshot = snapshotter.snapshot().into_vec();
        let find = |kind: MetricKind, name: &str| {
            snapshot
                .iter()
                .find(|(ck, ..)| ck.kind() == kind && ck.key().name() == name)
                .map(|(.., v)| v)
        };
        match find(MetricKind::Histogram, names::CALCULATION_SECONDS) {
            // The second run's sessions, each observed once (the snapshot
            // above cleared the first run's).
            Some(DebugValue::Histogram(v)) => assert_eq!(v.len(), 3, "{v:?}"),
            other => panic!("{other:?}"),
        }
        match find(MetricKind::Gauge, names::SECONDS_SINCE_CALCULATION) {
            // The first run started 30 s after the start; the event came 7 s later.
            Some(DebugValue::Gauge(v)) => assert_eq!(v.into_inner(), 7.0),
            other => panic!("{other:?}"),
        }
        let timer = snapshot.iter().find(|(ck, ..)| {
            ck.kind() == MetricKind::Counter
                && ck.key().name() == names::CALCULATIONS
                && ck
                    .key()
                    .labels()
                    .any(|l| l.key() == "trigger" && l.value() == "timer")
        });
        match timer.map(|(.., v)| v) {
            Some(DebugValue::Counter(n)) => assert_eq!(*n, 3),
            other => panic!("{other:?}"),
        }
        assert_eq!(calc.stats().composites, 6);
    }

    /// Coalesce: the leading edge counts under `event`, the timer's
    /// calculation under `timer`; their sum is `Stats::composites`.
    #[test]
    fn coalesce_counts_its_timer_under_trigger_timer() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let stats = metrics::with_local_recorder(&recorder, || {
            let clock = ManualClock::new(Duration::from_secs(1_000));
            let mut calc = MetricsCalculator::builder()
                .clock(clock.clone())
                .scheduler(Coalesce::manual(CoalesceConfig::default()).unwrap())
                .build()
                .unwrap();
            calc.process(&tool_event("s1")).unwrap();
            clock.advance(Duration::from_secs(5));
            calc.process(&tool_event("s1")).unwrap();
            clock.advance(Duration::from_secs(26));
            assert_eq!(calc.scheduler_mut().poll(), 1);
            calc.stats()
        });
        // (name, label value of `label`, count) of every counter.
        let snapshot = snapshotter.snapshot().into_vec();
        let counter = |name: &str, label: &str, value: &str| {
            snapshot
                .iter()
                .find(|(ck, ..)| {
                    ck.kind() == MetricKind::Counter
                        && ck.key().name() == name
                        && ck
                            .key()
                            .labels()
                            .any(|l| l.key() == label && l.value() == value)
                })
                .map_or(0, |(.., v)| match v {
                    DebugValue::Counter(n) => *n,
                    other => panic!("{other:?}"),
                })
        };
        let get = |trigger: &str| counter(names::CALCULATIONS, "trigger", trigger);
        assert_eq!((get("event"), get("timer"), get("compute_now")), (1, 1, 0));
        // Both lock acquisitions are counted: the leading edge's and the timer's.
        assert_eq!(counter(names::LOCKS, "result", "acquired"), 2);
        assert_eq!(stats.composites, get("event") + get("timer"));
    }
}
