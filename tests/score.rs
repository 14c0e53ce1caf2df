//! Issue 2, point 4: the productivity score.

use std::time::Duration;

use composite_metrics::clock::ManualClock;
use composite_metrics::{
    Category, CompositeInputs, ConfigError, Error, Event, EventBased, EventType, MemorySink,
    MemoryState, MetricsCalculator, ScoreWeights,
};
use proptest::prelude::*;

fn inputs(s: Option<f64>, a: Option<f64>, tool_runs: u64) -> CompositeInputs {
    CompositeInputs {
        success_rate: s,
        acceptance_rate: a,
        tool_runs,
    }
}

#[test]
fn default_formula_by_hand() {
    let w = ScoreWeights::default();
    // 50 + 0.25*S - 0.15*(100-S) + 0.10*A
    let cases = [
        (100.0, 100.0, 85.0), // 50 + 25 - 0 + 10
        (0.0, 0.0, 35.0),     // 50 + 0 - 15 + 0
        (50.0, 50.0, 60.0),   // 50 + 12.5 - 7.5 + 5
        (0.0, 100.0, 45.0),   // 50 - 15 + 10
        (100.0, 0.0, 75.0),   // 50 + 25
        (20.0, 40.0, 50.0 + 5.0 - 12.0 + 4.0),
    ];
    for (s, a, want) in cases {
        let got = w.score(&inputs(Some(s), Some(a), 7)).unwrap();
        assert!((got - want).abs() < 1e-9, "S={s} A={a}: {got} != {want}");
    }
    // By default tool counts do not move the score.
    assert_eq!(
        w.score(&inputs(Some(60.0), Some(30.0), 0)),
        w.score(&inputs(Some(60.0), Some(30.0), 1_000_000))
    );
}

#[test]
fn no_score_without_both_rates() {
    let w = ScoreWeights::default();
    assert_eq!(w.score(&inputs(None, Some(50.0), 10)), None);
    assert_eq!(w.score(&inputs(Some(50.0), None, 10)), None);
    assert_eq!(w.score(&inputs(None, None, 10)), None);
    assert_eq!(w.score(&CompositeInputs::default()), None);
}

#[test]
fn weights_are_configurable() {
    let w = ScoreWeights::default()
        .with_base(10.0)
        .with_success(0.5)
        .with_failure(0.0)
        .with_acceptance(0.2)
        .with_tool_volume(10.0)
        .validated()
        .unwrap();
    // 10 + 0.5*60 - 0 + 0.2*50 + 10*log10(1 + 99) = 10 + 30 + 10 + 20 = 70
    let got = w.score(&inputs(Some(60.0), Some(50.0), 99)).unwrap();
    assert!((got - 70.0).abs() < 1e-9, "{got}");
    // Clamped at both ends.
    let high = ScoreWeights::default().with_base(500.0);
    assert_eq!(high.score(&inputs(Some(0.0), Some(0.0), 0)), Some(100.0));
    let low = ScoreWeights::default()
        .with_base(-500.0)
        .validated()
        .unwrap();
    assert_eq!(low.score(&inputs(Some(100.0), Some(100.0), 0)), Some(0.0));
}

#[test]
fn negative_and_non_finite_weights_are_rejected() {
    type Set = fn(ScoreWeights, f64) -> ScoreWeights;
    let setters: [(&str, Set); 5] = [
        ("base", ScoreWeights::with_base),
        ("success", ScoreWeights::with_success),
        ("failure", ScoreWeights::with_failure),
        ("acceptance", ScoreWeights::with_acceptance),
        ("tool_volume", ScoreWeights::with_tool_volume),
    ];
    for (field, set) in setters {
        let mut bad = vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY];
        if field != "base" {
            bad.extend([-0.1, -1e-300, -5.0]);
        }
        bad.extend([1e10, 1e308, f64::MAX]);
        if field == "base" {
            bad.extend([-1e10, f64::MIN]);
        }
        for value in bad {
            let weights = set(ScoreWeights::default(), value);
            match weights.validated() {
                Err(ConfigError::OutOfRange { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field} = {value}: {other:?}"),
            }
            match MetricsCalculator::builder().weights(weights).build() {
                Err(Error::Config(ConfigError::OutOfRange { field: f, .. })) => {
                    assert_eq!(f, field)
                }
                other => panic!("builder with {field} = {value}: {other:?}"),
            }
        }
        // Zero is a valid weight.
        assert!(set(ScoreWeights::default(), 0.0).validated().is_ok());
    }
}

