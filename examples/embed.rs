//! Embedding the calculator in a host.
//!
//! 1. Replay: JSON lines through one calculator whose `ManualClock` follows
//!    the events' timestamps, so windows, rates and session durations are
//!    those of the recorded stream, not of the replay.
//! 2. Live: one calculator per worker thread over one shared `MemoryState`,
//!    metrics from all workers forwarded to one channel by a `CallbackSink`.
//!
//! Run: `cargo run --example embed [events.jsonl]` (a built-in sample when no
//! file is given).

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, UNIX_EPOCH};

use composite_metrics::clock::ManualClock;
use composite_metrics::{
    CallbackSink, Error, Event, EventType, HybridLock, HybridLockConfig, MemorySink, MemoryState,
    Metric, MetricsCalculator, SinkError,
};

const SAMPLE: &str = r#"{"event_type":"session_start","session_id":"s1","timestamp":"2024-05-01T12:00:00Z"}
{"event_type":"user_prompt","session_id":"s1","timestamp":"2024-05-01T12:00:01Z","payload":{"prompt_length":120}}
{"event_type":"tool_use","session_id":"s1","timestamp":"2024-05-01T12:00:02Z","tool_name":"bash","duration_ms":340,"payload":{"success":true}}
{"event_type":"mcp_execution","session_id":"s1","timestamp":"2024-05-01T12:00:03Z","tool_name":"search","duration_ms":80,"payload":{"success":false}}
{"event_type":"file_edit","session_id":"s1","timestamp":"2024-05-01T12:00:04Z","payload":{"accepted":true}}
{"event_type":"code_change","session_id":"s1","timestamp":"2024-05-01T12:00:35Z","payload":{"accepted":false}}
{"event_type":"tool_use","session_id":"s1","timestamp":"2024-05-01T12:00:36Z","tool_name":"bash","duration_ms":-5}
{"event_type":"telemetry_v2","session_id":"s1","timestamp":"2024-05-01T12:00:37Z"}
{"event_type":"session_end","session_id":"s1","timestamp":"2024-05-01T12:05:00Z"}"#;

fn print(metric: &Metric) {
    let label = metric
        .tool
        .as_deref()
        .or(metric.session.as_deref())
        .map(|l| format!("{{{l}}}"))
        .unwrap_or_default();
    let name = format!("{}{label}", metric.full_name());
    println!("  {name:<36} {:>10.2}", metric.value);
}

fn replay(text: &str) -> Result<(), Error> {
    println!("replay:");
    let clock = ManualClock::default();
    let sink = MemorySink::new();
    let mut calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .state(MemoryState::with_clock(clock.clone()))
        .sink(sink.clone())
        .scheduler(HybridLock::default())
        .build()?;
    for line in text.lines() {
        let event = match Event::from_json(line) {
            Ok(event) => event,
            Err(e) => {
                println!("  skipped a line: {e}");
                continue;
            }
        };
        if let Ok(at) = event.timestamp.duration_since(UNIX_EPOCH) {
            clock.set(at);
        }
        match calc.process(&event) {
            Ok(metrics) => metrics.iter().for_each(print),
            Err(e) => println!("  rejected: {e}"),
        }
    }
    println!("  {:?}", calc.stats());
    Ok(())
}

fn live() -> Result<(), Error> {
    println!("live, 2 workers:");
    let (tx, rx) = mpsc::channel::<Vec<Metric>>();
    let state = MemoryState::new();
    let config = HybridLockConfig::default()
        .with_every_events(50)
        .scaled(0.01); // 300 ms floor and ceiling, for a short demo
    let handles: Vec<_> = (0..2)
        .map(|w| {
            let (tx, state) = (tx.clone(), state.clone());
            thread::spawn(move || -> Result<_, Error> {
                let sink = CallbackSink::new(move |m: &[Metric]| {
                    tx.send(m.to_vec())
                        .map_err(|e| SinkError::new("channel", e.to_string()))
                });
                let mut calc = MetricsCalculator::builder()
                    .state(state)
                    .sink(sink)
                    .scheduler(HybridLock::new(config)?)
                    .build()?;
                let session = format!("worker-{w}");
                for i in 0..400u32 {
                    let tool = Event::tool_use(session.as_str(), "bash")
                        .with_duration_ms(f64::from(i % 40))
                        .with_success(i % 7 != 0);
                    calc.process(&tool)?;
                    let edit =
                        Event::new(EventType::FileEdit, session.as_str()).with_accepted(i % 3 != 0);
                    calc.process(&edit)?;
                    thread::sleep(Duration::from_millis(2));
                }
                Ok(calc.stats())
            })
        })
        .collect();
    drop(tx);
    let scores: Vec<Metric> = rx
        .iter()
        .flatten()
        .filter(|m| m.name == composite_metrics::metric::names::PRODUCTIVITY_SCORE)
        .collect();
    println!("  {} composite scores across both workers:", scores.len());
    scores.iter().for_each(print);
    for (w, handle) in handles.into_iter().enumerate() {
        match handle.join() {
            Ok(stats) => println!("  worker {w}: {:?}", stats?),
            Err(_) => eprintln!("  worker {w} panicked"),
        }
    }
    Ok(())
}

fn main() -> Result<(), Error> {
    let text = match std::env::args().nth(1) {
        Some(path) => std::fs::read_to_string(&path).unwrap_or_else(|e| {
            eprintln!("cannot read {path}: {e}");
            std::process::exit(2)
        }),
        None => SAMPLE.to_owned(),
    };
    replay(&text)?;
    live()
}
