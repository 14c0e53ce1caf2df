//! The window building blocks against plain reference models, bit for bit.

use composite_metrics::window::{
    nearest_rank, DecisionWindow, LatencySummary, LatencyWindow, RateWindow, WINDOW,
};
use proptest::prelude::*;

/// The documented mean: each value in whole nanoseconds (`ms * 1e6 + 0.5`,
/// truncated), summed exactly, over the count, in milliseconds.
fn exact_mean_ms(values: &[f64]) -> f64 {
    let ns: u128 = values.iter().map(|v| (v * 1e6 + 0.5).floor() as u128).sum();
    ns as f64 / (values.len() as f64 * 1e6)
}

proptest! {
    #[test]
    fn latency_window_matches_a_vec_of_the_last_100(values in proptest::collection::vec(
        prop_oneof![0.0f64..10.0, Just(5.0), 0.0f64..1e6], 1..400)) {
        let mut w = LatencyWindow::new();
        let mut model: Vec<f64> = Vec::new();
        for v in values {
            w.push(v);
            model.push(v);
            if model.len() > WINDOW {
                model.remove(0);
            }
            let s = w.summary().unwrap();
            let mut sorted = model.clone();
            sorted.sort_by(f64::total_cmp);
            let rank = |p: usize| sorted[(p * sorted.len()).div_ceil(100).max(1) - 1];
            prop_assert_eq!(s.count, model.len());
            prop_assert_eq!(s.p50.to_bits(), rank(50).to_bits());
            prop_assert_eq!(s.p95.to_bits(), rank(95).to_bits());
            prop_assert_eq!(s.p99.to_bits(), rank(99).to_bits());
            let avg = exact_mean_ms(&model);
            prop_assert_eq!(s.avg.to_bits(), avg.to_bits());
            // A faithful mean: within a nanosecond and a hair of the float one.
            let float_avg = model.iter().sum::<f64>() / model.len() as f64;
            prop_assert!((s.avg - float_avg).abs() <= 1e-6 + 1e-12 * float_avg);
            prop_assert_eq!(w.iter().collect::<Vec<_>>(), model.clone());
        }
    }

    #[test]
    fn decision_window_matches_a_vec_of_the_last_100(decisions in proptest::collection::vec(any::<bool>(), 1..400)) {
        let mut w = DecisionWindow::new();
        let mut model = Vec::new();
        for d in decisions {
            w.push(d);
            model.push(d);
            if model.len() > WINDOW {
                model.remove(0);
            }
            let accepted = model.iter().filter(|d| **d).count();
            prop_assert_eq!(w.len(), model.len());
            prop_assert_eq!(w.accepted(), accepted);
            prop_assert_eq!(w.acceptance_rate(), Some(100.0 * accepted as f64 / model.len() as f64));
        }
    }

    #[test]
    fn latency_mean_is_the_same_in_any_order_and_finite(
        mut values in proptest::collection::vec(prop_oneof![0.0f64..1e3, 0.0f64..f64::MAX], 1..=100),
        seed in any::<u64>(),
    ) {
        let summary = |vals: &[f64]| {
            let mut w = LatencyWindow::new();
            vals.iter().for_each(|v| w.push(*v));
            w.summary().unwrap()
        };
        let a = summary(&values);
        // A deterministic shuffle.
        let n = values.len();
        let mut x = seed | 1;
        for i in (1..n).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let b = summary(&values);
        prop_assert_eq!(a.avg.to_bits(), b.avg.to_bits());
        prop_assert!(a.avg.is_finite());
        prop_assert_eq!(a.avg.to_bits(), LatencySummary::from_values(&values).unwrap().avg.to_bits());
    }

    #[test]
    fn rate_window_counts_later_seconds_too(gaps in proptest::collection::vec(prop_oneof![0u64..5, 50u64..130], 1..300), ahead in 0u64..130) {
        let mut w = RateWindow::new();
        let mut seconds = Vec::new();
        let mut now = 1_000u64;
        for g in gaps {
            now += g;
            w.record(now);
            seconds.push(now);
            let later = now + ahead;
            let expected = seconds.iter().filter(|s| **s + 60 > later).count() as u64;
            prop_assert_eq!(w.count(later), expected);
            // A clock behind the newest second counts up to the newest.
            let behind = seconds.iter().filter(|s| **s + 60 > now).count() as u64;
            prop_assert_eq!(w.count(now.saturating_sub(ahead)), behind);
        }
    }

    #[test]
    fn rate_window_counts_the_last_60_seconds(gaps in proptest::collection::vec(0u64..5, 1..500)) {
        let mut w = RateWindow::new();
        let mut seconds = Vec::new();
        let mut now = 1_000u64;
        for g in gaps {
            now += g;
            w.record(now);
            seconds.push(now);
            let expected = seconds.iter().filter(|s| **s + 60 > now).count() as u64;
            prop_assert_eq!(w.count(now), expected);
        }
    }
}

#[test]
fn nearest_rank_of_one_value_is_that_value() {
    assert_eq!(nearest_rank(&[3.5], 1), 3.5);
    assert_eq!(nearest_rank(&[3.5], 99), 3.5);
    assert!(nearest_rank(&[], 50).is_nan());
}

#[test]
fn duplicates_are_kept_and_evicted_one_by_one() {
    let mut w = LatencyWindow::new();
    for _ in 0..100 {
        w.push(7.0);
    }
    w.push(1.0);
    let s = w.summary().unwrap();
    assert_eq!((s.count, s.p50, s.p99), (100, 7.0, 7.0));
    assert_eq!(w.iter().filter(|v| *v == 7.0).count(), 99);
    assert_eq!(nearest_rank(&[1.0, 7.0], 50), 1.0);
}

#[test]
fn latency_mean_of_huge_values_is_finite_and_capped() {
    use composite_metrics::window::MAX_EXACT_MS;
    let mut w = LatencyWindow::new();
    for _ in 0..150 {
        w.push(f64::MAX);
    }
    let s = w.summary().unwrap();
    assert_eq!(s.p50, f64::MAX);
    assert_eq!(s.avg, MAX_EXACT_MS);
    // Evicting the huge values brings the exact sum back down.
    for _ in 0..100 {
        w.push(0.25);
    }
    assert_eq!(w.summary().unwrap().avg, 0.25);
}
