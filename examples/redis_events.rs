//! Processes a fixed mix of events against a Redis server, unbatched or in
//! batches, and prints how many it processed and how fast.
//!
//! ```text
//! cargo run --release --features redis --example redis_events -- <redis-url> <events> [batch-size]
//! ```
//!
//! The mix is the Redis bench's: three tool runs (two tools, a duration and
//! an outcome each) to one edit with a decision, over 8 sessions, in the
//! namespace `redis-events`. Without a batch size every event is one
//! `process` call (one round trip); with one, `process_batch` gets that many
//! at a time. `scripts/redis-instructions.sh` runs it against a server under
//! callgrind to count the server's instructions per event.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use composite_metrics::state::{RedisConfig, RedisState};
use composite_metrics::{Event, EventType, MetricsCalculator};

fn main() -> ExitCode {
    match run() {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("redis_events: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<String, Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: redis_events <redis-url> <events> [batch-size]";
    let url = args.next().ok_or(usage)?;
    let events: usize = args.next().ok_or(usage)?.parse()?;
    let batch: Option<usize> = args.next().map(|b| b.parse()).transpose()?;
    // Generous timeouts: the server may run under valgrind, many times slower.
    let config = RedisConfig::default()
        .with_namespace("redis-events")
        .with_read_timeout(Duration::from_secs(30))
        .with_write_timeout(Duration::from_secs(30));
    let state = RedisState::connect(&url, config)?;
    let mut calc = MetricsCalculator::builder().state(state).build()?;
    let mix: Vec<Event> = (0..1000)
        .map(|i| {
            let session = format!("s{}", i % 8);
            match i % 4 {
                3 => Event::new(EventType::FileEdit, session).with_accepted(i % 2 == 0),
                _ => Event::tool_use(session, if i % 2 == 0 { "bash" } else { "grep" })
                    .with_duration_ms((i % 250) as f64 + 0.5)
                    .with_success(i % 5 != 0),
            }
        })
        .collect();
    let start = Instant::now();
    match batch {
        None | Some(0) => {
            for i in 0..events {
                calc.process(&mix[i % mix.len()])?;
            }
        }
        Some(size) => {
            let size = size.min(mix.len());
            let mut done = 0;
            while done < events {
                let n = size.min(events - done);
                calc.process_batch(&mix[..n])?;
                done += n;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(format!(
        "events={events} seconds={secs:.3} events_per_second={:.0}",
        events as f64 / secs
    ))
}
