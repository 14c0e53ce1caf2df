//! Issue 11 point 1: `composite_metrics_seconds_since_last_calculation`.
//!
//! The gauge follows the latest calculation anywhere in the process, so this
//! binary holds exactly one test (no other test's calculations can move it).

use std::time::Duration;

use composite_metrics::clock::ManualClock;
use composite_metrics::telemetry::names;
use composite_metrics::{Error, Event, EventBased, MemoryState, MetricsCalculator};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::MetricKind;

fn since(snapshotter: &Snapshotter) -> Option<f64> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .find(|(ck, ..)| {
            ck.kind() == MetricKind::Gauge && ck.key().name() == names::SECONDS_SINCE_CALCULATION
        })
        .map(|(.., value)| match value {
            DebugValue::Gauge(v) => v.into_inner(),
            other => panic!("not a gauge: {other:?}"),
        })
}

#[test]
fn seconds_since_the_last_calculation_follow_the_calculators_clock() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let clock = ManualClock::new(Duration::from_secs(1_000));
    metrics::with_local_recorder(&recorder, || {
        let mut calc = MetricsCalculator::builder()
            .clock(clock.clone())
            .state(MemoryState::with_clock(clock.clone()))
            .scheduler(EventBased::every(2))
            .build()?;
        let event = || Event::tool_use("s1", "bash").with_success(true);
        calc.process(&event())?; // no calculation yet: the gauge is not set
        assert_eq!(since(&snapshotter), Some(0.0));
        calc.process(&event())?; // calculates at 1000 s
        clock.advance(Duration::from_secs(7));
        calc.process(&event())?;
        assert_eq!(since(&snapshotter), Some(7.0));
        clock.advance(Duration::from_millis(5_500));
        calc.process(&event())?; // 12.5 s since; then calculates at 1012.5 s
        assert_eq!(since(&snapshotter), Some(12.5));
        clock.advance(Duration::from_secs(3));
        calc.process(&event())?;
        assert_eq!(since(&snapshotter), Some(3.0));
        assert_eq!(calc.stats().composites, 2);
        Ok::<_, Error>(())
    })
    .expect("run");
}
