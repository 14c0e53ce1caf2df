//! The simulator against analytic expectations (issue 5, point 4), and its
//! determinism. Sized to run in seconds in a debug build.

use std::time::Duration;

use composite_metrics::sim::{
    Arrivals, LoadProfile, MemoryBackends, Phase, RealTimeRunner, RunReport, SimConfig, Simulator,
    Strategy,
};
use composite_metrics::{BackgroundConfig, HybridLockConfig};

const SEED: u64 = 42;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn sim(workers: usize) -> Simulator {
    Simulator::new(SimConfig::default().with_workers(workers).with_seed(SEED))
        .expect("valid simulator config")
}

fn run(sim: &Simulator, strategy: Strategy, profile: &LoadProfile) -> RunReport {
    let report = sim.run(&strategy, profile).expect("simulation runs");
    assert_eq!(report.event_errors, 0, "{}: event errors", report.strategy);
    assert_eq!(
        report.lag.reflected + report.lag.unreflected,
        report.events,
        "every event is reflected or counted as unreflected"
    );
    report
}

/// Arrival times per worker.
fn per_worker(profile: &LoadProfile, workers: usize) -> Vec<Vec<Duration>> {
    let mut out = vec![Vec::new(); workers];
    for (at, w) in Arrivals::new(profile, workers, SEED) {
        out[w].push(at);
    }
    out
}

fn largest_gap(times: &[Duration]) -> Duration {
    times
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default()
}

#[test]
fn event_based_every_100_with_3_workers_at_1000_per_sec_gives_10_per_sec() {
    let profile = LoadProfile::poisson(1_000.0, secs(30.0));
    let report = run(&sim(3), Strategy::EventBased { every: 100 }, &profile);
    // Exactly one per 100 events of each worker...
    let expected: u64 = per_worker(&profile, 3)
        .iter()
        .map(|t| t.len() as u64 / 100)
        .sum();
    assert_eq!(report.calcs, expected);
    assert_eq!(report.event_path_calcs, report.calcs);
    // ...which is 10 per second within Poisson noise.
    let rate = report.calcs_per_sec();
    assert!((9.5..=10.5).contains(&rate), "event-based: {rate}/s");
    // One composite input read per calculation, no coordination.
    assert_eq!(report.ops.composite_reads, report.calcs);
    assert_eq!(report.ops.coordination_ops(), 0);
}

#[test]
fn time_based_computes_on_every_event_of_a_matching_second() {
    let config = SimConfig::default().with_workers(3).with_seed(SEED);
    let start = config.start();
    let sim = Simulator::new(config).expect("valid");
    let strategy = Strategy::TimeBased { period: secs(10.0) };
    let matching = |profile: &LoadProfile| {
        Arrivals::new(profile, 3, SEED)
            .filter(|(at, _)| (start + *at).as_secs() % 10 == 0)
            .count() as u64
    };

    // High load: one calculation per event in every tenth second, so about
    // rate / period per second (1000 / 10 = 100/s), 30-90/s in the note.
    let high = LoadProfile::poisson(1_000.0, secs(30.0));
    let report = run(&sim, strategy, &high);
    assert_eq!(report.calcs, matching(&high));
    let rate = report.calcs_per_sec();
    assert!(
        (90.0..=110.0).contains(&rate),
        "time-based at 1000/s: {rate}/s"
    );
    assert!(
        report
            .calc_starts
            .iter()
            .all(|t| (start + *t).as_secs() % 10 == 0),
        "only in matching seconds"
    );

    // Low load: only the events that happen to fall in a matching second,
    // about one in ten, so rarely any calculation.
    let low = LoadProfile::poisson(1.0 / 60.0, secs(4.0 * 3_600.0));
    let report = run(&sim, strategy, &low);
    assert_eq!(report.calcs, matching(&low));
    assert!(
        report.calcs * 5 < report.events,
        "{} calcs for {} events",
        report.calcs,
        report.events
    );
    assert!(report.calcs_per_sec() < 1.0 / 60.0);
}

