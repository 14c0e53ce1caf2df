//! Scale-out shape: events/s for one namespace and for many, on one Redis
//! server and on a Redis Cluster, measured in one run.
//!
//! ```text
//! cargo run --release --features redis --example cluster_throughput -- \
//!     --node redis://127.0.0.1:6379/ \
//!     --cluster redis://127.0.0.1:7000/,redis://127.0.0.1:7001/,redis://127.0.0.1:7002/ \
//!     [--namespaces 6] [--workers 6] [--seconds 3] [--batch 100]
//! ```
//!
//! It starts nothing: give it a running server and a running cluster. Four
//! runs of `--seconds` each, every worker a thread with its own
//! `RedisState`, recording batches of `--batch` tool events
//! (`record_batch`, one script call per batch; `--batch 1` for unbatched):
//!
//! 1. one server, one namespace, `--workers` workers;
//! 2. one server, `--namespaces` namespaces, one worker each;
//! 3. the cluster, one namespace (one slot, so one primary), `--workers` workers;
//! 4. the cluster, `--namespaces` namespaces, one worker each (spread over
//!    the primaries by their hash slots).
//!
//! Prints one line per run: events/s, and for the cluster how many primaries
//! the namespaces landed on. Every run writes under fresh namespaces
//! (`tp-<pid>-...`); delete them afterwards with
//! `redis-cli --scan --pattern '{tp-*' | xargs redis-cli del` (per node).

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use composite_metrics::state::{RedisConfig, RedisState};
use composite_metrics::{Event, StateBackend};

struct Args {
    node: String,
    cluster: Vec<String>,
    namespaces: usize,
    workers: usize,
    seconds: f64,
    batch: usize,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        node: String::new(),
        cluster: Vec::new(),
        namespaces: 6,
        workers: 6,
        seconds: 3.0,
        batch: 100,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--node" => a.node = value,
            "--cluster" => a.cluster = value.split(',').map(str::to_owned).collect(),
            "--namespaces" => a.namespaces = num(&value)?.max(1),
            "--workers" => a.workers = num(&value)?.max(1),
            "--batch" => a.batch = num(&value)?.max(1),
            "--seconds" => a.seconds = value.parse().map_err(|e| format!("{flag}: {e}"))?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.node.is_empty() || a.cluster.is_empty() {
        return Err(
            "usage: cluster_throughput --node <url> --cluster <url,url,...> \
                    [--namespaces N] [--workers N] [--seconds S] [--batch N]"
                .to_owned(),
        );
    }
    Ok(a)
}

/// Where a worker connects.
#[derive(Clone)]
enum Target {
    Node(String),
    Cluster(Vec<String>),
}

impl Target {
    fn connect(&self, namespace: &str) -> Result<RedisState, String> {
        let config = RedisConfig::default().with_namespace(namespace);
        match self {
            Self::Node(url) => RedisState::connect(url, config),
            Self::Cluster(urls) => {
                let refs: Vec<&str> = urls.iter().map(String::as_str).collect();
                RedisState::connect_cluster(&refs, config)
            }
        }
        .map_err(|e| format!("connect: {e}"))
    }
}

