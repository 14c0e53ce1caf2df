//! The auto-batching handle (`Batcher`) on Redis against hand-made
//! `process_batch` of the same size, in one run and against one server:
//!
//! - `ingest/process_batch/100`: one calculator, `process_batch` of 100
//!   events per call (the host batching by hand);
//! - `ingest/batcher/100`: the same events sent one by one through a
//!   `Batcher` (one worker, `max_batch` 100), until the last is applied.
//!
//! It then prints events/s of both and their ratio (target: at least 0.8),
//! and the latency an event sees through the handle at a quarter of that
//! throughput (send to reply; events sent in 1 ms ticks, a late tick not
//! made up with a burst), whose p99 must stay within `max_delay` + one
//! batch round trip (the measured `process_batch/100` time).
//!
//! Uses `REDIS_URL` when set; otherwise starts its own `redis-server`.
//!
//! ```text
//! cargo bench --features redis --bench ingest
//! ```

#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use composite_metrics::ingest::{Batcher, BatcherConfig};
use composite_metrics::state::{RedisConfig, RedisState};
use composite_metrics::{Event, EventType, MetricsCalculator};
use criterion::{BenchmarkId, Criterion, Throughput};

const BATCH: usize = 100;
const MAX_DELAY: Duration = Duration::from_millis(2);
/// Workers of the latency run: while one waits for a slow round trip, the
/// other gathers and sends the next batch.
const LATENCY_WORKERS: usize = 2;

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

fn calculator(url: &str, ns: &str) -> Result<MetricsCalculator, composite_metrics::Error> {
    let state = RedisState::connect(url, RedisConfig::default().with_namespace(ns))?;
    MetricsCalculator::builder()
        .state(state)
        .scheduler(
            Box::new(composite_metrics::Never) as Box<dyn composite_metrics::CompositeScheduler>
        )
        .build()
}

fn batcher(url: &str, ns: &str, workers: usize) -> Batcher {
    let config = BatcherConfig::default()
        .with_workers(workers)
        .with_max_batch(BATCH)
        .with_capacity(BATCH * 100)
        .with_max_delay(MAX_DELAY);
    Batcher::start(config, |_| calculator(url, ns)).expect("batcher")
}

fn bench(c: &mut Criterion, url: &str) {
    let mut group = c.benchmark_group("ingest");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(BATCH as u64));
    let batch = events(BATCH);

    let mut by_hand = calculator(url, "bench-by-hand").expect("calculator");
    group.bench_with_input(
        BenchmarkId::new("process_batch", BATCH),
        &batch,
        |b, batch| b.iter(|| black_box(by_hand.process_batch(batch).expect("process_batch"))),
    );

    let handle = batcher(url, "bench-batcher", 1);
    group.bench_with_input(BenchmarkId::new("batcher", BATCH), &batch, |b, batch| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            let mut last = None;
            for _ in 0..iters {
                let (tail, head) = batch.split_last().expect("a batch");
                for e in head {
                    handle.send(e.clone()).expect("send");
                }
                last = Some(handle.send_with_reply(tail.clone()).expect("send"));
            }
            // One worker applies batches in order: the last reply is the end.
            if let Some(reply) = last {
                reply.wait().expect("applied");
            }
            start.elapsed()
        })
    });
    group.finish();
    let stats = handle.shutdown();
    assert_eq!(stats.failed + stats.rejected, 0, "{stats:?}");
}

fn estimate_ns(id: &str) -> Option<f64> {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let text =
        std::fs::read_to_string(format!("{target}/criterion/ingest/{id}/new/estimates.json"))
            .ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["slope"]["point_estimate"]
        .as_f64()
        .or_else(|| json["mean"]["point_estimate"].as_f64())
}

