//! A stream worker process: reads a Redis Stream in a consumer group and
//! applies each read as one batch to a Redis-backed calculator.
//!
//! ```text
//! cargo run --features redis --example stream_worker -- \
//!     <redis-url> <stream> <group> <consumer> <namespace> [ack-delay-ms] [min-idle-ms]
//! ```
//!
//! Producers add one entry per event, the event's JSON in the field `event`:
//!
//! ```text
//! redis-cli XADD events '*' event '{"event_type":"tool_use","session_id":"s1","timestamp":"2024-05-01T12:00:00Z","tool_name":"bash","duration_ms":42}'
//! ```
//!
//! Invalid entries go, with their error, to `<stream>:dead`. Entries a dead
//! worker left unacknowledged are claimed after `min-idle-ms` (default
//! 1000). After each applied batch the worker prints `applied <n>` and, with
//! `ack-delay-ms`, waits that long before acknowledging it (a window to kill
//! it in, for the crash test). It exits when its last read got nothing and
//! the group has no pending and no undelivered entries, printing
//! `applied=<n> duplicates=<n> dead=<n> claimed=<n>`.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use composite_metrics::ingest::{StreamConfig, StreamSource};
use composite_metrics::state::{RedisConfig, RedisState};
use composite_metrics::{CallbackSink, MetricsCalculator};

/// A worker that has not drained the stream by then gives up.
const GIVE_UP_AFTER: Duration = Duration::from_secs(300);

fn main() -> ExitCode {
    match run() {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("stream_worker: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<String, Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (url, stream, group, consumer, namespace) = match args.as_slice() {
        [u, s, g, c, n, ..] => (u, s, g, c, n),
        _ => {
            return Err(
                "usage: stream_worker <redis-url> <stream> <group> <consumer> \
                        <namespace> [ack-delay-ms] [min-idle-ms]"
                    .into(),
            )
        }
    };
    let ms = |i: usize, default: u64| -> Result<Duration, std::num::ParseIntError> {
        Ok(Duration::from_millis(match args.get(i) {
            Some(v) => v.parse()?,
            None => default,
        }))
    };
    let ack_delay = ms(5, 0)?;
    let min_idle = ms(6, 1000)?;

    let state = RedisState::connect(url, RedisConfig::default().with_namespace(namespace))?;
    // The sink runs after the batch was applied, before `poll` acknowledges
    // it: report the batch there, then hold the acknowledgement back.
    let sink = CallbackSink::new(move |metrics| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "applied {}", metrics.len());
        let _ = out.flush();
        std::thread::sleep(ack_delay);
        Ok(())
    });
    let mut calc = MetricsCalculator::builder()
        .state(state)
        .sink(sink)
        .build()?;
    let config = StreamConfig::new(stream, group, consumer)
        .with_count(200)
        .with_block(Duration::from_millis(100))
        .with_min_idle(min_idle)
        .with_claim_every(Duration::from_millis(200))
        .with_lag_every(Duration::from_millis(100));
    let mut source = StreamSource::connect(url, config)?;
    let started = Instant::now();
    loop {
        match source.poll(&mut calc) {
            Ok(0) => {
                let lag = source.refresh_lag()?;
                if lag.pending == 0 && lag.undelivered == Some(0) {
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => eprintln!("stream_worker {consumer}: {e}"),
        }
        if started.elapsed() > GIVE_UP_AFTER {
            return Err(
                format!("not drained after {GIVE_UP_AFTER:?}: {:?}", source.stats()).into(),
            );
        }
    }
    let s = source.stats();
    Ok(format!(
        "applied={} duplicates={} dead={} claimed={}",
        s.applied, s.duplicates, s.dead_lettered, s.claimed
    ))
}