#[test]
fn configured_weights_reach_the_calculator() {
    let clock = ManualClock::default();
    let sink = MemorySink::new();
    let mut calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .state(MemoryState::with_clock(clock))
        .sink(sink.clone())
        .weights(ScoreWeights::default().with_acceptance(0.3))
        .scheduler(EventBased::every(3))
        .build()
        .unwrap();
    calc.process(&Event::tool_use("s", "bash").with_success(true))
        .unwrap();
    calc.process(&Event::tool_use("s", "bash").with_success(false))
        .unwrap();
    let m = calc
        .process(&Event::new(EventType::FileEdit, "s").with_accepted(true))
        .unwrap();
    // S = 50, A = 100: 50 + 12.5 - 7.5 + 30 = 85
    let score: Vec<_> = m
        .iter()
        .filter(|m| m.is(Category::Composite, "productivity_score"))
        .collect();
    assert_eq!(score.len(), 1);
    assert!((score[0].value - 85.0).abs() < 1e-9);
    assert_eq!(
        sink.latest_of(Category::Composite, "productivity_score"),
        Some(score[0].value)
    );
}

#[test]
fn calculator_emits_no_score_without_data() {
    let clock = ManualClock::default();
    let sink = MemorySink::new();
    let mut calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .state(MemoryState::with_clock(clock))
        .sink(sink.clone())
        .scheduler(EventBased::every(1))
        .build()
        .unwrap();
    let is_score = |m: &composite_metrics::Metric| m.is(Category::Composite, "productivity_score");
    // S known, A unknown.
    for _ in 0..5 {
        let m = calc
            .process(&Event::tool_use("s", "bash").with_success(true))
            .unwrap();
        assert!(!m.iter().any(is_score));
    }
    // Edits without a decision do not make A known.
    let m = calc.process(&Event::new(EventType::FileEdit, "s")).unwrap();
    assert!(!m.iter().any(is_score));
    assert_eq!(
        sink.latest_of(Category::Composite, "productivity_score"),
        None
    );
    assert_eq!(calc.compute_now(None).unwrap(), None);

    // A known, S unknown, on a fresh calculator.
    let mut other = MetricsCalculator::builder()
        .scheduler(EventBased::every(1))
        .build()
        .unwrap();
    for _ in 0..3 {
        let m = other
            .process(&Event::new(EventType::CodeChange, "s").with_accepted(true))
            .unwrap();
        assert!(!m.iter().any(is_score));
    }
    let m = other
        .process(&Event::tool_use("s", "bash").with_success(false))
        .unwrap();
    // Now both: S = 0, A = 100: 50 - 15 + 10 = 45.
    let scores: Vec<_> = m.iter().filter(|m| is_score(m)).collect();
    assert_eq!(scores.len(), 1);
    assert_eq!(scores[0].value, 45.0);
}

fn rate() -> impl Strategy<Value = f64> {
    prop_oneof![0.0f64..=100.0, Just(0.0), Just(100.0)]
}

fn weight() -> impl Strategy<Value = f64> {
    prop_oneof![
        0.0f64..2.0,
        Just(0.0),
        0.0f64..1e6,
        // Up to the largest weight validation accepts.
        0.0f64..=ScoreWeights::MAX_WEIGHT,
        Just(ScoreWeights::MAX_WEIGHT),
    ]
}