/// Send-to-reply latencies of `total` events sent at about `rate` events/s.
fn latencies(url: &str, rate: f64, total: usize) -> Vec<Duration> {
    let handle = batcher(url, "bench-latency", LATENCY_WORKERS);
    let (tx, rx) = mpsc::channel();
    let collector = std::thread::spawn(move || {
        let mut out = Vec::with_capacity(total);
        for (sent_at, reply) in rx {
            let reply: composite_metrics::ingest::Reply = reply;
            reply.wait().expect("applied");
            out.push(Instant::now().duration_since(sent_at));
        }
        out
    });
    let pool = events(1024);
    // Ticks of 1 ms, each sending rate/1000 events at once. A tick that
    // comes late (the producer waited for a core) is not made up with a
    // burst: the bound is about what the handle adds, not about queueing
    // behind a backlog.
    let per_tick = ((rate / 1000.0).round() as usize).max(1);
    let mut next = Instant::now();
    let mut sent = 0;
    while sent < total {
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        next = (next + Duration::from_millis(1)).max(Instant::now());
        for _ in 0..per_tick.min(total - sent) {
            let sent_at = Instant::now();
            let reply = handle
                .send_with_reply(pool[sent % pool.len()].clone())
                .expect("send");
            tx.send((sent_at, reply)).expect("collector");
            sent += 1;
        }
    }
    drop(tx);
    let mut out = collector.join().expect("collector");
    handle.shutdown();
    out.sort();
    out
}

fn main() {
    let (_server, url) = server();
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion, &url);
    criterion.final_summary();

    let id = format!("{BATCH}");
    let (Some(by_hand), Some(through)) = (
        estimate_ns(&format!("process_batch/{id}")),
        estimate_ns(&format!("batcher/{id}")),
    ) else {
        println!("no criterion estimates found: no ratio printed");
        return;
    };
    let per_sec = |ns: f64| BATCH as f64 * 1e9 / ns;
    println!("\nbatches of {BATCH} on Redis, one calculator:");
    println!(
        "  hand-made process_batch   {:>10.0} events/s",
        per_sec(by_hand)
    );
    println!(
        "  through the Batcher       {:>10.0} events/s",
        per_sec(through)
    );
    println!(
        "  ratio                     {:>10.2}   (target >= 0.80)",
        by_hand / through
    );

    let rate = per_sec(by_hand) / 4.0;
    let total = ((rate * 3.0) as usize).clamp(1_000, 200_000);
    let lat = latencies(&url, rate, total);
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    let round_trip = Duration::from_nanos(by_hand as u64);
    let bound = MAX_DELAY + round_trip;
    // The round trips of hand-made batches, measured now, under the same
    // conditions as the latencies: their p99 is "one batch round trip" at
    // the 99th percentile.
    let trips = round_trips(&url, 2_000);
    let trip = |p: f64| trips[((trips.len() as f64 * p) as usize).min(trips.len() - 1)];
    let bound_p99 = MAX_DELAY + trip(0.99);
    println!(
        "\nlatency through the Batcher ({LATENCY_WORKERS} workers) at {rate:.0} events/s ({total} events, max_delay {MAX_DELAY:?}):"
    );
    println!(
        "  p50 {:?}  p99 {:?}  max {:?}",
        pct(0.50),
        pct(0.99),
        lat[lat.len() - 1]
    );
    println!(
        "  hand-made process_batch/{BATCH} round trips: p50 {:?}  p99 {:?}",
        trip(0.50),
        trip(0.99)
    );
    let verdict = |b: Duration| if pct(0.99) <= b { "within" } else { "EXCEEDS" };
    println!(
        "  bound max_delay + mean batch round trip = {bound:?}: p99 {}",
        verdict(bound)
    );
    println!(
        "  bound max_delay + p99 batch round trip  = {bound_p99:?}: p99 {}",
        verdict(bound_p99)
    );
}

/// Sorted durations of `n` hand-made `process_batch` calls of `BATCH` events.
fn round_trips(url: &str, n: usize) -> Vec<Duration> {
    let mut calc = calculator(url, "bench-round-trips").expect("calculator");
    let batch = events(BATCH);
    let mut out: Vec<Duration> = (0..n)
        .map(|_| {
            let start = Instant::now();
            black_box(calc.process_batch(&batch).expect("process_batch"));
            start.elapsed()
        })
        .collect();
    out.sort();
    out
}
