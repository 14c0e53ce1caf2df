//! Locks cannot be wedged (issue 8, point 6), on a real redis-server: a lock
//! key written by someone else (no TTL, not a lock token, the wrong type)
//! blocks calculations for at most one lease, and is counted and logged.

mod support;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use composite_metrics::state::{LockOutcome, LockToken, RedisConfig, RedisState, Scope};
use composite_metrics::{Event, HybridLock, HybridLockConfig, MetricsCalculator, StateBackend};
use support::RedisServer;

/// Every warning logged in this test binary, so a test can find the ones
/// about its own keys.
fn warnings() -> &'static Mutex<Vec<String>> {
    static LOG: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    LOG.get_or_init(|| Mutex::new(Vec::new()))
}

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record<'_>) {
        if record.level() <= log::Level::Warn {
            warnings().lock().unwrap().push(record.args().to_string());
        }
    }

    fn flush(&self) {}
}

fn capture_warnings() {
    static LOGGER: Capture = Capture;
    // Several tests call this; only the first one installs the logger.
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
}

/// Warnings that name `key`.
fn warnings_about(key: &str) -> usize {
    let quoted = format!("{key:?}");
    warnings()
        .lock()
        .unwrap()
        .iter()
        .filter(|w| w.contains(&quoted))
        .count()
}

fn state(server: &RedisServer, ns: &str) -> RedisState {
    RedisState::connect(&server.url(), RedisConfig::default().with_namespace(ns)).unwrap()
}

const LEASE: Duration = Duration::from_millis(200);

fn config() -> HybridLockConfig {
    HybridLockConfig::default()
        .with_lease(LEASE)
        .with_min_interval(LEASE)
        .with_max_staleness(LEASE)
        .with_every_events(1)
}

