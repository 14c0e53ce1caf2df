//! The Background scheduler: its own thread, ticks on the calculator's clock,
//! skipped (not burst) missed ticks, jitter, coordination, fault tolerance,
//! prompt shutdown.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{edit_event, eventually, tool_event, Fault, Recording};
use composite_metrics::clock::{Clock, ManualClock};
use composite_metrics::StateBackend;
use composite_metrics::{
    Background, BackgroundConfig, CompositeScheduler, ConfigError, MemoryState, MetricsCalculator,
    SystemClock,
};

const WAIT: Duration = Duration::from_secs(10);

fn threaded(
    clock: &ManualClock,
    backend: &Recording,
    config: BackgroundConfig,
) -> MetricsCalculator<Background> {
    MetricsCalculator::builder()
        .clock(clock.clone())
        .state(backend.clone())
        .scheduler(Background::new(config).unwrap())
        .build()
        .unwrap()
}

#[test]
fn ticks_every_interval_on_the_manual_clock_and_does_nothing_on_the_event_path() {
    let clock = ManualClock::default();
    let backend = Recording::new(&clock);
    let mut calc = threaded(&clock, &backend, BackgroundConfig::default());
    for _ in 0..1_000 {
        calc.process(&tool_event("s")).unwrap();
        calc.process(&edit_event("s", true)).unwrap();
    }
    assert_eq!(calc.stats().composites, 0);
    assert_eq!(backend.coordination(), 0);
    assert_eq!(
        backend.inner.op_counts().composite_reads,
        0,
        "no composite work on the event path"
    );
    for expected in 1..=3 {
        clock.advance(Duration::from_secs(30));
        assert!(
            eventually(WAIT, || calc.stats().composites == expected),
            "tick {expected} did not run"
        );
    }
    clock.advance(Duration::from_secs(29));
    std::thread::sleep(Duration::from_millis(100)); // give a wrong early tick a chance to show
    assert_eq!(
        calc.stats().composites,
        3,
        "ran before the interval was over"
    );
    assert_eq!(calc.stats().events, 2_000);
}

#[test]
fn missed_ticks_are_skipped_not_burst() {
    let clock = ManualClock::default();
    let backend = Recording::new(&clock);
    let calc = threaded(&clock, &backend, BackgroundConfig::default());
    clock.advance(Duration::from_secs(5 * 30)); // five ticks due at once
    assert!(eventually(WAIT, || calc.stats().composites >= 1));
    std::thread::sleep(Duration::from_millis(100)); // a burst would show up here
    assert_eq!(calc.stats().composites, 1);
    assert_eq!(calc.scheduler().stats().skipped_ticks, 4);
    // The schedule continues from the next tick after the late one.
    clock.advance(Duration::from_secs(30));
    assert!(eventually(WAIT, || calc.stats().composites == 2));
}

#[test]
fn manual_mode_runs_the_same_schedule_on_poll() {
    let clock = ManualClock::default();
    let backend = Recording::new(&clock);
    let mut calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .state(backend.clone())
        .scheduler(Background::manual(BackgroundConfig::default()).unwrap())
        .build()
        .unwrap();
    calc.process(&tool_event("s")).unwrap();
    assert_eq!(calc.scheduler_mut().poll(), 0);
    clock.advance(Duration::from_secs(29));
    assert_eq!(calc.scheduler_mut().poll(), 0);
    clock.advance(Duration::from_secs(1));
    assert_eq!(calc.scheduler_mut().poll(), 1);
    assert_eq!(calc.scheduler_mut().poll(), 0, "one run per tick");
    clock.advance(Duration::from_secs(85)); // now 115: ticks at 60 and 90 are past, 120 not yet
    assert_eq!(calc.scheduler_mut().poll(), 1);
    assert_eq!(calc.scheduler().stats().skipped_ticks, 1);
    assert_eq!(calc.stats().composites, 2);
    assert!(
        !calc.scheduler().is_running(),
        "manual mode starts no thread"
    );
}

