//! Redis throughput per event: `process` unbatched (one round trip per
//! event) and `process_batch` with 100 and 1000 events (one round trip per batch).
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
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

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

fn bench(c: &mut Criterion) {
    let (_server, url) = match std::env::var("REDIS_URL") {
        Ok(url) => (None, url),
        Err(_) => {
            let server = support::RedisServer::start();
            let url = server.url();
            (Some(server), url)
        }
    };
    let calc = |ns: &str| {
        let state = RedisState::connect(&url, RedisConfig::default().with_namespace(ns))
            .expect("connect to redis");
        MetricsCalculator::builder()
            .state(state)
            .build()
            .expect("calculator")
    };

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
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
