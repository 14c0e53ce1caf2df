use foldhash::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::{
    next_generation, LockOutcome, LockToken, MemoryConfig, Observation, OpCounts, Scope,
    SessionSummary, StateBackend,
};
use crate::clock::{Clock, SystemClock};
use crate::error::{BackendError, ConfigError};
use crate::event::{Event, EventType};
use crate::score::CompositeInputs;
use crate::window::{DecisionWindow, LatencyWindow, RateWindow};

/// How often, at most, idle sessions and stale coordination entries are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The embedded backend: state in this process, shared by every calculator
/// that holds a clone.
///
/// Cloning is cheap and shares the state, so give one clone to each worker
/// thread's calculator. Memory is bounded: windows are fixed-size, ended
/// sessions are dropped at once and idle ones after
/// [`MemoryConfig::session_ttl`], tool names and sessions are capped, and
/// applied [`event_id`](crate::Event::event_id)s are forgotten after
/// [`MemoryConfig::dedup_horizon`] (see there for the cost per id).
///
/// Its coordination uses its clock as "the backend's time": give it the
/// calculators' [`ManualClock`](crate::clock::ManualClock) in tests.
///
/// # Example
///
/// ```
/// use composite_metrics::{Event, MemoryState, MetricsCalculator};
///
/// let state = MemoryState::new();
/// let mut a = MetricsCalculator::builder().state(state.clone()).build()?;
/// let mut b = MetricsCalculator::builder().state(state.clone()).build()?;
/// a.process(&Event::tool_use("s1", "bash").with_success(true))?;
/// b.process(&Event::tool_use("s2", "bash").with_success(false))?;
/// assert_eq!(state.footprint().sessions, 2);
/// # Ok::<(), composite_metrics::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MemoryState {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    config: MemoryConfig,
    clock: Arc<dyn Clock>,
    data: Mutex<Data>,
    coord: Mutex<Coord>,
}

/// How much a [`MemoryState`] holds, for checking that memory stays flat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// Live sessions.
    pub sessions: usize,
    /// Slots allocated for sessions.
    pub session_capacity: usize,
    /// Distinct tool names.
    pub tools: usize,
    /// Per-session coordination entries.
    pub session_coordination: usize,
    /// Event ids remembered for deduplication (each for the dedup horizon,
    /// plus at most one sweep interval).
    pub event_ids: usize,
}

#[derive(Debug, Default, Clone, Copy)]
struct Outcomes {
    ok: u64,
    known: u64,
}

impl Outcomes {
    fn add(&mut self, ok: bool) {
        self.known += 1;
        self.ok += u64::from(ok);
    }

    fn rate(&self) -> Option<f64> {
        (self.known > 0).then(|| 100.0 * self.ok as f64 / self.known as f64)
    }
}

#[derive(Debug, Default)]
struct ToolStats {
    runs: u64,
    outcomes: Outcomes,
}

#[derive(Debug)]
struct SessionState {
    started: Duration,
    last_seen: Duration,
    tool_runs: u64,
    prompts: u64,
    outcomes: Outcomes,
    decisions: DecisionWindow,
    /// Events recorded in this session, and how many of them the last
    /// composite read of the session saw ("lock if dirty").
    events: u64,
    reflected: u64,
}

impl SessionState {
    fn new(now: Duration) -> Self {
        Self {
            started: now,
            last_seen: now,
            tool_runs: 0,
            prompts: 0,
            outcomes: Outcomes::default(),
            decisions: DecisionWindow::new(),
            events: 0,
            reflected: 0,
        }
    }
}

