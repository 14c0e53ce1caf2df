//! Events/s through the `composite-metrics` binary (Redis Stream source,
//! Redis state, batches of 100) against the library's own batched ingest on
//! the same server in the same run, and the binary's resident memory over
//! 10^6 events.
//!
//! ```text
//! cargo bench -p composite-metrics-worker --bench throughput
//! ```
//!
//! 1. Library: `process_batch` of 100 events on a `RedisState` (as
//!    `benches/ingest.rs`'s `ingest/process_batch/100`, same event mix),
//!    without event ids (as that bench) and with one id per event (the
//!    stream source gives every entry one: `<stream>:<entry id>`, so the
//!    backend also deduplicates).
//!    Then the library's own stream path in process: the same events
//!    pre-filled in a stream, read by a `StreamSource` (`count` 100) into a
//!    calculator on a `RedisState`, `poll` in a loop until all are applied.
//! 2. Binary: the same events pre-filled in a stream, then one
//!    `composite-metrics run` (`count = 100`, strategy `never`, the
//!    Prometheus sink, no Redis sink) until the group has nothing pending
//!    and nothing undelivered.
//!    Then 2 and 3 binaries in one group on one pre-filled stream.
//! 3. RSS: one binary reads 10^6 events that a producer thread adds
//!    meanwhile; its `VmRSS` after the first 10^5 and at the end.
//!
//! Uses `REDIS_URL` when set; otherwise starts its own `redis-server`.

#[path = "../../tests/support/redis_server.rs"]
#[allow(dead_code)]
mod redis_server;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use composite_metrics::ingest::{StreamConfig, StreamSource};
use composite_metrics::state::{RedisConfig, RedisState};
use composite_metrics::{Event, EventType, MetricsCalculator};

const BATCH: usize = 100;
const THROUGHPUT_EVENTS: usize = 200_000;
const RSS_EVENTS: usize = 1_000_000;
const RSS_FIRST: u64 = 100_000;

fn event(i: usize) -> Event {
    let session = format!("s{}", i % 8);
    match i % 4 {
        3 => Event::new(EventType::FileEdit, session).with_accepted(i.is_multiple_of(2)),
        _ => Event::tool_use(session, if i.is_multiple_of(2) { "bash" } else { "grep" })
            .with_duration_ms((i % 250) as f64 + 0.5)
            .with_success(!i.is_multiple_of(5)),
    }
}

fn json(i: usize) -> String {
    let session = i % 8;
    match i % 4 {
        3 => format!(
            r#"{{"event_type":"file_edit","session_id":"s{session}","timestamp":"2024-05-01T12:00:00Z","payload":{{"accepted":{}}}}}"#,
            i.is_multiple_of(2)
        ),
        _ => format!(
            r#"{{"event_type":"tool_use","session_id":"s{session}","timestamp":"2024-05-01T12:00:00Z","tool_name":"{}","duration_ms":{},"payload":{{"success":{}}}}}"#,
            if i.is_multiple_of(2) { "bash" } else { "grep" },
            (i % 250) as f64 + 0.5,
            !i.is_multiple_of(5)
        ),
    }
}

