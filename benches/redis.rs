//! Redis throughput per event: `process` unbatched (one round trip per
//! event) and `process_batch` with 100 and 1000 events (one round trip per
//! batch), and one composite calculation, with criterion. Then, against the
//! same server, it counts the Redis commands one event costs inside the
//! scripts (from `INFO commandstats`) and measures the DESIGN.md targets as
//! ratios, in seven short rounds that each pair a mode with its baseline
//! measured right after it (the machine's speed drifts between measurements): one
//! and then four unbatched workers on one namespace (events/s, the server's
//! CPU from `INFO cpu`, the workers' own from `/proc/self/stat`), unbatched
//! `process` against `redis-benchmark -c 1 -t set`, batches of 100 and 1000
//! against `redis-benchmark -P 32 -t set`. Every round is printed; the
//! verdicts are on the medians of the rounds' ratios: unbatched `process` at
//! least 0.3x of `-c 1`, batches of 100 at least 0.12x of `-P 32`, four
//! workers at least 2.5x one while Redis stays below one core. It also runs
//! `redis-benchmark -c 4 --threads 4 -t set`: four clients' SETs against one.
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

/// `redis-benchmark -t set` with `args` (e.g. `-P 32`, `-c 1`) against
/// `url`'s port: SET/s.
fn redis_benchmark(url: &str, args: &[&str], requests: u32) -> Option<f64> {
    let port = url.rsplit(':').next()?.trim_end_matches('/');
    let out = std::process::Command::new("redis-benchmark")
        .args(["-p", port, "-t", "set", "-q", "-n", &requests.to_string()])
        .args(args)
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

/// The server's CPU seconds so far (`used_cpu_sys` + `used_cpu_user`).
fn redis_cpu(url: &str) -> f64 {
    let client = redis::Client::open(url).expect("redis url");
    let mut con = client.get_connection().expect("redis connection");
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .query(&mut con)
        .expect("INFO cpu");
    info.lines()
        .filter(|l| l.starts_with("used_cpu_sys:") || l.starts_with("used_cpu_user:"))
        .filter_map(|l| l.split(':').nth(1)?.trim().parse::<f64>().ok())
        .sum()
}

/// This process's CPU seconds so far (user + system, all threads), from
/// `/proc/self/stat` in clock ticks of 1/100 s; `None` off Linux.
fn own_cpu() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 of `rest`.
    let utime: f64 = fields.nth(11)?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Calls `f(0..n)` and returns the calls per second.
fn timed(n: usize, mut f: impl FnMut(usize)) -> f64 {
    let start = std::time::Instant::now();
    for i in 0..n {
        f(i);
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// The median of `v` (sorted in place).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One run of `workers_run`: events/s of all workers together, and the
/// cores the server and this process (the workers) used meanwhile.
struct WorkersRun {
    events_per_sec: f64,
    redis_cores: f64,
    client_cores: Option<f64>,
}

/// `workers` threads, each with its own calculator on one shared namespace,
/// each processing `per_worker` events unbatched.
fn workers_run(url: &str, workers: usize, per_worker: usize) -> WorkersRun {
    let ns = format!("bench-workers-{workers}");
    let one = events(1024);
    let mut calcs: Vec<MetricsCalculator> = (0..workers).map(|_| calculator(url, &ns)).collect();
    for calc in &mut calcs {
        for e in &one[..200] {
            calc.process(e).expect("process");
        }
    }
    let barrier = std::sync::Barrier::new(workers + 1);
    let (elapsed, cpu) = std::thread::scope(|s| {
        for mut calc in calcs {
            let (barrier, one) = (&barrier, &one);
            s.spawn(move || {
                barrier.wait();
                for i in 0..per_worker {
                    black_box(calc.process(&one[i % one.len()]).expect("process"));
                }
            });
        }
        let cpu = (redis_cpu(url), own_cpu());
        barrier.wait();
        let start = std::time::Instant::now();
        (start, cpu)
    });
    let wall = elapsed.elapsed().as_secs_f64();
    let (redis_before, own_before) = cpu;
    WorkersRun {
        events_per_sec: (workers * per_worker) as f64 / wall,
        redis_cores: (redis_cpu(url) - redis_before) / wall,
        client_cores: own_cpu()
            .zip(own_before)
            .map(|(after, before)| (after - before) / wall),
    }
}

/// Rounds of paired measurements behind each target ratio.
const ROUNDS: usize = 7;

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
    println!("\nRedis commands per event (inside the scripts): {per_event_single:.1} unbatched, {per_event_batched:.2} in a batch of 1000");

    // The targets of DESIGN.md section 6 (issue 9, point 8), as ratios. On
    // a shared VM the machine's speed drifts by tens of percent within a
    // minute, so each ratio is measured in pairs: our mode, then its
    // baseline right after it, in ROUNDS short rounds; every round is
    // printed and the verdict is on the median of the rounds' ratios.
    let client = |run: &WorkersRun| {
        run.client_cores
            .map_or_else(|| "-".to_owned(), |c| format!("{c:.2}"))
    };
    let mut ratios: [Vec<f64>; 4] = Default::default();
    let mut four_cpu = 0.0f64;
    let mut unbatched = calculator(&url, "pair-process");
    let mut batched = calculator(&url, "pair-batch");
    let (one, hundred, thousand) = (events(1024), events(100), events(1000));
    for e in &one[..200] {
        unbatched.process(e).expect("process");
    }
    batched.process_batch(&thousand).expect("process_batch");
    for round in 1..=ROUNDS {
        // One worker, then four, on one namespace, each unbatched.
        let w1 = workers_run(&url, 1, 7_000);
        let w4 = workers_run(&url, 4, 4_000);
        println!(
            "round {round}: workers (unbatched, one namespace): 1: {:.0} events/s (Redis {:.2} cores, workers {} cores), \
             4: {:.0} events/s (Redis {:.2} cores, workers {} cores): {:.2}x",
            w1.events_per_sec,
            w1.redis_cores,
            client(&w1),
            w4.events_per_sec,
            w4.redis_cores,
            client(&w4),
            w4.events_per_sec / w1.events_per_sec
        );
        ratios[3].push(w4.events_per_sec / w1.events_per_sec);
        four_cpu = four_cpu.max(w4.redis_cores);

        // Unbatched `process`, then `redis-benchmark -c 1 -t set`.
        let per_sec = timed(3_000, |i| {
            black_box(unbatched.process(&one[i % one.len()]).expect("process"));
        });
        let Some(set_c1) = redis_benchmark(&url, &["-c", "1"], 20_000) else {
            println!("redis-benchmark not found or failed: no ratio printed");
            return;
        };
        println!(
            "round {round}: process {per_sec:.0} events/s, redis-benchmark -c 1 -t set {set_c1:.0} SET/s: {:.3}",
            per_sec / set_c1
        );
        ratios[0].push(per_sec / set_c1);

        // Batches of 100 and of 1000, then `redis-benchmark -P 32 -t set`.
        let per_sec_100 = 100.0
            * timed(300, |_| {
                black_box(batched.process_batch(&hundred).expect("process_batch"));
            });
        let per_sec_1000 = 1000.0
            * timed(40, |_| {
                black_box(batched.process_batch(&thousand).expect("process_batch"));
            });
        let Some(set_p32) = redis_benchmark(&url, &["-P", "32"], 1_000_000) else {
            println!("redis-benchmark not found or failed: no ratio printed");
            return;
        };
        println!(
            "round {round}: process_batch of 100 {per_sec_100:.0} events/s, of 1000 {per_sec_1000:.0} events/s, \
             redis-benchmark -P 32 -t set {set_p32:.0} SET/s: {:.3}, {:.3}",
            per_sec_100 / set_p32,
            per_sec_1000 / set_p32
        );
        ratios[1].push(per_sec_100 / set_p32);
        ratios[2].push(per_sec_1000 / set_p32);
    }
    // What four clients get from this server and machine with the lightest
    // command: the same SETs from four connections on four threads.
    if let (Some(set_c4), Some(set_c1)) = (
        redis_benchmark(&url, &["-c", "4", "--threads", "4"], 200_000),
        redis_benchmark(&url, &["-c", "1"], 50_000),
    ) {
        println!(
            "redis-benchmark -c 4 --threads 4 -t set: {set_c4:.0} SET/s: {:.2}x -c 1 ({set_c1:.0} SET/s)",
            set_c4 / set_c1
        );
    }
    println!("  mode (median of {ROUNDS} paired rounds)             ratio   target");
    let verdict = |ratio: f64, target: f64| {
        if ratio >= target {
            "met"
        } else {
            "MISSED"
        }
    };
    let r = median(&mut ratios[0]);
    println!(
        "  process / redis-benchmark -c 1 -t set         {r:>6.3}   >= 0.3 {}",
        verdict(r, 0.3)
    );
    let r = median(&mut ratios[1]);
    println!(
        "  process_batch/100 / -P 32 -t set             {r:>6.3}   >= 0.12 {}",
        verdict(r, 0.12)
    );
    let r = median(&mut ratios[2]);
    println!("  process_batch/1000 / -P 32 -t set            {r:>6.3}   -");
    let r = median(&mut ratios[3]);
    println!(
        "  4 workers / 1 worker                         {r:>6.2}x   >= 2.5x and Redis < 1 core (busiest round {four_cpu:.2}): {}",
        if r >= 2.5 && four_cpu < 1.0 { "met" } else { "MISSED" }
    );
}
