//! Faults: Redis unreachable at start (bounded retries, then exit 1 with a
//! clear message), Redis lost mid-run (`/readyz` 503, then recovery without
//! a restart), SIGINT (a drain, exit 0), a second signal during a drain
//! (immediate non-zero exit), and a drain that cannot finish within
//! `shutdown_timeout` (exit 1).

mod support;

use std::time::{Duration, Instant};

use support::{free_port, http_get, wait_for, wait_ready, RedisServer, Worker};

fn run_args<'a>(url: &'a str, listen: &'a str) -> Vec<&'a str> {
    vec![
        "run",
        "--redis-url",
        url,
        "--consumer",
        "c1",
        "--listen",
        listen,
        "--strategy",
        "never",
    ]
}

const FAST: [(&str, &str); 4] = [
    ("COMPOSITE_METRICS_WORKER__CONNECT_ATTEMPTS", "3"),
    ("COMPOSITE_METRICS_WORKER__CONNECT_BACKOFF", "100ms"),
    ("COMPOSITE_METRICS_SOURCE__BLOCK", "200ms"),
    ("COMPOSITE_METRICS_SOURCE__CONNECT_TIMEOUT", "500ms"),
];

#[test]
fn unreachable_redis_at_start_exits_1_after_bounded_retries() {
    let dir = support::temp_dir();
    // Nothing listens on this port.
    let port = free_port();
    let url = format!("redis://:secret@127.0.0.1:{port}/");
    let listen = format!("127.0.0.1:{}", free_port());
    let started = Instant::now();
    let mut w = Worker::spawn("w", dir.path(), &run_args(&url, &listen), &FAST);
    let status = w.wait_exit(Duration::from_secs(20));
    let err = w.stderr();
    assert_eq!(status.code(), Some(1), "{err}");
    // 3 attempts, 100 ms then 200 ms apart: well under the bound.
    assert!(started.elapsed() < Duration::from_secs(15));
    let expected =
        format!("could not reach state at redis://:***@127.0.0.1:{port}/ after 3 attempt(s)");
    assert!(err.contains(&expected), "`{expected}` not in:\n{err}");
    assert!(!err.contains("secret"), "the password leaked:\n{err}");
    assert_eq!(err.matches("cannot connect; retrying").count(), 2, "{err}");
}

fn xadd(server: &RedisServer, id: &str) {
    let event = format!(
        r#"{{"event_type":"tool_use","session_id":"s1","timestamp":"2024-05-01T12:00:00Z","tool_name":"bash","duration_ms":5,"event_id":"{id}"}}"#
    );
    let _: String = server.cmd(&["XADD", "telemetry:events", "*", "event", &event]);
}

fn total(server: &RedisServer) -> Option<u64> {
    server.cmd::<Option<u64>>(&["HGET", "{cm}:totals", "events"])
}

#[test]
fn redis_lost_mid_run_turns_readyz_503_and_recovers_without_a_restart() {
    let dir = support::temp_dir();
    let mut server = RedisServer::start();
    let url = server.url();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut w = Worker::spawn("w", dir.path(), &run_args(&url, &listen), &FAST);
    wait_ready(&w, port, 200, Duration::from_secs(20));
    xadd(&server, "a");
    wait_for(
        Duration::from_secs(10),
        "event a applied",
        || w.stderr(),
        || (total(&server) == Some(1)).then_some(()),
    );

    server.kill();
    wait_ready(&w, port, 503, Duration::from_secs(10));
    assert_eq!(
        http_get(port, "/healthz").map(|(s, _)| s),
        Some(200),
        "alive while Redis is gone"
    );
    let (_, body) = http_get(port, "/readyz").expect("readyz");
    assert!(
        body.contains("backend") || body.contains("source"),
        "the reason is given: {body}"
    );

    // A new, empty server on the same port: the worker reconnects by itself.
    server.restart();
    wait_ready(&w, port, 200, Duration::from_secs(30));
    xadd(&server, "b");
    wait_for(
        Duration::from_secs(30),
        "event b applied after the outage",
        || w.stderr(),
        || (total(&server) == Some(1)).then_some(()),
    );
    assert!(
        w.wait_timeout(Duration::ZERO).is_none(),
        "the worker exited"
    );
    let scrape = http_get(port, "/metrics").expect("scrape").1;
    let errors = support::parse_scrape(&scrape)["composite_metrics_worker_poll_errors_total"];
    assert!(errors >= 1.0, "the outage was not counted:\n{scrape}");

    w.signal("-TERM");
    assert_eq!(
        w.wait_exit(Duration::from_secs(15)).code(),
        Some(0),
        "{}",
        w.stderr()
    );
}

#[test]
fn a_second_signal_exits_at_once_and_a_stuck_drain_exits_1_after_shutdown_timeout() {
    let dir = support::temp_dir();
    let server = RedisServer::start();
    let url = server.url();
    let mut env = FAST.to_vec();
    env.push(("COMPOSITE_METRICS_WORKER__SHUTDOWN_TIMEOUT", "1s"));
    env.push(("COMPOSITE_METRICS_SOURCE__IO_TIMEOUT", "30s"));

    let run = |name: &str| {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let w = Worker::spawn(name, dir.path(), &run_args(&url, &listen), &env);
        wait_ready(&w, port, 200, Duration::from_secs(20));
        w
    };
    let mut first = run("twice");
    let mut stuck = run("stuck");

    // SIGINT drains like SIGTERM: exit 0.
    let mut int = run("int");
    int.signal("-INT");
    assert_eq!(
        int.wait_exit(Duration::from_secs(10)).code(),
        Some(0),
        "{}",
        int.stderr()
    );
    assert!(int.stderr().contains("drained"), "{}", int.stderr());

    // Redis paused: each worker's read in flight hangs (io_timeout 30 s).
    let paused = server.stop();
    std::thread::sleep(Duration::from_millis(400));

    first.signal("-TERM");
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    first.signal("-TERM");
    let status = first.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(130), "{}", first.stderr());
    assert!(
        t.elapsed() < Duration::from_millis(900),
        "not at once: {:?}",
        t.elapsed()
    );

    let t = Instant::now();
    stuck.signal("-TERM");
    let status = stuck.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(1), "{}", stuck.stderr());
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert!(
        stuck.stderr().contains("drain not finished in time"),
        "{}",
        stuck.stderr()
    );
    paused.resume();
}
