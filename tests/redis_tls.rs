//! TLS and credentials (issue 8, point 9; feature `tls`): a `redis-server`
//! with a TLS port and certificates from a test CA generated in-process.
//! Events go through over TLS with exact totals; a wrong CA, a missing or
//! unknown client certificate, and unreadable files are typed errors at
//! connect that name the problem.

mod support;

use std::time::{Duration, Instant};

use composite_metrics::state::{RedisConfig, RedisState, Scope, StateBackend};
use composite_metrics::{
    BackendError, Category, Event, Metric, MetricSink, MetricsCalculator, RedisSink,
};
use support::{RedisServer, TestPki};

fn config(ns: &str) -> RedisConfig {
    RedisConfig::default()
        .with_namespace(ns)
        .with_connect_timeout(Duration::from_secs(2))
        .with_read_timeout(Duration::from_secs(2))
}

fn event(session: &str, ok: bool) -> Event {
    Event::tool_use(session, "bash")
        .with_duration_ms(10.0)
        .with_success(ok)
}

#[test]
fn events_over_tls_with_the_configured_ca() {
    let pki = TestPki::generate_temp();
    let server = RedisServer::start_tls(pki.server_options(false), &[]);
    let cfg = config("tls").with_tls_ca_file(&pki.ca);
    let state = RedisState::connect(&server.tls_url(), cfg.clone()).unwrap();
    let mut calc = MetricsCalculator::builder().state(state).build().unwrap();
    for i in 0..10 {
        calc.process(&event(&format!("s{}", i % 3), i % 5 != 0))
            .unwrap();
    }
    let inputs = calc.state().composite_inputs(Scope::Global).unwrap();
    assert_eq!(inputs.tool_runs, 10);
    assert_eq!(inputs.success_rate, Some(80.0));
    // The same data is seen through the plain port: it is one server.
    let runs: String = server.cmd(&["HGET", "{tls}:totals", "tool_runs"]);
    assert_eq!(runs, "10");

    // The sink over TLS too.
    let sink = RedisSink::connect(&server.tls_url(), cfg).unwrap();
    let m = Metric::new(Category::Composite, "score", 42.0, Duration::from_secs(1));
    sink.record(&[m]).unwrap();
    let latest: String = server.cmd(&["HGET", "{tls}:latest", "composite/score"]);
    assert_eq!(latest, "42");
}

