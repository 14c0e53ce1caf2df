//! Tested like a deployment: a real `redis-server`, a producer no one here
//! wrote (redis-py, in a virtual environment), and three worker processes in
//! one consumer group. One worker is drained with SIGTERM while Redis is
//! paused (so the drain has a batch in flight), one is killed with SIGKILL;
//! both restart. At the end the shared totals equal the distinct valid
//! events sent, the dead letters hold exactly the invalid entries, and a
//! scrape of `/metrics` shows what `{ns}:latest` holds.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{
    free_port, http_get, parse_scrape, python_with_redis, wait_for, wait_ready, RedisServer, Worker,
};

const STREAM: &str = "telemetry:events";
const GROUP: &str = "composite-metrics";
const NS: &str = "deploy";
/// Sessions the producer writes: about 4 000 entries.
const SESSIONS: &str = "230";
/// Entries per second: the stream flows for about 8 s.
const RATE: &str = "500";
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

fn config(dir: &Path, url: &str) -> String {
    let path = dir.join("worker.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[scheduler]
strategy = "coalesce"
max_staleness = "2s"
min_interval = "1s"
every_events = 100
lease = "1s"
tick = "100ms"

[redis]
url = "{url}"
namespace = "{NS}"

[source]
stream = "{STREAM}"
group = "{GROUP}"
count = 50
block = "200ms"
min_idle = "2s"
claim_every = "500ms"
lag_every = "200ms"

[worker]
shutdown_timeout = "{}s"
progress_every = "1s"
connect_backoff = "100ms"
"#,
            SHUTDOWN_TIMEOUT.as_secs()
        ),
    )
    .expect("write the config");
    path.to_str().expect("utf-8 path").to_owned()
}

fn spawn(dir: &Path, config: &str, name: &str, port: u16, env: &[(&str, &str)]) -> Worker {
    let listen = format!("127.0.0.1:{port}");
    Worker::spawn(
        name,
        dir,
        &[
            "run",
            "--config",
            config,
            "--consumer",
            name,
            "--listen",
            &listen,
        ],
        env,
    )
}

/// The group's (pending, lag) as Redis reports them.
fn group_lag(server: &RedisServer) -> (i64, i64) {
    let pending: redis::Value = server.cmd(&["XPENDING", STREAM, GROUP]);
    let pending = match pending {
        redis::Value::Array(parts) => match parts.first() {
            Some(redis::Value::Int(n)) => *n,
            other => panic!("XPENDING: {other:?}"),
        },
        other => panic!("XPENDING: {other:?}"),
    };
    let groups: Vec<BTreeMap<String, redis::Value>> = server.cmd(&["XINFO", "GROUPS", STREAM]);
    let lag = match groups[0].get("lag") {
        Some(redis::Value::Int(n)) => *n,
        other => panic!("lag: {other:?}"),
    };
    (pending, lag)
}

