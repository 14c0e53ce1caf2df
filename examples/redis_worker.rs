//! One worker of a multi-process cluster sharing state through Redis.
//!
//! ```text
//! cargo run --features redis --example redis_worker -- <redis-url> <namespace> <worker-id> <run-ms> <events-per-second>
//! ```
//!
//! It processes tool runs and edits at the given rate for `run-ms`
//! milliseconds with a `HybridLock` scaled down 150× (`min_interval` 200 ms,
//! `max_staleness` 400 ms, lease 100 ms, every 20 events), then prints one
//! line: `sent=<events> composites=<n> errors=<n>`. Every calculation start
//! and release is logged by the server, on its own clock, in the list
//! `{<namespace>}:calc_log` (`redis-cli LRANGE '{ns}:calc_log' 0 -1`).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use composite_metrics::state::{RedisConfig, RedisState};
use composite_metrics::{Event, EventType, HybridLock, HybridLockConfig, MetricsCalculator};

fn main() -> ExitCode {
    match run() {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("redis_worker: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<String, Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, namespace, id, run_ms, rate] = args.as_slice() else {
        return Err(
            "usage: redis_worker <redis-url> <namespace> <worker-id> <run-ms> <events-per-second>"
                .into(),
        );
    };
    let run_for = Duration::from_millis(run_ms.parse()?);
    let rate: f64 = rate.parse()?;
    let state = RedisState::connect(url, RedisConfig::default().with_namespace(namespace))?;
    let config = HybridLockConfig::default()
        .with_min_interval(Duration::from_millis(200))
        .with_max_staleness(Duration::from_millis(400))
        .with_lease(Duration::from_millis(100))
        .with_every_events(20);
    let mut calc = MetricsCalculator::builder()
        .state(state)
        .scheduler(HybridLock::new(config)?)
        .build()?;
    let session = format!("worker-{id}");
    let started = Instant::now();
    let mut sent: u64 = 0;
    let mut errors: u64 = 0;
    while started.elapsed() < run_for {
        let event = if sent % 5 == 4 {
            Event::new(EventType::FileEdit, session.as_str()).with_accepted(sent.is_multiple_of(2))
        } else {
            Event::tool_use(session.as_str(), "bash")
                .with_duration_ms((sent % 97) as f64)
                .with_success(!sent.is_multiple_of(3))
        };
        match calc.process(&event) {
            Ok(_) => sent += 1,
            Err(e) => {
                errors += 1;
                eprintln!("redis_worker {id}: {e}");
            }
        }
        // Pace to the requested rate.
        let due = Duration::from_secs_f64(sent as f64 / rate);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    let stats = calc.stats();
    Ok(format!(
        "sent={sent} composites={} errors={}",
        stats.composites,
        errors + stats.coordination_errors + stats.composite_errors
    ))
}