#[test]
fn jitter_delays_each_run_by_less_than_the_bound() {
    let config = BackgroundConfig::default().with_jitter(Duration::from_secs(10));
    let mut offsets = Vec::new();
    for _ in 0..20 {
        let clock = ManualClock::default();
        let backend = Recording::new(&clock);
        let mut calc = MetricsCalculator::builder()
            .clock(clock.clone())
            .state(backend.clone())
            .scheduler(Background::manual(config).unwrap())
            .build()
            .unwrap();
        let start = clock.now();
        let mut runs = Vec::new();
        const STEP: Duration = Duration::from_millis(250);
        for _ in 0..(120 * 4) {
            // 250 ms steps over 120 s: ticks at 30, 60 and 90 s (plus jitter)
            if calc.scheduler_mut().poll() > 0 {
                runs.push(clock.now() - start);
            }
            clock.advance(STEP);
        }
        assert_eq!(runs.len(), 3, "one run per interval: {runs:?}");
        for (k, at) in runs.iter().enumerate() {
            let tick = Duration::from_secs(30 * (k as u64 + 1));
            // Observed at the first poll after its deadline, so up to one step late.
            assert!(
                *at >= tick && *at < tick + Duration::from_secs(10) + STEP,
                "run {k} at {at:?}"
            );
            offsets.push(*at - tick);
        }
    }
    // Jitter is applied: the 60 runs do not all land on their tick.
    assert!(
        offsets.iter().any(|o| *o > Duration::from_secs(1)),
        "{offsets:?}"
    );
    assert!(offsets.iter().any(|o| *o != offsets[0]), "{offsets:?}");
}

#[test]
fn four_coordinated_calculators_compute_once_per_interval() {
    let clock = ManualClock::default();
    let backend = Recording::new(&clock);
    let config = BackgroundConfig::default().with_coordination(true);
    let calcs: Vec<_> = (0..4).map(|_| threaded(&clock, &backend, config)).collect();
    let attempts = || {
        calcs
            .iter()
            .map(|c| c.scheduler().stats().lock_attempts)
            .sum::<u64>()
    };
    let composites = || calcs.iter().map(|c| c.stats().composites).sum::<u64>();
    for interval in 1..=5u64 {
        clock.advance(Duration::from_secs(30));
        // The winner counts its composite after its attempt: wait for both.
        assert!(
            eventually(WAIT, || attempts() == 4 * interval
                && composites() >= interval),
            "not every calculator ticked"
        );
        assert_eq!(composites(), interval, "after {interval} intervals");
    }
    let uncoordinated: Vec<_> = (0..4)
        .map(|_| threaded(&clock, &backend, BackgroundConfig::default()))
        .collect();
    clock.advance(Duration::from_secs(30));
    assert!(eventually(WAIT, || uncoordinated
        .iter()
        .map(|c| c.stats().composites)
        .sum::<u64>()
        == 4));
}

#[test]
fn coordinated_runs_with_jitter_stay_within_interval_plus_minus_jitter() {
    let clock = ManualClock::default();
    let backend = Recording::new(&clock);
    let interval = Duration::from_secs(30);
    let jitter = Duration::from_secs(10);
    let config = BackgroundConfig::default()
        .with_jitter(jitter)
        .with_coordination(true);
    let mut calcs: Vec<_> = (0..4)
        .map(|i| {
            // Calculators started at different phases, as separate processes would be.
            clock.advance(Duration::from_secs(7 * i));
            MetricsCalculator::builder()
                .clock(clock.clone())
                .state(backend.clone())
                .scheduler(Background::manual(config).unwrap())
                .build()
                .unwrap()
        })
        .collect();
    let step = Duration::from_millis(100);
    let mut starts = Vec::new();
    for _ in 0..(40 * 30 * 10) {
        clock.advance(step);
        for calc in &mut calcs {
            if calc.scheduler_mut().poll() > 0 {
                starts.push(clock.now());
            }
        }
    }
    assert!(starts.len() >= 38, "{} runs in 40 intervals", starts.len());
    for pair in starts.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= config.min_interval(), "runs {gap:?} apart");
        assert!(gap <= interval + jitter + step, "runs {gap:?} apart");
    }
}

#[test]
fn an_error_or_panic_is_counted_and_the_next_tick_still_runs() {
    let clock = ManualClock::default();
    let backend = Recording::new(&clock);
    backend.inject(&[Fault::Error, Fault::Panic]);
    let calc = threaded(&clock, &backend, BackgroundConfig::default());
    clock.advance(Duration::from_secs(30));
    assert!(eventually(WAIT, || calc.scheduler().stats().errors == 1));
    clock.advance(Duration::from_secs(30));
    assert!(eventually(WAIT, || calc.scheduler().stats().panics == 1));
    clock.advance(Duration::from_secs(30));
    assert!(
        eventually(WAIT, || calc.stats().composites == 1),
        "the loop stopped after a fault"
    );
    let stats = calc.stats();
    assert_eq!(stats.composite_errors, 2);
}

#[test]
fn shutdown_returns_without_waiting_out_a_one_hour_interval() {
    let config = BackgroundConfig::default().with_interval(Duration::from_secs(3600));
    let mut calc = MetricsCalculator::builder()
        .clock(SystemClock)
        .scheduler(Background::new(config).unwrap())
        .build()
        .unwrap();
    assert!(calc.scheduler().is_running());
    let started = Instant::now();
    calc.shutdown();
    // Bounded far below the interval: it did not wait for the tick.
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(!calc.scheduler().is_running());
}

