//! Redis Cluster: the test support's local cluster, `RedisState` and
//! `RedisSink` on it, how namespaces spread, and a slot migration under load.

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use composite_metrics::state::{RedisConfig, RedisState};
use composite_metrics::{
    BackendError, Category, Error, Event, HybridLock, HybridLockConfig, Metric, MetricSink,
    MetricsCalculator, RedisSink, StateBackend,
};
use support::RedisCluster;

fn seeds(cluster: &RedisCluster) -> Vec<String> {
    cluster.urls()
}

fn connect(cluster: &RedisCluster, config: RedisConfig) -> RedisState {
    let urls = seeds(cluster);
    let refs: Vec<&str> = urls.iter().map(String::as_str).collect();
    RedisState::connect_cluster(&refs, config).expect("connect to the cluster")
}

#[test]
fn namespaces_spread_over_the_primaries() {
    let cluster = RedisCluster::start(3);
    // One RedisState per namespace, one event each: each namespace's totals
    // are on the primary owning its slot, and they use more than one node.
    let mut owners = BTreeSet::new();
    for i in 0..12 {
        let ns = format!("ns{i}");
        let state = connect(&cluster, RedisConfig::default().with_namespace(&ns));
        state
            .record(&Event::tool_use("s", "bash"), Duration::ZERO)
            .expect("record");
        let owner = cluster.owner_of(cluster.slot_of(&format!("{{{ns}}}:totals")));
        let events: u64 =
            cluster.nodes()[owner].cmd(&["HGET", &format!("{{{ns}}}:totals"), "events"]);
        assert_eq!(events, 1, "namespace {ns} on node {owner}");
        owners.insert(owner);
    }
    assert!(
        owners.len() > 1,
        "12 namespaces all on one node: {owners:?}"
    );
    let holding = cluster
        .nodes()
        .iter()
        .filter(|n| n.cmd::<u64>(&["DBSIZE"]) > 0)
        .count();
    assert_eq!(holding, owners.len());
    // One namespace is one slot: every key family of it hashes alike.
    let slot = cluster.slot_of("{team-a}:totals");
    for key in [
        "{team-a}:s:x",
        "{team-a}:e:1",
        "{team-a}:lock",
        "{team-a}:series:a/b@c",
    ] {
        assert_eq!(cluster.slot_of(key), slot, "{key}");
    }
}

