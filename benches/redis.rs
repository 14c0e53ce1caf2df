//! Redis throughput per event: `process` unbatched (one round trip per
//! event) and `process_batch` with 100 and 1000 events (one round trip per
//! batch), and one composite calculation. At the end, in the same run and
//! against the same server, it measures the Redis commands one event costs
//! (from `INFO commandstats`) and runs `redis-benchmark -P 32 -t set`, and
//! prints each mode's events/s per worker as a ratio to the DESIGN.md target:
//! half of `redis-benchmark`'s SET/s divided by the commands per event.
//!
//! Uses `REDIS_URL` when set; otherwise starts its own `redis-server` (from
//! `PATH`) on a free port, like the tests.
//!
//! ```text
//! cargo bench --features redis --bench redis
//! ```

#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::Duration;

use composite_metrics::state::{RedisConfig, RedisState};
use composite_metrics::{Event, EventType, MetricsCalculator};
use criterion::{BenchmarkId, Criterion, Throughput};

fn events(n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let session = format!("s{}", i % 8);
            match i % 4 {
                3 => Event::new(EventType::FileEdit, session).with_accepted(i % 2 == 0),
                _ => Event::tool_use(session, if i % 2 == 0 { "bash" } else { "grep" })
                    .with_duration_ms((i % 250) as f64 + 0.5)
                    .with_success(i % 5 != 0),
            }
        })
        .collect()
}

/// The server to run against: `REDIS_URL`, or one started here.
fn server() -> (Option<support::RedisServer>, String) {
    match std::env::var("REDIS_URL") {
        Ok(url) => (None, url),
        Err(_) => {
            let server = support::RedisServer::start();
            let url = server.url();
            (Some(server), url)
        }
    }
}

fn calculator(url: &str, ns: &str) -> MetricsCalculator {
    let state = RedisState::connect(url, RedisConfig::default().with_namespace(ns))
        .expect("connect to redis");
    MetricsCalculator::builder()
        .state(state)
        .scheduler(
            Box::new(composite_metrics::Never) as Box<dyn composite_metrics::CompositeScheduler>
        )
        .build()
        .expect("calculator")
}

fn bench(c: &mut Criterion, url: &str) {
    let calc = |ns: &str| calculator(url, ns);
    let mut group = c.benchmark_group("redis");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));

    let one = events(1024);
    let mut unbatched = calc("bench-process");
    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    group.bench_function("process", |b| {
        b.iter(|| {
            i = (i + 1) % one.len();
            black_box(unbatched.process(&one[i]).expect("process"))
        })
    });

    for size in [100usize, 1000] {
        let batch = events(size);
        let mut batched = calc(&format!("bench-batch-{size}"));
        group.throughput(Throughput::Elements(size as u64));
        group.bench_with_input(
            BenchmarkId::new("process_batch", size),
            &batch,
            |b, batch| b.iter(|| black_box(batched.process_batch(batch).expect("process_batch"))),
        );
    }
    let mut composite = calc("bench-composite");
    composite
        .process_batch(&events(1000))
        .expect("process_batch");
    group.throughput(Throughput::Elements(1));
    group.bench_function("composite", |b| {
        b.iter(|| black_box(composite.compute_now(None).expect("composite")))
    });
    group.finish();
}

/// Commands run per event (inside the scripts), from `INFO commandstats`
/// deltas around `run`, scripts' own EVALSHA calls excluded.
fn commands_per_event(url: &str, events: usize, run: impl FnOnce()) -> f64 {
    let client = redis::Client::open(url).expect("redis url");
    let mut con = client.get_connection().expect("redis connection");
    let mut total = || -> u64 {
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut con)
            .expect("INFO commandstats");
        info.lines()
            .filter(|l| {
                l.starts_with("cmdstat_")
                    && !l.starts_with("cmdstat_evalsha")
                    && !l.starts_with("cmdstat_info")
            })
            .filter_map(|l| {
                l.split("calls=")
                    .nth(1)?
                    .split(',')
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum()
    };
    let before = total();
    run();
    (total() - before) as f64 / events as f64
}

/// `redis-benchmark -P 32 -t set` against `url`'s port: SET/s.
fn redis_benchmark(url: &str) -> Option<f64> {
    let port = url.rsplit(':').next()?.trim_end_matches('/');
    let out = std::process::Command::new("redis-benchmark")
        .args(["-p", port, "-P", "32", "-t", "set", "-n", "2000000", "-q"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // The last progress line: "SET: 812345.67 requests per second, ..."
    let line = text.rsplit(['\r', '\n']).find(|l| l.starts_with("SET: "))?;
    line["SET: ".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn estimate_ns(id: &str) -> Option<f64> {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let text = std::fs::read_to_string(format!("{target}/criterion/redis/{id}/new/estimates.json"))
        .ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["slope"]["point_estimate"]
        .as_f64()
        .or_else(|| json["mean"]["point_estimate"].as_f64())
}

fn main() {
    let (_server, url) = server();
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion, &url);
    criterion.final_summary();

    let batch = events(1000);
    let per_event_batched = commands_per_event(&url, batch.len(), || {
        calculator(&url, "count-batch")
            .process_batch(&batch)
            .expect("batch");
    });
    let per_event_single = commands_per_event(&url, batch.len(), || {
        let mut calc = calculator(&url, "count-single");
        for e in &batch {
            calc.process(e).expect("process");
        }
    });
    let Some(set_per_sec) = redis_benchmark(&url) else {
        println!("redis-benchmark not found or failed: no ratio printed");
        return;
    };
    println!("\nredis-benchmark -P 32 -t set: {set_per_sec:.0} SET/s");
    println!("Redis commands per event: {per_event_single:.1} unbatched, {per_event_batched:.1} in a batch");
    println!(
        "  mode                 events/s/worker   target (SET/s / 2 / commands)   ratio to target"
    );
    for (id, per_event, per_call) in [
        ("process", per_event_single, 1.0),
        ("process_batch/100", per_event_batched, 100.0),
        ("process_batch/1000", per_event_batched, 1000.0),
    ] {
        if let Some(ns) = estimate_ns(id) {
            let events_per_sec = per_call * 1e9 / ns;
            let target = set_per_sec / 2.0 / per_event;
            println!(
                "  {id:<20} {events_per_sec:>15.0}   {target:>29.0}   {:>15.2}",
                events_per_sec / target
            );
        }
    }
}
