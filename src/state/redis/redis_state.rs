use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ::redis::Value;
use parking_lot::Mutex;

use super::epoch::{with_prelude, Epoch};
use super::mirror::Mirror;
use super::record_plan::{Args, Plan};
use crate::error::BackendError;
use crate::event::Event;
use crate::redis::{
    array, at, int, text, typed, uint, unexpected, Keys, Link, LuaScript, Packed, RedisConfig,
};
use crate::score::CompositeInputs;
use crate::state::{
    LockOutcome, LockToken, Observation, OpCounts, Scope, SessionCursor, SessionPage, StateBackend,
};

/// Shared state in Redis, for many processes on many machines (feature `redis`).
///
/// Every operation is one Lua script run with `EVALSHA`, so it is atomic and
/// costs one round trip: [`record`](StateBackend::record) applies all of an
/// event's updates, [`record_batch`](StateBackend::record_batch) a whole
/// batch, [`composite_inputs`](StateBackend::composite_inputs) reads the
/// composite's inputs, and each coordination operation is one script on the
/// server's clock (`TIME`). After `SCRIPT FLUSH` or a restart the server
/// answers `NOSCRIPT` and the script is sent once with `EVAL` (two round trips).
///
/// Each value holds one connection; give every worker its own `RedisState`.
/// A stalled server makes an operation fail with
/// [`BackendError::Timeout`] after the read timeout instead of hanging; the
/// next operation reconnects. A request that timed out may still be applied
/// by the server later (it was sent): give events an
/// [`event_id`](crate::Event::event_id) and retrying is safe.
///
/// # All or none, at most once, loss detected
///
/// - Every key a script touches is declared in `KEYS` (the session hashes
///   and decision lists of the batch's sessions, the event-id keys, the
///   epoch key); the scripts declare their flags with a `#!lua` shebang
///   (**Redis 7 or later**), so a server out of memory refuses them before
///   they start ([`BackendError::OutOfMemory`]).
/// - The record script checks everything before its first write: the
///   namespace's epoch, the type of every key (and the form of the counters
///   it reads), the session and tool-name limits, duplicates. Its first
///   writes push the batch's values to the latency and decision windows and
///   the sessions' decision lists (`LPUSH`'s reply is how it learns their
///   lengths); a push that fails (a key of another type, or a window
///   holding a value this crate did not write) makes it pop what it pushed
///   before it answers. So a rejected event or batch
///   ([`BackendError::WrongType`], [`BackendError::CapacityExceeded`], ...)
///   changes nothing.
/// - An event whose `event_id` was applied within
///   [`RedisConfig::with_dedup_horizon`] (key `{ns}:e:<id>`) is a duplicate:
///   nothing changes and its observation says
///   [`duplicate`](Observation::duplicate). An id repeated within one batch
///   is applied once.
/// - `{ns}:meta` holds the namespace's epoch, created at connect. When it is
///   missing or changed (the state was lost), the next record, composite
///   read or lock attempt ([`try_lock`](StateBackend::try_lock),
///   [`try_lock_if_dirty`](StateBackend::try_lock_if_dirty)) answers
///   [`BackendError::StateReset`] once per `RedisState`, applying nothing (a
///   lock attempt takes no lock and stamps no marker); later calls work on
///   the fresh state. `unlock` and `last_computed` need no check: a release
///   deletes only a lock holding the caller's token, and the marker read is
///   the fresh state's.
///
/// # Same values as `MemoryState`
///
/// Windows are Redis lists of the last 100 values, duplicates kept. Each
/// `RedisState` keeps a copy of the shared latency and decision windows and
/// the script sends only what the copy lacks: the values other workers
/// pushed since this one last saw the window (by a sequence number per
/// window), or the whole window when the copy is more than 100 values behind
/// or the list was emptied, expired or changed by anyone else. The latency
/// and acceptance figures are computed here with [`crate::window`], so they
/// equal [`MemoryState`](crate::MemoryState)'s value for value, and a
/// steady-state event gets about 100 bytes back. Threads sharing one
/// `RedisState` do not wait for each other's copy: a thread that finds it in
/// use asks for whole windows.
///
/// Housekeeping runs at most once per second of the server's clock per key,
/// not per event: trimming the session set and renewing the TTLs of the
/// shared keys (rate hash, windows, session set) and of each session's keys.
/// A key the script creates gets its TTL at once.
///
/// Differences from `MemoryState`:
///
/// - idle sessions expire by key TTL on the Redis server's clock (memory:
///   listed by its clock, continued or started afresh by the time of the
///   event), counted from the session's first event in the second of its
///   last activity (so up to one second before the TTL after its last event;
///   memory exactly at the TTL), and the session limit counts only unexpired
///   sessions;
/// - the windows expire after [`RedisConfig::with_window_ttl`] without updates
///   (counted in the same way);
/// - after the calculator's clock steps back, events per second are counted
///   as `RateWindow` does; all other values are independent of the clock.
///
/// # Example
///
/// ```no_run
/// use composite_metrics::state::{RedisConfig, RedisState};
/// use composite_metrics::{Event, HybridLock, MetricsCalculator};
///
/// let state = RedisState::connect("redis://127.0.0.1:6379/", RedisConfig::default().with_namespace("prod"))?;
/// let mut worker = MetricsCalculator::builder()
///     .state(state)
///     .scheduler(HybridLock::default())
///     .build()?;
/// worker.process(&Event::tool_use("s1", "bash").with_duration_ms(42.0))?;
/// # Ok::<(), composite_metrics::Error>(())
/// ```
pub struct RedisState {
    link: Link,
    keys: Keys,
    scripts: Scripts,
    counters: Counters,
    epoch: Epoch,
    scratch: Mutex<Scratch>,
}

