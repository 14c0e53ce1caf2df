//! Issue 9, points 5 and 6: the record path is lean. A steady-state
//! unbatched event gets at most 128 bytes back (windows sync by delta), runs
//! at most 16 commands inside the script (8 per event in batches of 100),
//! and housekeeping runs at most once per second per key. The delta windows
//! stay exact: workers interleaving on one namespace see the values
//! `MemoryState` gives, value for value.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use composite_metrics::state::{MemoryConfig, MemoryState, RedisConfig, RedisState};
use composite_metrics::{Clock, MetricsCalculator};
use composite_metrics::{Event, EventType, ManualClock, Never, StateBackend};
use proptest::prelude::*;
use support::RedisServer;

fn info(server: &RedisServer, section: &str) -> String {
    server.cmd(&["INFO", section])
}

fn stat(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in INFO"))
}

/// Calls per command (`INFO commandstats`), calls inside scripts included.
fn command_calls(server: &RedisServer) -> HashMap<String, u64> {
    info(server, "commandstats")
        .lines()
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

/// Commands run between two snapshots, per command: the scripts' own
/// `EVALSHA`/`EVAL` and the `INFO` calls left out, so what is left is the
/// `redis.call`s inside the scripts.
fn inside_scripts(
    before: &HashMap<String, u64>,
    after: &HashMap<String, u64>,
) -> HashMap<String, u64> {
    after
        .iter()
        .filter(|(name, _)| !["evalsha", "eval", "info"].contains(&name.as_str()))
        .map(|(name, n)| (name.clone(), n - before.get(name).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn server_second(server: &RedisServer) -> u64 {
    let t: Vec<String> = server.cmd(&["TIME"]);
    t[0].parse().unwrap()
}

fn calculator(server: &RedisServer, ns: &str) -> MetricsCalculator<Never> {
    let state = RedisState::connect(&server.url(), RedisConfig::default().with_namespace(ns))
        .expect("connect");
    MetricsCalculator::builder().state(state).build().unwrap()
}

fn tool_event(i: usize) -> Event {
    Event::tool_use("s1", "bash")
        .with_duration_ms((i % 250) as f64 + 0.25)
        .with_success(!i.is_multiple_of(5))
}

/// The bench's mix: three tool runs (two tools) to one edit, over 8 sessions.
fn mixed(n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let session = format!("s{}", i % 8);
            match i % 4 {
                3 => Event::new(EventType::FileEdit, session).with_accepted(i.is_multiple_of(2)),
                _ => Event::tool_use(session, if i.is_multiple_of(2) { "bash" } else { "grep" })
                    .with_duration_ms((i % 250) as f64 + 0.5)
                    .with_success(!i.is_multiple_of(5)),
            }
        })
        .collect()
}

/// A namespace that has run for a long time: counters in the billions, so
/// that the replies measured below carry numbers as long as they get.
fn long_running(server: &RedisServer, ns: &str) {
    let totals = format!("{{{ns}}}:totals");
    let _: () = server.cmd(&[
        "HSET",
        &totals,
        "tool_runs",
        "4000000000",
        "ok",
        "3000000000",
        "known",
        "4000000000",
        "events",
        "5000000000",
    ]);
    let tools = format!("{{{ns}}}:tool_runs");
    for tool in ["bash", "grep"] {
        let _: () = server.cmd(&["HSET", &tools, tool, "2000000000 1500000000 2000000000"]);
    }
}

#[test]
fn a_steady_state_unbatched_event_returns_at_most_128_bytes() {
    const EVENTS: usize = 2_000;
    let server = RedisServer::start();
    let mut calc = calculator(&server, "bytes");
    long_running(&server, "bytes");
    // Warm up: the session, the tool and full windows exist.
    for i in 0..200 {
        calc.process(&tool_event(i)).unwrap();
    }
    let before = info(&server, "stats");
    let out_before = stat(&before, "total_net_output_bytes");
    for i in 0..EVENTS {
        calc.process(&tool_event(i)).unwrap();
    }
    let out_after = stat(&info(&server, "stats"), "total_net_output_bytes");
    // The first INFO's reply was counted after its snapshot: take it out.
    let info_reply = before.len() + format!("${}\r\n\r\n", before.len()).len();
    let per_event = (out_after - out_before - info_reply as u64) / EVENTS as u64;
    eprintln!("bytes returned per unbatched event: {per_event}");
    assert!(per_event <= 128, "{per_event} bytes per event");
    // A reply with the windows in it (as before delta sync) is over 1 000.
    assert!(
        per_event > 16,
        "{per_event}: the replies cannot be this small"
    );
}

#[test]
fn at_most_16_calls_per_unbatched_tool_event_and_8_in_batches_of_100() {
    let server = RedisServer::start();

    let mut calc = calculator(&server, "calls-one");
    for i in 0..200 {
        calc.process(&tool_event(i)).unwrap();
    }
    let before = command_calls(&server);
    let first_second = server_second(&server);
    // Over at least two turns of the server's second (and 1 000 events), so
    // that housekeeping is seen running, and not per event: the loop ends
    // after a chunk that began two seconds after `first_second`, so that
    // events fell in each of three seconds.
    let mut events = 0u64;
    let mut chunk_second = first_second;
    while events < 1_000 || chunk_second < first_second + 2 {
        chunk_second = server_second(&server);
        for i in 0..100 {
            calc.process(&tool_event(i)).unwrap();
        }
        events += 100;
        assert!(events < 1_000_000, "the server's clock does not move");
    }
    let seconds = server_second(&server) - first_second + 1;
    let mut d = inside_scripts(&before, &command_calls(&server));
    // This test's own TIME calls.
    if let Some(t) = d.get_mut("time") {
        *t -= events / 100 + 2;
    }
    let calls: u64 = d.values().sum();
    eprintln!(
        "unbatched: {:.2} calls per event, {events} events over {seconds} s: {d:?}",
        calls as f64 / events as f64
    );
    assert!(
        calls <= 16 * events,
        "{calls} calls for {events} events: {d:?}"
    );
    // Housekeeping: the session set trimmed at most once per second; the
    // TTLs of the rate hash, the latency list, the session set, the
    // session's hash and decision list (5 keys) renewed at most once per
    // second each.
    let get = |name: &str| d.get(name).copied().unwrap_or(0);
    assert!(get("zremrangebyscore") <= seconds, "{d:?}");
    assert!(get("zremrangebyscore") >= 2, "housekeeping stopped: {d:?}");
    assert!(get("pexpire") <= 5 * seconds, "{d:?}");
    assert!(get("zadd") <= seconds, "{d:?}");

    let mut calc = calculator(&server, "calls-batch");
    let batch = mixed(100);
    calc.process_batch(&batch).unwrap();
    let before = command_calls(&server);
    const BATCHES: usize = 20;
    for _ in 0..BATCHES {
        calc.process_batch(&batch).unwrap();
    }
    let d = inside_scripts(&before, &command_calls(&server));
    let calls: u64 = d.values().sum();
    let events = (BATCHES * batch.len()) as u64;
    eprintln!(
        "batches of 100: {:.2} calls per event: {d:?}",
        calls as f64 / events as f64
    );
    assert!(
        calls <= 8 * events,
        "{calls} calls for {events} events: {d:?}"
    );
}

#[test]
fn a_window_that_expired_or_was_emptied_restarts_in_every_worker() {
    let server = RedisServer::start();
    let config = RedisConfig::default().with_namespace("restart");
    let a = RedisState::connect(&server.url(), config.clone()).unwrap();
    let b = RedisState::connect(&server.url(), config).unwrap();
    let now = Duration::from_secs(1_700_000_000);
    let tool = |ms: f64| Event::tool_use("s1", "bash").with_duration_ms(ms);
    let edit = |ok: bool| Event::new(EventType::FileEdit, "s1").with_accepted(ok);
    for i in 0..5 {
        a.record(&tool(f64::from(i)), now).unwrap();
        b.record(&edit(true), now).unwrap();
    }
    assert_eq!(b.record(&tool(9.0), now).unwrap().latency.unwrap().count, 6);
    assert_eq!(
        a.record(&edit(false), now).unwrap().acceptance_rate,
        Some(100.0 * 5.0 / 6.0)
    );
    // As if the windows expired.
    let _: () = server.cmd(&["DEL", "{restart}:latency", "{restart}:decisions"]);
    let l = a.record(&tool(100.0), now).unwrap().latency.unwrap();
    assert_eq!((l.count, l.p50), (1, 100.0));
    let l = b.record(&tool(50.0), now).unwrap().latency.unwrap();
    assert_eq!((l.count, l.p50, l.p99), (2, 50.0, 100.0));
    assert_eq!(
        b.record(&edit(false), now).unwrap().acceptance_rate,
        Some(0.0)
    );
    assert_eq!(
        a.record(&edit(true), now).unwrap().acceptance_rate,
        Some(50.0)
    );
}

// ------------------------------------------------- workers interleaving

#[derive(Debug, Clone)]
enum Step {
    One(usize, Event),
    Batch(usize, Vec<Event>),
    Advance(u64),
}

fn event() -> impl Strategy<Value = Event> {
    let kind = prop::sample::select(vec![
        EventType::ToolUse,
        EventType::McpExecution,
        EventType::FileEdit,
        EventType::CodeChange,
        EventType::UserPrompt,
        EventType::SessionStart,
        EventType::SessionEnd,
        EventType::Other,
    ]);
    let duration = prop_oneof![
        Just(None),
        Just(Some(7.0)),
        (0u32..2_000_000).prop_map(|x| Some(f64::from(x) / 1000.0)),
        Just(Some(0.1 + 0.2)),
    ];
    let tool_name = prop::option::of(prop::sample::select(vec!["tool0", "tool1", ""]));
    (
        (kind, 0u8..3, tool_name, duration),
        prop::option::of(any::<bool>()),
        prop::option::of(any::<bool>()),
        prop::option::of(0u8..20),
    )
        .prop_map(|((kind, s, t, d), success, accepted, id)| {
            let mut e = Event::new(kind, format!("s{s}"));
            e.tool_name = t.map(Arc::from);
            e.event_id = id.map(|i| Arc::from(format!("id{i}")));
            e.duration_ms = d;
            e.payload.success = success;
            e.payload.accepted = accepted;
            e
        })
}

const WORKERS: usize = 3;

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (0..WORKERS, event()).prop_map(|(w, e)| Step::One(w, e)),
        2 => (0..WORKERS, prop::collection::vec(event(), 0..12)).prop_map(|(w, es)| Step::Batch(w, es)),
        // A flood pushes every value a worker saw out of the windows.
        1 => (0..WORKERS, prop::collection::vec(event(), 1..4), 60usize..140).prop_map(|(w, es, n)| {
            Step::Batch(w, es.iter().cycle().take(n).cloned().collect())
        }),
        1 => (0u64..5_000).prop_map(Step::Advance),
    ]
}

