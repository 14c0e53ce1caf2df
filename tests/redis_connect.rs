//! Connecting and bounded blocking (issue 8, point 5): against a server
//! stopped with `SIGSTOP`, connecting returns within `connect_timeout`, a
//! call on an open connection within `read_timeout`, and a call that has to
//! reconnect within `connect_timeout + read_timeout`, each plus 10 % (the
//! upper bound is the feature under test). A server loading its data answers
//! with a typed, retryable `Loading` error; missing or wrong credentials
//! fail at connect with `Auth`.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use composite_metrics::state::{RedisConfig, RedisState, Scope, StateBackend};
use composite_metrics::{
    BackendError, Category, Error, Event, Metric, MetricSink, MetricsCalculator, RedisSink,
};
use support::RedisServer;

// Long enough that 10 % covers a loaded test machine's scheduling delay.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1_000);
const READ_TIMEOUT: Duration = Duration::from_millis(700);

fn config(ns: &str) -> RedisConfig {
    RedisConfig::default()
        .with_namespace(ns)
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_read_timeout(READ_TIMEOUT)
        .with_write_timeout(READ_TIMEOUT)
}

fn event(session: &str) -> Event {
    Event::tool_use(session, "bash")
        .with_duration_ms(10.0)
        .with_success(true)
}

/// The bound plus 10 %.
fn within(bound: Duration) -> Duration {
    bound + bound / 10
}

/// Runs `f` and asserts it took at most `bound` + 10 %.
fn timed<T>(what: &str, bound: Duration, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = f();
    let took = started.elapsed();
    assert!(
        took <= within(bound),
        "{what} took {took:?}; the bound is {bound:?} + 10 %"
    );
    out
}

fn is_timeout(e: &Error) -> bool {
    matches!(e, Error::Backend(BackendError::Timeout { .. }))
}

#[test]
fn connecting_to_a_stopped_server_times_out_within_the_connect_timeout() {
    let server = RedisServer::start();
    let stopped = server.stop();
    let err = timed("RedisState::connect", CONNECT_TIMEOUT, || {
        RedisState::connect(&server.url(), config("stopped")).unwrap_err()
    });
    assert!(
        matches!(err, BackendError::Timeout { op: "connect" }),
        "{err:?}"
    );
    assert!(err.is_retryable());
    let err = timed("RedisSink::connect", CONNECT_TIMEOUT, || {
        RedisSink::connect(&server.url(), config("stopped")).unwrap_err()
    });
    assert!(
        matches!(err, BackendError::Timeout { op: "connect" }),
        "{err:?}"
    );
    stopped.resume();
    RedisState::connect(&server.url(), config("stopped")).unwrap();
}

#[test]
fn a_call_on_an_open_connection_to_a_stopped_server_returns_within_the_read_timeout() {
    let server = RedisServer::start();
    let state = Arc::new(RedisState::connect(&server.url(), config("open")).unwrap());
    let mut calc = MetricsCalculator::builder()
        .state(Arc::clone(&state))
        .build()
        .unwrap();
    calc.process(&event("s")).unwrap();

    let stopped = server.stop();
    let err = timed("process on an open connection", READ_TIMEOUT, || {
        calc.process(&event("s")).unwrap_err()
    });
    assert!(is_timeout(&err), "{err:?}");
    // The timed-out connection was dropped: the next call has to reconnect
    // to the still-stopped server, and stays within the whole bound.
    let err = timed(
        "process that reconnects",
        CONNECT_TIMEOUT + READ_TIMEOUT,
        || calc.process(&event("s")).unwrap_err(),
    );
    assert!(is_timeout(&err), "{err:?}");
    let err = timed("composite read", CONNECT_TIMEOUT + READ_TIMEOUT, || {
        calc.state().composite_inputs(Scope::Global).unwrap_err()
    });
    assert!(matches!(err, BackendError::Timeout { .. }), "{err:?}");
    drop(stopped);

    calc.process(&event("s")).unwrap();
    assert!(state.reconnects() >= 1);
}

