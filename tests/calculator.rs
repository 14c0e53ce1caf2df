//! Issue 2, point 8: MetricsCalculator: builder defaults, process,
//! process_batch, stats, and exact totals from several threads.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use composite_metrics::clock::{Clock, ManualClock};
use composite_metrics::state::{OpCounts, Scope};
use composite_metrics::{
    CallbackSink, Category, CompositeScope, Error, Event, EventBased, EventError, EventType,
    MemorySink, MemoryState, Metric, MetricsCalculator, Never, SinkError, StateBackend,
};
use parking_lot::Mutex;

fn is_score(m: &Metric) -> bool {
    m.is(Category::Composite, "productivity_score")
}

#[test]
fn builder_defaults() {
    let mut calc = MetricsCalculator::builder().build().unwrap();
    // Never scheduler.
    assert_eq!(calc.scheduler_name(), "never");
    // System clock.
    let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let now = calc.clock().now();
    assert!(now.abs_diff(wall) < Duration::from_secs(5), "{now:?}");
    // A fresh in-memory state of its own.
    assert_eq!(calc.state().op_counts(), OpCounts::default());
    let other = MetricsCalculator::builder().build().unwrap();
    for _ in 0..3 {
        calc.process(&Event::tool_use("s", "bash").with_success(true))
            .unwrap();
    }
    calc.process(&Event::new(EventType::FileEdit, "s").with_accepted(true))
        .unwrap();
    assert_eq!(calc.state().op_counts().records, 4);
    assert_eq!(other.state().op_counts().records, 0);
    assert_eq!(calc.stats().composites, 0);
    // Default weights and global scope: S = 100, A = 100 gives 85, unlabelled.
    let score = calc.compute_now(None).unwrap().unwrap();
    assert_eq!(score.value, 85.0);
    assert_eq!(score.session, None);
    assert_eq!(score.full_name(), "composite/productivity_score");
    assert_eq!(calc.stats().composites, 1);

    // The issue's own line compiles and builds.
    let calc = MetricsCalculator::builder()
        .scheduler(EventBased::every(100))
        .build()
        .unwrap();
    assert_eq!(calc.scheduler().n(), 100);
}

#[test]
fn the_default_state_runs_on_the_calculators_clock() {
    let clock = ManualClock::default();
    let mut calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .build()
        .unwrap();
    calc.process(&Event::tool_use("s", "bash")).unwrap();
    assert_eq!(calc.state().active_sessions().unwrap().len(), 1);
    clock.advance(Duration::from_secs(24 * 3600));
    assert!(calc.state().active_sessions().unwrap().is_empty());
}

type Batches = Arc<Mutex<Vec<Vec<Metric>>>>;

fn capturing() -> (impl composite_metrics::MetricSink, Batches) {
    let batches: Batches = Arc::default();
    let b = Arc::clone(&batches);
    let sink = CallbackSink::new(move |m: &[Metric]| {
        b.lock().push(m.to_vec());
        Ok(())
    });
    (sink, batches)
}