#[derive(Debug)]
struct Scripts {
    epoch_init: LuaScript,
    record: LuaScript,
    composite: LuaScript,
    composite_sessions: LuaScript,
    active: LuaScript,
    active_page: LuaScript,
    try_lock: LuaScript,
    unlock: LuaScript,
    last_computed: LuaScript,
}

impl Scripts {
    fn new() -> Self {
        Self {
            epoch_init: LuaScript::new(with_prelude!("epoch_init.lua")),
            record: LuaScript::new(with_prelude!("record.lua")),
            composite: LuaScript::new(with_prelude!("composite.lua")),
            composite_sessions: LuaScript::new(include_str!("composite_sessions.lua")),
            active: LuaScript::new(include_str!("active.lua")),
            active_page: LuaScript::new(include_str!("active_page.lua")),
            try_lock: LuaScript::new(with_prelude!("try_lock.lua")),
            unlock: LuaScript::new(include_str!("unlock.lua")),
            last_computed: LuaScript::new(include_str!("last_computed.lua")),
        }
    }

    /// Every script, to load on each primary of a cluster.
    fn all(&self) -> [&LuaScript; 9] {
        [
            &self.epoch_init,
            &self.record,
            &self.composite,
            &self.composite_sessions,
            &self.active,
            &self.active_page,
            &self.try_lock,
            &self.unlock,
            &self.last_computed,
        ]
    }
}

#[derive(Debug, Default)]
struct Counters {
    records: AtomicU64,
    record_trips: AtomicU64,
    composite_reads: AtomicU64,
    lock_attempts: AtomicU64,
    locks_acquired: AtomicU64,
    unlocks: AtomicU64,
    marker_reads: AtomicU64,
    foreign_keys: AtomicU64,
    other_trips: AtomicU64,
}

impl fmt::Debug for RedisState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisState")
            .field("prefix", &self.keys.prefix)
            .field("link", &self.link)
            .field("ops", &self.op_counts())
            .finish()
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn rate(ok: u64, known: u64) -> Option<f64> {
    (known > 0).then(|| 100.0 * ok as f64 / known as f64)
}

/// The record script's reply code for "these event ids were applied before".
const APPLIED_BEFORE: i64 = 3;

impl RedisState {
    /// Connects to the server at `url` (e.g. `redis://127.0.0.1:6379/`) and
    /// checks the configuration. The connection is opened now, so a wrong
    /// address fails here; a namespace holding `{` or `}` fails with
    /// [`BackendError::InvalidConfig`]. Connecting also reads the
    /// namespace's epoch (`{ns}:meta`), creating it for a new namespace: one
    /// round trip.
    pub fn connect(url: &str, config: RedisConfig) -> Result<Self, BackendError> {
        Self::start(Link::open(url, config)?, Scripts::new())
    }