#[derive(Debug, Default)]
struct Data {
    latency: LatencyWindow,
    decisions: DecisionWindow,
    rate: RateWindow,
    outcomes: Outcomes,
    tool_runs: u64,
    tools: HashMap<Arc<str>, ToolStats>,
    sessions: HashMap<Arc<str>, SessionState>,
    /// Applied event ids and when each stops counting (`now` + horizon).
    event_ids: HashMap<Arc<str>, Duration>,
    next_sweep: Duration,
    records: u64,
    /// `records` as the last global composite read saw it.
    reflected: u64,
    record_round_trips: u64,
    composite_reads: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Slot {
    holder: Option<(LockToken, Duration)>,
    started: Option<Duration>,
    /// The fencing generation of the latest acquisition (0: none yet).
    generation: u64,
}

#[derive(Debug, Default)]
struct Coord {
    global: Slot,
    sessions: HashMap<Arc<str>, Slot>,
    next_sweep: Duration,
    lock_attempts: u64,
    locks_acquired: u64,
    unlocks: u64,
    marker_reads: u64,
}

impl Default for MemoryState {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryState {
    /// A new, empty state on the system clock with the default limits.
    pub fn new() -> Self {
        Self::build(MemoryConfig::default(), Arc::new(SystemClock))
    }

    /// A new, empty state whose coordination runs on `clock`.
    pub fn with_clock(clock: impl Clock) -> Self {
        Self::build(MemoryConfig::default(), Arc::new(clock))
    }

    /// A new, empty state with `config`, on `clock`.
    pub fn with_config(config: MemoryConfig, clock: impl Clock) -> Result<Self, ConfigError> {
        Ok(Self::build(config.validated()?, Arc::new(clock)))
    }

    fn build(config: MemoryConfig, clock: Arc<dyn Clock>) -> Self {
        Self {
            shared: Arc::new(Shared {
                config,
                clock,
                data: Mutex::new(Data::default()),
                coord: Mutex::new(Coord::default()),
            }),
        }
    }

    /// The limits in force.
    pub fn config(&self) -> MemoryConfig {
        self.shared.config
    }

    /// Forgets sessions idle longer than the TTL now, instead of at the next
    /// periodic sweep.
    pub fn expire_idle(&self) {
        let now = self.shared.clock.now();
        let ttl = self.shared.config.session_ttl();
        self.shared.data.lock().sweep(now, ttl, true);
        self.shared.coord.lock().sweep(now, ttl, true);
    }

    /// How much it holds.
    pub fn footprint(&self) -> Footprint {
        let data = self.shared.data.lock();
        let coord = self.shared.coord.lock();
        Footprint {
            sessions: data.sessions.len(),
            session_capacity: data.sessions.capacity(),
            tools: data.tools.len(),
            session_coordination: coord.sessions.len(),
            event_ids: data.event_ids.len(),
        }
    }
}

impl Data {
    /// Per event: one compare, the sweep itself out of line.
    #[inline]
    fn sweep(&mut self, now: Duration, ttl: Duration, force: bool) {
        if force || now >= self.next_sweep {
            self.sweep_now(now, ttl);
        }
    }

    #[inline(never)]
    fn sweep_now(&mut self, now: Duration, ttl: Duration) {
        self.next_sweep = now + SWEEP_EVERY.min(ttl);
        self.sessions
            .retain(|_, s| now.saturating_sub(s.last_seen) < ttl);
        if self.sessions.capacity() > 64 && self.sessions.capacity() > 4 * self.sessions.len() {
            self.sessions.shrink_to_fit();
        }
        self.event_ids.retain(|_, until| *until > now);
        if self.event_ids.capacity() > 64 && self.event_ids.capacity() > 4 * self.event_ids.len() {
            self.event_ids.shrink_to_fit();
        }
    }

    /// Whether `e`'s id was applied within the horizon (before this call).
    fn seen(&self, e: &Event, now: Duration) -> bool {
        e.event_id
            .as_deref()
            .and_then(|id| self.event_ids.get(id))
            .is_some_and(|until| *until > now)
    }

    /// Which events of a batch are duplicates: of an id applied before, or
    /// of an earlier event of the batch. Empty when no event has an id.
    fn duplicates(&self, events: &[Event], now: Duration) -> Vec<bool> {
        if events.iter().all(|e| e.event_id.is_none()) {
            return Vec::new();
        }
        let mut batch: foldhash::HashSet<&str> = foldhash::HashSet::default();
        events
            .iter()
            .map(|e| match e.event_id.as_deref() {
                Some(id) => self.seen(e, now) || !batch.insert(id),
                None => false,
            })
            .collect()
    }

