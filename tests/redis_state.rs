//! RedisState against a real redis-server: round trips (counted by the
//! server), windows with duplicates, namespaces, TTLs, script cache loss.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use composite_metrics::state::{LockToken, RedisConfig, RedisState, Scope};
use composite_metrics::{Event, EventType, MetricsCalculator, StateBackend};
use support::RedisServer;

/// Commands the server has run, by name, from `INFO commandstats`.
fn command_calls(con: &mut redis::Connection) -> HashMap<String, u64> {
    let info: String = redis::cmd("INFO").arg("commandstats").query(con).unwrap();
    info.lines()
        .filter_map(|l| l.strip_prefix("cmdstat_"))
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let calls = rest
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

/// What the scripts call inside the server. `INFO commandstats` counts these
/// too, but they cost no round trip: the client sends only `EVALSHA` (and
/// `EVAL` after the server lost its script cache).
const INSIDE_SCRIPTS: &[&str] = &[
    "time",
    "zremrangebyscore",
    "exists",
    "zcard",
    "hexists",
    "hlen",
    "lrange",
    "llen",
    "hmget",
    "hset",
    "pexpire",
    "del",
    "zrem",
    "hincrby",
    "lpush",
    "ltrim",
    "zadd",
    "get",
    "set",
    "zrangebyscore",
    "type",
    "zcount",
    "hget",
    "pttl",
    "zscan",
    "scard",
    "sadd",
];

/// Top-level commands (round trips) between two snapshots: the server's
/// counts minus the commands run inside scripts and the `INFO` calls.
fn round_trips(
    before: &HashMap<String, u64>,
    after: &HashMap<String, u64>,
) -> HashMap<String, u64> {
    let mut d = delta(before, after);
    d.retain(|name, _| !INSIDE_SCRIPTS.contains(&name.as_str()));
    d
}

/// Commands run between two snapshots, the `INFO` calls themselves left out.
fn delta(before: &HashMap<String, u64>, after: &HashMap<String, u64>) -> HashMap<String, u64> {
    after
        .iter()
        .filter(|(name, _)| name.as_str() != "info")
        .map(|(name, n)| (name.clone(), n - before.get(name).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn state(server: &RedisServer, ns: &str) -> RedisState {
    RedisState::connect(&server.url(), RedisConfig::default().with_namespace(ns)).unwrap()
}

fn rich_event(i: u32) -> Event {
    match i % 4 {
        0 => Event::tool_use("s1", "bash")
            .with_duration_ms(f64::from(i))
            .with_success(i.is_multiple_of(3)),
        1 => Event::new(EventType::FileEdit, "s1").with_accepted(i.is_multiple_of(2)),
        2 => Event::new(EventType::UserPrompt, "s2").with_prompt_length(40),
        _ => Event::new(EventType::McpExecution, "s2")
            .with_tool("search")
            .with_duration_ms(3.5),
    }
}

/// One of each coordination operation, and a read of the active sessions:
/// four round trips.
fn coordinate_once(state: &RedisState) {
    let token = LockToken::from_u64(7);
    state
        .try_lock(
            Scope::Global,
            token,
            Duration::from_millis(50),
            Duration::from_millis(1),
        )
        .unwrap();
    state.unlock(Scope::Global, token).unwrap();
    state.last_computed(Scope::Global).unwrap();
    state.active_sessions().unwrap();
}

#[test]
fn one_round_trip_per_event_batch_read_and_coordination_op() {
    let server = RedisServer::start();
    let state = std::sync::Arc::new(state(&server, "trips"));
    let mut calc = MetricsCalculator::builder()
        .state(state.clone())
        .build()
        .unwrap();
    // Load the scripts once (a fresh server answers NOSCRIPT the first time).
    calc.process(&rich_event(0)).unwrap();
    state.composite_inputs(Scope::Global).unwrap();
    coordinate_once(&state);

    let mut inspect = server.connection();
    let before = command_calls(&mut inspect);
    let trips_before = state.round_trips();
    for i in 0..40 {
        calc.process(&rich_event(i)).unwrap();
    }
    let d = round_trips(&before, &command_calls(&mut inspect));
    assert_eq!(
        d,
        HashMap::from([("evalsha".to_owned(), 40)]),
        "server saw {d:?}"
    );
    assert_eq!(state.round_trips() - trips_before, 40);

    let before = command_calls(&mut inspect);
    let batch: Vec<Event> = (0..1000).map(rich_event).collect();
    calc.process_batch(&batch).unwrap();
    calc.process_batch(&batch[..100]).unwrap();
    let d = round_trips(&before, &command_calls(&mut inspect));
    assert_eq!(
        d,
        HashMap::from([("evalsha".to_owned(), 2)]),
        "server saw {d:?}"
    );

    let before = command_calls(&mut inspect);
    state.composite_inputs(Scope::Global).unwrap();
    state.composite_inputs(Scope::Session("s1")).unwrap();
    coordinate_once(&state);
    let d = round_trips(&before, &command_calls(&mut inspect));
    assert_eq!(
        d,
        HashMap::from([("evalsha".to_owned(), 6)]),
        "server saw {d:?}"
    );
    let c = state.op_counts();
    assert_eq!(c.records, 1 + 40 + 1100);
    assert_eq!(c.record_round_trips, 2 + 40 + 2); // the first one needed EVAL too
}

#[test]
fn windows_keep_duplicates_through_the_calculator() {
    let server = RedisServer::start();
    let mut calc = MetricsCalculator::builder()
        .state(state(&server, "dups"))
        .build()
        .unwrap();
    let mut last = Vec::new();
    for _ in 0..100 {
        last = calc
            .process(&Event::tool_use("s1", "bash").with_duration_ms(250.0))
            .unwrap();
    }
    fn value(metrics: &[composite_metrics::Metric], name: &str) -> Option<f64> {
        metrics.iter().find(|m| m.name == name).map(|m| m.value)
    }
    for name in [
        "tool_latency_p50",
        "tool_latency_p95",
        "tool_latency_p99",
        "tool_latency_avg",
    ] {
        assert_eq!(value(&last, name), Some(250.0), "{name}");
    }
    let len: u64 = server.cmd(&["LLEN", "{dups}:latency"]);
    assert_eq!(len, 100);
    for i in 0..100 {
        last = calc
            .process(&Event::new(EventType::CodeChange, "s1").with_accepted(i % 2 == 1))
            .unwrap();
    }
    assert_eq!(value(&last, "acceptance_rate"), Some(50.0));
    assert_eq!(value(&last, "rejection_rate"), Some(50.0));
}

#[test]
fn namespaces_never_see_each_other() {
    let server = RedisServer::start();
    let a = state(&server, "team-a");
    let b = state(&server, "team-b");
    for _ in 0..10 {
        a.record(
            &Event::tool_use("s1", "bash").with_success(true),
            Duration::from_secs(1),
        )
        .unwrap();
    }
    b.record(
        &Event::tool_use("s1", "bash").with_success(false),
        Duration::from_secs(1),
    )
    .unwrap();
    let ga = a.composite_inputs(Scope::Global).unwrap();
    let gb = b.composite_inputs(Scope::Global).unwrap();
    assert_eq!((ga.tool_runs, ga.success_rate), (10, Some(100.0)));
    assert_eq!((gb.tool_runs, gb.success_rate), (1, Some(0.0)));
    let t = LockToken::from_u64(1);
    let (lease, min) = (Duration::from_secs(5), Duration::from_secs(30));
    assert!(a
        .try_lock(Scope::Global, t, lease, min)
        .unwrap()
        .is_acquired());
    assert!(b
        .try_lock(Scope::Global, t, lease, min)
        .unwrap()
        .is_acquired());
    // Every key is under its namespace's hash tag.
    let keys: Vec<String> = server.cmd(&["KEYS", "*"]);
    assert!(!keys.is_empty());
    for k in &keys {
        assert!(
            k.starts_with("{team-a}:") || k.starts_with("{team-b}:"),
            "{k}"
        );
    }
}

#[test]
fn session_data_and_windows_carry_ttls() {
    let server = RedisServer::start();
    let config = RedisConfig::default()
        .with_namespace("ttl")
        .with_session_ttl(Duration::from_secs(600))
        .with_window_ttl(Duration::from_secs(3600));
    let s = RedisState::connect(&server.url(), config).unwrap();
    let now = Duration::from_secs(1_700_000_000);
    s.record(&Event::tool_use("s1", "bash").with_duration_ms(5.0), now)
        .unwrap();
    s.record(
        &Event::new(EventType::FileEdit, "s1").with_accepted(true),
        now,
    )
    .unwrap();
    // The rate hash is written when a later second (by the worker's clock)
    // moves the finished one there.
    s.record(
        &Event::new(EventType::UserPrompt, "s1"),
        now + Duration::from_secs(1),
    )
    .unwrap();
    let pttl = |k: &str| -> i64 { server.cmd(&["PTTL", k]) };
    for key in ["{ttl}:s:s1", "{ttl}:d:s1", "{ttl}:sessions"] {
        let t = pttl(key);
        assert!(t > 590_000 && t <= 600_000, "{key}: {t}");
    }
    for key in ["{ttl}:latency", "{ttl}:decisions", "{ttl}:rate"] {
        let t = pttl(key);
        assert!(t > 3_590_000 && t <= 3_600_000, "{key}: {t}");
    }
    // A per-session marker expires with the session TTL; the global one stays.
    let t = LockToken::from_u64(3);
    s.try_lock(
        Scope::Session("s1"),
        t,
        Duration::from_secs(1),
        Duration::from_secs(1),
    )
    .unwrap();
    s.try_lock(
        Scope::Global,
        t,
        Duration::from_secs(1),
        Duration::from_secs(1),
    )
    .unwrap();
    assert!(pttl("{ttl}:m:s1") > 590_000);
    assert!(pttl("{ttl}:lock") > 0 && pttl("{ttl}:lock") <= 1_000);
    assert_eq!(pttl("{ttl}:last"), -1);
}

#[test]
fn scripts_recover_after_script_flush() {
    let server = RedisServer::start();
    let state = std::sync::Arc::new(state(&server, "flush"));
    let mut calc = MetricsCalculator::builder()
        .state(state.clone())
        .build()
        .unwrap();
    calc.process(&Event::tool_use("s1", "bash").with_success(true))
        .unwrap();
    let t = LockToken::from_u64(9);
    let lease = Duration::from_millis(100);
    state
        .try_lock(Scope::Global, t, lease, Duration::from_millis(1))
        .unwrap();
    state.unlock(Scope::Global, t).unwrap();
    let _: String = server.cmd(&["SCRIPT", "FLUSH"]);
    let mut inspect = server.connection();
    let before = command_calls(&mut inspect);
    let trips = state.round_trips();
    // Each script is sent again once (EVALSHA answers NOSCRIPT, then EVAL).
    calc.process(&Event::tool_use("s1", "bash").with_success(false))
        .unwrap();
    calc.process(&Event::tool_use("s1", "bash").with_success(true))
        .unwrap();
    assert!(state
        .try_lock(Scope::Global, t, lease, Duration::from_millis(1))
        .unwrap()
        .is_acquired());
    assert!(state.unlock(Scope::Global, t).unwrap());
    let d = round_trips(&before, &command_calls(&mut inspect));
    assert_eq!(
        d,
        HashMap::from([("evalsha".to_owned(), 4), ("eval".to_owned(), 3)]),
        "server saw {d:?}"
    );
    assert_eq!(state.round_trips() - trips, 4 + 3);
    let g = state.composite_inputs(Scope::Global).unwrap();
    assert_eq!((g.tool_runs, g.success_rate), (3, Some(200.0 / 3.0)));
}

/// Issue 8, point 1: session `a:dec`'s hash was session `a`'s decision list
/// in the old layout. Now they coexist, and ending `a` leaves `a:dec` alone.
#[test]
fn sessions_whose_ids_look_like_other_keys_coexist() {
    let server = RedisServer::start();
    let s = state(&server, "keys");
    let now = Duration::from_secs(1);
    let ids = ["a", "a:dec", "d:a", "s:a", "a:{x}", "*"];
    for id in &ids {
        for _ in 0..3 {
            s.record(&Event::tool_use(*id, "bash").with_success(true), now)
                .unwrap();
        }
        s.record(
            &Event::new(EventType::FileEdit, *id).with_accepted(id.len() % 2 == 0),
            now,
        )
        .unwrap();
    }
    for id in &ids {
        let i = s.composite_inputs(Scope::Session(id)).unwrap();
        let accepted = if id.len() % 2 == 0 { 100.0 } else { 0.0 };
        assert_eq!(
            (i.tool_runs, i.success_rate, i.acceptance_rate),
            (3, Some(100.0), Some(accepted)),
            "session {id:?}"
        );
    }
    let end = s
        .record(&Event::new(EventType::SessionEnd, "a"), now)
        .unwrap();
    assert_eq!(end.session_end.map(|e| e.tool_runs), Some(3));
    assert_eq!(
        s.composite_inputs(Scope::Session("a")).unwrap().tool_runs,
        0
    );
    for id in &ids[1..6] {
        let i = s.composite_inputs(Scope::Session(id)).unwrap();
        assert_eq!(
            (i.tool_runs, i.acceptance_rate.is_some()),
            (3, true),
            "{id:?}"
        );
    }
    let mut active: Vec<String> = s
        .active_sessions()
        .unwrap()
        .iter()
        .map(|a| a.to_string())
        .collect();
    active.sort();
    let mut expected: Vec<String> = ids[1..6].iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(active, expected);
    let kind: String = server.cmd(&["TYPE", "{keys}:s:a:dec"]);
    assert_eq!(kind, "hash");
    let kind: String = server.cmd(&["TYPE", "{keys}:d:a:dec"]);
    assert_eq!(kind, "list");
}

/// Namespaces that cannot be represented are refused at connect, typed.
#[test]
fn namespaces_with_braces_are_rejected_at_connect() {
    let server = RedisServer::start();
    for ns in ["team{", "team}", "{team}", ""] {
        let err = RedisState::connect(&server.url(), RedisConfig::default().with_namespace(ns))
            .unwrap_err();
        assert!(
            matches!(
                err,
                composite_metrics::BackendError::InvalidConfig(
                    composite_metrics::ConfigError::OutOfRange {
                        field: "namespace",
                        ..
                    }
                )
            ),
            "{ns:?}: {err:?}"
        );
    }
    let keys: Vec<String> = server.cmd(&["KEYS", "*"]);
    assert!(keys.is_empty(), "{keys:?}");
    // `team_` is its own namespace, not a neighbour of the rejected ones.
    state(&server, "team_");
    let keys: Vec<String> = server.cmd(&["KEYS", "*"]);
    assert_eq!(keys, ["{team_}:meta"]);
}

#[test]
fn a_sessions_decision_list_is_trimmed_past_120_and_read_as_its_last_100() {
    let server = RedisServer::start();
    let s = state(&server, "trim");
    let now = Duration::from_secs(1_700_000_000);
    let edit = |ok: bool| Event::new(EventType::FileEdit, "s1").with_accepted(ok);
    let len = || -> u64 { server.cmd(&["LLEN", "{trim}:d:s1"]) };
    // 100 rejections, then 20 acceptances: 120 values, not yet trimmed.
    for i in 0..120 {
        s.record(&edit(i >= 100), now).unwrap();
    }
    assert_eq!(len(), 120);
    let i = s.composite_inputs(Scope::Session("s1")).unwrap();
    assert_eq!(i.acceptance_rate, Some(20.0), "the newest 100: 20 accepted");
    // The 121st push trims it to 100.
    s.record(&edit(true), now).unwrap();
    assert_eq!(len(), 100);
    let i = s.composite_inputs(Scope::Session("s1")).unwrap();
    assert_eq!(i.acceptance_rate, Some(21.0));
}

#[test]
fn an_expired_rate_hash_leaves_only_the_finished_second() {
    let server = RedisServer::start();
    let s = state(&server, "ratex");
    let now = 1_700_000_000u64;
    let e = Event::new(EventType::UserPrompt, "s1");
    for _ in 0..5 {
        s.record(&e, Duration::from_secs(now)).unwrap();
    }
    // The first event of the next second moves `now` (5 events) into the
    // rate hash.
    for _ in 0..3 {
        s.record(&e, Duration::from_secs(now + 1)).unwrap();
    }
    let slot = format!("s{}", now % 60);
    let moved: String = server.cmd(&["HGET", "{ratex}:rate", &slot]);
    assert_eq!(moved, now.to_string());
    // As if the rate hash expired: what it held is forgotten, the second
    // that was still in `totals` (3 events) is not.
    let _: () = server.cmd(&["DEL", "{ratex}:rate"]);
    let o = s.record(&e, Duration::from_secs(now + 2)).unwrap();
    assert_eq!(o.events_per_second, 4.0 / 60.0);
    // Without the loss, the window holds every second of the last 60.
    let o = s.record(&e, Duration::from_secs(now + 3)).unwrap();
    assert_eq!(o.events_per_second, 5.0 / 60.0);
}