#[test]
fn three_workers_drain_crash_restart_and_count_every_event_once() {
    let python = python_with_redis();
    let mut server = RedisServer::start();
    let url = server.url();
    let dir = support::temp_dir();
    let cfg = config(dir.path(), &url);
    let ports = [free_port(), free_port(), free_port()];
    let names = ["w1", "w2", "w3"];
    let mut workers: Vec<Worker> = names
        .iter()
        .zip(ports)
        .map(|(n, p)| spawn(dir.path(), &cfg, n, p, &[]))
        .collect();
    for (w, p) in workers.iter().zip(ports) {
        wait_ready(w, p, 200, Duration::from_secs(20));
    }

    // The producer, in the background.
    let summary_path = dir.path().join("summary.json");
    let mut producer = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/producer.py"))
        .args([&url, STREAM, SESSIONS, RATE])
        .arg(&summary_path)
        .spawn()
        .expect("start the Python producer");

    // Mid-stream: some entries applied.
    wait_for(
        Duration::from_secs(30),
        "1000 entries in the stream",
        String::new,
        || (server.cmd::<i64>(&["XLEN", STREAM]) >= 1000).then_some(()),
    );

    // Drain w1 while Redis is paused: its batch in flight cannot finish, so
    // the drain lasts until Redis resumes, and /readyz must say 503 meanwhile.
    let paused = server.stop();
    let drain_started = Instant::now();
    workers[0].signal("-TERM");
    let (status, body) = wait_for(
        Duration::from_secs(5),
        "w1 /readyz during the drain",
        || workers[0].stderr(),
        || http_get(ports[0], "/readyz").filter(|(s, _)| *s == 503),
    );
    assert_eq!(status, 503);
    assert!(body.contains("draining"), "{body}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        workers[0].wait_timeout(Duration::ZERO).is_none(),
        "w1 exited while Redis was paused: it did not wait for its batch in flight"
    );
    paused.resume();
    let status = workers[0].wait_exit(SHUTDOWN_TIMEOUT + Duration::from_secs(5));
    let drain = drain_started.elapsed();
    assert_eq!(status.code(), Some(0), "w1 drain: {}", workers[0].stderr());
    assert!(drain < SHUTDOWN_TIMEOUT, "drain took {drain:?}");
    assert!(
        workers[0].stderr().contains("drained"),
        "{}",
        workers[0].stderr()
    );

    // Kill w2 outright, mid-stream.
    std::thread::sleep(Duration::from_millis(500));
    workers[1].signal("-KILL");
    let status = workers[1].wait_exit(Duration::from_secs(5));
    assert_eq!(status.signal(), Some(9));

    // Both come back under their names (w2 first re-reads what it left pending).
    std::thread::sleep(Duration::from_millis(300));
    workers[0] = spawn(dir.path(), &cfg, "w1", ports[0], &[]);
    workers[1] = spawn(dir.path(), &cfg, "w2", ports[1], &[]);
    wait_ready(&workers[0], ports[0], 200, Duration::from_secs(20));
    wait_ready(&workers[1], ports[1], 200, Duration::from_secs(20));

    // The producer finishes; the group drains.
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = producer.try_wait().expect("producer") {
            break s;
        }
        assert!(Instant::now() < deadline, "the producer did not finish");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "the producer failed: {status}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary_path).expect("summary")).expect("JSON");
    let entries = summary["entries"].as_i64().expect("entries");
    let distinct = summary["distinct_valid"].as_u64().expect("distinct_valid");
    let invalid: HashSet<String> = summary["invalid_entry_ids"]
        .as_array()
        .expect("invalid ids")
        .iter()
        .map(|v| v.as_str().expect("id").to_owned())
        .collect();
    assert!(entries > 3000, "{entries} entries");
    assert!(
        !invalid.is_empty() && summary["retries"].as_u64() > Some(0),
        "{summary}"
    );
    wait_for(
        Duration::from_secs(60),
        "the group drained (nothing pending, nothing undelivered)",
        || format!("{:?}", group_lag(&server)),
        || (group_lag(&server) == (0, 0)).then_some(()),
    );

    eprintln!(
        "producer: {entries} entries, {distinct} distinct valid events, {} invalid, {} retried; \
         w1 drained in {drain:?}",
        invalid.len(),
        summary["retries"]
    );
    // Every distinct valid event counted exactly once in the shared totals.
    let events: u64 = server.cmd(&["HGET", &format!("{{{NS}}}:totals"), "events"]);
    assert_eq!(
        events, distinct,
        "shared totals vs distinct valid events sent"
    );
    // The dead letters hold exactly the invalid entries.
    let dead: Vec<(String, Vec<String>)> =
        server.cmd(&["XRANGE", &format!("{STREAM}:dead"), "-", "+"]);
    let dead_ids: Vec<String> = dead
        .iter()
        .map(|(_, fields)| {
            assert_eq!(fields[0], "entry_id", "{fields:?}");
            fields[1].clone()
        })
        .collect();
    assert_eq!(
        dead_ids.len(),
        invalid.len(),
        "one dead letter per invalid entry"
    );
    assert_eq!(dead_ids.into_iter().collect::<HashSet<_>>(), invalid);

    // In text mode a progress line every `progress_every` (1 s here).
    let log = workers[2].stderr();
    let progress = log
        .lines()
        .find(|l| l.contains("progress") && l.contains("events_per_second="))
        .unwrap_or_else(|| panic!("no progress line:\n{log}"));
    for field in [
        "undelivered=",
        "oldest_unacked_s=",
        "pending=",
        "dead_letters=",
    ] {
        assert!(progress.contains(field), "{progress}");
    }

    // Everyone stops cleanly.
    for w in &mut workers {
        w.signal("-TERM");
    }
    for w in &mut workers {
        let status = w.wait_exit(SHUTDOWN_TIMEOUT + Duration::from_secs(5));
        assert_eq!(status.code(), Some(0), "{}: {}", w.name, w.stderr());
    }

    // A scrape shows what {ns}:latest holds: a fresh worker applies one more
    // event; every metric it emitted (its stdout sink) is in both, equal.
    let port = free_port();
    let w4 = spawn(
        dir.path(),
        &cfg,
        "w4",
        port,
        &[("COMPOSITE_METRICS_SINKS__STDOUT", "true")],
    );
    wait_ready(&w4, port, 200, Duration::from_secs(20));
    let last = r#"{"timestamp":"2024-05-01T13:00:00Z","platform":"claude_code","session_id":"sess-last","event_type":"tool_use","hook_type":"PostToolUse","tool_name":"Bash","duration_ms":777,"payload":{"success":false},"event_id":"last-1"}"#;
    let _: String = server.cmd(&["XADD", STREAM, "*", "event", last]);
    let emitted: BTreeMap<String, f64> = wait_for(
        Duration::from_secs(20),
        "w4 emitted the last event's metrics",
        || w4.stderr(),
        || {
            let lines: BTreeMap<String, f64> = w4
                .stdout()
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter_map(|v| Some((v["metric"].as_str()?.to_owned(), v["value"].as_f64()?)))
                .collect();
            lines
                .contains_key("tools/tool_success_rate@Bash")
                .then_some(lines)
        },
    );
    assert!(emitted.len() >= 5, "{emitted:?}");
    let compare = || -> Result<(), String> {
        let scrape = parse_scrape(&http_get(port, "/metrics").ok_or("no scrape")?.1);
        let latest: BTreeMap<String, f64> = server.cmd(&["HGETALL", &format!("{{{NS}}}:latest")]);
        for field in emitted.keys() {
            // The exported tool shares are the sink's own, refreshed together
            // so that they add up to 100 % (the library's `MetricsSink`);
            // shares across processes come from the run counters in PromQL.
            if field.starts_with("tools/tool_frequency@") {
                continue;
            }
            let (metric, tool) = match field.split_once('@') {
                Some((m, t)) => (m, Some(t)),
                None => (field.as_str(), None),
            };
            let series = format!("composite_metrics_{}", metric.replace('/', "_"));
            let key = match tool {
                Some(t) => format!("{series}{{tool=\"{t}\"}}"),
                None => series,
            };
            let scraped = scrape.get(&key).ok_or(format!("{key} not scraped"))?;
            let stored = latest.get(field).ok_or(format!("{field} not in latest"))?;
            if (scraped - stored).abs() > 1e-9 {
                return Err(format!("{field}: scrape {scraped}, latest {stored}"));
            }
        }
        Ok(())
    };
    // A composite may land between the two reads: compare again then.
    let mut result = compare();
    for _ in 0..5 {
        if result.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        result = compare();
    }
    result.unwrap_or_else(|e| panic!("scrape vs {{{NS}}}:latest: {e}"));
    eprintln!("scrape = {{{NS}}}:latest for {emitted:?}");
    assert!(emitted["tools/tool_latency_p50"] > 0.0, "{emitted:?}");

    let mut w4 = w4;
    w4.signal("-TERM");
    assert_eq!(w4.wait_exit(SHUTDOWN_TIMEOUT).code(), Some(0));
    server.kill();
}
