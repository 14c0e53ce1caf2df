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

/// Every name the calculator emits, with its category.
const KNOWN_NAMES: [(Category, &str); 15] = [
    (Category::Tools, names::TOOL_LATENCY_P50),
    (Category::Tools, names::TOOL_LATENCY_P95),
    (Category::Tools, names::TOOL_LATENCY_P99),
    (Category::Tools, names::TOOL_LATENCY_AVG),
    (Category::Tools, names::TOOL_SUCCESS_RATE),
    (Category::Tools, names::TOOL_FREQUENCY),
    (Category::Tools, names::OVERALL_SUCCESS_RATE),
    (Category::Session, names::ACCEPTANCE_RATE),
    (Category::Session, names::REJECTION_RATE),
    (Category::Session, names::PROMPT_LENGTH),
    (Category::Session, names::PROMPTS_PER_SESSION),
    (Category::Session, names::SESSION_DURATION),
    (Category::Session, names::TOOLS_PER_MINUTE),
    (Category::Realtime, names::EVENTS_PER_SECOND),
    (Category::Composite, names::PRODUCTIVITY_SCORE),
];

/// One metric of the property below, as indexes into its pools.
#[derive(Debug, Clone)]
struct Pick {
    /// Into `KNOWN_NAMES`, or past it for a name no metric of the
    /// calculator has.
    name: usize,
    /// Which copy of the name: 0 the constant itself, others the same text
    /// at other addresses.
    copy: usize,
    /// A category other than the name's own (another series).
    other_category: bool,
    /// Into the tool pool (`None`: unlabelled).
    tool: Option<usize>,
    value: u8,
}

fn pick() -> impl proptest::strategy::Strategy<Value = Pick> {
    use proptest::prelude::*;
    (
        0usize..18,
        0usize..3,
        proptest::bool::weighted(0.1),
        proptest::option::of(0usize..6),
        any::<u8>(),
    )
        .prop_map(|(name, copy, other_category, tool, value)| Pick {
            name,
            copy,
            other_category,
            tool,
            value,
        })
}

proptest::proptest! {
    /// The sink finds series by the address of a name's and a tool's text
    /// (caches): whatever addresses the same texts come at, and whichever
    /// allocation of a tool name, it stores what a map keyed by the texts
    /// stores.
    #[test]
    fn memory_sink_matches_a_map_keyed_by_text(
        batches in proptest::collection::vec(proptest::collection::vec(pick(), 0..12), 1..40),
        capacity in 1usize..6,
    ) {
        use std::collections::HashMap;
        // Each known name at three addresses (the constant and two leaked
        // copies), plus names the calculator never emits.
        let copies: Vec<[&'static str; 3]> = KNOWN_NAMES
            .iter()
            .map(|(_, n)| [*n, &*String::from(*n).leak(), &*String::from(*n).leak()])
            // The last: a prefix of a known name, at that name's address.
            .chain(["custom_a", "custom_b", &names::TOOL_LATENCY_P50[..15]].iter().map(|n| [*n, *n, *n]))
            .collect();
        // Tool names: three texts, each in two allocations.
        let tools: Vec<Arc<str>> = ["bash", "grep", "edit", "bash", "grep", "edit"]
            .iter()
            .map(|t| Arc::from(*t))
            .collect();
        let sink = MemorySink::with_capacity(capacity);
        let mut model: HashMap<SeriesKey, Vec<(Duration, f64)>> = HashMap::new();
        let mut t = 0u64;
        for batch in batches {
            let mut metrics = Vec::new();
            for p in batch {
                t += 1;
                let name = copies[p.name][p.copy];
                let category = match KNOWN_NAMES.get(p.name) {
                    Some((c, _)) if !p.other_category => *c,
                    Some((Category::Realtime, _)) => Category::Tools,
                    Some(_) => Category::Realtime,
                    None if p.other_category => Category::Realtime,
                    None => Category::Tools,
                };
                let mut m = Metric::new(category, name, f64::from(p.value), at(t));
                if let Some(i) = p.tool {
                    m = m.with_tool(Arc::clone(&tools[i]));
                }
                let mut key = SeriesKey::new(category, name);
                key.tool = m.tool.as_deref().map(Arc::from);
                let series = model.entry(key).or_default();
                series.push((m.at, m.value));
                if series.len() > capacity {
                    series.remove(0);
                }
                metrics.push(m);
            }
            sink.record(&metrics).unwrap();
        }
        let mut keys: Vec<SeriesKey> = model.keys().cloned().collect();
        keys.sort();
        proptest::prop_assert_eq!(sink.keys(), keys);
        for (key, series) in &model {
            proptest::prop_assert_eq!(&sink.series(key), series, "{:?}", key);
            proptest::prop_assert_eq!(sink.latest(key), series.last().map(|(_, v)| *v));
        }
    }
}

/// Many addresses of the same names (more than the sink remembers) and
/// many allocations of the same tool: every metric still lands in its
/// series.
#[test]
fn memory_sink_stores_by_text_however_many_addresses() {
    let sink = MemorySink::with_capacity(10_000);
    let mut expected = 0usize;
    for i in 0..500u64 {
        let (category, name) = KNOWN_NAMES[(i % 15) as usize];
        let leaked: &'static str = String::from(name).leak();
        let tool: Arc<str> = Arc::from(format!("tool{}", i / 15 % 3));
        sink.record(&[
            Metric::new(category, leaked, i as f64, at(i)),
            Metric::new(category, leaked, i as f64, at(i)).with_tool(tool),
        ])
        .unwrap();
        expected += 2;
    }
    let total: usize = sink.keys().iter().map(|k| sink.series(k).len()).sum();
    assert_eq!(total, expected);
    // 15 unlabelled series, 15 names x 3 tools labelled.
    assert_eq!(sink.len(), 15 + 45);
    let p50 = SeriesKey::new(Category::Tools, names::TOOL_LATENCY_P50).with_tool("tool0");
    // i = 0, 45, 90, ..., 495: 12 of them.
    assert_eq!(sink.series(&p50).len(), 12);
    assert_eq!(sink.latest(&p50), Some(495.0));
}
