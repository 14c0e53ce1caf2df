use foldhash::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::rule::{change, Counter, SessionChange, SharedState};
use super::{
    next_generation, LockOutcome, LockToken, MemoryConfig, Observation, OpCounts, Scope,
    StateBackend,
};
use crate::clock::{Clock, SystemClock};
use crate::error::{BackendError, ConfigError};
use crate::event::Event;
use crate::score::CompositeInputs;

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

#[derive(Debug, Default)]
struct Data {
    /// The state the rule works on.
    state: SharedState,
    /// Applied event ids and when each stops counting (`now` + horizon).
    event_ids: HashMap<Arc<str>, Duration>,
    next_sweep: Duration,
    /// Events recorded as the last global composite read saw them.
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
        let mut data = Data::default();
        data.state.session_ttl = Some(config.session_ttl());
        Self {
            shared: Arc::new(Shared {
                config,
                clock,
                data: Mutex::new(data),
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
            sessions: data.state.sessions.len(),
            session_capacity: data.state.sessions.capacity(),
            tools: data.state.tools.len(),
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
        let sessions = &mut self.state.sessions;
        sessions.retain(|_, s| now.saturating_sub(s.last_seen) < ttl);
        if sessions.capacity() > 64 && sessions.capacity() > 4 * sessions.len() {
            sessions.shrink_to_fit();
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
        if self.state.sessions.len() + events.len() <= config.max_sessions()
            && self.state.tools.len() + events.len() <= config.max_tools()
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
        let (sessions, tools) = (&self.state.sessions, &self.state.tools);
        let mut new_sessions: Vec<&str> = Vec::new();
        let mut new_tools: Vec<&str> = Vec::new();
        for (i, e) in events.iter().enumerate() {
            if dup.get(i).copied().unwrap_or(false) {
                continue;
            }
            // Only which session and tool it names matter here, not the time.
            let change = change(e, Duration::ZERO);
            if let SessionChange::Touch { id, .. } = change.session {
                let id = &**id;
                if !sessions.contains_key(id) && !new_sessions.contains(&id) {
                    if sessions.len() + new_sessions.len() >= config.max_sessions() {
                        return Err(BackendError::CapacityExceeded {
                            what: "sessions",
                            limit: config.max_sessions(),
                        });
                    }
                    new_sessions.push(id);
                }
            }
            if let Some((tool, _)) = change.tool {
                let tool = &**tool;
                if !tools.contains_key(tool) && !new_tools.contains(&tool) {
                    if tools.len() + new_tools.len() >= config.max_tools() {
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
        Ok(data.state.record(event, now))
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
                out.push(data.state.record(e, now));
            }
        }
        Ok(())
    }

    fn composite_inputs(&self, scope: Scope<'_>) -> Result<CompositeInputs, BackendError> {
        let mut data = self.shared.data.lock();
        data.composite_reads += 1;
        Ok(match scope {
            Scope::Global => {
                let state = &data.state;
                let inputs = CompositeInputs {
                    success_rate: state.totals.success_rate(),
                    acceptance_rate: state.decisions.acceptance_rate(),
                    tool_runs: state.totals.get(Counter::ToolRuns),
                };
                data.reflected = state.totals.get(Counter::Events);
                inputs
            }
            Scope::Session(id) => match data.state.sessions.get_mut(id) {
                Some(s) => {
                    s.reflected = s.counts.get(Counter::Events);
                    CompositeInputs {
                        success_rate: s.counts.success_rate(),
                        acceptance_rate: s.decisions.acceptance_rate(),
                        tool_runs: s.counts.get(Counter::ToolRuns),
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
            .state
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
            let records = d.state.totals.get(Counter::Events);
            (records, d.record_round_trips, d.composite_reads)
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
            Scope::Global => data.state.totals.get(Counter::Events) > data.reflected,
            Scope::Session(id) => data
                .state
                .sessions
                .get(id)
                .is_some_and(|s| s.counts.get(Counter::Events) > s.reflected),
        }
    }
}