    /// Connects to a Redis Cluster through `seed_urls` (any of its nodes,
    /// e.g. `["redis://10.0.0.1:6379/", "redis://10.0.0.2:6379/"]`; one
    /// answering is enough) and checks the configuration, as
    /// [`connect`](Self::connect) does. Credentials and TLS come from the
    /// first URL and apply to every node; the database must be 0.
    ///
    /// The state holds one connection per primary (the `redis` crate's
    /// cluster connection); give every worker its own `RedisState`, as on
    /// one server. The namespace's keys share one hash slot (`{ns}`), so every script
    /// runs on the one primary that owns it; namespaces spread over the
    /// primaries. At connect the scripts are loaded on every primary
    /// (`SCRIPT LOAD`); a node that lost them answers `NOSCRIPT` and gets the
    /// script with `EVAL`.
    ///
    /// While the namespace's slot migrates, requests are redirected (`ASK`,
    /// then `ASKING` on the target) or retried after a short pause
    /// (`TRYAGAIN`: the server refuses a script whose keys are split between
    /// the two nodes before it runs, so nothing is half applied), and after
    /// the migration (`MOVED`) the slot map is read again: the worker goes
    /// on without being rebuilt. All of this stays within the call's deadline
    /// (see [`RedisConfig`]'s "Timeouts"); a migration that outlasts it fails
    /// the call with [`BackendError::Timeout`], nothing applied.
    ///
    /// ```no_run
    /// use composite_metrics::state::{RedisConfig, RedisState};
    ///
    /// let seeds = ["redis://10.0.0.1:7000/", "redis://10.0.0.2:7000/"];
    /// let state = RedisState::connect_cluster(&seeds, RedisConfig::default().with_namespace("team-a"))?;
    /// # Ok::<(), composite_metrics::BackendError>(())
    /// ```
    pub fn connect_cluster(seed_urls: &[&str], config: RedisConfig) -> Result<Self, BackendError> {
        let scripts = Scripts::new();
        let link = Link::open_cluster(seed_urls, config, &scripts.all())?;
        Self::start(link, scripts)
    }

    /// Reads (or creates) the namespace's epoch on `link`.
    fn start(link: Link, scripts: Scripts) -> Result<Self, BackendError> {
        const OP: &str = "connect";
        let keys = Keys::new(link.config().key_prefix());
        let state = Self {
            keys,
            scripts,
            counters: Counters::default(),
            epoch: Epoch::new(),
            scratch: Mutex::new(Scratch::new(&link)),
            link,
        };
        let candidate = state.epoch.candidate();
        let meta = [state.keys.meta.as_str()];
        let reply = state
            .link
            .eval(
                OP,
                &state.counters.other_trips,
                &state.scripts.epoch_init,
                &meta,
                &|cmd| {
                    cmd.arg(&candidate);
                },
            )
            .map_err(|e| typed(OP, &meta, e))?;
        state.epoch.adopt(text(OP, &reply)?);
        Ok(state)
    }

    /// The configuration in force.
    pub fn config(&self) -> &RedisConfig {
        self.link.config()
    }

    /// Round trips to Redis so far, every operation included (a script the
    /// server had to be sent again counts twice).
    pub fn round_trips(&self) -> u64 {
        let c = &self.counters;
        c.record_trips.load(Ordering::Relaxed) + c.other_trips.load(Ordering::Relaxed)
    }

    /// How many times the connection was reopened after a failure.
    pub fn reconnects(&self) -> u64 {
        self.link.reconnects()
    }

    fn apply(
        &self,
        events: &[Event],
        now: Duration,
        emit: &mut dyn FnMut(Observation),
    ) -> Result<(), BackendError> {
        // One worker uses its buffers and window copies; a thread that finds
        // them in use (threads sharing one `RedisState`) does not wait for
        // them: it packs into fresh ones and asks for the whole windows.
        match self.scratch.try_lock() {
            Some(mut scratch) => self.apply_with(&mut scratch, events, now, emit),
            None => self.apply_with(&mut Scratch::new(&self.link), events, now, emit),
        }
    }