#[test]
fn drop_stops_the_thread() {
    let state = Arc::new(MemoryState::new());
    let config = BackgroundConfig::default().with_interval(Duration::from_secs(3600));
    let calc = MetricsCalculator::builder()
        .clock(SystemClock)
        .state(Arc::clone(&state))
        .scheduler(Background::new(config).unwrap())
        .build()
        .unwrap();
    assert!(Arc::strong_count(&state) > 1);
    drop(calc);
    // The thread held the last other reference; it is gone once joined.
    assert_eq!(Arc::strong_count(&state), 1);
}

#[test]
fn invalid_configurations_are_rejected() {
    let zero = BackgroundConfig::default().with_interval(Duration::ZERO);
    assert!(matches!(
        Background::new(zero),
        Err(ConfigError::OutOfRange {
            field: "interval",
            ..
        })
    ));
    let jitter = BackgroundConfig::default().with_jitter(Duration::from_secs(15));
    assert!(matches!(
        Background::new(jitter),
        Err(ConfigError::OutOfRange {
            field: "jitter",
            ..
        })
    ));
    let lease = BackgroundConfig::default().with_lease(Duration::from_secs(28));
    assert!(matches!(
        Background::new(lease),
        Err(ConfigError::Order { lower: "lease", .. })
    ));
    let d = BackgroundConfig::default();
    assert_eq!(
        (d.interval(), d.jitter(), d.coordinated()),
        (Duration::from_secs(30), Duration::ZERO, false)
    );
}

#[test]
fn boxed_background_reports_through_the_trait_object() {
    let clock = ManualClock::default();
    let backend = Recording::new(&clock);
    let boxed: Box<dyn CompositeScheduler> =
        Box::new(Background::new(BackgroundConfig::default()).unwrap());
    let calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .state(backend.clone())
        .scheduler(boxed)
        .build()
        .unwrap();
    clock.advance(Duration::from_secs(30));
    assert!(eventually(WAIT, || calc.stats().composites == 1));
}

/// A recorded composite's session and generation.
type Stamped = (Option<Arc<str>>, Option<u64>);

/// Composites of a coordinated run carry the lock's fencing generation, a
/// newer one each run; uncoordinated runs carry none. Per session, every
/// active session is scored through the paged listing.
#[test]
fn coordinated_runs_stamp_the_lock_generation_on_their_composites() {
    use composite_metrics::metric::names;
    use composite_metrics::{CallbackSink, Category, CompositeScope, Metric};

    for coordinated in [true, false] {
        let clock = ManualClock::default();
        let seen: Arc<parking_lot::Mutex<Vec<Stamped>>> = Arc::default();
        let sink = {
            let seen = seen.clone();
            CallbackSink::new(move |metrics: &[Metric]| {
                seen.lock().extend(
                    metrics
                        .iter()
                        .filter(|m| m.is(Category::Composite, names::PRODUCTIVITY_SCORE))
                        .map(|m| (m.session.clone(), m.generation)),
                );
                Ok(())
            })
        };
        let config = BackgroundConfig::default().with_coordination(coordinated);
        let mut calc = MetricsCalculator::builder()
            .clock(clock.clone())
            .state(MemoryState::with_clock(clock.clone()))
            .sink(sink)
            .scope(CompositeScope::PerSession)
            .scheduler(Background::manual(config).unwrap())
            .build()
            .unwrap();
        for s in ["s1", "s2", "s3"] {
            calc.process(&tool_event(s)).unwrap();
            calc.process(&edit_event(s, true)).unwrap();
        }
        let mut generations = Vec::new();
        for _ in 0..2 {
            clock.advance(config.interval());
            assert_eq!(calc.scheduler_mut().poll(), 3);
            let run: Vec<_> = std::mem::take(&mut *seen.lock());
            let mut sessions: Vec<_> = run.iter().filter_map(|(s, _)| s.clone()).collect();
            sessions.sort();
            assert_eq!(sessions, ["s1", "s2", "s3"].map(Arc::<str>::from).to_vec());
            let gens: Vec<Option<u64>> = run.iter().map(|(_, g)| *g).collect();
            assert!(gens.windows(2).all(|w| w[0] == w[1]), "{gens:?}");
            generations.push(gens[0]);
        }
        if coordinated {
            let (g1, g2) = (generations[0].unwrap(), generations[1].unwrap());
            assert!(g2 > g1, "{g1} then {g2}");
        } else {
            assert_eq!(generations, vec![None, None]);
        }
    }
}