#[test]
fn a_slot_migrates_with_its_keys() {
    let cluster = RedisCluster::start(3);
    let slot = cluster.slot_of("{mig}:totals");
    let from = cluster.owner_of(slot);
    let node = &cluster.nodes()[from];
    for i in 0..25 {
        let _: () = node.cmd(&["SET", &format!("{{mig}}:k{i}"), "v"]);
    }
    let to = (from + 1) % 3;
    let mut batches = 0;
    cluster.migrate_slot(slot, to, || batches += 1);
    assert!(batches >= 3, "25 keys in batches of 10: {batches}");
    assert_eq!(cluster.owner_of(slot), to);
    let n: i64 = cluster.nodes()[to].cmd(&["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]);
    assert_eq!(n, 25);
}

#[test]
fn scripts_are_loaded_on_every_primary_and_the_sink_works() {
    let cluster = RedisCluster::start(3);
    let config = RedisConfig::default().with_namespace("loaded");
    let _state = connect(&cluster, config.clone());
    let sha = redis::Script::new(concat!(
        include_str!("../src/state/redis/prelude.lua"),
        include_str!("../src/state/redis/try_lock.lua")
    ))
    .get_hash()
    .to_owned();
    let sink_sha = redis::Script::new(include_str!("../src/sink/redis_record.lua"))
        .get_hash()
        .to_owned();
    for n in cluster.nodes() {
        let _: () = n.cmd(&["SCRIPT", "FLUSH"]);
    }
    let urls = seeds(&cluster);
    let refs: Vec<&str> = urls.iter().map(String::as_str).collect();
    let state = RedisState::connect_cluster(&refs, config.clone()).expect("connect");
    let sink = RedisSink::connect_cluster(&refs, config).expect("connect the sink");
    for n in cluster.nodes() {
        let exists: Vec<u8> = n.cmd(&["SCRIPT", "EXISTS", &sha, &sink_sha]);
        assert_eq!(exists, [1, 1], "node {}", n.port());
    }
    state
        .record(&Event::tool_use("s", "bash"), Duration::ZERO)
        .expect("record");
    let metric = Metric::new(Category::Realtime, "events_per_second", 1.5, Duration::ZERO);
    sink.record(std::slice::from_ref(&metric))
        .expect("sink record");
    let owner = &cluster.nodes()[cluster.owner_of(cluster.slot_of("{loaded}:latest"))];
    let latest: String = owner.cmd(&["HGET", "{loaded}:latest", &RedisSink::field(&metric)]);
    assert_eq!(latest, "1.5");
    // Two scripts, one round trip each (EVALSHA found them).
    assert_eq!(state.round_trips(), 2);
    assert_eq!(sink.round_trips(), 1);
}

#[test]
fn a_split_slot_is_retried_until_the_deadline_then_moved_is_followed() {
    let cluster = RedisCluster::start(3);
    let connect_timeout = Duration::from_millis(200);
    let read_timeout = Duration::from_millis(300);
    let config = RedisConfig::default()
        .with_namespace("split")
        .with_connect_timeout(connect_timeout)
        .with_read_timeout(read_timeout);
    let state = connect(&cluster, config);
    state
        .record(&Event::tool_use("s", "bash"), Duration::ZERO)
        .expect("record");
    // Half-move the slot by hand: the epoch key goes to the target, the
    // totals stay on the source, so every record's keys are split.
    let slot = cluster.slot_of("{split}:meta");
    let from = cluster.owner_of(slot);
    let to = (from + 1) % 3;
    let (src, dst) = (&cluster.nodes()[from], &cluster.nodes()[to]);
    let src_id: String = src.cmd(&["CLUSTER", "MYID"]);
    let dst_id: String = dst.cmd(&["CLUSTER", "MYID"]);
    let s = slot.to_string();
    let _: () = dst.cmd(&["CLUSTER", "SETSLOT", &s, "IMPORTING", &src_id]);
    let _: () = src.cmd(&["CLUSTER", "SETSLOT", &s, "MIGRATING", &dst_id]);
    let port = dst.port().to_string();
    let _: () = src.cmd(&[
        "MIGRATE",
        "127.0.0.1",
        &port,
        "",
        "0",
        "5000",
        "KEYS",
        "{split}:meta",
    ]);
    let trips = state.round_trips();
    let started = Instant::now();
    let err = state
        .record(&Event::tool_use("s", "bash"), Duration::ZERO)
        .expect_err("keys split between two nodes");
    let took = started.elapsed();
    assert!(
        matches!(err, BackendError::Timeout { op: "record" }),
        "{err:?}"
    );
    // Bounded blocking: the call's deadline (connect + read timeout), +10 %.
    let bound = (connect_timeout + read_timeout).mul_f64(1.1);
    assert!(took <= bound, "took {took:?}, bound {bound:?}");
    assert!(
        state.round_trips() - trips >= 3,
        "TRYAGAIN was retried: {} round trips",
        state.round_trips() - trips
    );
    // Nothing was applied on either node.
    let events: u64 = src.cmd(&["HGET", "{split}:totals", "events"]);
    assert_eq!(events, 1);
    // Finish the move: the same state follows MOVED and goes on.
    cluster.migrate_slot_rest(slot, from, to);
    let reconnects = state.reconnects();
    state
        .record(&Event::tool_use("s", "bash"), Duration::ZERO)
        .expect("record after the migration");
    assert_eq!(
        state.reconnects(),
        reconnects + 1,
        "MOVED rebuilt the slot map"
    );
    let events: u64 = dst.cmd(&["HGET", "{split}:totals", "events"]);
    assert_eq!(events, 2);
}

/// What one worker did.
#[derive(Debug, Default)]
struct Done {
    /// Batches acknowledged (`Ok`), by number.
    acked: Vec<u64>,
    /// Calls that failed and were retried with the same event ids.
    failures: u64,
    /// Batches acknowledged after the migration finished.
    after: u64,
}

const BATCH: u64 = 10;
const MIN_INTERVAL: Duration = Duration::from_millis(100);

fn worker(
    w: usize,
    urls: Vec<String>,
    migrated: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    progress: Arc<Vec<AtomicU64>>,
) -> Done {
    let refs: Vec<&str> = urls.iter().map(String::as_str).collect();
    let config = RedisConfig::default().with_namespace("load");
    let state = RedisState::connect_cluster(&refs, config).expect("connect");
    let lock = HybridLockConfig::default()
        .with_max_staleness(Duration::from_millis(200))
        .with_min_interval(MIN_INTERVAL)
        .with_every_events(25)
        .with_lease(Duration::from_millis(50));
    let mut calc = MetricsCalculator::builder()
        .state(state)
        .scheduler(HybridLock::new(lock).expect("valid lock config"))
        .build()
        .expect("build");
    let mut done = Done::default();
    let give_up = Instant::now() + Duration::from_secs(60);
    for b in 0.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        // Each batch: its own session, events with ids (retries are safe).
        let session = format!("w{w}-b{b}");
        let events: Vec<Event> = (0..BATCH)
            .map(|i| {
                Event::tool_use(session.as_str(), "bash")
                    .with_duration_ms(5.0)
                    .with_success(true)
                    .with_event_id(format!("{session}-{i}"))
            })
            .collect();
        loop {
            let after = migrated.load(Ordering::Relaxed);
            match calc.process_batch(&events) {
                Ok(_) => {
                    done.acked.push(b);
                    if after {
                        done.after += 1;
                    }
                    progress[w].fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(Error::Backend(_)) => {
                    done.failures += 1;
                    assert!(
                        Instant::now() < give_up,
                        "worker {w}: batch {b} never acknowledged"
                    );
                }
                Err(e) => panic!("worker {w}: {e}"),
            }
        }
    }
    done
}

#[test]
fn a_slot_migrates_under_load_without_loss_or_half_batches() {
    let cluster = RedisCluster::start(3);
    let slot = cluster.slot_of("{load}:totals");
    let from = cluster.owner_of(slot);
    let to = (from + 1) % 3;
    let migrated = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    // Batches acknowledged, per worker.
    let progress: Arc<Vec<AtomicU64>> = Arc::new((0..2).map(|_| AtomicU64::new(0)).collect());
    let workers: Vec<_> = (0..2)
        .map(|w| {
            let (urls, m, s, p) = (
                seeds(&cluster),
                migrated.clone(),
                stop.clone(),
                progress.clone(),
            );
            std::thread::spawn(move || worker(w, urls, m, s, p))
        })
        .collect();
    let counts = || -> Vec<u64> { progress.iter().map(|p| p.load(Ordering::Relaxed)).collect() };
    // Until every worker has acknowledged `n` more batches than in `from`.
    let wait_for = |from: &[u64], n: u64| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while counts().iter().zip(from).any(|(c, f)| *c < f + n) {
            assert!(
                Instant::now() < deadline,
                "the workers stalled: {:?}",
                counts()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait_for(&[0, 0], 10);
    // Move the slot while both write; between MIGRATE batches they go on.
    let mut batches = 0;
    let before_move: u64 = counts().iter().sum();
    cluster.migrate_slot(slot, to, || {
        batches += 1;
        std::thread::sleep(Duration::from_millis(2));
    });
    assert!(batches >= 3, "{batches} MIGRATE batches");
    migrated.store(true, Ordering::Relaxed);
    let at_move = counts();
    wait_for(&at_move, 10);
    stop.store(true, Ordering::Relaxed);
    let done: Vec<Done> = workers
        .into_iter()
        .map(|h| h.join().expect("worker"))
        .collect();

    let node = &cluster.nodes()[to];
    assert_eq!(cluster.owner_of(slot), to);
    // Totals on the new owner equal the events acknowledged.
    let acked: u64 = done.iter().map(|d| d.acked.len() as u64 * BATCH).sum();
    let events: u64 = node.cmd(&["HGET", "{load}:totals", "events"]);
    assert_eq!(events, acked, "{done:?}");
    // No batch half applied: each batch's session holds all its events.
    for (w, d) in done.iter().enumerate() {
        for b in &d.acked {
            let runs: u64 = node.cmd(&["HGET", &format!("{{load}}:s:w{w}-b{b}"), "tool_runs"]);
            assert_eq!(runs, BATCH, "worker {w} batch {b}");
        }
        // Both went on after the move, on the same RedisState.
        assert!(
            d.after >= 1,
            "worker {w} stopped after the migration: {d:?}"
        );
    }
    // G1 in the calc log: starts at least min_interval apart (server clock).
    let mut log: Vec<String> = node.cmd(&["LRANGE", "{load}:calc_log", "0", "-1"]);
    log.reverse();
    let starts: Vec<u64> = log
        .iter()
        .filter_map(|l| {
            let mut f = l.split(' ');
            (f.next() == Some("start")).then(|| {
                f.next()
                    .and_then(|us| us.parse().ok())
                    .unwrap_or_else(|| panic!("bad calc log line {l:?}"))
            })
        })
        .collect();
    assert!(
        starts.len() >= 2,
        "too few calculations to check G1: {log:?}"
    );
    let min_us = MIN_INTERVAL.as_micros() as u64;
    for pair in starts.windows(2) {
        assert!(pair[1] - pair[0] >= min_us, "G1 violated: {log:?}");
    }
    eprintln!(
        "migration under load: {} batches acknowledged ({} while the slot was migrating), \
         {} failed calls retried, {batches} MIGRATE batches",
        acked / BATCH,
        at_move.iter().sum::<u64>() - before_move,
        done.iter().map(|d| d.failures).sum::<u64>()
    );
}