    fn apply_with(
        &self,
        scratch: &mut Scratch,
        events: &[Event],
        now: Duration,
        emit: &mut dyn FnMut(Observation),
    ) -> Result<(), BackendError> {
        const OP: &str = "record";
        let config = self.link.config();
        let Scratch {
            packed: p,
            mirror,
            plan,
        } = scratch;
        plan.mark_repeats(events);
        // Each pass either applies the batch or learns of ids applied
        // before (then nothing changed): at most one pass per id, and one
        // more.
        loop {
            plan.build(events, now);
            if plan.applied() == 0 {
                for _ in events {
                    emit(Observation {
                        duplicate: true,
                        ..Observation::default()
                    });
                }
                return Ok(());
            }
            let args = Args {
                epoch: &self.epoch,
                session_ttl_ms: ms(config.session_ttl()),
                window_ttl_ms: ms(config.window_ttl()),
                max_sessions: config.max_sessions(),
                max_tools: config.max_tools(),
                dedup_ms: ms(config.dedup_horizon()),
                latency: (&mirror.latency_gen, mirror.latency_seq),
                decisions: (&mirror.decisions_gen, mirror.decisions_seq),
            };
            plan.pack(p, &self.keys, events, now, &args);
            let script = &self.scripts.record;
            p.head_evalsha(script.sha());
            let reply = self
                .link
                .eval_packed(OP, &self.counters.record_trips, script, p)
                .map_err(|e| {
                    let keys = plan.key_names(&self.keys, events);
                    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                    typed(OP, &keys, e)
                })?;
            let all = array(OP, &reply)?;
            if all.first().map(|v| int(OP, v)).transpose()? == Some(APPLIED_BEFORE) {
                let positions = all
                    .get(1..)
                    .unwrap_or(&[])
                    .iter()
                    .map(|v| uint(OP, v).map(|i| usize::try_from(i).unwrap_or(usize::MAX)))
                    .collect::<Result<Vec<_>, _>>()?;
                plan.mark_applied(events, &positions);
                continue;
            }
            let items = self.epoch.check(OP, &reply)?;
            let read = mirror.read(OP, items, plan, events, now, emit);
            if read.is_err() {
                // The copies may be half updated: ask for whole windows next time.
                *mirror = Mirror::default();
            }
            read?;
            self.counters
                .records
                .fetch_add(plan.applied(), Ordering::Relaxed);
            return Ok(());
        }
    }

    /// Counts and logs the keys a lock attempt found foreign and neutralised
    /// (`bits` as try_lock.lua answers them).
    fn foreign(&self, bits: u64, lock: &str, last: &str, fence: &str) {
        let found = [
            (1, lock, "a lock key not set by this crate (no TTL, wrong type or not a lock token); its TTL was capped at the lease"),
            (2, last, "a \"last computed\" marker not set by this crate; it was replaced"),
            (4, fence, "a fencing generation not set by this crate; it was replaced by a larger one"),
            (8, self.keys.calc_log.as_str(), "a calculation log of the wrong type; it was replaced"),
        ];
        for (bit, key, what) in found {
            if bits & bit != 0 {
                self.counters.foreign_keys.fetch_add(1, Ordering::Relaxed);
                log::warn!("redis key {key:?} held {what}");
            }
        }
    }

    fn since(op: &'static str, v: &Value) -> Result<Option<Duration>, BackendError> {
        let us = int(op, v)?;
        Ok(u64::try_from(us).ok().map(Duration::from_micros))
    }
}

/// A worker's reused buffers: the packed command, the batch's plan and
/// its copies of the shared windows.
#[derive(Debug)]
struct Scratch {
    packed: Packed,
    mirror: Mirror,
    plan: Plan,
}

impl Scratch {
    /// Empty buffers for commands sent over `link`.
    fn new(link: &Link) -> Self {
        Self {
            packed: link.packed(),
            mirror: Mirror::default(),
            plan: Plan::default(),
        }
    }
}

impl StateBackend for RedisState {
    fn record(&self, event: &Event, now: Duration) -> Result<Observation, BackendError> {
        let mut out = None;
        self.apply(std::slice::from_ref(event), now, &mut |o| out = Some(o))?;
        out.ok_or_else(|| unexpected("record", "no observation"))
    }

