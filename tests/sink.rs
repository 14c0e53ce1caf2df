//! Issue 2, point 9: metric sinks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use composite_metrics::clock::ManualClock;
use composite_metrics::metric::names;
use composite_metrics::sink::SeriesKey;
use composite_metrics::{
    CallbackSink, Category, Event, EventBased, EventType, MemorySink, MemoryState, Metric,
    MetricSink, MetricsCalculator, Never, SinkError,
};

fn at(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn memory_sink_keeps_the_latest_value_and_a_bounded_series() {
    let sink = MemorySink::with_capacity(5);
    assert!(sink.is_empty());
    for i in 0..8u64 {
        sink.record(&[
            Metric::new(
                Category::Realtime,
                names::EVENTS_PER_SECOND,
                i as f64,
                at(i),
            ),
            Metric::new(
                Category::Tools,
                names::TOOL_FREQUENCY,
                10.0 * i as f64,
                at(i),
            )
            .with_tool(Arc::from(if i % 2 == 0 { "bash" } else { "grep" })),
        ])
        .unwrap();
    }
    let eps = SeriesKey::new(Category::Realtime, names::EVENTS_PER_SECOND);
    assert_eq!(sink.latest(&eps), Some(7.0));
    assert_eq!(
        sink.latest_of(Category::Realtime, names::EVENTS_PER_SECOND),
        Some(7.0)
    );
    let points: Vec<(Duration, f64)> = (3..8).map(|i| (at(i), i as f64)).collect();
    assert_eq!(sink.series(&eps), points, "the last 5, oldest first");
    // Per-tool series are separate.
    let bash = SeriesKey::new(Category::Tools, names::TOOL_FREQUENCY).with_tool("bash");
    let grep = SeriesKey::new(Category::Tools, names::TOOL_FREQUENCY).with_tool("grep");
    assert_eq!(sink.latest(&bash), Some(60.0));
    assert_eq!(sink.latest(&grep), Some(70.0));
    assert_eq!(sink.series(&bash).len(), 4);
    assert_eq!(
        sink.latest_of(Category::Tools, names::TOOL_FREQUENCY),
        None,
        "no unlabelled series"
    );
    assert_eq!(sink.len(), 3);
    let mut want = vec![eps.clone(), bash, grep];
    want.sort();
    assert_eq!(sink.keys(), want);
    // Unknown series.
    assert_eq!(
        sink.latest_of(Category::Composite, names::PRODUCTIVITY_SCORE),
        None
    );
    assert!(sink
        .series(&SeriesKey::new(
            Category::Composite,
            names::PRODUCTIVITY_SCORE
        ))
        .is_empty());
    // Clones share one store.
    let clone = sink.clone();
    clone
        .record(&[Metric::new(
            Category::Realtime,
            names::EVENTS_PER_SECOND,
            99.0,
            at(9),
        )])
        .unwrap();
    assert_eq!(sink.latest(&eps), Some(99.0));
    assert_eq!(sink.series(&eps).len(), 5);
}

#[test]
fn memory_sink_capacity_is_at_least_one_and_defaults_to_1000() {
    let sink = MemorySink::with_capacity(0);
    for i in 0..3 {
        sink.record(&[Metric::new(
            Category::Realtime,
            names::EVENTS_PER_SECOND,
            i as f64,
            at(i),
        )])
        .unwrap();
    }
    let key = SeriesKey::new(Category::Realtime, names::EVENTS_PER_SECOND);
    assert_eq!(sink.series(&key), [(at(2), 2.0)]);

    let sink = MemorySink::new();
    for i in 0..1_500 {
        sink.record(&[Metric::new(
            Category::Realtime,
            names::EVENTS_PER_SECOND,
            i as f64,
            at(i),
        )])
        .unwrap();
    }
    let series = sink.series(&key);
    assert_eq!(series.len(), 1_000);
    assert_eq!(series[0], (at(500), 500.0));
}

#[test]
fn per_session_values_share_one_series() {
    let clock = ManualClock::default();
    let sink = MemorySink::new();
    let mut calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .state(MemoryState::with_clock(clock))
        .sink(sink.clone())
        .build()
        .unwrap();
    for i in 0..50u64 {
        calc.process(&Event::new(EventType::UserPrompt, format!("s{i}")).with_prompt_length(i))
            .unwrap();
    }
    let key = SeriesKey::new(Category::Session, names::PROMPT_LENGTH);
    assert_eq!(sink.latest(&key), Some(49.0));
    assert_eq!(sink.series(&key).len(), 50);
    // prompt_length, prompts_per_session, events_per_second.
    assert_eq!(sink.len(), 3);
}

#[test]
fn memory_sink_holds_what_the_calculator_returned() {
    let clock = ManualClock::default();
    let sink = MemorySink::new();
    let mut calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .state(MemoryState::with_clock(clock.clone()))
        .sink(sink.clone())
        .scheduler(EventBased::every(2))
        .build()
        .unwrap();
    let mut last: std::collections::HashMap<SeriesKey, (Duration, f64)> = Default::default();
    let events = [
        Event::tool_use("s", "bash")
            .with_duration_ms(3.0)
            .with_success(true),
        Event::new(EventType::FileEdit, "s").with_accepted(true),
        Event::tool_use("s", "grep")
            .with_duration_ms(9.0)
            .with_success(false),
        Event::new(EventType::CodeChange, "s").with_accepted(false),
    ];
    for e in &events {
        clock.advance(Duration::from_secs(1));
        for m in calc.process(e).unwrap() {
            last.insert(SeriesKey::of(&m), (m.at, m.value));
        }
    }
    assert!(last.contains_key(&SeriesKey::new(
        Category::Composite,
        names::PRODUCTIVITY_SCORE
    )));
    let mut keys: Vec<_> = last.keys().cloned().collect();
    keys.sort();
    assert_eq!(sink.keys(), keys);
    for (key, (t, v)) in &last {
        assert_eq!(sink.latest(key), Some(*v), "{key:?}");
        assert_eq!(sink.series(key).last(), Some(&(*t, *v)));
    }
}

#[test]
fn callback_sink_receives_every_batch() {
    let (tx, rx) = mpsc::channel::<Vec<Metric>>();
    let sink = CallbackSink::new(move |m: &[Metric]| {
        tx.send(m.to_vec())
            .map_err(|e| SinkError::new("channel", e.to_string()))
    });
    let mut calc = MetricsCalculator::builder()
        .sink(sink)
        .scheduler(EventBased::every(3))
        .build()
        .unwrap();
    let mut sent = Vec::new();
    for i in 0..10 {
        sent.push(
            calc.process(&Event::tool_use("s", "bash").with_duration_ms(f64::from(i)))
                .unwrap(),
        );
    }
    sent.push(
        calc.process_batch(&[Event::tool_use("s", "a"), Event::tool_use("s", "b")])
            .unwrap(),
    );
    drop(calc);
    let received: Vec<Vec<Metric>> = rx.iter().collect();
    assert_eq!(received, sent);
    assert_eq!(received.len(), 11);
}

/// A host's own sink: counts metrics by category.
#[derive(Debug, Default)]
struct ByCategory {
    tools: AtomicU64,
    realtime: AtomicU64,
    calls: AtomicU64,
}

impl MetricSink for ByCategory {
    fn record(&self, metrics: &[Metric]) -> Result<(), SinkError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        for m in metrics {
            match m.category {
                Category::Tools => self.tools.fetch_add(1, Ordering::Relaxed),
                Category::Realtime => self.realtime.fetch_add(1, Ordering::Relaxed),
                _ => 0,
            };
        }
        Ok(())
    }
}

#[test]
fn a_custom_sink_works_shared_and_boxed() {
    let sink = Arc::new(ByCategory::default());
    let mut calc = MetricsCalculator::builder()
        .sink(Arc::clone(&sink))
        .scheduler(Never)
        .build()
        .unwrap();
    for _ in 0..4 {
        // A tool run with duration, outcome and name: p50, p95, p99, avg,
        // overall success, tool success, tool frequency = 7 tool metrics.
        calc.process(
            &Event::tool_use("s", "bash")
                .with_duration_ms(1.0)
                .with_success(true),
        )
        .unwrap();
    }
    calc.process(&Event::new(EventType::Other, "s")).unwrap();
    assert_eq!(sink.calls.load(Ordering::Relaxed), 5);
    assert_eq!(sink.tools.load(Ordering::Relaxed), 28);
    assert_eq!(sink.realtime.load(Ordering::Relaxed), 5);

    let boxed: Box<dyn MetricSink> = Box::new(ByCategory::default());
    let mut calc = MetricsCalculator::builder().sink(boxed).build().unwrap();
    assert!(calc.process(&Event::tool_use("s", "bash")).is_ok());
}