#[test]
fn process_returns_and_records_the_events_metrics_and_the_composite() {
    let clock = ManualClock::default();
    let (sink, batches) = capturing();
    let mut calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .state(MemoryState::with_clock(clock.clone()))
        .sink(sink)
        .scheduler(EventBased::every(3))
        .build()
        .unwrap();
    let events = [
        Event::tool_use("s", "bash")
            .with_success(true)
            .with_duration_ms(10.0),
        Event::new(EventType::FileEdit, "s").with_accepted(false),
        Event::tool_use("s", "grep")
            .with_success(false)
            .with_duration_ms(30.0),
        Event::new(EventType::UserPrompt, "s").with_prompt_length(9),
        Event::new(EventType::Other, "s"),
        Event::tool_use("s", "bash").with_success(true),
    ];
    let mut returned = Vec::new();
    for (i, e) in events.iter().enumerate() {
        clock.advance(Duration::from_millis(10));
        let m = calc.process(e).unwrap();
        let scores: Vec<_> = m.iter().filter(|m| is_score(m)).collect();
        if (i + 1) % 3 == 0 {
            assert_eq!(scores.len(), 1, "event {}", i + 1);
        } else {
            assert!(scores.is_empty(), "event {}", i + 1);
        }
        returned.push(m);
    }
    // Event 3: S = 50 (1 of 2), A = 0: 50 + 12.5 - 7.5 + 0 = 55.
    let third = returned[2].iter().find(|m| is_score(m)).unwrap();
    assert_eq!(third.value, 55.0);
    // Event 6: S = 66.67, A = 0: 50 + 16.67 - 5 = 61.67.
    let sixth = returned[5].iter().find(|m| is_score(m)).unwrap();
    assert!((sixth.value - (50.0 + 0.25 * 200.0 / 3.0 - 0.15 * 100.0 / 3.0)).abs() < 1e-9);
    // The sink saw exactly what was returned, one batch per event.
    assert_eq!(*batches.lock(), returned);
    let stats = calc.stats();
    assert_eq!((stats.events, stats.composites, stats.rejected), (6, 2, 0));
}

#[test]
fn process_json_parses_and_counts_rejections() {
    let sink = MemorySink::new();
    let mut calc = MetricsCalculator::builder()
        .sink(sink.clone())
        .build()
        .unwrap();
    let ok = r#"{"event_type":"tool_use","session_id":"s","timestamp":"2024-05-01T12:00:00Z","tool_name":"bash","duration_ms":42,"payload":{"success":true}}"#;
    let m = calc.process_json(ok).unwrap();
    assert!(m
        .iter()
        .any(|m| m.full_name() == "tools/tool_latency_p50" && m.value == 42.0));
    let bad = [
        "{",
        r#"{"event_type":"tool_use","session_id":"s","timestamp":"2024-05-01T12:00:00Z","duration_ms":-3}"#,
        r#"{"event_type":"tool_use","session_id":"s","timestamp":"later"}"#,
    ];
    for line in bad {
        assert!(
            matches!(calc.process_json(line), Err(Error::Event(_))),
            "{line}"
        );
    }
    let nan = Event::tool_use("s", "bash").with_duration_ms(f64::NAN);
    assert!(matches!(calc.process(&nan), Err(Error::Event(_))));
    let stats = calc.stats();
    assert_eq!((stats.events, stats.rejected), (1, 4));
    assert_eq!(calc.state().op_counts().records, 1);
}