fn arb_weights() -> impl Strategy<Value = ScoreWeights> {
    (
        prop_oneof![
            -200.0f64..200.0,
            -ScoreWeights::MAX_WEIGHT..=ScoreWeights::MAX_WEIGHT
        ],
        weight(),
        weight(),
        weight(),
        weight(),
    )
        .prop_map(|(b, s, f, a, t)| {
            ScoreWeights::default()
                .with_base(b)
                .with_success(s)
                .with_failure(f)
                .with_acceptance(a)
                .with_tool_volume(t)
        })
        .prop_filter("valid weights", |w| w.validated().is_ok())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn score_is_always_within_bounds(w in arb_weights(), s in rate(), a in rate(), runs in any::<u64>()) {
        let score = w.score(&inputs(Some(s), Some(a), runs)).unwrap();
        prop_assert!((0.0..=100.0).contains(&score), "{:?} S={} A={}: {}", w, s, a, score);
    }

    #[test]
    fn default_score_is_within_bounds(s in rate(), a in rate(), runs in any::<u64>()) {
        let score = ScoreWeights::default().score(&inputs(Some(s), Some(a), runs)).unwrap();
        prop_assert!((0.0..=100.0).contains(&score));
        let by_hand = (50.0 + 0.25 * s - 0.15 * (100.0 - s) + 0.10 * a).clamp(0.0, 100.0);
        prop_assert!((score - by_hand).abs() < 1e-9);
    }

    #[test]
    fn score_never_decreases_when_s_or_a_grows(
        w in prop_oneof![Just(ScoreWeights::default()), arb_weights()],
        s1 in rate(), s2 in rate(), a1 in rate(), a2 in rate(), runs in 0u64..1_000_000,
    ) {
        let (s_lo, s_hi) = if s1 <= s2 { (s1, s2) } else { (s2, s1) };
        let (a_lo, a_hi) = if a1 <= a2 { (a1, a2) } else { (a2, a1) };
        let score = |s, a| w.score(&inputs(Some(s), Some(a), runs)).unwrap();
        prop_assert!(score(s_lo, a_lo) <= score(s_hi, a_lo), "S grows: {:?}", w);
        prop_assert!(score(s_lo, a_lo) <= score(s_lo, a_hi), "A grows: {:?}", w);
        prop_assert!(score(s_lo, a_lo) <= score(s_hi, a_hi), "both grow: {:?}", w);
    }

    #[test]
    fn score_is_none_when_a_rate_is_missing(
        w in arb_weights(), s in prop::option::of(rate()), a in prop::option::of(rate()), runs in any::<u64>()
    ) {
        let got = w.score(&inputs(s, a, runs));
        prop_assert_eq!(got.is_some(), s.is_some() && a.is_some());
    }
}

#[test]
fn the_score_follows_the_clock_stamp() {
    let clock = ManualClock::new(Duration::from_secs(5_000));
    let mut calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .state(MemoryState::with_clock(clock.clone()))
        .build()
        .unwrap();
    calc.process(&Event::tool_use("s", "bash").with_success(true))
        .unwrap();
    calc.process(&Event::new(EventType::FileEdit, "s").with_accepted(false))
        .unwrap();
    clock.advance(Duration::from_secs(7));
    let m = calc.compute_now(None).unwrap().unwrap();
    assert_eq!(m.at, Duration::from_secs(5_007));
    // S = 100, A = 0: 75.
    assert_eq!(m.value, 75.0);
}

/// Weights so large that the formula overflows (1e308 * 50 is infinite, and
/// inf - inf is NaN) must be rejected, or else still give a bounded score.
#[test]
fn huge_valid_weights_still_give_a_bounded_score() {
    let huge = ScoreWeights::default()
        .with_success(1e308)
        .with_failure(1e308);
    if let Ok(w) = huge.validated() {
        for s in [0.0, 50.0, 100.0] {
            let score = w.score(&inputs(Some(s), Some(50.0), 0)).unwrap();
            assert!((0.0..=100.0).contains(&score), "S={s}: {score}");
        }
    }
    let huge = ScoreWeights::default()
        .with_base(f64::MAX)
        .with_acceptance(f64::MAX);
    if let Ok(w) = huge.validated() {
        let score = w.score(&inputs(Some(50.0), Some(50.0), 0)).unwrap();
        assert!((0.0..=100.0).contains(&score), "{score}");
    }
}