    /// Remembers an applied event's id until `until`.
    fn remember(&mut self, e: &Event, until: Duration) {
        if let Some(id) = &e.event_id {
            match self.event_ids.get_mut(&**id) {
                Some(u) => *u = until,
                None => {
                    self.event_ids.insert(Arc::clone(id), until);
                }
            }
        }
    }

    /// Checks the limits for `events` as one unit, before anything changes;
    /// events marked in `dup` (empty: none) are left out.
    #[inline]
    fn check_capacity(
        &self,
        events: &[Event],
        dup: &[bool],
        config: &MemoryConfig,
    ) -> Result<(), BackendError> {
        // Fast path: even if every event opened a session and named a new
        // tool, no limit would be reached.
        if self.sessions.len() + events.len() <= config.max_sessions()
            && self.tools.len() + events.len() <= config.max_tools()
        {
            return Ok(());
        }
        self.check_capacity_closely(events, dup, config)
    }

    #[inline(never)]
    fn check_capacity_closely(
        &self,
        events: &[Event],
        dup: &[bool],
        config: &MemoryConfig,
    ) -> Result<(), BackendError> {
        let mut new_sessions: Vec<&str> = Vec::new();
        let mut new_tools: Vec<&str> = Vec::new();
        for (i, e) in events.iter().enumerate() {
            if dup.get(i).copied().unwrap_or(false) {
                continue;
            }
            let opens_session = !matches!(e.event_type, EventType::Other | EventType::SessionEnd);
            let id = &*e.session_id;
            if opens_session && !self.sessions.contains_key(id) && !new_sessions.contains(&id) {
                if self.sessions.len() + new_sessions.len() >= config.max_sessions() {
                    return Err(BackendError::CapacityExceeded {
                        what: "sessions",
                        limit: config.max_sessions(),
                    });
                }
                new_sessions.push(id);
            }
            if let Some(tool) = e.named_tool().map(|t| &**t) {
                if !self.tools.contains_key(tool) && !new_tools.contains(&tool) {
                    if self.tools.len() + new_tools.len() >= config.max_tools() {
                        return Err(BackendError::CapacityExceeded {
                            what: "tool names",
                            limit: config.max_tools(),
                        });
                    }
                    new_tools.push(tool);
                }
            }
        }
        Ok(())
    }

    #[inline(always)]
    fn apply(&mut self, e: &Event, now: Duration) -> Observation {
        let mut obs = Observation::default();
        self.records += 1;
        let sec = now.as_secs();
        self.rate.record(sec);
        obs.events_per_second = self.rate.per_second(sec);
        match e.event_type {
            EventType::Other => {}
            EventType::SessionEnd => {
                if let Some(s) = self.sessions.remove(&*e.session_id) {
                    obs.session_end = Some(SessionSummary {
                        duration: now.saturating_sub(s.started),
                        tool_runs: s.tool_runs,
                        prompts: s.prompts,
                    });
                }
            }
            kind => {
                let session = match self.sessions.get_mut(&*e.session_id) {
                    Some(s) => s,
                    None => self
                        .sessions
                        .entry(Arc::clone(&e.session_id))
                        .or_insert_with(|| SessionState::new(now)),
                };
                session.last_seen = now;
                session.events += 1;
                if kind.is_tool() {
                    self.tool_runs += 1;
                    session.tool_runs += 1;
                    if let Some(ms) = e.duration_ms {
                        self.latency.push(ms);
                        obs.latency = self.latency.summary();
                    }
                    // A known tool is found by name; only a new one clones the Arc.
                    let tool = match e.named_tool() {
                        Some(name) => Some(match self.tools.get_mut(&**name) {
                            Some(t) => t,
                            None => self.tools.entry(Arc::clone(name)).or_default(),
                        }),
                        None => None,
                    };
                    if let Some(ok) = e.payload.success {
                        self.outcomes.add(ok);
                        session.outcomes.add(ok);
                        obs.overall_success_rate = self.outcomes.rate();
                    }
                    if let Some(t) = tool {
                        t.runs += 1;
                        obs.tool_frequency = Some(100.0 * t.runs as f64 / self.tool_runs as f64);
                        if let Some(ok) = e.payload.success {
                            t.outcomes.add(ok);
                            obs.tool_success_rate = t.outcomes.rate();
                        }
                    }
                } else if kind.is_edit() {
                    if let Some(accepted) = e.payload.accepted {
                        self.decisions.push(accepted);
                        session.decisions.push(accepted);
                        obs.acceptance_rate = self.decisions.acceptance_rate();
                    }
                } else if kind == EventType::UserPrompt {
                    session.prompts += 1;
                    obs.prompts_in_session = Some(session.prompts);
                } else if kind == EventType::SessionStart {
                    session.started = now;
                }
            }
        }
        obs
    }
}

impl Coord {
    fn store(&mut self, scope: Scope<'_>, slot: Slot) {
        match scope {
            Scope::Global => self.global = slot,
            Scope::Session(id) => match self.sessions.get_mut(id) {
                Some(existing) => *existing = slot,
                None => {
                    self.sessions.insert(Arc::from(id), slot);
                }
            },
        }
    }