#[test]
fn a_call_that_must_reconnect_to_a_stopped_server_returns_within_connect_plus_read() {
    let server = RedisServer::start();
    let state = RedisState::connect(&server.url(), config("again")).unwrap();
    let mut calc = MetricsCalculator::builder().state(state).build().unwrap();
    calc.process(&event("s")).unwrap();
    // The server closes the state's connection, then stops: the call finds
    // its connection closed, reconnects (the kernel accepts), and the
    // handshake gets no answer.
    let killed: i64 = server.cmd(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
    assert!(killed >= 1);
    let stopped = server.stop();
    let err = timed(
        "process on a closed connection",
        CONNECT_TIMEOUT + READ_TIMEOUT,
        || calc.process(&event("s")).unwrap_err(),
    );
    assert!(is_timeout(&err), "{err:?}");
    drop(stopped);
    calc.process(&event("s")).unwrap();
}

#[test]
fn a_call_that_reconnects_and_then_stalls_returns_within_connect_plus_read() {
    let server = RedisServer::start();
    let state = Arc::new(RedisState::connect(&server.url(), config("stall")).unwrap());
    let mut calc = MetricsCalculator::builder()
        .state(Arc::clone(&state))
        .build()
        .unwrap();
    calc.process(&event("s")).unwrap();
    // The connection is closed and writes are paused: the reconnect (`PING`)
    // succeeds, the script then waits for the pause.
    let _: i64 = server.cmd(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
    let pause = Duration::from_millis(4_000);
    let paused_at = Instant::now();
    let _: () = server.cmd(&["CLIENT", "PAUSE", &pause.as_millis().to_string(), "WRITE"]);
    let reconnects = state.reconnects();
    let err = timed(
        "process that reconnects into a pause",
        CONNECT_TIMEOUT + READ_TIMEOUT,
        || calc.process(&event("s")).unwrap_err(),
    );
    assert!(is_timeout(&err), "{err:?}");
    assert!(state.reconnects() > reconnects, "it reconnected");
    let _: () = server.cmd(&["CLIENT", "UNPAUSE"]);
    assert!(paused_at.elapsed() < pause, "the pause was still on");
    calc.process(&event("s")).unwrap();
}

#[test]
fn a_sink_transaction_against_a_stopped_server_returns_within_the_read_timeout() {
    let server = RedisServer::start();
    let sink = RedisSink::connect(&server.url(), config("sink")).unwrap();
    // 50 metrics: one transaction of 200 commands, 202 replies. Each reply
    // must not get its own full timeout.
    let metrics: Vec<Metric> = (0..50)
        .map(|i| {
            Metric::new(
                Category::Tools,
                "tool_latency_avg",
                f64::from(i),
                Duration::from_secs(1_700_000_000),
            )
            .with_tool(Arc::from(format!("tool{i}")))
        })
        .collect();
    sink.record(&metrics).unwrap();
    let stopped = server.stop();
    let err = timed("sink record", READ_TIMEOUT, || {
        sink.record(&metrics).unwrap_err()
    });
    let backend = std::error::Error::source(&err)
        .and_then(|s| s.downcast_ref::<BackendError>())
        .expect("a backend error behind the sink error");
    assert!(
        matches!(backend, BackendError::Timeout { .. }),
        "{backend:?}"
    );
    drop(stopped);
    sink.record(&metrics).unwrap();
}

#[test]
fn a_server_loading_its_data_answers_with_a_retryable_loading_error() {
    let server = RedisServer::start();
    let state = RedisState::connect(&server.url(), config("loading")).unwrap();
    state
        .record(&event("s"), Duration::from_secs(1_700_000_000))
        .unwrap();
    // Enough keys, loaded slowly (a debug setting: microseconds per key),
    // with events served while loading.
    let _: () = server.cmd(&["DEBUG", "POPULATE", "20000"]);
    let _: () = server.cmd(&["CONFIG", "SET", "key-load-delay", "100"]);
    let _: () = server.cmd(&[
        "CONFIG",
        "SET",
        "loading-process-events-interval-bytes",
        "1024",
    ]);
    let url = server.url();
    let reload = std::thread::spawn(move || {
        let client = redis::Client::open(url).unwrap();
        let mut con = client.get_connection().unwrap();
        redis::cmd("DEBUG").arg("RELOAD").query::<()>(&mut con)
    });

    // Bounded: loading 20 000 keys at 100 µs takes about 2 s.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut loading = None;
    let mut applied = 1;
    while Instant::now() < deadline && !reload.is_finished() {
        match state.record(&event("s"), Duration::from_secs(1_700_000_001)) {
            Err(e @ BackendError::Loading { .. }) => {
                loading = Some(e);
                break;
            }
            Ok(_) => {
                applied += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("expected Loading or success, got {e:?}"),
        }
    }
    let err = loading.expect("a call during the reload saw LOADING");
    assert!(err.is_retryable());
    assert!(
        matches!(err, BackendError::Loading { op: "record" }),
        "{err:?}"
    );
    // A new connection while loading fails the same typed way.
    match RedisState::connect(&server.url(), config("loading")) {
        Err(BackendError::Loading { op: "connect" }) | Ok(_) => {}
        Err(e) => panic!("expected Loading (or done loading), got {e:?}"),
    }
    reload.join().unwrap().unwrap();
    let _: () = server.cmd(&["CONFIG", "SET", "key-load-delay", "0"]);
    // After loading, the retry works on the same state.
    state
        .record(&event("s"), Duration::from_secs(1_700_000_002))
        .unwrap();
    assert_eq!(
        state.composite_inputs(Scope::Global).unwrap().tool_runs,
        applied + 1,
        "the refused call was not applied"
    );
}

#[test]
fn a_missing_password_fails_at_connect_with_an_auth_error() {
    let server = RedisServer::start_with(&["--requirepass", "s3cret"]);
    let err = RedisState::connect(&server.url(), config("auth")).unwrap_err();
    assert!(
        matches!(err, BackendError::Auth { op: "connect", .. }),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("NOAUTH"), "{err}");
    let err = RedisSink::connect(&server.url(), config("auth")).unwrap_err();
    assert!(matches!(err, BackendError::Auth { .. }), "{err:?}");
}

#[test]
fn a_wrong_password_fails_at_connect_with_an_auth_error() {
    let server = RedisServer::start_with(&["--requirepass", "s3cret"]);
    let url = format!("redis://:nope@127.0.0.1:{}/", server.port());
    let err = RedisState::connect(&url, config("auth")).unwrap_err();
    assert!(
        matches!(err, BackendError::Auth { op: "connect", .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("WRONGPASS"), "{err}");
    // A password for a server that has none is refused too.
    let open = RedisServer::start();
    let url = format!("redis://:s3cret@127.0.0.1:{}/", open.port());
    let err = RedisState::connect(&url, config("auth")).unwrap_err();
    assert!(matches!(err, BackendError::Auth { .. }), "{err:?}");
}

#[test]
fn credentials_and_database_in_the_url_work() {
    let server = RedisServer::start_with(&["--requirepass", "s3cret"]);
    let _: () = server.cmd(&[
        "ACL",
        "SETUSER",
        "cm",
        "on",
        ">p@ss:w/rd",
        "~*",
        "&*",
        "+@all",
    ]);
    // The default user, password only.
    let url = format!("redis://:s3cret@127.0.0.1:{}/", server.port());
    let state = RedisState::connect(&url, config("cred")).unwrap();
    let mut calc = MetricsCalculator::builder().state(state).build().unwrap();
    calc.process(&event("s")).unwrap();
    // A named user, a password with reserved characters percent-encoded,
    // and database 3.
    let url = format!("redis://cm:p%40ss%3Aw%2Frd@127.0.0.1:{}/3", server.port());
    let state = RedisState::connect(&url, config("cred")).unwrap();
    let mut calc3 = MetricsCalculator::builder().state(state).build().unwrap();
    calc3.process(&event("s")).unwrap();
    calc3.process(&event("s")).unwrap();
    let dbsize3: i64 = {
        let mut con = server.connection();
        redis::cmd("SELECT").arg(3).query::<()>(&mut con).unwrap();
        redis::cmd("DBSIZE").query(&mut con).unwrap()
    };
    assert!(dbsize3 > 0, "the events went to database 3");
    assert_eq!(
        calc3
            .state()
            .composite_inputs(Scope::Global)
            .unwrap()
            .tool_runs,
        2
    );
    assert_eq!(
        calc.state()
            .composite_inputs(Scope::Global)
            .unwrap()
            .tool_runs,
        1,
        "database 0 is separate"
    );
    // A wrong password for the named user.
    let url = format!("redis://cm:wrong@127.0.0.1:{}/", server.port());
    let err = RedisState::connect(&url, config("cred")).unwrap_err();
    assert!(matches!(err, BackendError::Auth { .. }), "{err:?}");
}

#[test]
fn a_tls_url_without_the_feature_or_tls_files_without_a_tls_url_are_config_errors() {
    let server = RedisServer::start();
    #[cfg(not(feature = "tls"))]
    {
        let url = format!("rediss://127.0.0.1:{}/", server.port());
        let err = RedisState::connect(&url, config("tls")).unwrap_err();
        assert!(matches!(err, BackendError::InvalidConfig(_)), "{err:?}");
    }
    #[cfg(feature = "tls")]
    {
        let cfg = config("tls").with_tls_ca_file("/nonexistent/ca.pem");
        let err = RedisState::connect(&server.url(), cfg).unwrap_err();
        assert!(
            matches!(
                err,
                BackendError::InvalidConfig(composite_metrics::ConfigError::OutOfRange {
                    field: "tls_ca_file",
                    ..
                })
            ),
            "{err:?}"
        );
    }
}

#[test]
fn threads_sharing_a_state_each_return_within_connect_plus_read() {
    let server = RedisServer::start();
    let state = Arc::new(RedisState::connect(&server.url(), config("shared")).unwrap());
    state
        .record(&event("s"), Duration::from_secs(1_700_000_000))
        .unwrap();
    let stopped = server.stop();
    // Three calls queue for the one connection: the first times out on it,
    // the next must reconnect; none may wait for the others' full timeouts.
    let threads: Vec<_> = (0..3)
        .map(|i| {
            let state = Arc::clone(&state);
            std::thread::spawn(move || {
                let started = Instant::now();
                let res =
                    state.record(&event(&format!("t{i}")), Duration::from_secs(1_700_000_001));
                (started.elapsed(), res.map(|_| ()))
            })
        })
        .collect();
    for t in threads {
        let (took, res) = t.join().unwrap();
        let bound = CONNECT_TIMEOUT + READ_TIMEOUT;
        assert!(
            took <= within(bound),
            "a call on a shared state took {took:?}; the bound is {bound:?} + 10 %"
        );
        let err = res.unwrap_err();
        assert!(matches!(err, BackendError::Timeout { .. }), "{err:?}");
    }
    drop(stopped);
    state
        .record(&event("s"), Duration::from_secs(1_700_000_002))
        .unwrap();
}
