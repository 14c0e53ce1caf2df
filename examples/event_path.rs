//! The event path alone, for counting instructions: processes N events (a
//! fixed, realistic mix) with one strategy on the in-memory backend, the
//! clock fixed inside a second where `TimeBased` is not due, so every
//! strategy takes its not-due path.
//!
//! With `from-json` or `serde-borrowed` instead of a strategy it parses N
//! JSON lines of the same mix instead: with [`Event::from_json`], or with a
//! serde derive into borrowed `&str` fields (the reference parse).
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
    Background, BackgroundConfig, Coalesce, CoalesceConfig, CompositeScheduler, Error, Event,
    EventBased, HybridLock, MemorySink, MemoryState, Metric, MetricSink, MetricsCalculator, Never,
    SinkError, TimeBased,
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

/// The reference: a serde derive parse of the same line into borrowed fields.
#[derive(serde::Deserialize)]
#[allow(dead_code)] // read only by the parse
struct BorrowedEvent<'a> {
    event_type: &'a str,
    session_id: &'a str,
    timestamp: &'a str,
    #[serde(default)]
    tool_name: Option<&'a str>,
    #[serde(default)]
    duration_ms: Option<f64>,
    #[serde(default)]
    payload: Option<BorrowedPayload>,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)] // read only by the parse
struct BorrowedPayload {
    success: Option<bool>,
    accepted: Option<bool>,
    prompt_length: Option<u64>,
}

/// An event as the pipeline's JSON line, timestamp in RFC 3339 (UTC).
fn to_line(e: &Event) -> String {
    let since = e
        .timestamp
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let (days, secs) = ((since.as_secs() / 86_400) as i64, since.as_secs() % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut line = format!(
        r#"{{"event_type":"{}","session_id":"{}","timestamp":"{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z""#,
        e.event_type.as_str(),
        e.session_id,
        secs / 3_600,
        secs / 60 % 60,
        secs % 60,
        since.subsec_millis()
    );
    if let Some(tool) = &e.tool_name {
        line.push_str(&format!(r#","tool_name":"{tool}""#));
    }
    if let Some(ms) = e.duration_ms {
        line.push_str(&format!(r#","duration_ms":{ms}"#));
    }
    let p = e.payload;
    let mut fields = Vec::new();
    if let Some(v) = p.success {
        fields.push(format!(r#""success":{v}"#));
    }
    if let Some(v) = p.accepted {
        fields.push(format!(r#""accepted":{v}"#));
    }
    if let Some(v) = p.prompt_length {
        fields.push(format!(r#""prompt_length":{v}"#));
    }
    line.push_str(&format!(r#","payload":{{{}}}}}"#, fields.join(",")));
    line
}

/// Parses `n` lines with `parse`; returns how many parsed.
fn parse_all<'a, T, E>(
    lines: &'a [String],
    n: usize,
    parse: impl Fn(&'a str) -> Result<T, E>,
) -> u64 {
    let mut ok = 0;
    for line in lines.iter().cycle().take(n) {
        if std::hint::black_box(parse(std::hint::black_box(line.as_str()))).is_ok() {
            ok += 1;
        }
    }
    ok
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: event_path <never|time-based|event-based|hybrid-lock|background|coalesce|from-json|serde-borrowed> <events> [memory|noop]";
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
    let lines: Vec<String> = events.iter().map(to_line).collect();
    let processed = match strategy.as_str() {
        "from-json" => parse_all(&lines, n, Event::from_json),
        "serde-borrowed" => parse_all(&lines, n, serde_json::from_str::<BorrowedEvent<'_>>),
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
        "coalesce" => run(
            Coalesce::manual(CoalesceConfig::default())?,
            &events,
            n,
            noop,
        )?,
        _ => return Err(usage.into()),
    };
    println!("{strategy}: {processed} events");
    Ok(())
}