/// A HybridLock calculator computes, someone plants `plant` at the lock key,
/// and the calculator computes again within one lease (plus its staleness
/// floor and the event gap), the key counted once as foreign and logged.
fn recovers_from(ns: &str, plant: &[&str]) {
    capture_warnings();
    let server = RedisServer::start();
    let state = Arc::new(state(&server, ns));
    let mut calc = MetricsCalculator::builder()
        .state(state.clone())
        .scheduler(HybridLock::new(config()).unwrap())
        .build()
        .unwrap();
    let event = || Event::tool_use("s1", "bash").with_success(true);
    calc.process(&event()).unwrap();
    assert_eq!(calc.stats().composites, 1);
    server.cmd::<()>(plant);
    let lock = format!("{{{ns}}}:lock");
    let planted = Instant::now();
    // Bounded wait: events every 10 ms until the second calculation.
    let deadline = planted + Duration::from_secs(5);
    while calc.stats().composites < 2 && Instant::now() < deadline {
        calc.process(&event()).unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
    let waited = planted.elapsed();
    assert_eq!(calc.stats().composites, 2, "still wedged after {waited:?}");
    // The lease caps the block; staleness (one lease) and event gaps add a little.
    assert!(
        waited <= LEASE + LEASE + Duration::from_millis(300),
        "blocked {waited:?}"
    );
    assert_eq!(state.op_counts().foreign_keys, 1);
    assert_eq!(calc.stats().coordination_errors, 0);
    assert_eq!(warnings_about(&lock), 1, "{:?}", warnings().lock().unwrap());
}

#[test]
fn a_lock_set_without_ttl_blocks_for_at_most_one_lease() {
    recovers_from("nottl", &["SET", "{nottl}:lock", "x"]);
}

#[test]
fn a_hash_at_the_lock_key_blocks_for_at_most_one_lease() {
    recovers_from("hash", &["HSET", "{hash}:lock", "owner", "crashed-tool"]);
}

#[test]
fn a_foreign_value_with_a_long_ttl_is_capped_at_the_lease() {
    recovers_from("longttl", &["SET", "{longttl}:lock", "x", "PX", "3600000"]);
}

#[test]
fn one_of_our_tokens_without_ttl_is_capped_too() {
    recovers_from(
        "persisted",
        &["SET", "{persisted}:lock", "0123456789abcdef"],
    );
}

#[test]
fn another_workers_longer_lease_is_left_alone() {
    let server = RedisServer::start();
    let state = state(&server, "longer");
    // A worker configured with a 60 s lease holds the lock: that is ours.
    server.cmd::<()>(&["SET", "{longer}:lock", "0123456789abcdef", "PX", "60000"]);
    let outcome = state
        .try_lock(Scope::Global, LockToken::from_u64(1), LEASE, LEASE)
        .unwrap();
    assert!(matches!(outcome, LockOutcome::Held { .. }), "{outcome:?}");
    let pttl: i64 = server.cmd(&["PTTL", "{longer}:lock"]);
    assert!(pttl > 50_000, "a live holder's lease was cut to {pttl} ms");
    assert_eq!(state.op_counts().foreign_keys, 0);
}

#[test]
fn the_first_attempt_caps_and_reports_once() {
    capture_warnings();
    let server = RedisServer::start();
    let state = state(&server, "once");
    server.cmd::<()>(&["SET", "{once}:lock", "x"]);
    let token = LockToken::from_u64(1);
    for _ in 0..3 {
        let outcome = state.try_lock(Scope::Global, token, LEASE, LEASE).unwrap();
        assert!(matches!(outcome, LockOutcome::Held { .. }), "{outcome:?}");
    }
    let pttl: i64 = server.cmd(&["PTTL", "{once}:lock"]);
    assert!(pttl > 0 && pttl <= LEASE.as_millis() as i64, "{pttl}");
    // Capped once; later attempts find a TTL within the lease and write nothing.
    assert_eq!(state.op_counts().foreign_keys, 1);
    assert_eq!(warnings_about("{once}:lock"), 1);
}

#[test]
fn session_locks_are_capped_too() {
    let server = RedisServer::start();
    let state = state(&server, "sess");
    server.cmd::<()>(&["SET", "{sess}:l:s1", "x"]);
    let token = LockToken::from_u64(1);
    let outcome = state
        .try_lock(Scope::Session("s1"), token, LEASE, LEASE)
        .unwrap();
    assert!(matches!(outcome, LockOutcome::Held { .. }), "{outcome:?}");
    let pttl: i64 = server.cmd(&["PTTL", "{sess}:l:s1"]);
    assert!(pttl > 0 && pttl <= LEASE.as_millis() as i64, "{pttl}");
    assert_eq!(state.op_counts().foreign_keys, 1);
}

/// Wrong-typed or garbled coordination keys never make a script fail half-way:
/// the lock attempt is decided on reads, then replaces what is not ours.
#[test]
fn garbled_marker_fence_and_log_are_replaced_not_fatal() {
    capture_warnings();
    let server = RedisServer::start();
    let state = state(&server, "garbled");
    server.cmd::<()>(&["SET", "{garbled}:last", "yesterday"]);
    server.cmd::<()>(&["HSET", "{garbled}:fence", "n", "1"]);
    server.cmd::<()>(&["SET", "{garbled}:calc_log", "not a list"]);
    // A garbled marker reads as "none remembered".
    assert_eq!(state.last_computed(Scope::Global).unwrap(), None);
    let token = LockToken::from_u64(7);
    let outcome = state.try_lock(Scope::Global, token, LEASE, LEASE).unwrap();
    let generation = outcome.generation().expect("acquired");
    assert!(generation > 0);
    assert_eq!(state.op_counts().foreign_keys, 3);
    assert_eq!(warnings_about("{garbled}:last"), 1);
    assert_eq!(warnings_about("{garbled}:fence"), 1);
    assert_eq!(warnings_about("{garbled}:calc_log"), 1);
    let fence: String = server.cmd(&["GET", "{garbled}:fence"]);
    assert_eq!(fence, generation.to_string());
    let log: Vec<String> = server.cmd(&["LRANGE", "{garbled}:calc_log", "0", "-1"]);
    assert_eq!(log.len(), 1);
    assert!(state.last_computed(Scope::Global).unwrap().is_some());
    assert!(state.unlock(Scope::Global, token).unwrap());
}

#[test]
fn unlock_and_last_computed_survive_a_wrong_typed_lock_and_marker() {
    let server = RedisServer::start();
    let state = state(&server, "wrongtype");
    server.cmd::<()>(&["HSET", "{wrongtype}:lock", "a", "b"]);
    server.cmd::<()>(&["RPUSH", "{wrongtype}:last", "a"]);
    let digest: String = server.cmd(&["DEBUG", "DIGEST"]);
    assert!(!state.unlock(Scope::Global, LockToken::from_u64(1)).unwrap());
    assert_eq!(state.last_computed(Scope::Global).unwrap(), None);
    let after: String = server.cmd(&["DEBUG", "DIGEST"]);
    assert_eq!(digest, after, "a refused release changed the data");
}

/// Issue 18, point 7: a hostile session id cannot forge calculation-log
/// entries: each entry stays one line of space-separated fields (5 for a
/// start, 4 for an end), its scope decodes back to the id, and no session
/// reads as the global `*`.
#[test]
fn session_ids_cannot_forge_calculation_log_entries() {
    let server = RedisServer::start();
    let state = RedisState::connect(
        &server.url(),
        RedisConfig::default().with_namespace("forge"),
    )
    .unwrap();
    let hostile = "x 1 forged-token *\nend 2 0000000000000000 *";
    let token = LockToken::from_u64(7);
    for id in [hostile, "*", "plain-id_1.~"] {
        let scope = Scope::Session(id);
        let outcome = state
            .try_lock(
                scope,
                token,
                Duration::from_secs(5),
                Duration::from_millis(1),
            )
            .unwrap();
        assert!(
            matches!(outcome, LockOutcome::Acquired { .. }),
            "{outcome:?}"
        );
        assert!(state.unlock(scope, token).unwrap());
    }
    let log: Vec<String> = server.cmd(&["LRANGE", "{forge}:calc_log", "0", "-1"]);
    assert_eq!(log.len(), 6, "{log:?}");
    let decode = |s: &str| -> String {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    // Newest first: end, start for each id in reverse order.
    let ids = ["plain-id_1.~", "*", hostile];
    for (pair, id) in log.chunks(2).zip(ids) {
        let end: Vec<&str> = pair[0].split(' ').collect();
        let start: Vec<&str> = pair[1].split(' ').collect();
        assert!(
            !pair[0].contains('\n') && !pair[1].contains('\n'),
            "{pair:?}"
        );
        assert_eq!((end.len(), end[0]), (4, "end"), "{pair:?}");
        assert_eq!((start.len(), start[0]), (5, "start"), "{pair:?}");
        assert_ne!(start[3], "*", "a session never reads as the global scope");
        assert_eq!(decode(start[3]), id);
        assert_eq!(decode(end[3]), id);
    }
    assert_eq!(
        log.chunks(2).next().map(|p| p[0].split(' ').nth(3)),
        Some(Some("plain-id_1.~"))
    );
}
