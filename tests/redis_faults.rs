//! Faults, first pass: a paused Redis makes `process` fail within the
//! timeout instead of hanging; after the pause, and after a kill and restart
//! on the same port, the same calculator works again. Real time is
//! unavoidable here (the server's pause and restart); it is kept short.

mod support;

use std::time::{Duration, Instant};

use composite_metrics::state::{RedisConfig, RedisState};
use composite_metrics::{BackendError, Error, Event, MetricsCalculator};
use support::RedisServer;

const READ_TIMEOUT: Duration = Duration::from_millis(300);

fn config(ns: &str) -> RedisConfig {
    RedisConfig::default()
        .with_namespace(ns)
        .with_connect_timeout(Duration::from_millis(300))
        .with_read_timeout(READ_TIMEOUT)
        .with_write_timeout(READ_TIMEOUT)
}

fn event() -> Event {
    Event::tool_use("s1", "bash")
        .with_duration_ms(10.0)
        .with_success(true)
}

#[test]
fn defaults_are_bounded() {
    let c = RedisConfig::default();
    assert_eq!(c.connect_timeout(), Duration::from_secs(1));
    assert_eq!(c.read_timeout(), Duration::from_millis(500));
    assert_eq!(c.write_timeout(), Duration::from_millis(500));
    assert!(RedisConfig::default()
        .with_read_timeout(Duration::ZERO)
        .validate()
        .is_err());
}

#[test]
fn paused_redis_times_out_then_the_same_calculator_recovers() {
    let server = RedisServer::start();
    let state = RedisState::connect(&server.url(), config("pause")).unwrap();
    let mut calc = MetricsCalculator::builder().state(state).build().unwrap();
    calc.process(&event()).unwrap();

    let pause = Duration::from_millis(1_500);
    let paused_at = Instant::now();
    let _: () = server.cmd(&["CLIENT", "PAUSE", &pause.as_millis().to_string(), "ALL"]);
    let started = Instant::now();
    let err = calc.process(&event()).unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(err, Error::Backend(BackendError::Timeout { .. })),
        "expected a timeout, got {err:?}"
    );
    assert!(
        took >= READ_TIMEOUT && took < READ_TIMEOUT * 3,
        "took {took:?}"
    );
    // Still paused: reconnecting also fails within the connect timeout.
    let started = Instant::now();
    assert!(calc.process(&event()).is_err());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(calc.stats().backend_errors, 2);

    std::thread::sleep((pause + Duration::from_millis(100)).saturating_sub(paused_at.elapsed()));
    let metrics = calc.process(&event()).unwrap();
    assert!(metrics.iter().any(|m| m.name == "tool_latency_avg"));
    assert!(calc.state().op_counts().records >= 2);
}

#[test]
fn killed_and_restarted_redis_on_the_same_port() {
    let mut server = RedisServer::start();
    let port = server.port();
    let state = RedisState::connect(&server.url(), config("restart")).unwrap();
    let mut calc = MetricsCalculator::builder().state(state).build().unwrap();
    calc.process(&event()).unwrap();

    // Restarted between two events: the stale connection is replaced, the
    // lost state is reported once (nothing applied), then the event goes
    // through (scripts are sent again after NOSCRIPT).
    server.restart();
    assert_eq!(server.port(), port);
    let err = calc.process(&event()).unwrap_err();
    assert!(
        matches!(err, Error::Backend(BackendError::StateReset { .. })),
        "{err:?}"
    );
    calc.process(&event()).unwrap();

    // Down: a connection error, quickly.
    server.kill();
    let started = Instant::now();
    let err = calc.process(&event()).unwrap_err();
    assert!(
        matches!(err, Error::Backend(BackendError::Connection { .. })),
        "expected a connection error, got {err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));

    // Back: the same calculator works again, without being rebuilt, after
    // reporting the lost state once.
    server.restart();
    let err = calc.process(&event()).unwrap_err();
    assert!(
        matches!(err, Error::Backend(BackendError::StateReset { .. })),
        "{err:?}"
    );
    assert_eq!(calc.stats().state_resets, 2);
    let metrics = calc.process(&event()).unwrap();
    let runs = metrics
        .iter()
        .find(|m| m.name == "overall_success_rate")
        .map(|m| m.value);
    assert_eq!(runs, Some(100.0));
    let inputs = calc
        .state()
        .composite_inputs(composite_metrics::state::Scope::Global)
        .unwrap();
    assert_eq!(
        inputs.tool_runs, 1,
        "a restarted server without persistence starts empty"
    );
}

#[test]
fn unreachable_server_fails_at_connect() {
    let server = RedisServer::start();
    let url = server.url();
    drop(server);
    let started = Instant::now();
    let err = RedisState::connect(&url, config("gone")).unwrap_err();
    assert!(matches!(err, BackendError::Connection { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
}
