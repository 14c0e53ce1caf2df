//! Scale of listings (issue 8, point 8), on a real redis-server: sessions are
//! listed a page at a time, each page one short round trip, and a
//! per-session `Background` run goes through 10^5 live sessions with every
//! page call well within the read timeout. (The 10^6 figure comes from
//! `cargo run --release --features redis --example listing -- <url>`.)

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use composite_metrics::clock::ManualClock;
use composite_metrics::score::CompositeInputs;
use composite_metrics::state::{
    LockOutcome, LockToken, Observation, OpCounts, RedisConfig, RedisState, Scope, SessionCursor,
    SessionPage,
};
use composite_metrics::{
    BackendError, Background, BackgroundConfig, CallbackSink, CompositeScope, Event, Metric,
    MetricsCalculator, StateBackend,
};
use parking_lot::Mutex;
use support::RedisServer;

/// Forwards to a `RedisState`, timing every page call (listing pages and
/// per-page input reads) and remembering what the pages listed.
#[derive(Debug)]
struct Timed {
    inner: RedisState,
    pages: Mutex<Vec<Duration>>,
    listed: Mutex<HashSet<Arc<str>>>,
}

impl Timed {
    fn new(inner: RedisState) -> Self {
        Self {
            inner,
            pages: Mutex::default(),
            listed: Mutex::default(),
        }
    }
}

impl StateBackend for Timed {
    fn record(&self, event: &Event, now: Duration) -> Result<Observation, BackendError> {
        self.inner.record(event, now)
    }
    fn record_batch(
        &self,
        events: &[Event],
        now: Duration,
        out: &mut Vec<Observation>,
    ) -> Result<(), BackendError> {
        self.inner.record_batch(events, now, out)
    }
    fn composite_inputs(&self, scope: Scope<'_>) -> Result<CompositeInputs, BackendError> {
        self.inner.composite_inputs(scope)
    }
    fn session_inputs(
        &self,
        sessions: &[Arc<str>],
        out: &mut Vec<CompositeInputs>,
    ) -> Result<(), BackendError> {
        let start = Instant::now();
        self.inner.session_inputs(sessions, out)?;
        self.pages.lock().push(start.elapsed());
        Ok(())
    }
    fn active_sessions(&self) -> Result<Vec<Arc<str>>, BackendError> {
        panic!("a paged listing must not list everything at once")
    }
    fn active_sessions_page(
        &self,
        cursor: Option<SessionCursor>,
        limit: usize,
    ) -> Result<SessionPage, BackendError> {
        let start = Instant::now();
        let page = self.inner.active_sessions_page(cursor, limit)?;
        self.pages.lock().push(start.elapsed());
        self.listed.lock().extend(page.sessions.iter().cloned());
        Ok(page)
    }
    fn try_lock(
        &self,
        scope: Scope<'_>,
        token: LockToken,
        lease: Duration,
        min_interval: Duration,
    ) -> Result<LockOutcome, BackendError> {
        self.inner.try_lock(scope, token, lease, min_interval)
    }
    fn unlock(&self, scope: Scope<'_>, token: LockToken) -> Result<bool, BackendError> {
        self.inner.unlock(scope, token)
    }
    fn last_computed(&self, scope: Scope<'_>) -> Result<Option<Duration>, BackendError> {
        self.inner.last_computed(scope)
    }
    fn op_counts(&self) -> OpCounts {
        self.inner.op_counts()
    }
}

fn session(i: usize) -> String {
    format!("sess-{i}")
}

/// Opens `range` sessions in batches of 1 000 (one round trip each).
fn fill(state: &RedisState, range: std::ops::Range<usize>) {
    let ids: Vec<usize> = range.collect();
    let mut out = Vec::new();
    for chunk in ids.chunks(1_000) {
        let events: Vec<Event> = chunk
            .iter()
            .map(|i| Event::tool_use(session(*i), "bash").with_success(true))
            .collect();
        out.clear();
        state
            .record_batch(&events, Duration::ZERO, &mut out)
            .unwrap();
    }
}

/// Opens sessions `0..n` of namespace `ns` fast, in one server-side loop:
/// for each, the live-session index entry (scored by the server's time in
/// ms), its hash (one successful tool run) and its decision list (one
/// accepted edit), as the record script leaves them.
fn fill_fast(server: &RedisServer, ns: &str, n: usize) {
    const FILL: &str = r"
        local t = redis.call('TIME')
        local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local p = ARGV[1]
        for i = 0, tonumber(ARGV[2]) - 1 do
          local id = 'sess-' .. i
          redis.call('ZADD', p .. 'sessions', now_ms, id)
          redis.call('HSET', p .. 's:' .. id, 'started', 0, 'last_seen', 0, 'tool_runs', 1,
            'prompts', 0, 'ok', 1, 'known', 1)
          redis.call('LPUSH', p .. 'd:' .. id, '1')
        end
        return 0";
    let mut con = server.connection();
    redis::cmd("EVAL")
        .arg(FILL)
        .arg(0)
        .arg(format!("{{{ns}}}:"))
        .arg(n)
        .query::<()>(&mut con)
        .unwrap();
}

