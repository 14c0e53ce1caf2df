//! The event path alone, for counting instructions: processes N events (a
//! fixed, realistic mix) with one strategy on the in-memory backend, the
//! clock fixed inside a second where `TimeBased` is not due, so every
//! strategy takes its not-due path.
//!
//! Run: `cargo run --release --example event_path -- <strategy> <events> [sink]`
//! (sink `memory`, the default `MemorySink`, or `noop`, a sink that drops
//! everything, to see the event path without the sink's share),
//! or `bash scripts/event-path-instructions.sh` for every strategy under
//! `valgrind --tool=callgrind`, which prints instructions per event and the
//! ratio to `never` (instruction counts repeat exactly from run to run,
//! unlike times on a shared machine).

use std::time::Duration;

use composite_metrics::clock::ManualClock;
use composite_metrics::sim::EventMix;
use composite_metrics::{
    Background, BackgroundConfig, CompositeScheduler, Error, Event, EventBased, HybridLock,
    MemorySink, MemoryState, Metric, MetricSink, MetricsCalculator, Never, SinkError, TimeBased,
};

/// A sink that records nothing.
#[derive(Debug)]
struct NoopSink;

impl MetricSink for NoopSink {
    fn record(&self, metrics: &[Metric]) -> Result<(), SinkError> {
        std::hint::black_box(metrics);
        Ok(())
    }
}

/// A second that is not a multiple of 10.
const NOT_DUE_SECOND: u64 = 1_704_067_201;

fn run<S: CompositeScheduler>(
    scheduler: S,
    events: &[Event],
    n: usize,
    noop_sink: bool,
) -> Result<u64, Error> {
    let clock = ManualClock::new(Duration::from_secs(NOT_DUE_SECOND));
    let builder = MetricsCalculator::builder()
        .clock(clock.clone())
        .state(MemoryState::with_clock(clock))
        .scheduler(scheduler);
    let mut calc = if noop_sink {
        builder.sink(NoopSink).build()?
    } else {
        builder.sink(MemorySink::new()).build()?
    };
    let mut out = Vec::with_capacity(16);
    for event in events.iter().cycle().take(n) {
        out.clear();
        calc.process_into(event, &mut out)?;
    }
    Ok(calc.stats().events)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: event_path <never|time-based|event-based|hybrid-lock|background> <events> [memory|noop]";
    let strategy = args.next().ok_or(usage)?;
    let n: usize = args.next().ok_or(usage)?.parse()?;
    let noop = match args.next().as_deref() {
        None | Some("memory") => false,
        Some("noop") => true,
        Some(_) => return Err(usage.into()),
    };
    let mut mix = EventMix::new(1, 8, 42);
    let at = Duration::from_secs(NOT_DUE_SECOND);
    let events: Vec<Event> = (0..1024).map(|_| mix.next_event(0, at)).collect();
    let processed = match strategy.as_str() {
        "never" => run(Never, &events, n, noop)?,
        "time-based" => run(TimeBased::default(), &events, n, noop)?,
        "event-based" => run(EventBased::every(100), &events, n, noop)?,
        "hybrid-lock" => run(HybridLock::default(), &events, n, noop)?,
        "background" => run(
            Background::new(BackgroundConfig::default())?,
            &events,
            n,
            noop,
        )?,
        _ => return Err(usage.into()),
    };
    println!("{strategy}: {processed} events");
    Ok(())
}