#[test]
fn process_batch_is_all_or_nothing() {
    let clock = ManualClock::default();
    let state = MemoryState::with_clock(clock.clone());
    let (sink, batches) = capturing();
    let mut calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .state(state.clone())
        .sink(sink)
        .scheduler(EventBased::every(1))
        .build()
        .unwrap();
    let batch = vec![
        Event::tool_use("s", "bash").with_success(true),
        Event::new(EventType::FileEdit, "s").with_accepted(true),
        Event::tool_use("s", "bash").with_duration_ms(f64::INFINITY),
        Event::tool_use("s", "grep"),
    ];
    match calc.process_batch(&batch) {
        Err(Error::BatchEvent { index, source }) => {
            assert_eq!(index, 2);
            assert!(matches!(
                source,
                EventError::InvalidNumber {
                    field: "duration_ms",
                    ..
                }
            ));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(state.op_counts().records, 0);
    assert_eq!(state.footprint().sessions, 0);
    assert_eq!(state.footprint().tools, 0);
    assert!(batches.lock().is_empty());
    let stats = calc.stats();
    assert_eq!((stats.events, stats.composites), (0, 0));
    assert_eq!(stats.rejected, 4, "every event of the batch was rejected");

    let long = Event::tool_use("s".repeat(300), "bash");
    let batch2 = [Event::tool_use("s", "bash"), long];
    assert!(matches!(
        calc.process_batch(&batch2),
        Err(Error::BatchEvent {
            index: 1,
            source: EventError::TooLong {
                field: "session_id",
                ..
            }
        })
    ));
    assert_eq!(state.op_counts().records, 0);

    // The valid part alone goes through, in one round trip and one sink batch.
    let good = [batch[0].clone(), batch[1].clone(), batch[3].clone()];
    let m = calc.process_batch(&good).unwrap();
    assert_eq!(state.op_counts().records, 3);
    assert_eq!(state.op_counts().record_round_trips, 1);
    assert_eq!(*batches.lock(), vec![m.clone()]);
    // Scheduler fired three times; one composite after the batch: S = 100, A = 100.
    let scores: Vec<_> = m.iter().filter(|m| is_score(m)).collect();
    assert_eq!(scores.len(), 1);
    assert_eq!(scores[0].value, 85.0);
    assert!(is_score(m.last().unwrap()));
    assert_eq!(calc.stats().events, 3);
    assert!(calc.process_batch(&[]).unwrap().is_empty());
}

#[test]
fn stats_count_sink_errors_and_the_event_still_counts() {
    let calls = Arc::new(Mutex::new(0u64));
    let c = Arc::clone(&calls);
    let failing = CallbackSink::new(move |_: &[Metric]| {
        *c.lock() += 1;
        Err(SinkError::new("failing", "disk full"))
    });
    let clock = ManualClock::default();
    let mut calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .state(MemoryState::with_clock(clock))
        .sink(failing)
        .scheduler(EventBased::every(2))
        .build()
        .unwrap();
    for _ in 0..5 {
        let m = calc
            .process(&Event::tool_use("s", "bash").with_success(true))
            .unwrap();
        assert!(!m.is_empty());
    }
    calc.process_batch(&[Event::tool_use("s", "bash"), Event::tool_use("s", "grep")])
        .unwrap();
    let _ = calc.process_json("not json");
    let stats = calc.stats();
    assert_eq!(stats.events, 7);
    assert_eq!(stats.rejected, 1);
    // Composites at events 2 and 4, and once for the batch (events 6).
    assert_eq!(stats.composites, 3);
    // Five single events and one batch, each recorded once, each failed.
    assert_eq!(stats.sink_errors, 6);
    assert_eq!(*calls.lock(), 6);
    assert_eq!(stats.backend_errors, 0);
}

// ---------------------------------------------------------------------------
// Four threads, one shared state, exact totals.

const THREADS: usize = 4;
const PER_THREAD: u64 = 100_000;
const TOOLS: [&str; 4] = ["bash", "grep", "edit", "mcp:search"];

/// The i-th event of thread t: a pure function, so the test can recount.
fn nth(t: usize, i: u64, sessions: &[Arc<str>]) -> Event {
    let session = Arc::clone(&sessions[(i % 8) as usize]);
    let mix = i.wrapping_mul(2_654_435_761) >> 7;
    match i % 5 {
        0..=2 => {
            let tool = TOOLS[((mix + t as u64) % 4) as usize];
            let e = Event::tool_use(session, tool).with_duration_ms((mix % 500) as f64);
            match mix % 3 {
                0 => e,
                1 => e.with_success(true),
                _ => e.with_success(!mix.is_multiple_of(5)),
            }
        }
        3 => Event::new(EventType::FileEdit, session).with_accepted(!mix.is_multiple_of(3)),
        _ => Event::new(EventType::UserPrompt, session).with_prompt_length(mix % 100),
    }
}

fn sessions_of(t: usize) -> Vec<Arc<str>> {
    (0..8).map(|s| Arc::from(format!("t{t}-s{s}"))).collect()
}

#[derive(Default)]
struct Expected {
    tool_runs: u64,
    ok: u64,
    known: u64,
    per_tool: HashMap<&'static str, (u64, u64, u64)>, // runs, ok, known
    per_session: HashMap<Arc<str>, (u64, Vec<bool>)>, // tool runs, decisions
}

fn expected() -> Expected {
    let mut x = Expected::default();
    for t in 0..THREADS {
        let sessions = sessions_of(t);
        for i in 0..PER_THREAD {
            let e = nth(t, i, &sessions);
            let entry = x.per_session.entry(Arc::clone(&e.session_id)).or_default();
            if e.event_type == EventType::ToolUse {
                x.tool_runs += 1;
                entry.0 += 1;
                let tool = TOOLS
                    .iter()
                    .find(|n| Some(**n) == e.tool_name.as_deref())
                    .unwrap();
                let pt = x.per_tool.entry(tool).or_default();
                pt.0 += 1;
                if let Some(ok) = e.payload.success {
                    x.known += 1;
                    x.ok += u64::from(ok);
                    pt.1 += u64::from(ok);
                    pt.2 += 1;
                }
            }
            if let Some(a) = e.payload.accepted {
                entry.1.push(a);
            }
        }
    }
    x
}

#[test]
fn four_threads_over_one_state_keep_exact_totals() {
    let clock = ManualClock::default();
    let state = MemoryState::with_clock(clock.clone());
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let state = state.clone();
            let clock = clock.clone();
            std::thread::spawn(move || {
                let sessions = sessions_of(t);
                let mut calc = MetricsCalculator::builder()
                    .clock(clock)
                    .state(state)
                    .sink(MemorySink::with_capacity(10))
                    .scheduler(EventBased::every(1_000))
                    .build()
                    .unwrap();
                let mut out = Vec::new();
                for i in 0..PER_THREAD {
                    out.clear();
                    calc.process_into(&nth(t, i, &sessions), &mut out).unwrap();
                }
                calc.stats()
            })
        })
        .collect();
    let stats: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for s in &stats {
        assert_eq!(s.events, PER_THREAD);
        assert_eq!(s.composites, PER_THREAD / 1_000);
        assert_eq!((s.rejected, s.sink_errors, s.backend_errors), (0, 0, 0));
    }
    let total = THREADS as u64 * PER_THREAD;
    assert_eq!(stats.iter().map(|s| s.events).sum::<u64>(), total);
    assert_eq!(state.op_counts().records, total);

    let x = expected();
    let global = state.composite_inputs(Scope::Global).unwrap();
    assert_eq!(global.tool_runs, x.tool_runs);
    let s = global.success_rate.unwrap();
    assert!((s - 100.0 * x.ok as f64 / x.known as f64).abs() < 1e-9);

    // Per session (each written by one thread, in order): tool runs and the
    // acceptance rate over its last 100 decisions.
    assert_eq!(state.footprint().sessions, THREADS * 8);
    for (id, (runs, decisions)) in &x.per_session {
        let inputs = state.composite_inputs(Scope::Session(id)).unwrap();
        assert_eq!(inputs.tool_runs, *runs, "{id}");
        let last = &decisions[decisions.len().saturating_sub(100)..];
        let want = 100.0 * last.iter().filter(|a| **a).count() as f64 / last.len() as f64;
        assert_eq!(inputs.acceptance_rate, Some(want), "{id}");
    }

    // Per-tool counts, read through the metrics: one probe run per tool,
    // each a success, one after the other.
    let mut probe = MetricsCalculator::builder()
        .clock(clock)
        .state(state.clone())
        .scope(CompositeScope::Global)
        .scheduler(Never)
        .build()
        .unwrap();
    for (j, tool) in TOOLS.iter().enumerate() {
        let m = probe
            .process(&Event::tool_use("probe", *tool).with_success(true))
            .unwrap();
        let value = |name| m.iter().find(|m| m.name == name).unwrap().value;
        let (runs, ok, known) = x.per_tool[tool];
        let all_runs = x.tool_runs + j as u64 + 1;
        let want_freq = 100.0 * (runs + 1) as f64 / all_runs as f64;
        let want_rate = 100.0 * (ok + 1) as f64 / (known + 1) as f64;
        assert!((value("tool_frequency") - want_freq).abs() < 1e-9, "{tool}");
        assert!(
            (value("tool_success_rate") - want_rate).abs() < 1e-9,
            "{tool}"
        );
    }
}