#[test]
fn hybrid_lock_ceiling_and_floor_hold_at_every_rate() {
    let sim = sim(3);
    // Durations scaled down (1 s ceiling, 2 s floor) so a debug build runs
    // many intervals at 10 000 events/s in a second or two; plus the defaults
    // at the slow rates, where the floor matters.
    let scaled = HybridLockConfig::default()
        .with_min_interval(secs(1.0))
        .with_max_staleness(secs(2.0))
        .with_lease(secs(0.5));
    let cases = [
        (scaled, 10_000.0, 15.0),
        (scaled, 1_000.0, 30.0),
        (scaled, 10.0, 120.0),
        (scaled, 0.5, 1_200.0),
        (HybridLockConfig::default(), 1_000.0, 180.0),
        (HybridLockConfig::default(), 10.0, 600.0),
        (HybridLockConfig::default(), 1.0 / 60.0, 4.0 * 3_600.0),
    ];
    for (config, rate, duration) in cases {
        let profile = LoadProfile::poisson(rate, secs(duration));
        let report = run(&sim, Strategy::HybridLock(config), &profile);
        let label = format!("hybrid-lock {config:?} at {rate}/s");
        assert!(report.calcs > 0, "{label}: no calculation");

        // G1: never more than one calculation per min_interval, all workers.
        assert!(
            report.max_calcs_within(config.min_interval()) <= 1,
            "{label}: two calculations within min_interval"
        );
        assert!(report.min_gap.is_none_or(|g| g >= config.min_interval()));
        assert_eq!(report.overlapping_calcs, 0, "{label}: overlapping");

        // G2: an event is reflected within max_staleness plus the gap to the
        // next event. Staleness is tracked by each worker on its own events,
        // so the gap that bounds it is the largest between two events of one
        // worker.
        let gap = per_worker(&profile, 3)
            .iter()
            .map(|t| largest_gap(t))
            .max()
            .unwrap_or_default();
        let max = report.lag.max.unwrap_or_default();
        assert!(
            max <= config.max_staleness() + gap,
            "{label}: max lag {max:?} > {:?} + {gap:?}",
            config.max_staleness()
        );
        // At high rates that is the staleness floor itself, within one gap.
        if rate >= 1_000.0 {
            assert!(
                max <= config.max_staleness() + secs(0.1),
                "{label}: {max:?}"
            );
        }
    }
}

#[test]
fn background_with_coordination_computes_once_per_interval_at_every_rate_idle_included() {
    let sim = sim(3);
    let interval = secs(30.0);
    let strategy = Strategy::Background(
        BackgroundConfig::default()
            .with_interval(interval)
            .with_coordination(true),
    );
    let profiles = [
        LoadProfile::poisson(1.0 / 60.0, secs(2.0 * 3_600.0)),
        LoadProfile::poisson(10.0, secs(300.0)),
        LoadProfile::poisson(1_000.0, secs(120.0)),
        LoadProfile::poisson(10_000.0, secs(30.0)),
        LoadProfile::bursty(2_000.0, secs(10.0), secs(110.0), secs(360.0)),
        LoadProfile::custom("idle", vec![Phase::new(secs(600.0), 0.0)]),
    ];
    for profile in &profiles {
        let report = run(&sim, strategy, profile);
        let ticks = (profile.duration().as_secs_f64() / interval.as_secs_f64()).floor() as u64;
        assert_eq!(report.calcs, ticks, "{}: one per interval", profile.name());
        assert_eq!(report.event_path_calcs, 0, "nothing on the event path");
        assert_eq!(report.max_calcs_within(interval), 1);
        assert_eq!(report.overlapping_calcs, 0);
        // Freshness: every event is read by the next tick.
        if let Some(max) = report.lag.max {
            assert!(max <= interval, "{}: max lag {max:?}", profile.name());
        }
        assert!(report
            .lag
            .oldest_unreflected
            .is_none_or(|age| age < interval));
    }
    // With no events at all, every calculation is an idle one.
    let idle = run(&sim, strategy, &profiles[5]);
    assert_eq!(idle.events, 0);
    assert_eq!(idle.idle_calcs, idle.calcs);
}

