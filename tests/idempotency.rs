//! Issue 8, point 3: idempotent delivery. An event's `event_id` is applied at
//! most once within the dedup horizon, decided in the same atomic step as the
//! update, on `MemoryState` and on Redis; a duplicate changes nothing and is
//! reported as `Delivery::Duplicate`. Retrying after timeouts (a paused or
//! stopped server) gives exact totals.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use composite_metrics::clock::ManualClock;
use composite_metrics::event::MAX_EVENT_ID_BYTES;
use composite_metrics::state::{MemoryConfig, RedisConfig, RedisState, Scope};
use composite_metrics::{
    BackendError, Delivery, Error, Event, EventError, EventType, MemoryState, MetricsCalculator,
    Never, StateBackend,
};
use proptest::prelude::*;
use support::RedisServer;

type Calc = MetricsCalculator<Never>;

fn calc_on(state: impl StateBackend + 'static, clock: &ManualClock) -> Calc {
    MetricsCalculator::builder()
        .clock(clock.clone())
        .state(state)
        .build()
        .unwrap()
}

fn run(session: &str, id: &str) -> Event {
    Event::tool_use(session, "bash")
        .with_duration_ms(10.0)
        .with_success(true)
        .with_event_id(id)
}

// ------------------------------------------------------------------ the field

