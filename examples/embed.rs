//! Embedding the calculator in a host.
//!
//! 1. Replay: JSON lines through one calculator on event time
//!    (`TimeSource::EventTime`), so windows, rates and session durations are
//!    those of the recorded stream, not of the replay. A line that cannot be
//!    used is rejected (and counted in `stats().rejected`); an unknown event
//!    type is recorded as `other` and counted in `stats().unknown_types`.
//! 2. Live: one calculator per worker thread over one shared `MemoryState`,
//!    metrics from all workers forwarded to one channel by a `CallbackSink`.
//!
//! Run: `cargo run --example embed [events.jsonl]` (a built-in sample when no
//! file is given).

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use composite_metrics::{
    CallbackSink, Error, Event, EventBased, EventType, HybridLock, HybridLockConfig, MemorySink,
    MemoryState, Metric, MetricsCalculator, SinkError, TimeSource,
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
    println!("replay (event time):");
    let sink = MemorySink::new();
    let mut calc = MetricsCalculator::builder()
        .time(TimeSource::EventTime {
            allowed_lateness: Duration::from_secs(30),
        })
        .sink(sink.clone())
        // A composite every 3 events: the first ones find no data to score.
        .scheduler(EventBased::every(3))
        .build()?;
    for (n, line) in text.lines().enumerate() {
        match calc.process_json(line) {
            Ok(metrics) => metrics.iter().for_each(print),
            Err(e) => println!("  line {}: rejected: {e}", n + 1),
        }
    }
    let s = calc.stats();
    println!(
        "  events {}, rejected {}, unknown types {}, ignored fields {}, late {}",
        s.events, s.rejected, s.unknown_types, s.ignored_fields, s.late_events
    );
    println!(
        "  composites {} (with a score {}, without data {})",
        s.composites,
        s.composites - s.composites_without_data,
        s.composites_without_data
    );
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