/// Runs one worker per namespace in `namespaces` for `seconds`; returns
/// events/s and errors.
fn run(target: &Target, namespaces: &[String], a: &Args) -> Result<(f64, u64), String> {
    let states = namespaces
        .iter()
        .map(|ns| target.connect(ns))
        .collect::<Result<Vec<_>, _>>()?;
    let stop = Arc::new(AtomicBool::new(false));
    let events = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let handles: Vec<_> = states
        .into_iter()
        .enumerate()
        .map(|(w, state)| {
            let (stop, events, errors) = (stop.clone(), events.clone(), errors.clone());
            let batch: Vec<Event> = (0..a.batch)
                .map(|i| {
                    Event::tool_use(format!("w{w}-s{}", i % 8), "bash")
                        .with_duration_ms(12.5)
                        .with_success(i % 5 != 0)
                })
                .collect();
            std::thread::spawn(move || {
                let mut out = Vec::with_capacity(batch.len());
                let t0 = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    out.clear();
                    match state.record_batch(&batch, t0.elapsed(), &mut out) {
                        Ok(()) => {
                            events.fetch_add(batch.len() as u64, Ordering::Relaxed);
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(a.seconds));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().map_err(|_| "a worker panicked".to_owned())?;
    }
    let secs = started.elapsed().as_secs_f64();
    Ok((
        events.load(Ordering::Relaxed) as f64 / secs,
        errors.load(Ordering::Relaxed),
    ))
}

/// How many primaries serve the slots of `namespaces` (asks a node with
/// `CLUSTER KEYSLOT` and `CLUSTER SLOTS`).
fn primaries_used(urls: &[String], namespaces: &[String]) -> Result<usize, String> {
    let client = redis::Client::open(urls[0].as_str()).map_err(|e| e.to_string())?;
    let mut con = client.get_connection().map_err(|e| e.to_string())?;
    let slots: Vec<(u16, u16, (String, u16))> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query::<Vec<redis::Value>>(&mut con)
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter_map(|range| {
            let redis::Value::Array(r) = range else {
                return None;
            };
            let int = |v: &redis::Value| match v {
                redis::Value::Int(i) => u16::try_from(*i).ok(),
                _ => None,
            };
            let redis::Value::Array(m) = r.get(2)? else {
                return None;
            };
            let host = match m.first()? {
                redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                _ => return None,
            };
            Some((int(r.first()?)?, int(r.get(1)?)?, (host, int(m.get(1)?)?)))
        })
        .collect();
    let mut owners = std::collections::BTreeSet::new();
    for ns in namespaces {
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(format!("{{{ns}}}:totals"))
            .query(&mut con)
            .map_err(|e| e.to_string())?;
        if let Some((_, _, owner)) = slots.iter().find(|(lo, hi, _)| (*lo..=*hi).contains(&slot)) {
            owners.insert(owner.clone());
        }
    }
    Ok(owners.len())
}

fn main() -> ExitCode {
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("cluster_throughput: {e}");
            return ExitCode::FAILURE;
        }
    };
    match measure(&a) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cluster_throughput: {e}");
            ExitCode::FAILURE
        }
    }
}

fn measure(a: &Args) -> Result<(), String> {
    let pid = std::process::id();
    let names = |tag: &str, n: usize| -> Vec<String> {
        (0..n).map(|i| format!("tp-{pid}-{tag}{i}")).collect()
    };
    let node = Target::Node(a.node.clone());
    let cluster = Target::Cluster(a.cluster.clone());
    println!(
        "batch {} events, {} s per run, {} workers on one namespace, {} namespaces",
        a.batch, a.seconds, a.workers, a.namespaces
    );
    let one = |tag: &str| vec![format!("tp-{pid}-{tag}"); a.workers];
    let (r, e) = run(&node, &one("n1"), a)?;
    println!(
        "one server, 1 namespace,  {} workers: {r:>10.0} events/s ({e} errors)",
        a.workers
    );
    let many = names("nn", a.namespaces);
    let (r, e) = run(&node, &many, a)?;
    println!(
        "one server, {} namespaces, 1 worker each: {r:>10.0} events/s ({e} errors)",
        a.namespaces
    );
    let (r, e) = run(&cluster, &one("c1"), a)?;
    println!(
        "cluster,    1 namespace,  {} workers: {r:>10.0} events/s ({e} errors)",
        a.workers
    );
    let many = names("cn", a.namespaces);
    let used = primaries_used(&a.cluster, &many)?;
    let (r, e) = run(&cluster, &many, a)?;
    println!(
        "cluster,    {} namespaces on {used} primaries, 1 worker each: {r:>10.0} events/s ({e} errors)",
        a.namespaces
    );
    Ok(())
}