#[test]
fn a_server_certificate_from_another_ca_is_a_tls_error_at_connect() {
    let pki = TestPki::generate_temp();
    let server = RedisServer::start_tls(pki.server_options(false), &[]);
    let cfg = config("tls").with_tls_ca_file(&pki.other_ca);
    let err = RedisState::connect(&server.tls_url(), cfg.clone()).unwrap_err();
    assert!(
        matches!(err, BackendError::Tls { op: "connect", .. }),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(
        text.contains("certificate") && text.contains("UnknownIssuer"),
        "names the certificate problem: {text}"
    );
    let err = RedisSink::connect(&server.tls_url(), cfg).unwrap_err();
    assert!(matches!(err, BackendError::Tls { .. }), "{err:?}");
}

#[test]
fn a_host_the_certificate_does_not_name_is_a_tls_error() {
    let pki = TestPki::generate_temp();
    // A certificate from the right CA, for another host name.
    let mut options = pki.server_options(false);
    options.cert = pki.misnamed_cert.clone();
    options.key = pki.misnamed_key.clone();
    let server = RedisServer::start_tls(options, &[]);
    let cfg = config("tls").with_tls_ca_file(&pki.ca);
    let err = RedisState::connect(&server.tls_url(), cfg).unwrap_err();
    assert!(
        matches!(err, BackendError::Tls { op: "connect", .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("not valid for name"), "{err}");
}

#[test]
fn a_required_client_certificate_works_when_configured_and_fails_clearly_without() {
    let pki = TestPki::generate_temp();
    let server = RedisServer::start_tls(pki.server_options(true), &[]);
    let with_cert = config("mtls")
        .with_tls_ca_file(&pki.ca)
        .with_tls_client_cert(&pki.client_cert, &pki.client_key);
    let state = RedisState::connect(&server.tls_url(), with_cert).unwrap();
    state
        .record(&event("s", true), Duration::from_secs(1))
        .unwrap();
    state
        .record(&event("s", false), Duration::from_secs(2))
        .unwrap();
    let inputs = state.composite_inputs(Scope::Global).unwrap();
    assert_eq!(inputs.tool_runs, 2);
    assert_eq!(inputs.success_rate, Some(50.0));

    // Without a client certificate: refused at connect, as a TLS error.
    let without = config("mtls").with_tls_ca_file(&pki.ca);
    let err = RedisState::connect(&server.tls_url(), without).unwrap_err();
    assert!(
        matches!(err, BackendError::Tls { op: "connect", .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "names the certificate problem: {err}"
    );

    // A client certificate from a CA the server does not trust.
    let stranger = config("mtls")
        .with_tls_ca_file(&pki.ca)
        .with_tls_client_cert(&pki.stranger_cert, &pki.stranger_key);
    let err = RedisState::connect(&server.tls_url(), stranger).unwrap_err();
    assert!(matches!(err, BackendError::Tls { .. }), "{err:?}");
}

#[test]
fn unreadable_or_malformed_tls_files_are_tls_errors_naming_the_file() {
    let pki = TestPki::generate_temp();
    let server = RedisServer::start_tls(pki.server_options(false), &[]);
    let missing = pki.dir.join("missing.pem");
    let cfg = config("files").with_tls_ca_file(&missing);
    let err = RedisState::connect(&server.tls_url(), cfg).unwrap_err();
    assert!(matches!(err, BackendError::Tls { .. }), "{err:?}");
    assert!(err.to_string().contains("missing.pem"), "{err}");

    let garbage = pki.dir.join("garbage.pem");
    std::fs::write(&garbage, "not a key").unwrap();
    let cfg = config("files")
        .with_tls_ca_file(&pki.ca)
        .with_tls_client_cert(&pki.client_cert, &garbage);
    let err = RedisState::connect(&server.tls_url(), cfg).unwrap_err();
    assert!(matches!(err, BackendError::Tls { .. }), "{err:?}");
}

#[test]
fn credentials_over_tls() {
    let pki = TestPki::generate_temp();
    let server = RedisServer::start_tls(pki.server_options(false), &["--requirepass", "s3cret"]);
    let cfg = config("tlsauth").with_tls_ca_file(&pki.ca);
    let err = RedisState::connect(&server.tls_url(), cfg.clone()).unwrap_err();
    assert!(matches!(err, BackendError::Auth { .. }), "{err:?}");
    let url = server.tls_url().replace("rediss://", "rediss://:s3cret@");
    let state = RedisState::connect(&url, cfg).unwrap();
    state
        .record(&event("s", true), Duration::from_secs(1))
        .unwrap();
    assert_eq!(state.composite_inputs(Scope::Global).unwrap().tool_runs, 1);
}

#[test]
fn connecting_over_tls_to_a_stopped_server_returns_within_the_connect_timeout() {
    let pki = TestPki::generate_temp();
    let server = RedisServer::start_tls(pki.server_options(false), &[]);
    let cfg = config("tls").with_tls_ca_file(&pki.ca);
    // Connected once, so the server is known to work.
    drop(RedisState::connect(&server.tls_url(), cfg.clone()).unwrap());
    let stopped = server.stop();
    let started = Instant::now();
    // The TLS handshake gets no answer.
    let err = RedisState::connect(&server.tls_url(), cfg.clone()).unwrap_err();
    let took = started.elapsed();
    let bound = cfg.connect_timeout();
    assert!(
        took <= bound + bound / 10,
        "took {took:?}; bound {bound:?} + 10 %"
    );
    assert!(
        matches!(err, BackendError::Timeout { op: "connect" }),
        "{err:?}"
    );
    drop(stopped);
    RedisState::connect(&server.tls_url(), cfg).unwrap();
}