#[test]
fn event_id_parses_from_json_and_is_validated() {
    let line = |id: &str| {
        format!(
            r#"{{"event_type":"tool_use","session_id":"s1","timestamp":"2024-05-01T12:00:00Z","event_id":{id}}}"#
        )
    };
    let e = Event::from_json(&line(r#""evt-1""#)).unwrap();
    assert_eq!(e.event_id.as_deref(), Some("evt-1"));
    assert_eq!(Event::from_json(&line("null")).unwrap().event_id, None);
    match Event::from_json(&line("5")).unwrap_err() {
        EventError::InvalidField { field, .. } => assert_eq!(field, "event_id"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        Event::from_json(&line(r#""""#)).unwrap_err(),
        EventError::Empty { field: "event_id" }
    );
    let long = "x".repeat(MAX_EVENT_ID_BYTES + 1);
    assert_eq!(
        Event::from_json(&line(&format!("\"{long}\""))).unwrap_err(),
        EventError::TooLong {
            field: "event_id",
            len: MAX_EVENT_ID_BYTES + 1,
            max: MAX_EVENT_ID_BYTES
        }
    );
    let max = "x".repeat(MAX_EVENT_ID_BYTES);
    assert!(Event::tool_use("s1", "bash")
        .with_event_id(max)
        .validate()
        .is_ok());
    // Built in code, checked again by the calculator: state untouched.
    let mut calc = MetricsCalculator::builder().build().unwrap();
    let err = calc
        .process(&Event::tool_use("s1", "bash").with_event_id(""))
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Event(EventError::Empty { field: "event_id" })
    ));
    assert_eq!((calc.stats().events, calc.stats().rejected), (0, 1));
}

// ------------------------------------------------------------ memory horizon

#[test]
fn memory_forgets_ids_after_the_horizon_and_stays_bounded() {
    let clock = ManualClock::default();
    let config = MemoryConfig::default().with_dedup_horizon(Duration::from_secs(10));
    let state = MemoryState::with_config(config, clock.clone()).unwrap();
    let mut calc = calc_on(state.clone(), &clock);
    let mut out = Vec::new();
    for i in 0..100 {
        let d = calc.process_into(&run("s1", &format!("e{i}")), &mut out);
        assert_eq!(d.unwrap(), Delivery::Applied);
    }
    assert_eq!(state.footprint().event_ids, 100);
    clock.advance(Duration::from_secs(9));
    assert_eq!(
        calc.process_into(&run("s1", "e0"), &mut out).unwrap(),
        Delivery::Duplicate
    );
    // Past the horizon (and the 60 s sweep interval): forgotten, applied again.
    clock.advance(Duration::from_secs(61));
    assert_eq!(
        calc.process_into(&run("s1", "e0"), &mut out).unwrap(),
        Delivery::Applied
    );
    assert_eq!(state.footprint().event_ids, 1);
    let zero = MemoryConfig::default().with_dedup_horizon(Duration::ZERO);
    assert_eq!(
        MemoryState::with_config(zero, ManualClock::default()).unwrap_err(),
        composite_metrics::ConfigError::Zero {
            field: "dedup_horizon"
        }
    );
}

#[test]
fn redis_keeps_each_id_for_the_horizon_on_the_server() {
    let server = RedisServer::start();
    let horizon = Duration::from_secs(90);
    let config = RedisConfig::default()
        .with_namespace("horizon")
        .with_dedup_horizon(horizon);
    assert_eq!(config.dedup_horizon(), horizon);
    assert_eq!(
        RedisConfig::default().dedup_horizon(),
        Duration::from_secs(86_400)
    );
    assert!(RedisConfig::default()
        .with_dedup_horizon(Duration::ZERO)
        .validate()
        .is_err());
    let state = RedisState::connect(&server.url(), config).unwrap();
    state
        .record(&run("s1", "evt:1{x}"), Duration::ZERO)
        .unwrap();
    let pttl: i64 = server.cmd(&["PTTL", "{horizon}:e:evt:1{x}"]);
    assert!(pttl > 85_000 && pttl <= 90_000, "{pttl}");
    let again = state
        .record(&run("s1", "evt:1{x}"), Duration::ZERO)
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(state.op_counts().records, 1);
}

// --------------------------------------------------------- timeouts, retried

const READ_TIMEOUT: Duration = Duration::from_millis(200);

fn fault_config(ns: &str) -> RedisConfig {
    RedisConfig::default()
        .with_namespace(ns)
        .with_connect_timeout(READ_TIMEOUT)
        .with_read_timeout(READ_TIMEOUT)
        .with_write_timeout(READ_TIMEOUT)
}

/// Sends `events` while the server is unable to answer (each call fails),
/// then, once it answers again, retries every failed event until it goes
/// through. Returns how many retries came back as duplicates.
fn deliver_through_a_fault(
    server: &RedisServer,
    calc: &mut Calc,
    events: &[Event],
    resume: impl FnOnce(),
) -> u64 {
    let mut failed = Vec::new();
    for e in events {
        match calc.process(e) {
            Err(Error::Backend(BackendError::Timeout { .. } | BackendError::Connection { .. })) => {
                failed.push(e.clone())
            }
            other => panic!("expected a timeout during the fault, got {other:?}"),
        }
    }
    resume();
    // Bounded wait for the server to answer again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.cmd::<String>(&["PING"]) != "PONG" {
        assert!(Instant::now() < deadline, "the server did not come back");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut out = Vec::new();
    let mut duplicates = 0;
    for e in &failed {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match calc.process_into(e, &mut out) {
                Ok(Delivery::Duplicate) => {
                    duplicates += 1;
                    break;
                }
                Ok(Delivery::Applied) => break,
                Err(err) => {
                    assert!(Instant::now() < deadline, "retry keeps failing: {err}");
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
    // A second retry of everything: all duplicates, nothing changes.
    for e in events {
        assert_eq!(calc.process_into(e, &mut out).unwrap(), Delivery::Duplicate);
    }
    duplicates
}

#[test]
fn retries_after_client_pause_timeouts_count_each_event_once() {
    let server = RedisServer::start();
    let state = Arc::new(RedisState::connect(&server.url(), fault_config("pause")).unwrap());
    let clock = ManualClock::default();
    let mut calc = calc_on(Arc::clone(&state), &clock);
    calc.process(&run("s1", "warm-up")).unwrap();
    let events: Vec<Event> = (0..4).map(|i| run("s1", &format!("p{i}"))).collect();

    let pause = Duration::from_millis(1_500);
    let paused_at = Instant::now();
    let _: () = server.cmd(&["CLIENT", "PAUSE", &pause.as_millis().to_string(), "WRITE"]);
    let duplicates = deliver_through_a_fault(&server, &mut calc, &events, || {
        std::thread::sleep((pause + Duration::from_millis(50)).saturating_sub(paused_at.elapsed()));
    });
    assert!(duplicates <= events.len() as u64);
    let g = state.composite_inputs(Scope::Global).unwrap();
    assert_eq!(g.tool_runs, 1 + events.len() as u64, "totals exact");
    assert_eq!(g.success_rate, Some(100.0));
    let s = calc.stats();
    assert_eq!(s.events, 1 + events.len() as u64 - duplicates);
}

/// Stops the server process; continues it on drop (also when the test fails).
struct Stopped(String);

impl Stopped {
    fn signal(pid: &str, sig: &str) {
        let status = std::process::Command::new("kill")
            .args([sig, pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {sig} {pid}");
    }

    fn stop(server: &RedisServer) -> Self {
        let info: String = server.cmd(&["INFO", "server"]);
        let pid = info
            .lines()
            .find_map(|l| l.strip_prefix("process_id:"))
            .expect("process_id in INFO server")
            .trim()
            .to_owned();
        Self::signal(&pid, "-STOP");
        Self(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        Self::signal(&self.0, "-CONT");
    }
}

/// The measured failure: a request sent to a stopped server times out, yet
/// the server applies it when it resumes. With event ids, the retry of such
/// an event is a duplicate, and the totals are exact.
#[test]
fn retries_after_a_stopped_server_resumes_count_each_event_once() {
    let server = RedisServer::start();
    let state = Arc::new(RedisState::connect(&server.url(), fault_config("stop")).unwrap());
    let clock = ManualClock::default();
    let mut calc = calc_on(Arc::clone(&state), &clock);
    calc.process(&run("s1", "warm-up")).unwrap();
    let events: Vec<Event> = (0..3).map(|i| run("s1", &format!("x{i}"))).collect();

    let stopped = Stopped::stop(&server);
    let duplicates = deliver_through_a_fault(&server, &mut calc, &events, || drop(stopped));
    let g = state.composite_inputs(Scope::Global).unwrap();
    assert_eq!(g.tool_runs, 1 + events.len() as u64, "totals exact");
    // The first request was in the server's socket when it stopped: the
    // server applied it on resuming, so its retry was a duplicate.
    assert!(duplicates >= 1, "no retry was a duplicate");
    assert_eq!(calc.stats().events, 1 + events.len() as u64 - duplicates);
}

// -------------------------------------------------- random retries, property

/// One event of the property (its id is assigned by position).
fn event() -> impl Strategy<Value = Event> {
    let kind = prop::sample::select(vec![
        EventType::ToolUse,
        EventType::McpExecution,
        EventType::FileEdit,
        EventType::UserPrompt,
        EventType::SessionStart,
        EventType::SessionEnd,
        EventType::Other,
    ]);
    (
        kind,
        0u8..3,
        prop::option::of(0u8..3),
        prop::option::of(0u32..5_000),
        prop::option::of(any::<bool>()),
        prop::option::of(any::<bool>()),
    )
        .prop_map(|(kind, s, t, d, success, accepted)| {
            let mut e = Event::new(kind, format!("s{s}"));
            e.tool_name = t.map(|t| Arc::from(format!("tool{t}")));
            e.duration_ms = d.map(f64::from);
            e.payload.success = success;
            e.payload.accepted = accepted;
            e
        })
}

/// A batch, how it is redelivered, and the time that passes after it.
#[derive(Debug, Clone)]
struct Round {
    batch: Vec<Event>,
    /// Copies of earlier rounds' events, inserted at random positions.
    old: Vec<(prop::sample::Index, prop::sample::Index)>,
    /// Copies of this batch's events, appended.
    again: Vec<prop::sample::Index>,
    /// Events redelivered one by one afterwards (any round so far).
    singles: Vec<prop::sample::Index>,
    advance_ms: u64,
}

fn rounds() -> impl Strategy<Value = Vec<Round>> {
    let round = (
        prop::collection::vec(event(), 1..8),
        prop::collection::vec(any::<(prop::sample::Index, prop::sample::Index)>(), 0..4),
        prop::collection::vec(any::<prop::sample::Index>(), 0..3),
        prop::collection::vec(any::<prop::sample::Index>(), 0..3),
        0u64..20_000,
    )
        .prop_map(|(batch, old, again, singles, advance_ms)| Round {
            batch,
            old,
            again,
            singles,
            advance_ms,
        });
    prop::collection::vec(round, 1..6).prop_map(|mut rounds| {
        let mut n = 0;
        for r in &mut rounds {
            for e in &mut r.batch {
                e.event_id = Some(Arc::from(format!("evt-{n}")));
                n += 1;
            }
        }
        rounds
    })
}

/// `once` gets every batch once; `retried` gets each batch with duplicates
/// mixed in, plus single redeliveries. Same metrics, same state.
fn retried_equals_once(
    rounds: &[Round],
    clock: &ManualClock,
    once: &mut Calc,
    retried: &mut Calc,
) -> Result<(), TestCaseError> {
    let mut delivered: Vec<Event> = Vec::new();
    let mut copies = 0u64;
    for (i, r) in rounds.iter().enumerate() {
        let expected = once.process_batch(&r.batch).unwrap();
        let mut batch = r.batch.clone();
        if !delivered.is_empty() {
            for (which, at) in &r.old {
                let e = which.get(&delivered).clone();
                batch.insert(at.index(batch.len() + 1), e);
                copies += 1;
            }
        }
        for which in &r.again {
            batch.push(which.get(&r.batch).clone());
            copies += 1;
        }
        let got = retried.process_batch(&batch).unwrap();
        prop_assert_eq!(&got, &expected, "round {}", i);
        delivered.extend(r.batch.iter().cloned());
        let mut out = Vec::new();
        for which in &r.singles {
            let e = which.get(&delivered);
            prop_assert_eq!(
                retried.process_into(e, &mut out).unwrap(),
                Delivery::Duplicate
            );
            copies += 1;
        }
        prop_assert!(out.is_empty());
        clock.advance(Duration::from_millis(r.advance_ms));
    }
    let (a, b) = (once.state(), retried.state());
    for scope in [
        Scope::Global,
        Scope::Session("s0"),
        Scope::Session("s1"),
        Scope::Session("s2"),
    ] {
        prop_assert_eq!(
            a.composite_inputs(scope).unwrap(),
            b.composite_inputs(scope).unwrap()
        );
    }
    let sorted = |mut v: Vec<Arc<str>>| {
        v.sort();
        v
    };
    prop_assert_eq!(
        sorted(a.active_sessions().unwrap()),
        sorted(b.active_sessions().unwrap())
    );
    // A probe without an id sees the same windows and counts on both.
    let probe = Event::tool_use("s0", "tool0")
        .with_duration_ms(1.0)
        .with_success(true);
    prop_assert_eq!(
        once.process(&probe).unwrap(),
        retried.process(&probe).unwrap()
    );
    prop_assert_eq!(once.stats().events, retried.stats().events);
    prop_assert_eq!(retried.stats().duplicates, copies);
    prop_assert_eq!(once.stats().duplicates, 0);
    Ok(())
}

#[test]
fn memory_random_retries_give_the_state_of_one_delivery() {
    let config = ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(rounds in rounds())| {
        let clock = ManualClock::default();
        let mut once = calc_on(MemoryState::with_clock(clock.clone()), &clock);
        let mut retried = calc_on(MemoryState::with_clock(clock.clone()), &clock);
        retried_equals_once(&rounds, &clock, &mut once, &mut retried)?;
    });
}

#[test]
fn redis_random_retries_give_the_state_of_one_delivery() {
    let server = RedisServer::start();
    let config = ProptestConfig {
        cases: 32,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let case = std::cell::Cell::new(0u32);
    proptest!(config, |(rounds in rounds())| {
        case.set(case.get() + 1);
        let case = case.get();
        let clock = ManualClock::default();
        let connect = |ns: String| {
            RedisState::connect(&server.url(), RedisConfig::default().with_namespace(&ns)).unwrap()
        };
        let mut once = calc_on(connect(format!("once-{case}")), &clock);
        let mut retried = calc_on(connect(format!("retried-{case}")), &clock);
        retried_equals_once(&rounds, &clock, &mut once, &mut retried)?;
    });
}
