//! Issue 2, point 6: MemoryState, the embedded backend: shared between
//! threads, bounded, sessions dropped at `session_end` and after an idle TTL,
//! capacity limits that reject rather than corrupt.

use std::sync::Arc;
use std::time::Duration;

use composite_metrics::clock::{Clock, ManualClock};
use composite_metrics::sink::SeriesKey;
use composite_metrics::state::{Footprint, MemoryConfig, Scope};
use composite_metrics::{
    BackendError, CompositeInputs, ConfigError, Error, Event, EventType, MemorySink, MemoryState,
    MetricsCalculator, Never, StateBackend,
};

const DAY: Duration = Duration::from_secs(24 * 3600);

fn setup(
    config: MemoryConfig,
) -> (
    MetricsCalculator<Never>,
    MemoryState,
    MemorySink,
    ManualClock,
) {
    let clock = ManualClock::new(Duration::from_secs(1_700_000_000));
    let state = MemoryState::with_config(config, clock.clone()).unwrap();
    let sink = MemorySink::new();
    let calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .state(state.clone())
        .sink(sink.clone())
        .build()
        .unwrap();
    (calc, state, sink, clock)
}

#[test]
fn memory_state_is_send_sync_and_clones_share() {
    fn send_sync<T: Send + Sync + Clone + 'static>() {}
    send_sync::<MemoryState>();
    let clock = ManualClock::default();
    let state = MemoryState::with_clock(clock.clone());
    let clone = state.clone();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let state = clone.clone();
            let clock = clock.clone();
            std::thread::spawn(move || {
                for i in 0..1_000 {
                    let e = Event::tool_use(format!("t{t}-{}", i % 10), "bash").with_success(true);
                    state.record(&e, clock.now()).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(state.op_counts().records, 4_000);
    assert_eq!(state.footprint().sessions, 40);
    assert_eq!(
        state.composite_inputs(Scope::Global).unwrap(),
        CompositeInputs {
            success_rate: Some(100.0),
            acceptance_rate: None,
            tool_runs: 4_000
        }
    );
}

#[test]
fn windows_stay_bounded() {
    let clock = ManualClock::default();
    let state = MemoryState::with_clock(clock.clone());
    let mut last = None;
    for i in 0..10_000u32 {
        let e = Event::tool_use("s", "bash").with_duration_ms(f64::from(i));
        last = state.record(&e, clock.now()).unwrap().latency;
    }
    let l = last.unwrap();
    assert_eq!(l.count, 100);
    // The last 100 are 9_900..=9_999.
    assert_eq!(l.p50, 9_949.0);
    assert_eq!(l.avg, 9_949.5);
    for i in 0..1_000 {
        let e = Event::new(EventType::FileEdit, "s").with_accepted(i % 4 == 0);
        state.record(&e, clock.now()).unwrap();
    }
    // The last 100 decisions (900..1000) hold 25 acceptances.
    assert_eq!(
        state
            .composite_inputs(Scope::Global)
            .unwrap()
            .acceptance_rate,
        Some(25.0)
    );
}

#[test]
fn a_sessions_entries_go_at_session_end() {
    let (mut calc, state, _, _) = setup(MemoryConfig::default());
    for s in ["a", "b", "c"] {
        calc.process(&Event::tool_use(s, "bash").with_success(true))
            .unwrap();
        calc.process(&Event::new(EventType::FileEdit, s).with_accepted(false))
            .unwrap();
    }
    assert_eq!(state.footprint().sessions, 3);
    let before = state.composite_inputs(Scope::Session("b")).unwrap();
    assert_eq!(before.tool_runs, 1);
    assert_eq!(before.acceptance_rate, Some(0.0));
    calc.process(&Event::new(EventType::SessionEnd, "b"))
        .unwrap();
    assert_eq!(state.footprint().sessions, 2);
    assert_eq!(
        state.composite_inputs(Scope::Session("b")).unwrap(),
        CompositeInputs::default()
    );
    let mut active: Vec<String> = state
        .active_sessions()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    active.sort();
    assert_eq!(active, ["a", "c"]);
    // Global totals keep what the session contributed.
    assert_eq!(state.composite_inputs(Scope::Global).unwrap().tool_runs, 3);
    // Ending an unknown session changes nothing but throughput.
    let m = calc
        .process(&Event::new(EventType::SessionEnd, "zzz"))
        .unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(state.footprint().sessions, 2);
}

#[test]
fn sessions_that_never_end_expire_after_the_idle_ttl() {
    let (mut calc, state, _, clock) = setup(MemoryConfig::default());
    assert_eq!(state.config().session_ttl(), DAY);
    let empty = state.footprint();
    for i in 0..100_000 {
        calc.process(&Event::new(EventType::UserPrompt, format!("session-{i}")))
            .unwrap();
    }
    let full = state.footprint();
    assert_eq!(full.sessions, 100_000);
    assert!(full.session_capacity >= 100_000);

    // Just before the TTL nothing has expired.
    clock.advance(DAY - Duration::from_secs(1));
    calc.process(&Event::new(EventType::UserPrompt, "late"))
        .unwrap();
    assert_eq!(state.footprint().sessions, 100_001);

    // Past the TTL (and past the sweep interval), the next event finds the state shrunk.
    clock.advance(Duration::from_secs(61));
    calc.process(&Event::new(EventType::UserPrompt, "late"))
        .unwrap();
    let after = state.footprint();
    assert_eq!(after.sessions, 1, "only `late` is alive");
    assert!(
        after.session_capacity < 1_000,
        "capacity {} did not shrink back (empty: {})",
        after.session_capacity,
        empty.session_capacity
    );
    assert_eq!(
        state
            .active_sessions()
            .unwrap()
            .iter()
            .map(|s| &**s)
            .collect::<Vec<_>>(),
        ["late"]
    );
    assert_eq!(calc.stats().events, 100_002);
}

#[test]
fn expire_idle_forgets_idle_sessions_at_once() {
    let clock = ManualClock::default();
    let config = MemoryConfig::default().with_session_ttl(Duration::from_secs(600));
    let state = MemoryState::with_config(config, clock.clone()).unwrap();
    for i in 0..5_000 {
        state
            .record(&Event::tool_use(format!("s{i}"), "bash"), clock.now())
            .unwrap();
    }
    clock.advance(Duration::from_secs(599));
    state.expire_idle();
    assert_eq!(state.footprint().sessions, 5_000);
    clock.advance(Duration::from_secs(1));
    state.expire_idle();
    let f = state.footprint();
    assert_eq!(f.sessions, 0);
    assert!(f.session_capacity < 100, "{f:?}");
}

/// Everything a rejected event must leave alone.
#[derive(Debug, PartialEq)]
struct Snapshot {
    records: u64,
    footprint: Footprint,
    inputs: CompositeInputs,
    sink: Vec<(SeriesKey, Vec<(Duration, f64)>)>,
}

fn snapshot(state: &MemoryState, sink: &MemorySink) -> Snapshot {
    Snapshot {
        records: state.op_counts().records,
        footprint: state.footprint(),
        inputs: state.composite_inputs(Scope::Global).unwrap(),
        sink: sink
            .keys()
            .into_iter()
            .map(|k| {
                let s = sink.series(&k);
                (k, s)
            })
            .collect(),
    }
}

#[test]
fn too_many_tool_names_are_rejected_and_change_nothing() {
    let (mut calc, state, sink, _) = setup(MemoryConfig::default().with_max_tools(2));
    calc.process(&Event::tool_use("s", "bash").with_success(true))
        .unwrap();
    calc.process(&Event::tool_use("s", "grep").with_success(false))
        .unwrap();
    let before = snapshot(&state, &sink);
    let err = calc
        .process(
            &Event::tool_use("s", "edit")
                .with_success(true)
                .with_duration_ms(5.0),
        )
        .unwrap_err();
    match err {
        Error::Backend(BackendError::CapacityExceeded { what, limit }) => {
            assert_eq!(limit, 2);
            assert!(what.contains("tool"), "{what}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(snapshot(&state, &sink), before);
    assert_eq!(calc.stats().rejected, 1);
    assert_eq!(calc.stats().events, 2);
    assert_eq!(calc.stats().backend_errors, 0);
    // Known tools still work; a batch with a new tool is rejected whole.
    calc.process(&Event::tool_use("s", "bash")).unwrap();
    let before = snapshot(&state, &sink);
    let batch = [
        Event::tool_use("s", "grep"),
        Event::tool_use("s", "new-tool"),
        Event::tool_use("s", "bash"),
    ];
    assert!(matches!(
        calc.process_batch(&batch),
        Err(Error::Backend(BackendError::CapacityExceeded {
            limit: 2,
            ..
        }))
    ));
    assert_eq!(snapshot(&state, &sink), before);
    assert_eq!(calc.stats().rejected, 4);
    assert_eq!(calc.stats().events, 3);
}

#[test]
fn too_many_sessions_are_rejected_and_change_nothing() {
    let (mut calc, state, sink, _) = setup(MemoryConfig::default().with_max_sessions(3));
    for s in ["a", "b", "c"] {
        calc.process(&Event::tool_use(s, "bash")).unwrap();
    }
    let before = snapshot(&state, &sink);
    let err = calc
        .process(&Event::new(EventType::UserPrompt, "d"))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Backend(BackendError::CapacityExceeded {
                what: "sessions",
                limit: 3
            })
        ),
        "{err:?}"
    );
    assert_eq!(snapshot(&state, &sink), before);
    assert_eq!(calc.stats().rejected, 1);
    // Events that open no session still pass: unknown types, ends of unknown sessions.
    calc.process(&Event::new(EventType::Other, "d")).unwrap();
    calc.process(&Event::new(EventType::SessionEnd, "d"))
        .unwrap();
    assert_eq!(state.footprint().sessions, 3);
    // Once a session ends, a new one fits.
    calc.process(&Event::new(EventType::SessionEnd, "a"))
        .unwrap();
    calc.process(&Event::new(EventType::UserPrompt, "d"))
        .unwrap();
    assert_eq!(state.footprint().sessions, 3);
    assert_eq!(calc.stats().rejected, 1);
    assert_eq!(calc.stats().events, 7);
}

#[test]
fn invalid_limits_are_rejected() {
    let clock = ManualClock::default();
    let cases = [
        (
            MemoryConfig::default().with_session_ttl(Duration::ZERO),
            "session_ttl",
        ),
        (MemoryConfig::default().with_max_sessions(0), "max_sessions"),
        (MemoryConfig::default().with_max_tools(0), "max_tools"),
    ];
    for (config, field) in cases {
        assert_eq!(
            MemoryState::with_config(config, clock.clone()).unwrap_err(),
            ConfigError::Zero { field }
        );
    }
    let d = MemoryConfig::default();
    assert_eq!(
        (d.session_ttl(), d.max_sessions(), d.max_tools()),
        (DAY, 1_000_000, 10_000)
    );
}

#[test]
fn many_tool_names_up_to_the_limit_are_fine() {
    let (mut calc, state, _, _) = setup(MemoryConfig::default().with_max_tools(50));
    for i in 0..50 {
        calc.process(&Event::tool_use("s", format!("tool-{i}")))
            .unwrap();
    }
    assert_eq!(state.footprint().tools, 50);
    let shared: Arc<dyn StateBackend> = Arc::new(state.clone());
    assert_eq!(shared.op_counts().records, 50);
}

/// Issue 21, point 4: a session idle for its TTL starts afresh on its next
/// event even when no sweep has run since it went idle (sweeps run at most
/// once a minute), as a Redis session whose keys expired does.
#[test]
fn a_session_idle_for_its_ttl_starts_afresh_between_sweeps() {
    let clock = ManualClock::default();
    let config = MemoryConfig::default().with_session_ttl(Duration::from_secs(90));
    let state = MemoryState::with_config(config, clock.clone()).unwrap();
    let prompt = |s: &str| Event::new(EventType::UserPrompt, s);
    let t0 = clock.now();
    assert_eq!(
        state.record(&prompt("s"), t0).unwrap().prompts_in_session,
        Some(1)
    );
    // A sweep at 60 s keeps it (idle 60 s < 90 s); the next is due at 120 s.
    state
        .record(&prompt("other"), t0 + Duration::from_secs(60))
        .unwrap();
    assert_eq!(state.footprint().sessions, 2);
    // At 100 s it has been idle for longer than its TTL: gone.
    let p = state
        .record(&prompt("s"), t0 + Duration::from_secs(100))
        .unwrap();
    assert_eq!(p.prompts_in_session, Some(1));
}
