//! `CompositeScope::PerSession`: decisions kept per session id (and evicted
//! when idle), the score read per session, Background covering every session.

mod common;

use std::time::Duration;

use common::{edit_event, tool_event, Recording};
use composite_metrics::clock::ManualClock;
use composite_metrics::metric::names;
use composite_metrics::{
    Background, BackgroundConfig, CompositeScope, Event, EventBased, HybridLock, HybridLockConfig,
    MemorySink, Metric, MetricsCalculator,
};

fn scores(metrics: &[Metric]) -> Vec<&Metric> {
    metrics
        .iter()
        .filter(|m| m.name == names::PRODUCTIVITY_SCORE)
        .collect()
}

#[test]
fn event_based_counts_per_session() {
    let clock = ManualClock::default();
    let mut calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .scope(CompositeScope::PerSession)
        .scheduler(EventBased::every(3))
        .build()
        .unwrap();
    // One decision each first, so the scores have acceptance data.
    calc.process(&edit_event("a", true)).unwrap();
    calc.process(&edit_event("b", true)).unwrap();
    let mut fired = Vec::new();
    for (i, s) in ["a", "b", "a", "b", "a", "b"].iter().enumerate() {
        let out = calc.process(&tool_event(s)).unwrap();
        for m in scores(&out) {
            fired.push((i, m.session.as_deref().map(str::to_owned)));
        }
    }
    // Each session's own 3rd event fires (a global count would fire at i = 0 and 3).
    assert_eq!(fired, vec![(2, Some("a".into())), (3, Some("b".into()))]);
}

#[test]
fn per_session_score_reads_that_sessions_rates() {
    let mut calc = MetricsCalculator::builder()
        .scope(CompositeScope::PerSession)
        .scheduler(EventBased::every(2))
        .build()
        .unwrap();
    calc.process(&edit_event("good", true)).unwrap();
    let good = calc.process(&tool_event("good")).unwrap();
    calc.process(&edit_event("bad", false)).unwrap();
    let bad = calc
        .process(&Event::tool_use("bad", "bash").with_success(false))
        .unwrap();
    // good: S = 100, A = 100 -> 50 + 25 + 10 = 85; bad: S = 0, A = 0 -> 50 - 15 = 35.
    assert_eq!(scores(&good)[0].value, 85.0);
    assert_eq!(scores(&bad)[0].value, 35.0);
}

#[test]
fn idle_sessions_are_evicted_from_the_scheduler() {
    let clock = ManualClock::default();
    let mut calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .scope(CompositeScope::PerSession)
        .scheduler(EventBased::every(3))
        .build()
        .unwrap();
    calc.process(&tool_event("a")).unwrap();
    calc.process(&tool_event("a")).unwrap();
    clock.advance(Duration::from_secs(2 * 3600)); // idle: forgotten
    calc.process(&tool_event("a")).unwrap();
    assert_eq!(calc.stats().composites, 0, "the count survived eviction");
    calc.process(&tool_event("a")).unwrap();
    calc.process(&tool_event("a")).unwrap();
    assert_eq!(calc.stats().composites, 1);
}

#[test]
fn hybrid_lock_per_session_locks_do_not_block_each_other() {
    let clock = ManualClock::default();
    let backend = Recording::new(&clock);
    let build = || {
        MetricsCalculator::builder()
            .clock(clock.clone())
            .state(backend.clone())
            .scope(CompositeScope::PerSession)
            .scheduler(HybridLock::new(HybridLockConfig::default()).unwrap())
            .build()
            .unwrap()
    };
    let (mut w1, mut w2) = (build(), build());
    w1.process(&tool_event("a")).unwrap(); // first for session a: computes
    w2.process(&tool_event("b")).unwrap(); // session b has its own marker: computes
    w2.process(&tool_event("a")).unwrap(); // session a computed just now: refused
    assert_eq!(w1.stats().composites + w2.stats().composites, 2);
    clock.advance(Duration::from_secs(30));
    w2.process(&tool_event("a")).unwrap();
    assert_eq!(w2.stats().composites, 2);
}

#[test]
fn background_recomputes_every_active_session() {
    let clock = ManualClock::default();
    let sink = MemorySink::new();
    let mut calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .sink(sink.clone())
        .scope(CompositeScope::PerSession)
        .scheduler(Background::manual(BackgroundConfig::default()).unwrap())
        .build()
        .unwrap();
    for s in ["a", "b", "c"] {
        calc.process(&tool_event(s)).unwrap();
        calc.process(&edit_event(s, true)).unwrap();
    }
    calc.process(&Event::new(composite_metrics::EventType::SessionEnd, "c"))
        .unwrap();
    clock.advance(Duration::from_secs(30));
    assert_eq!(
        calc.scheduler_mut().poll(),
        2,
        "sessions a and b are active, c ended"
    );
    let scored = sink
        .series(&composite_metrics::sink::SeriesKey::new(
            composite_metrics::Category::Composite,
            names::PRODUCTIVITY_SCORE,
        ))
        .len();
    assert_eq!(scored, 2);
}