    fn record_batch(
        &self,
        events: &[Event],
        now: Duration,
        out: &mut Vec<Observation>,
    ) -> Result<(), BackendError> {
        if events.is_empty() {
            return Ok(());
        }
        let start = out.len();
        out.reserve(events.len());
        let result = self.apply(events, now, &mut |o| out.push(o));
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn composite_inputs(&self, scope: Scope<'_>) -> Result<CompositeInputs, BackendError> {
        const OP: &str = "composite_inputs";
        self.counters
            .composite_reads
            .fetch_add(1, Ordering::Relaxed);
        let (main, dec) = match scope {
            Scope::Global => (self.keys.totals.clone(), self.keys.decisions.clone()),
            Scope::Session(id) => (self.keys.session(id), self.keys.session_decisions(id)),
        };
        let keys = [main.as_str(), &dec, &self.keys.meta];
        let known = self.epoch.known();
        let candidate = self.epoch.candidate();
        let reply = self
            .link
            .eval(
                OP,
                &self.counters.other_trips,
                &self.scripts.composite,
                &keys,
                &|cmd| {
                    cmd.arg(&known).arg(&candidate);
                },
            )
            .map_err(|e| typed(OP, &keys, e))?;
        let v = self.epoch.check(OP, &reply)?;
        let n = |i| uint(OP, at(OP, v, i)?);
        let (accepted, len) = (n(3)?, n(4)?);
        Ok(CompositeInputs {
            success_rate: rate(n(0)?, n(1)?),
            acceptance_rate: (len > 0).then(|| 100.0 * accepted as f64 / len as f64),
            tool_runs: n(2)?,
        })
    }

    fn active_sessions(&self) -> Result<Vec<Arc<str>>, BackendError> {
        const OP: &str = "active_sessions";
        let ttl = ms(self.link.config().session_ttl());
        let reply = self.link.eval(
            OP,
            &self.counters.other_trips,
            &self.scripts.active,
            &[&self.keys.sessions],
            &|cmd| {
                cmd.arg(ttl);
            },
        )?;
        array(OP, &reply)?
            .iter()
            .map(|v| text(OP, v).map(Arc::from))
            .collect()
    }

    fn session_inputs(
        &self,
        sessions: &[Arc<str>],
        out: &mut Vec<CompositeInputs>,
    ) -> Result<(), BackendError> {
        const OP: &str = "session_inputs";
        if sessions.is_empty() {
            return Ok(());
        }
        self.counters
            .composite_reads
            .fetch_add(sessions.len() as u64, Ordering::Relaxed);
        let mut keys = Vec::with_capacity(2 * sessions.len());
        for id in sessions {
            keys.push(self.keys.session(id));
            keys.push(self.keys.session_decisions(id));
        }
        let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let reply = self.link.eval(
            OP,
            &self.counters.other_trips,
            &self.scripts.composite_sessions,
            &key_refs,
            &|_| {},
        )?;
        let v = array(OP, &reply)?;
        if v.len() != 5 * sessions.len() {
            return Err(unexpected(OP, "wrong number of values per session"));
        }
        let start = out.len();
        out.reserve(sessions.len());
        for r in v.chunks_exact(5) {
            // `r` holds exactly 5 values, so the indexes 0..=4 are in bounds.
            let parsed = (|| {
                let n = |i: usize| uint(OP, &r[i]);
                let (accepted, len) = (n(3)?, n(4)?);
                Ok::<_, BackendError>(CompositeInputs {
                    success_rate: rate(n(0)?, n(1)?),
                    acceptance_rate: (len > 0).then(|| 100.0 * accepted as f64 / len as f64),
                    tool_runs: n(2)?,
                })
            })();
            match parsed {
                Ok(inputs) => out.push(inputs),
                Err(e) => {
                    out.truncate(start);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    fn active_sessions_page(
        &self,
        cursor: Option<SessionCursor>,
        limit: usize,
    ) -> Result<SessionPage, BackendError> {
        const OP: &str = "active_sessions_page";
        let from = match &cursor {
            None => "0",
            Some(c) => match c.token() {
                Some(t) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => t,
                _ => return Err(unexpected(OP, "a session cursor made by another backend")),
            },
        };
        let ttl = ms(self.link.config().session_ttl());
        let reply = self.link.eval(
            OP,
            &self.counters.other_trips,
            &self.scripts.active_page,
            &[&self.keys.sessions],
            &|cmd| {
                cmd.arg(from).arg(limit.max(1)).arg(ttl);
            },
        )?;
        let v = array(OP, &reply)?;
        let next = text(OP, at(OP, v, 0)?)?;
        let sessions = array(OP, at(OP, v, 1)?)?
            .iter()
            .map(|v| text(OP, v).map(Arc::from))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SessionPage {
            sessions,
            next: (next != "0").then(|| SessionCursor::new(next)),
        })
    }

    fn try_lock(
        &self,
        scope: Scope<'_>,
        token: LockToken,
        lease: Duration,
        min_interval: Duration,
    ) -> Result<LockOutcome, BackendError> {
        self.lock(scope, token, lease, min_interval, false)
    }

    fn try_lock_if_dirty(
        &self,
        scope: Scope<'_>,
        token: LockToken,
        lease: Duration,
        min_interval: Duration,
    ) -> Result<LockOutcome, BackendError> {
        self.lock(scope, token, lease, min_interval, true)
    }

    fn unlock(&self, scope: Scope<'_>, token: LockToken) -> Result<bool, BackendError> {
        const OP: &str = "unlock";
        self.counters.unlocks.fetch_add(1, Ordering::Relaxed);
        let lock = self.keys.lock_of(scope);
        let reply = self.link.eval(
            OP,
            &self.counters.other_trips,
            &self.scripts.unlock,
            &[&lock, &self.keys.calc_log],
            &|cmd| {
                cmd.arg(token.to_string()).arg(Keys::log_scope(scope));
            },
        )?;
        Ok(int(OP, &reply)? == 1)
    }

    fn last_computed(&self, scope: Scope<'_>) -> Result<Option<Duration>, BackendError> {
        const OP: &str = "last_computed";
        self.counters.marker_reads.fetch_add(1, Ordering::Relaxed);
        let last = self.keys.last_of(scope);
        let reply = self.link.eval(
            OP,
            &self.counters.other_trips,
            &self.scripts.last_computed,
            &[&last],
            &|_| {},
        )?;
        Self::since(OP, &reply)
    }

    fn op_counts(&self) -> OpCounts {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        OpCounts {
            records: get(&c.records),
            record_round_trips: get(&c.record_trips),
            composite_reads: get(&c.composite_reads),
            lock_attempts: get(&c.lock_attempts),
            locks_acquired: get(&c.locks_acquired),
            unlocks: get(&c.unlocks),
            marker_reads: get(&c.marker_reads),
            foreign_keys: get(&c.foreign_keys),
        }
    }
}

impl RedisState {
    /// `try_lock`, and with `only_if_dirty` "lock if dirty" (one script).
    /// The script checks the namespace's epoch first, as the record script
    /// does: a worker that has not yet seen the state reset gets
    /// [`BackendError::StateReset`] (once, adopting the new epoch), and
    /// neither takes the lock nor stamps the marker.
    fn lock(
        &self,
        scope: Scope<'_>,
        token: LockToken,
        lease: Duration,
        min_interval: Duration,
        only_if_dirty: bool,
    ) -> Result<LockOutcome, BackendError> {
        const OP: &str = "try_lock";
        self.counters.lock_attempts.fetch_add(1, Ordering::Relaxed);
        let lock = self.keys.lock_of(scope);
        let last = self.keys.last_of(scope);
        let fence = self.keys.fence_of(scope);
        let scope_ttl = match scope {
            Scope::Global => 0,
            Scope::Session(_) => ms(self.link.config().session_ttl()),
        };
        let data = match scope {
            Scope::Global => self.keys.totals.clone(),
            Scope::Session(id) => self.keys.session(id),
        };
        let keys: [&str; 6] = [
            &lock,
            &last,
            &fence,
            &self.keys.calc_log,
            &self.keys.meta,
            &data,
        ];
        let keys = if only_if_dirty { &keys[..] } else { &keys[..5] };
        let known = self.epoch.known();
        let candidate = self.epoch.candidate();
        let reply = self
            .link
            .eval(
                OP,
                &self.counters.other_trips,
                &self.scripts.try_lock,
                keys,
                &|cmd| {
                    cmd.arg(token.to_string())
                        .arg(ms(lease))
                        .arg(u64::try_from(min_interval.as_micros()).unwrap_or(u64::MAX))
                        .arg(scope_ttl)
                        .arg(Keys::log_scope(scope))
                        .arg(if only_if_dirty { "1" } else { "0" })
                        .arg(&known)
                        .arg(&candidate);
                },
            )
            .map_err(|e| typed(OP, keys, e))?;
        let v = self.epoch.check(OP, &reply)?;
        let since = Self::since(OP, at(OP, v, 1)?)?;
        let foreign = uint(OP, at(OP, v, 3)?)?;
        if foreign != 0 {
            self.foreign(foreign, &lock, &last, &fence);
        }
        match int(OP, at(OP, v, 0)?)? {
            0 => {
                let generation = uint(OP, at(OP, v, 2)?)?;
                self.counters.locks_acquired.fetch_add(1, Ordering::Relaxed);
                Ok(LockOutcome::Acquired { generation })
            }
            1 => Ok(LockOutcome::Held { since_last: since }),
            2 => Ok(LockOutcome::TooSoon {
                since_last: since.unwrap_or_default(),
            }),
            3 => Ok(LockOutcome::Clean { since_last: since }),
            _ => Err(unexpected(OP, "unknown lock outcome")),
        }
    }
}
