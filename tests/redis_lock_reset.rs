//! Issue 21, point 6: the lock script checks the namespace's epoch as the
//! record script does, on a real redis-server. After the state is lost
//! (`FLUSHALL`, or the namespace's keys deleted), a worker that has not yet
//! seen the loss gets `BackendError::StateReset { op: "try_lock" }` once,
//! takes no lock and stamps no marker, fence or log entry on the fresh
//! state; its next attempt works on the fresh state.
#![cfg(feature = "redis")]

mod support;

use std::sync::Arc;
use std::time::Duration;

use composite_metrics::clock::ManualClock;
use composite_metrics::state::{LockOutcome, LockToken, RedisConfig, RedisState, Scope};
use composite_metrics::{
    BackendError, Background, BackgroundConfig, CompositeScheduler, Event, MetricsCalculator,
    StateBackend,
};
use support::RedisServer;

const LEASE: Duration = Duration::from_secs(5);
const MIN_INTERVAL: Duration = Duration::from_secs(60);

fn state(server: &RedisServer, ns: &str) -> RedisState {
    RedisState::connect(&server.url(), RedisConfig::default().with_namespace(ns)).unwrap()
}

fn exists(server: &RedisServer, key: &str) -> bool {
    server.cmd::<i64>(&["EXISTS", key]) == 1
}

/// The coordination keys of the global scope.
fn coordination_keys(ns: &str) -> [String; 4] {
    ["lock", "last", "fence", "calc_log"].map(|k| format!("{{{ns}}}:{k}"))
}

fn is_lock_reset<T: std::fmt::Debug>(r: &Result<T, BackendError>) -> bool {
    matches!(r, Err(BackendError::StateReset { op: "try_lock" }))
}

/// Deletes every key of the namespace, its epoch included.
fn delete_namespace(server: &RedisServer, ns: &str) {
    let keys: Vec<String> = server.cmd(&["KEYS", &format!("{{{ns}}}:*")]);
    assert!(!keys.is_empty());
    let mut del = vec!["DEL"];
    del.extend(keys.iter().map(String::as_str));
    let _: i64 = server.cmd(&del);
}

/// A and B share a namespace; A computes once, the state is lost by `lose`,
/// B then A try to lock: each gets the reset once and writes nothing, then
/// works on the fresh state.
fn each_worker_is_refused_the_lock_once(ns: &str, lose: impl FnOnce(&RedisServer)) {
    let server = RedisServer::start();
    let a = state(&server, ns);
    let b = state(&server, ns);
    let (ta, tb) = (LockToken::from_u64(0xa), LockToken::from_u64(0xb));
    let first = a.try_lock(Scope::Global, ta, LEASE, MIN_INTERVAL).unwrap();
    assert!(first.generation().is_some(), "{first:?}");
    assert!(a.unlock(Scope::Global, ta).unwrap());
    // The lock was released; the marker, fence and log remain.
    for key in &coordination_keys(ns)[1..] {
        assert!(exists(&server, key), "{key} before the loss");
    }

    lose(&server);

    // B has not seen the loss: no lock, no marker, no fence, no log entry.
    let refused = b.try_lock(Scope::Global, tb, LEASE, MIN_INTERVAL);
    assert!(is_lock_reset(&refused), "{refused:?}");
    for key in coordination_keys(ns) {
        assert!(
            !exists(&server, &key),
            "{key} written by a worker that had not seen the loss"
        );
    }
    assert_eq!(b.last_computed(Scope::Global).unwrap(), None);
    // The epoch key was recreated (with B's candidate, which B adopted).
    assert!(exists(&server, &format!("{{{ns}}}:meta")));

    // B's next attempt works on the fresh state: no marker, so no "too soon".
    let taken = b.try_lock(Scope::Global, tb, LEASE, MIN_INTERVAL).unwrap();
    let generation = taken
        .generation()
        .expect("acquired after the reset was seen");
    assert!(exists(&server, &format!("{{{ns}}}:last")));
    assert!(b.unlock(Scope::Global, tb).unwrap());

    // A has not seen the loss either (the epoch changed under it): refused
    // once, with "lock if dirty" too, and the data left exactly as it was.
    let digest: String = server.cmd(&["DEBUG", "DIGEST"]);
    let refused = a.try_lock_if_dirty(Scope::Global, ta, LEASE, Duration::ZERO);
    assert!(is_lock_reset(&refused), "{refused:?}");
    let after: String = server.cmd(&["DEBUG", "DIGEST"]);
    assert_eq!(digest, after, "a refused lock attempt changed the data");
    // Then A works on the fresh state: B's calculation is remembered.
    let next = a.try_lock(Scope::Global, ta, LEASE, MIN_INTERVAL).unwrap();
    assert!(
        matches!(next, LockOutcome::TooSoon { .. }),
        "A should see B's calculation of generation {generation}: {next:?}"
    );
    // Each worker reported the loss once: no further resets.
    for w in [&a, &b] {
        w.try_lock(Scope::Global, ta, LEASE, MIN_INTERVAL).unwrap();
        w.composite_inputs(Scope::Global).unwrap();
    }
}