#[test]
fn background_without_coordination_computes_once_per_worker_per_interval() {
    let strategy = Strategy::Background(BackgroundConfig::default().with_interval(secs(30.0)));
    let profile = LoadProfile::poisson(10.0, secs(300.0));
    let report = run(&sim(3), strategy, &profile);
    assert_eq!(report.calcs, 3 * 10);
    assert_eq!(report.overlapping_calcs, 2 * 10, "the three start together");
}

#[test]
fn never_computes_and_reflects_nothing() {
    let profile = LoadProfile::poisson(100.0, secs(30.0));
    let report = run(&sim(3), Strategy::Never, &profile);
    assert_eq!(report.calcs, 0);
    assert_eq!(report.ops.composite_ops(), 0);
    assert_eq!(report.lag.reflected, 0);
    assert_eq!(report.lag.unreflected, report.events);
}

#[test]
fn same_seed_same_numbers() {
    let profile = LoadProfile::parse("mixed", "20s@500,30s@0,10s@2000").expect("valid profile");
    let strip = |mut r: RunReport| {
        r.process_time = Duration::ZERO;
        r.process_outliers = 0;
        r.wall_time = Duration::ZERO;
        r
    };
    for strategy in Strategy::defaults() {
        let a = strip(run(&sim(3), strategy, &profile));
        let b = strip(run(&sim(3), strategy, &profile));
        assert_eq!(a, b, "{strategy}: same seed, different numbers");
    }
    let other = Simulator::new(SimConfig::default().with_seed(SEED + 1)).expect("valid");
    let a = run(&sim(3), Strategy::EventBased { every: 100 }, &profile);
    let b = run(&other, Strategy::EventBased { every: 100 }, &profile);
    assert_ne!(a.calc_starts, b.calc_starts, "another seed, other arrivals");
}

#[test]
fn user_profiles_parse_and_run() {
    let profile =
        LoadProfile::parse("ramp", "10s@10, 10s@1000, 1m@0, 500ms@1/min").expect("valid profile");
    assert_eq!(profile.duration(), secs(80.5));
    let report = run(&sim(2), Strategy::EventBased { every: 10 }, &profile);
    assert!(report.events > 9_000);
    assert!(LoadProfile::parse("bad", "10s").is_err());
    assert!(LoadProfile::parse("bad", "10parsecs@5").is_err());
    assert!(LoadProfile::parse("bad", "10s@-5").is_err());
    assert!(LoadProfile::parse("empty", "").is_err());
}

#[test]
fn real_time_runner_runs_on_the_memory_backend() {
    // 30 simulated seconds at 100 events/s, compressed 100 times: 0.3 s.
    let runner =
        RealTimeRunner::new(SimConfig::default(), 0.01, MemoryBackends).expect("valid runner");
    let profile = LoadProfile::poisson(100.0, secs(30.0));
    let report = runner
        .run(&Strategy::EventBased { every: 50 }, &profile)
        .expect("runs");
    assert_eq!(report.mode, "real-time");
    assert_eq!(report.events, Arrivals::new(&profile, 3, 42).count() as u64);
    let expected: u64 = per_worker(&profile, 3)
        .iter()
        .map(|t| t.len() as u64 / 50)
        .sum();
    assert_eq!(report.calcs, expected);
    assert_eq!(report.ops.composite_reads, expected);
    assert!(RealTimeRunner::new(SimConfig::default(), 0.0, MemoryBackends).is_err());
}

#[test]
fn lockstep_runs_give_the_numbers_of_separate_runs() {
    let profile = LoadProfile::parse("mixed", "20s@500,40s@0,10s@2000").expect("valid profile");
    let strip = |mut r: RunReport| {
        r.process_time = Duration::ZERO;
        r.process_outliers = 0;
        r.wall_time = Duration::ZERO;
        r
    };
    let sim = sim(3);
    let together = sim
        .run_all(&Strategy::defaults(), &profile)
        .expect("simulation runs");
    for (strategy, lockstep) in Strategy::defaults().iter().zip(together) {
        let alone = run(&sim, *strategy, &profile);
        assert_eq!(strip(lockstep), strip(alone), "{strategy}");
    }
}
