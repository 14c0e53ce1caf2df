//! One worker of a multi-process cluster sharing state through Redis.
//!
//! ```text
//! cargo run --features redis --example redis_worker -- <redis-url> <namespace> <worker-id> <run-ms> <events-per-second> [hybrid-lock|coalesce]
//! ```
//!
//! It processes tool runs and edits at the given rate for `run-ms`
//! milliseconds with a `HybridLock` (or a `Coalesce`, whose timer runs on
//! its own thread, tick 20 ms) scaled down 150× (`min_interval` 200 ms,
//! `max_staleness` 400 ms, lease 100 ms, every 20 events), then prints one
//! line: `sent=<events> composites=<n> errors=<n>`. Every calculation start
//! and release is logged by the server, on its own clock, in the list
//! `{<namespace>}:calc_log` (`redis-cli LRANGE '{ns}:calc_log' 0 -1`).
//!
//! Two special rates: `0` sends nothing (the worker only runs its strategy's
//! timer), and `armed` sends one event, then a second one 50 ms later (too
//! soon for a calculation, so it is only armed on this worker's timer),
//! prints `armed` and then waits: a test kills it there to see another
//! worker take the deadline over.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use std::io::Write;

use composite_metrics::state::{RedisConfig, RedisState};
use composite_metrics::{
    Coalesce, CoalesceConfig, CompositeScheduler, Event, EventType, HybridLock, HybridLockConfig,
    MetricsCalculator,
};

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
    let usage = "usage: redis_worker <redis-url> <namespace> <worker-id> <run-ms> \
                 <events-per-second|armed> [hybrid-lock|coalesce]";
    let (url, namespace, id, run_ms, rate, strategy) = match args.as_slice() {
        [u, n, i, r, e] => (u, n, i, r, e, "hybrid-lock"),
        [u, n, i, r, e, s] => (u, n, i, r, e, s.as_str()),
        _ => return Err(usage.into()),
    };
    let run_for = Duration::from_millis(run_ms.parse()?);
    let state = RedisState::connect(url, RedisConfig::default().with_namespace(namespace))?;
    let config = HybridLockConfig::default()
        .with_min_interval(Duration::from_millis(200))
        .with_max_staleness(Duration::from_millis(400))
        .with_lease(Duration::from_millis(100))
        .with_every_events(20);
    let scheduler: Box<dyn CompositeScheduler> = match strategy {
        "hybrid-lock" => Box::new(HybridLock::new(config)?),
        "coalesce" => Box::new(Coalesce::new(
            CoalesceConfig::default()
                .with_min_interval(config.min_interval())
                .with_max_staleness(config.max_staleness())
                .with_lease(config.lease())
                .with_every_events(config.every_events())
                .with_tick(Duration::from_millis(20)),
        )?),
        _ => return Err(usage.into()),
    };
    let mut calc = MetricsCalculator::builder()
        .state(state)
        .scheduler(scheduler)
        .build()?;
    let session = format!("worker-{id}");
    if rate == "armed" {
        for _ in 0..2 {
            calc.process(&Event::tool_use(session.as_str(), "bash").with_success(true))?;
            std::thread::sleep(Duration::from_millis(50));
        }
        println!("armed");
        std::io::stdout().flush()?;
        std::thread::sleep(run_for);
        return Ok(format!("sent=2 composites={}", calc.stats().composites));
    }
    let rate: f64 = rate.parse()?;
    let started = Instant::now();
    let mut sent: u64 = 0;
    let mut errors: u64 = 0;
    while rate > 0.0 && started.elapsed() < run_for {
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
    if let Some(rest) = run_for.checked_sub(started.elapsed()) {
        std::thread::sleep(rest); // rate 0: only the strategy's timer runs
    }
    let stats = calc.stats();
    Ok(format!(
        "sent={sent} composites={} errors={}",
        stats.composites,
        errors + stats.coordination_errors + stats.composite_errors
    ))
}