/// Lists everything, page by page, with `limit`.
fn list_all(state: &dyn StateBackend, limit: usize) -> (Vec<Arc<str>>, Vec<Duration>) {
    let (mut cursor, mut listed, mut times) = (None, Vec::new(), Vec::new());
    loop {
        let start = Instant::now();
        let page = state.active_sessions_page(cursor, limit).unwrap();
        times.push(start.elapsed());
        listed.extend(page.sessions);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return (listed, times),
        }
    }
}

#[test]
fn per_session_background_lists_100k_sessions_page_by_page() {
    const N: usize = 100_000;
    let server = RedisServer::start();
    let config = RedisConfig::default().with_namespace("big");
    let read_timeout = config.read_timeout();
    fill_fast(&server, "big", N);
    let card: usize = server.cmd(&["ZCARD", "{big}:sessions"]);
    assert_eq!(card, N);

    let clock = ManualClock::default();
    let timed = Arc::new(Timed::new(
        RedisState::connect(&server.url(), config).unwrap(),
    ));
    let interval = BackgroundConfig::default().interval();
    let scored: Arc<Mutex<HashSet<Arc<str>>>> = Arc::default();
    let largest_batch = Arc::new(AtomicUsize::new(0));
    let sink = {
        let (scored, largest) = (scored.clone(), largest_batch.clone());
        CallbackSink::new(move |metrics: &[Metric]| {
            largest.fetch_max(metrics.len(), Ordering::Relaxed);
            let mut scored = scored.lock();
            scored.extend(metrics.iter().filter_map(|m| m.session.clone()));
            Ok(())
        })
    };
    let mut calc = MetricsCalculator::builder()
        .clock(clock.clone())
        .state(timed.clone())
        .sink(sink)
        .scope(CompositeScope::PerSession)
        .scheduler(Background::manual(BackgroundConfig::default()).unwrap())
        .build()
        .unwrap();
    clock.advance(interval);
    let runs = calc.scheduler_mut().poll();
    assert_eq!(calc.stats().composite_errors, 0);
    // Every session listed (ZSCAN may return one twice, never none).
    let listed = timed.listed.lock();
    assert_eq!(listed.len(), N);
    assert!((0..N).all(|i| listed.contains(session(i).as_str())));
    assert!(runs >= N as u64, "{runs} composites for {N} sessions");
    // Every session scored, recorded a page at a time.
    assert_eq!(scored.lock().len(), N);
    let largest = largest_batch.load(Ordering::Relaxed);
    assert!(largest <= 2_000, "a sink call of {largest} metrics");
    let pages = timed.pages.lock();
    assert!(pages.len() >= N / 2_000, "{} pages", pages.len());
    let slowest = pages.iter().max().copied().unwrap_or_default();
    assert!(
        slowest < read_timeout,
        "a page took {slowest:?} (read timeout {read_timeout:?})"
    );
}

#[test]
fn a_session_present_throughout_is_listed_despite_concurrent_inserts() {
    const BEFORE: usize = 20_000;
    const DURING: usize = 30_000;
    let server = RedisServer::start();
    let config = RedisConfig::default().with_namespace("moving");
    let state = RedisState::connect(&server.url(), config.clone()).unwrap();
    fill(&state, 0..BEFORE);
    let writer = {
        let writer = RedisState::connect(&server.url(), config).unwrap();
        std::thread::spawn(move || fill(&writer, BEFORE..BEFORE + DURING))
    };
    // Small pages, so the listing runs while the zset grows and rehashes.
    let (listed, times) = list_all(&state, 50);
    writer.join().unwrap();
    let listed: HashSet<Arc<str>> = listed.into_iter().collect();
    let missing: Vec<usize> = (0..BEFORE)
        .filter(|i| !listed.contains(session(*i).as_str()))
        .collect();
    assert!(missing.is_empty(), "{} sessions missed", missing.len());
    assert!(times.len() > 10);
}

#[test]
fn pages_leave_out_expired_sessions() {
    let server = RedisServer::start();
    let config = RedisConfig::default()
        .with_namespace("ttl")
        .with_session_ttl(Duration::from_millis(300));
    let state = RedisState::connect(&server.url(), config).unwrap();
    fill(&state, 0..200);
    assert_eq!(list_all(&state, 50).0.len(), 200);
    std::thread::sleep(Duration::from_millis(200));
    fill(&state, 200..201);
    std::thread::sleep(Duration::from_millis(150));
    // The first 200 are past the TTL, but nothing removed them yet (no event
    // since): they are in the set, and not listed.
    let card: usize = server.cmd(&["ZCARD", "{ttl}:sessions"]);
    assert_eq!(card, 201);
    let listed = list_all(&state, 50).0;
    assert_eq!(listed, vec![Arc::<str>::from(session(200).as_str())]);
}

#[test]
fn a_cursor_from_elsewhere_is_rejected() {
    let server = RedisServer::start();
    let state =
        RedisState::connect(&server.url(), RedisConfig::default().with_namespace("cur")).unwrap();
    let err = state
        .active_sessions_page(Some(SessionCursor::new("not a scan cursor")), 10)
        .unwrap_err();
    assert!(err.to_string().contains("cursor"), "{err}");
}