    fn peek(&self, scope: Scope<'_>) -> Slot {
        match scope {
            Scope::Global => self.global,
            Scope::Session(id) => self.sessions.get(id).copied().unwrap_or_default(),
        }
    }

    fn sweep(&mut self, now: Duration, ttl: Duration, force: bool) {
        if !force && now < self.next_sweep {
            return;
        }
        self.next_sweep = now + SWEEP_EVERY.min(ttl);
        self.sessions.retain(|_, slot| {
            let held = slot.holder.is_some_and(|(_, until)| until > now);
            let recent = slot.started.is_some_and(|t| now.saturating_sub(t) < ttl);
            held || recent
        });
    }
}

impl StateBackend for MemoryState {
    fn record(&self, event: &Event, now: Duration) -> Result<Observation, BackendError> {
        let mut data = self.shared.data.lock();
        data.sweep(now, self.shared.config.session_ttl(), false);
        if data.seen(event, now) {
            data.record_round_trips += 1;
            return Ok(Observation {
                duplicate: true,
                ..Observation::default()
            });
        }
        data.check_capacity(std::slice::from_ref(event), &[], &self.shared.config)?;
        data.record_round_trips += 1;
        if event.event_id.is_some() {
            data.remember(event, now + self.shared.config.dedup_horizon());
        }
        Ok(data.apply(event, now))
    }

    fn record_batch(
        &self,
        events: &[Event],
        now: Duration,
        out: &mut Vec<Observation>,
    ) -> Result<(), BackendError> {
        let mut data = self.shared.data.lock();
        data.sweep(now, self.shared.config.session_ttl(), false);
        let dup = data.duplicates(events, now);
        data.check_capacity(events, &dup, &self.shared.config)?;
        data.record_round_trips += 1;
        out.reserve(events.len());
        let until = now + self.shared.config.dedup_horizon();
        for (i, e) in events.iter().enumerate() {
            if dup.get(i).copied().unwrap_or(false) {
                out.push(Observation {
                    duplicate: true,
                    ..Observation::default()
                });
            } else {
                data.remember(e, until);
                out.push(data.apply(e, now));
            }
        }
        Ok(())
    }

    fn composite_inputs(&self, scope: Scope<'_>) -> Result<CompositeInputs, BackendError> {
        let mut data = self.shared.data.lock();
        data.composite_reads += 1;
        Ok(match scope {
            Scope::Global => {
                data.reflected = data.records;
                CompositeInputs {
                    success_rate: data.outcomes.rate(),
                    acceptance_rate: data.decisions.acceptance_rate(),
                    tool_runs: data.tool_runs,
                }
            }
            Scope::Session(id) => match data.sessions.get_mut(id) {
                Some(s) => {
                    s.reflected = s.events;
                    CompositeInputs {
                        success_rate: s.outcomes.rate(),
                        acceptance_rate: s.decisions.acceptance_rate(),
                        tool_runs: s.tool_runs,
                    }
                }
                None => CompositeInputs::default(),
            },
        })
    }