#[test]
fn after_flushall_a_worker_that_has_not_seen_it_takes_no_lock() {
    each_worker_is_refused_the_lock_once("lockflush", |s| {
        let _: () = s.cmd(&["FLUSHALL"]);
    });
}

#[test]
fn after_the_namespace_is_deleted_a_worker_that_has_not_seen_it_takes_no_lock() {
    each_worker_is_refused_the_lock_once("lockdel", |s| delete_namespace(s, "lockdel"));
}

/// Session locks check the epoch too: no session marker stamped.
#[test]
fn a_session_lock_is_refused_once_after_a_reset() {
    let server = RedisServer::start();
    let a = state(&server, "locksess");
    let token = LockToken::from_u64(1);
    let scope = Scope::Session("s1");
    a.try_lock(scope, token, LEASE, MIN_INTERVAL).unwrap();
    assert!(a.unlock(scope, token).unwrap());
    let _: () = server.cmd(&["FLUSHALL"]);
    let refused = a.try_lock(scope, token, LEASE, MIN_INTERVAL);
    assert!(is_lock_reset(&refused), "{refused:?}");
    let keys: Vec<String> = server.cmd(&["KEYS", "{locksess}:*"]);
    assert_eq!(keys, vec!["{locksess}:meta".to_owned()]);
    let taken = a.try_lock(scope, token, LEASE, MIN_INTERVAL).unwrap();
    assert!(taken.generation().is_some(), "{taken:?}");
}

/// The case that mattered: a coordinated `Background` locks on its timer
/// without recording first. After a `FLUSHALL` its run reports the reset
/// (counted in `state_resets`, not `errors`) and stamps no marker, so the
/// next run computes at once instead of finding a fresh "too soon" marker
/// (the marker's `min_interval` is on the server's clock, 54 s here).
#[test]
fn a_coordinated_background_run_reports_the_reset_and_the_next_run_computes() {
    let server = RedisServer::start();
    let state = Arc::new(state(&server, "lockbg"));
    let clock = ManualClock::new(Duration::from_secs(1_000));
    let config = BackgroundConfig::default()
        .with_interval(Duration::from_secs(60))
        .with_lease(LEASE)
        .with_coordination(true);
    let mut calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .state(Arc::clone(&state))
        .scheduler(Background::manual(config).unwrap())
        .build()
        .unwrap();
    calc.process(&Event::tool_use("s1", "bash").with_success(true))
        .unwrap();
    clock.advance(Duration::from_secs(60));
    assert_eq!(calc.scheduler_mut().poll(), 1);

    let _: () = server.cmd(&["FLUSHALL"]);
    clock.advance(Duration::from_secs(60));
    assert_eq!(calc.scheduler_mut().poll(), 0);
    let s = calc.scheduler().stats();
    assert_eq!((s.state_resets, s.errors, s.composites), (1, 0, 1));
    for key in coordination_keys("lockbg") {
        assert!(!exists(&server, &key), "{key} stamped on the fresh state");
    }

    clock.advance(Duration::from_secs(60));
    assert_eq!(
        calc.scheduler_mut().poll(),
        1,
        "the run after the reset computes"
    );
    assert!(exists(&server, "{lockbg}:last"));
    // The worker saw the loss once: its next event is recorded as usual.
    calc.process(&Event::tool_use("s1", "bash").with_success(true))
        .unwrap();
    let stats = calc.stats();
    assert_eq!(
        (stats.state_resets, stats.composite_errors, stats.events),
        (1, 0, 2)
    );
}