#[test]
fn workers_interleaving_see_what_memory_state_gives() {
    let server = RedisServer::start();
    let config = ProptestConfig {
        cases: 40,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let cases = std::sync::atomic::AtomicU64::new(0);
    proptest!(config, |(steps in prop::collection::vec(step(), 1..120))| {
        let case = cases.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let clock = ManualClock::default();
        let memory = MemoryState::with_config(MemoryConfig::default(), clock.clone()).unwrap();
        let ns = format!("interleave-{case}");
        let workers: Vec<RedisState> = (0..WORKERS)
            .map(|_| RedisState::connect(&server.url(), RedisConfig::default().with_namespace(&ns)).unwrap())
            .collect();
        let (mut want, mut got) = (Vec::new(), Vec::new());
        for (i, s) in steps.iter().enumerate() {
            match s {
                Step::One(w, e) => prop_assert_eq!(
                    memory.record(e, clock.now()).unwrap(),
                    workers[*w].record(e, clock.now()).unwrap(),
                    "step {}", i
                ),
                Step::Batch(w, es) => {
                    want.clear();
                    got.clear();
                    memory.record_batch(es, clock.now(), &mut want).unwrap();
                    workers[*w].record_batch(es, clock.now(), &mut got).unwrap();
                    prop_assert_eq!(&want, &got, "step {}", i);
                }
                Step::Advance(ms) => clock.advance(Duration::from_millis(*ms)),
            }
        }
    });
}
