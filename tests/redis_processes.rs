//! Many processes: three OS processes (the `redis_worker` example), each a
//! worker with a scaled-down HybridLock, share one redis-server under load.
//! From the server-side log of calculation starts and releases it checks G1
//! (no two starts within `min_interval`, by the server's clock) and G4 (one
//! calculation at a time), and that the shared counters equal the events sent.

mod support;

use std::process::{Command, Stdio};

use support::{example_binary, RedisServer};

const MIN_INTERVAL_US: i64 = 200_000;
const LEASE_US: i64 = 100_000;

#[derive(Debug, PartialEq)]
enum Entry {
    Start(i64, String),
    End(i64, String),
}

fn parse(line: &str) -> Entry {
    let parts: Vec<&str> = line.split(' ').collect();
    let at: i64 = parts[1].parse().expect("server time in µs");
    match parts[0] {
        "start" => Entry::Start(at, parts[2].to_owned()),
        "end" => Entry::End(at, parts[2].to_owned()),
        other => panic!("unknown log entry {other}"),
    }
}

#[test]
fn three_processes_share_one_server() {
    let server = RedisServer::start();
    let bin = example_binary("redis_worker");
    let workers: Vec<_> = (0..3)
        .map(|id| {
            Command::new(&bin)
                .args([&server.url(), "procs", &id.to_string(), "2500", "400"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn redis_worker")
        })
        .collect();
    let mut sent = 0u64;
    let mut composites = 0u64;
    for w in workers {
        let out = w.wait_with_output().expect("worker output");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "worker failed: {stdout}\n{}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            server.log()
        );
        let field = |name: &str| -> u64 {
            stdout
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix(name))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {name} in {stdout}"))
        };
        assert_eq!(field("errors="), 0, "{stdout}");
        sent += field("sent=");
        composites += field("composites=");
    }
    assert!(sent > 1_000, "only {sent} events were sent");

    // Shared counters equal exactly the events sent.
    let events: u64 = server.cmd(&["HGET", "{procs}:totals", "events"]);
    assert_eq!(events, sent);
    let tool_runs: u64 = server.cmd(&["HGET", "{procs}:totals", "tool_runs"]);
    let edits: u64 = server.cmd(&["LLEN", "{procs}:decisions"]);
    assert!(tool_runs > 0 && tool_runs < sent && edits == 100);

    // The server's log, oldest first.
    let mut log: Vec<String> = server.cmd(&["LRANGE", "{procs}:calc_log", "0", "-1"]);
    log.reverse();
    let log: Vec<Entry> = log.iter().map(|l| parse(l)).collect();
    let starts: Vec<i64> = log
        .iter()
        .filter_map(|e| match e {
            Entry::Start(at, _) => Some(*at),
            Entry::End(..) => None,
        })
        .collect();
    assert_eq!(
        starts.len() as u64,
        composites,
        "every calculation is logged once"
    );
    // 2.5 s at min_interval 200 ms: about 12 calculations; at least a few.
    assert!(starts.len() >= 5, "{log:?}");
    // G1: starts at least min_interval apart by the server's clock.
    for pair in starts.windows(2) {
        assert!(pair[1] - pair[0] >= MIN_INTERVAL_US, "G1 violated: {log:?}");
    }
    // G4: each start is followed by its holder's release before the next
    // start, unless its lease ran out first.
    for (i, entry) in log.iter().enumerate() {
        if let Entry::Start(at, token) = entry {
            match log.get(i + 1) {
                Some(Entry::End(end, t)) => {
                    assert_eq!(t, token, "G4: released by another holder: {log:?}");
                    assert!(end >= at);
                }
                Some(Entry::Start(next, _)) => {
                    assert!(
                        next - at >= LEASE_US,
                        "G4: overlapping calculations: {log:?}"
                    )
                }
                None => {}
            }
        }
    }
}

/// Coalesce across processes (issue 10): worker A records an event, then a
/// second one too soon for a calculation (armed on A's own timer only), and
/// is killed with SIGKILL. No other event ever arrives. Another live worker
/// still computes, within `max_staleness` + tick of the second event, and
/// exactly once: the server's log shows A's calculation, one takeover, and
/// nothing else (C3: no calculation without a new event; C1: the two are at
/// least `min_interval` apart).
#[test]
fn coalesce_takes_over_a_killed_workers_deadline() {
    const MAX_STALENESS_US: i64 = 400_000;
    const TICK_US: i64 = 20_000;
    let server = RedisServer::start();
    let bin = example_binary("redis_worker");
    let spawn = |id: &str, run_ms: &str, rate: &str| {
        Command::new(&bin)
            .args([&server.url(), "takeover", id, run_ms, rate, "coalesce"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn redis_worker")
    };
    // Two idle workers that only run their timers, for 2.5 s.
    let idle: Vec<_> = ["1", "2"].iter().map(|id| spawn(id, "2500", "0")).collect();
    let mut a = spawn("0", "60000", "armed");
    let mut line = String::new();
    {
        use std::io::BufRead;
        let out = a.stdout.take().expect("worker stdout");
        std::io::BufReader::new(out)
            .read_line(&mut line)
            .expect("read from worker 0");
    }
    assert_eq!(line.trim(), "armed", "worker 0 did not arm: {line}");
    a.kill().expect("SIGKILL worker 0");
    let _ = a.wait();
    for w in idle {
        let out = w.wait_with_output().expect("worker output");
        assert!(
            out.status.success(),
            "idle worker failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let events: u64 = server.cmd(&["HGET", "{takeover}:totals", "events"]);
    assert_eq!(events, 2);
    let mut log: Vec<String> = server.cmd(&["LRANGE", "{takeover}:calc_log", "0", "-1"]);
    log.reverse();
    let starts: Vec<(i64, String)> = log
        .iter()
        .map(|l| parse(l))
        .filter_map(|e| match e {
            Entry::Start(at, token) => Some((at, token)),
            Entry::End(..) => None,
        })
        .collect();
    assert_eq!(
        starts.len(),
        2,
        "one calculation by A, one takeover: {log:?}"
    );
    let (first, a_token) = &starts[0];
    let (second, b_token) = &starts[1];
    assert_ne!(
        a_token, b_token,
        "the takeover was by another worker: {log:?}"
    );
    assert!(second - first >= MIN_INTERVAL_US, "C1: {log:?}");
    // The second event was recorded after A's calculation started, so it was
    // reflected at most this long after its recording:
    let round_trip_us = 50_000;
    assert!(
        second - first <= MAX_STALENESS_US + TICK_US + round_trip_us,
        "C2: the takeover came {} µs after A's calculation: {log:?}",
        second - first
    );
}
