//! Issue 8, point 4: a namespace whose state was lost (server killed and
//! restarted without persistence, `FLUSHALL`) is reported once per worker as
//! `BackendError::StateReset`, counted in `Stats::state_resets`; later calls
//! work on the fresh state.

mod support;

use std::sync::Arc;

use composite_metrics::state::{RedisConfig, RedisState, Scope};
use composite_metrics::{BackendError, Error, Event, MetricsCalculator, Never, StateBackend};
use support::RedisServer;

type Worker = MetricsCalculator<Never>;

fn worker(server: &RedisServer) -> (Arc<RedisState>, Worker) {
    let state = Arc::new(
        RedisState::connect(
            &server.url(),
            RedisConfig::default().with_namespace("reset"),
        )
        .unwrap(),
    );
    let calc = MetricsCalculator::builder()
        .state(Arc::clone(&state))
        .build()
        .unwrap();
    (state, calc)
}

fn run() -> Event {
    Event::tool_use("s1", "bash").with_success(true)
}

fn is_reset(r: &Result<Vec<composite_metrics::Metric>, Error>) -> bool {
    matches!(
        r,
        Err(Error::Backend(BackendError::StateReset { op: "record" }))
    )
}

/// Both workers report the loss exactly once, then count from zero.
fn each_worker_sees_the_loss_once(server: &mut RedisServer, lose: impl FnOnce(&mut RedisServer)) {
    let (sa, mut a) = worker(server);
    let (_sb, mut b) = worker(server);
    for _ in 0..5 {
        a.process(&run()).unwrap();
        b.process(&run()).unwrap();
    }
    assert_eq!(sa.composite_inputs(Scope::Global).unwrap().tool_runs, 10);

    lose(server);

    let first_a = a.process(&run());
    assert!(is_reset(&first_a), "{first_a:?}");
    // A's next call works on the fresh state; B has not been told yet.
    a.process(&run()).unwrap();
    let first_b = b.process(&run());
    assert!(is_reset(&first_b), "{first_b:?}");
    for _ in 0..3 {
        a.process(&run()).unwrap();
        b.process(&run()).unwrap();
    }
    // The calls that reported the loss applied nothing: 1 + 3 + 3 runs.
    assert_eq!(sa.composite_inputs(Scope::Global).unwrap().tool_runs, 7);
    // A: 5 + 1 + 3 events applied, B: 5 + 3; one report each.
    for (w, events) in [(&a, 9), (&b, 8)] {
        let s = w.stats();
        assert_eq!((s.state_resets, s.events, s.backend_errors), (1, events, 0));
    }
    // The epoch key never expires.
    let pttl: i64 = server.cmd(&["PTTL", "{reset}:meta"]);
    assert_eq!(pttl, -1);
}

#[test]
fn kill_and_restart_without_persistence_is_reported_once_per_worker() {
    let mut server = RedisServer::start();
    let port = server.port();
    each_worker_sees_the_loss_once(&mut server, |s| {
        s.restart();
        assert_eq!(s.port(), port);
    });
}

#[test]
fn flushall_is_reported_once_per_worker() {
    let mut server = RedisServer::start();
    each_worker_sees_the_loss_once(&mut server, |s| {
        let _: () = s.cmd(&["FLUSHALL"]);
    });
}

#[test]
fn a_composite_read_reports_the_loss_too() {
    let server = RedisServer::start();
    let (state, mut calc) = worker(&server);
    calc.process(&run()).unwrap();
    let _: () = server.cmd(&["FLUSHALL"]);
    let err = calc.compute_now(None).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Backend(BackendError::StateReset {
                op: "composite_inputs"
            })
        ),
        "{err:?}"
    );
    assert_eq!(state.composite_inputs(Scope::Global).unwrap().tool_runs, 0);
    calc.process(&run()).unwrap();
    let s = calc.stats();
    assert_eq!((s.state_resets, s.composite_errors, s.events), (1, 0, 2));
}

/// Two losses in a row are both seen: the epoch set after the first loss is
/// never set again after the second, so a worker that adopted it notices.
#[test]
fn two_losses_in_a_row_are_each_reported() {
    let server = RedisServer::start();
    let (_sa, mut a) = worker(&server);
    let (_sb, mut b) = worker(&server);
    a.process(&run()).unwrap();
    b.process(&run()).unwrap();
    for round in 1..=3u64 {
        let _: () = server.cmd(&["FLUSHALL"]);
        assert!(is_reset(&a.process(&run())), "round {round}");
        assert!(is_reset(&b.process(&run())), "round {round}");
        a.process(&run()).unwrap();
        b.process(&run()).unwrap();
        assert_eq!(a.stats().state_resets, round);
        assert_eq!(b.stats().state_resets, round);
    }
    // A worker connecting after a loss adopts the current epoch: no report.
    let _: () = server.cmd(&["FLUSHALL"]);
    let (_sc, mut c) = worker(&server);
    c.process(&run()).unwrap();
    assert_eq!(c.stats().state_resets, 0);
    assert!(is_reset(&a.process(&run())));
}

/// After the loss has been reported, events cost one round trip again (the
/// report itself was one).
#[test]
fn the_report_costs_no_extra_round_trip() {
    let server = RedisServer::start();
    let (state, mut calc) = worker(&server);
    calc.process(&run()).unwrap();
    let _: () = server.cmd(&["FLUSHALL"]);
    let before = state.op_counts().record_round_trips;
    assert!(is_reset(&calc.process(&run())));
    for _ in 0..10 {
        calc.process(&run()).unwrap();
    }
    assert_eq!(state.op_counts().record_round_trips - before, 11);
}