    fn active_sessions(&self) -> Result<Vec<Arc<str>>, BackendError> {
        let now = self.shared.clock.now();
        let ttl = self.shared.config.session_ttl();
        let data = self.shared.data.lock();
        Ok(data
            .sessions
            .iter()
            .filter(|(_, s)| now.saturating_sub(s.last_seen) < ttl)
            .map(|(id, _)| Arc::clone(id))
            .collect())
    }

    fn try_lock(
        &self,
        scope: Scope<'_>,
        token: LockToken,
        lease: Duration,
        min_interval: Duration,
    ) -> Result<LockOutcome, BackendError> {
        self.lock_if(scope, token, lease, min_interval, false)
    }

    fn try_lock_if_dirty(
        &self,
        scope: Scope<'_>,
        token: LockToken,
        lease: Duration,
        min_interval: Duration,
    ) -> Result<LockOutcome, BackendError> {
        self.lock_if(scope, token, lease, min_interval, true)
    }

    fn unlock(&self, scope: Scope<'_>, token: LockToken) -> Result<bool, BackendError> {
        let now = self.shared.clock.now();
        let mut coord = self.shared.coord.lock();
        coord.unlocks += 1;
        let owned = coord
            .peek(scope)
            .holder
            .is_some_and(|(held_by, until)| held_by == token && until > now);
        if owned {
            let released = Slot {
                holder: None,
                ..coord.peek(scope)
            };
            coord.store(scope, released);
        }
        Ok(owned)
    }

    fn last_computed(&self, scope: Scope<'_>) -> Result<Option<Duration>, BackendError> {
        let now = self.shared.clock.now();
        let mut coord = self.shared.coord.lock();
        coord.marker_reads += 1;
        Ok(coord.peek(scope).started.map(|t| now.saturating_sub(t)))
    }

    fn clock(&self) -> Option<Arc<dyn Clock>> {
        Some(Arc::clone(&self.shared.clock))
    }

    fn op_counts(&self) -> OpCounts {
        let (records, record_round_trips, composite_reads) = {
            let d = self.shared.data.lock();
            (d.records, d.record_round_trips, d.composite_reads)
        };
        let c = self.shared.coord.lock();
        OpCounts {
            records,
            record_round_trips,
            composite_reads,
            lock_attempts: c.lock_attempts,
            locks_acquired: c.locks_acquired,
            unlocks: c.unlocks,
            marker_reads: c.marker_reads,
            foreign_keys: 0,
        }
    }
}

impl MemoryState {
    /// `try_lock`, and with `only_if_dirty` also refused as
    /// [`LockOutcome::Clean`] when the last composite read of `scope` saw
    /// every event recorded in it.
    fn lock_if(
        &self,
        scope: Scope<'_>,
        token: LockToken,
        lease: Duration,
        min_interval: Duration,
        only_if_dirty: bool,
    ) -> Result<LockOutcome, BackendError> {
        let now = self.shared.clock.now();
        // Lock order: coordination, then data (composite_inputs and record
        // take only data).
        let mut coord = self.shared.coord.lock();
        coord.sweep(now, self.shared.config.session_ttl(), false);
        coord.lock_attempts += 1;
        let slot = coord.peek(scope);
        let since_last = slot.started.map(|t| now.saturating_sub(t));
        if slot.holder.is_some_and(|(_, until)| until > now) {
            return Ok(LockOutcome::Held { since_last });
        }
        if only_if_dirty && !self.dirty(scope) {
            return Ok(LockOutcome::Clean { since_last });
        }
        if let Some(since_last) = since_last.filter(|d| *d < min_interval) {
            return Ok(LockOutcome::TooSoon { since_last });
        }
        let generation = next_generation(slot.generation, now);
        let taken = Slot {
            holder: Some((token, now + lease)),
            started: Some(now),
            generation,
        };
        coord.store(scope, taken);
        coord.locks_acquired += 1;
        Ok(LockOutcome::Acquired { generation })
    }

    /// Whether `scope` has events its last composite read did not see.
    fn dirty(&self, scope: Scope<'_>) -> bool {
        let data = self.shared.data.lock();
        match scope {
            Scope::Global => data.records > data.reflected,
            Scope::Session(id) => data
                .sessions
                .get(id)
                .is_some_and(|s| s.events > s.reflected),
        }
    }
}