/// Library events/s: `process_batch` of `BATCH`, `n` events.
fn library(url: &str, ns: &str, n: usize, ids: bool) -> f64 {
    let state = RedisState::connect(url, RedisConfig::default().with_namespace(ns)).expect("state");
    let mut calc = MetricsCalculator::builder()
        .state(state)
        .build()
        .expect("calculator");
    let events: Vec<Event> = (0..n)
        .map(|i| {
            let e = event(i);
            if ids {
                e.with_event_id(format!("bench:{i}"))
            } else {
                e
            }
        })
        .collect();
    let start = Instant::now();
    for chunk in events.chunks(BATCH) {
        calc.process_batch(chunk).expect("process_batch");
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Library events/s through its `StreamSource`, in process: `n` events
/// pre-filled in `stream`.
fn library_stream(url: &str, con: &mut redis::Connection, stream: &str, n: usize) -> f64 {
    fill(con, stream, 0, n);
    let state = RedisState::connect(
        url,
        RedisConfig::default().with_namespace("bench-lib-stream"),
    )
    .expect("state");
    let mut calc = MetricsCalculator::builder()
        .state(state)
        .build()
        .expect("calculator");
    let config = StreamConfig::new(stream, "composite-metrics", "bench")
        .with_count(BATCH)
        .with_block(Duration::from_millis(100));
    let start = Instant::now();
    let mut source = StreamSource::connect(url, config).expect("stream source");
    let deadline = start + Duration::from_secs(600);
    while source.stats().applied < n as u64 {
        source.poll(&mut calc).expect("poll");
        assert!(
            Instant::now() < deadline,
            "the stream source did not finish"
        );
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn fill(con: &mut redis::Connection, stream: &str, from: usize, n: usize) {
    for chunk in (from..from + n).collect::<Vec<_>>().chunks(1000) {
        let mut pipe = redis::pipe();
        for &i in chunk {
            pipe.cmd("XADD")
                .arg(stream)
                .arg("*")
                .arg("event")
                .arg(json(i))
                .ignore();
        }
        pipe.query::<()>(con).expect("XADD");
    }
}

fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, text.split_once("\r\n\r\n")?.1.to_owned()))
}

fn applied(port: u16) -> Option<u64> {
    let (_, body) = http_get(port, "/metrics")?;
    body.lines()
        .find(|l| l.starts_with("composite_metrics_worker_entries_total{outcome=\"applied\"}"))?
        .rsplit_once(' ')?
        .1
        .parse()
        .ok()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn worker(url: &str, stream: &str, ns: &str, port: u16) -> Proc {
    worker_named(url, stream, ns, port, "bench")
}

fn worker_named(url: &str, stream: &str, ns: &str, port: u16, consumer: &str) -> Proc {
    let child = Command::new(env!("CARGO_BIN_EXE_composite-metrics"))
        .args([
            "run",
            "--redis-url",
            url,
            "--stream",
            stream,
            "--namespace",
            ns,
        ])
        .args(["--consumer", consumer, "--strategy", "never"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("COMPOSITE_METRICS_SOURCE__COUNT", BATCH.to_string())
        .env("COMPOSITE_METRICS_SINKS__REDIS", "false")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn composite-metrics");
    let p = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_get(port, "/readyz").map(|(s, _)| s) != Some(200) {
        assert!(Instant::now() < deadline, "the worker did not become ready");
        std::thread::sleep(Duration::from_millis(10));
    }
    p
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: then only check it builds.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let server = std::env::var("REDIS_URL")
        .is_err()
        .then(redis_server::RedisServer::start);
    let url = std::env::var("REDIS_URL")
        .unwrap_or_else(|_| server.as_ref().map(|s| s.url()).unwrap_or_default());
    let client = redis::Client::open(url.as_str()).expect("url");
    let mut con = client.get_connection().expect("connect");

    println!("{THROUGHPUT_EVENTS} events, batches of {BATCH}, one Redis:");
    let lib = library(&url, "bench-lib", THROUGHPUT_EVENTS, false);
    let lib_ids = library(&url, "bench-lib-ids", THROUGHPUT_EVENTS, true);
    println!("  library process_batch/{BATCH}, no event ids      {lib:>10.0} events/s");
    println!("  library process_batch/{BATCH}, an id per event    {lib_ids:>10.0} events/s");
    let lib_stream = library_stream(&url, &mut con, "bench:lib-stream", THROUGHPUT_EVENTS);
    println!("  library StreamSource in process, count {BATCH}    {lib_stream:>10.0} events/s");

    let stream = "bench:events";
    fill(&mut con, stream, 0, THROUGHPUT_EVENTS);
    let port = free_port();
    let start = Instant::now();
    let w = worker(&url, stream, "bench-bin", port);
    let deadline = Instant::now() + Duration::from_secs(600);
    while applied(port).unwrap_or(0) < THROUGHPUT_EVENTS as u64 {
        assert!(Instant::now() < deadline, "the worker did not finish");
        std::thread::sleep(Duration::from_millis(5));
    }
    let bin = THROUGHPUT_EVENTS as f64 / start.elapsed().as_secs_f64();
    drop(w);
    println!(
        "  the binary (stream, Redis state, count {BATCH})  {bin:>10.0} events/s (from its start)"
    );
    println!(
        "  ratio binary / library: {:.2} (process_batch, no ids), {:.2} (process_batch, ids), \
         {:.2} (StreamSource in process)   (target >= 0.80)",
        bin / lib,
        bin / lib_ids,
        bin / lib_stream
    );

    // Scaling out: k processes in one group on one pre-filled stream.
    for k in [2usize, 3] {
        let stream = format!("bench:events-{k}");
        fill(&mut con, &stream, 0, THROUGHPUT_EVENTS);
        let ports: Vec<u16> = (0..k).map(|_| free_port()).collect();
        let start = Instant::now();
        let procs: Vec<Proc> = ports
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                worker_named(
                    &url,
                    &stream,
                    &format!("bench-bin-{k}"),
                    p,
                    &format!("c{i}"),
                )
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(600);
        while ports.iter().map(|&p| applied(p).unwrap_or(0)).sum::<u64>() < THROUGHPUT_EVENTS as u64
        {
            assert!(Instant::now() < deadline, "the workers did not finish");
            std::thread::sleep(Duration::from_millis(5));
        }
        let rate = THROUGHPUT_EVENTS as f64 / start.elapsed().as_secs_f64();
        drop(procs);
        println!("  {k} binaries in one group                        {rate:>10.0} events/s");
    }

    // RSS over 10^6 events, added while the worker reads.
    let stream = "bench:rss";
    let port = free_port();
    let w = worker(&url, stream, "bench-rss", port);
    let pid = w.0.id();
    let producer_url = url.clone();
    let producer = std::thread::spawn(move || {
        let client = redis::Client::open(producer_url.as_str()).expect("url");
        let mut con = client.get_connection().expect("connect");
        let step = 50_000;
        for from in (0..RSS_EVENTS).step_by(step) {
            fill(&mut con, stream, from, step);
        }
    });
    let mut samples: BTreeMap<u64, u64> = BTreeMap::new();
    let mut first = None;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(1200);
    loop {
        let n = applied(port).unwrap_or(0);
        let rss = rss_kib(pid);
        samples.insert(n, rss);
        if first.is_none() && n >= RSS_FIRST {
            first = Some((n, rss));
        }
        if n >= RSS_EVENTS as u64 {
            break;
        }
        assert!(Instant::now() < deadline, "the worker did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    producer.join().expect("producer");
    let end = rss_kib(pid);
    let peak = samples.values().copied().max().unwrap_or(0);
    let (n1, rss1) = first.unwrap_or((0, 0));
    println!(
        "\nresident memory of the binary over {RSS_EVENTS} events ({:.0} s):",
        started.elapsed().as_secs_f64()
    );
    println!("  after {n1} events: {rss1} KiB; at the end: {end} KiB; peak {peak} KiB");
    println!(
        "  end / first: {:.3}   (target <= 1.10)",
        end as f64 / rss1.max(1) as f64
    );
    drop(w);
}
