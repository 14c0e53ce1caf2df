//! The one rule: what an event does to the shared state, and what the
//! per-event metrics read back from it.
//!
//! Written once, here, and used by every backend:
//!
//! - [`MemoryState`](super::MemoryState) keeps a [`SharedState`] and calls
//!   [`SharedState::record`] for each event;
//! - the Redis backend turns each event's [`Change`] into generic operations
//!   on its keys (add to these fields, set that one if absent, push these
//!   values, delete this session), which its record script applies after its
//!   checks; the script answers with the state the batch found, and the
//!   worker runs [`SharedState::record`] on it to get the observations.
//!
//! So a new counter is a new [`Counter`], a line in [`change`] and, if a
//! metric reads it, a line in [`SharedState::observe`] and the matching one
//! in `Change::reads` (what the Redis worker asks back): no backend changes.

use std::sync::Arc;
use std::time::Duration;

use foldhash::HashMap;

use super::{Observation, SessionSummary};
use crate::event::{Event, EventType};
use crate::window::{DecisionWindow, LatencyWindow, RateWindow};

/// A counter kept for a scope: the namespace, a tool, a session.
///
/// Each scope keeps the counters its events add to; on Redis each is a hash
/// field named [`Counter::field`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counter {
    /// Events recorded (the namespace's and a session's; "lock if dirty"
    /// compares it with what the last composite read saw).
    Events,
    /// Tool runs.
    ToolRuns,
    /// Tool runs that reported success.
    Ok,
    /// Tool runs that reported an outcome, success or not.
    Known,
    /// User prompts.
    Prompts,
    /// Errors the producer reported (events of type `error`).
    Errors,
}

impl Counter {
    /// Every counter, in the order of [`Counts`].
    pub(crate) const ALL: [Counter; 6] = [
        Counter::Events,
        Counter::ToolRuns,
        Counter::Ok,
        Counter::Known,
        Counter::Prompts,
        Counter::Errors,
    ];

    /// Its field name in a Redis hash.
    #[cfg(feature = "redis")]
    pub(crate) fn field(self) -> &'static str {
        match self {
            Counter::Events => "events",
            Counter::ToolRuns => "tool_runs",
            Counter::Ok => "ok",
            Counter::Known => "known",
            Counter::Prompts => "prompts",
            Counter::Errors => "errors",
        }
    }
}

/// One value per [`Counter`]: a scope's counters, or what an event adds to
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Counts([u64; Counter::ALL.len()]);

impl Counts {
    pub(crate) fn get(&self, c: Counter) -> u64 {
        self.0[c as usize]
    }

    #[cfg(feature = "redis")]
    pub(crate) fn set(&mut self, c: Counter, value: u64) {
        self.0[c as usize] = value;
    }

    fn bump(&mut self, c: Counter) {
        self.0[c as usize] += 1;
    }

    /// Adds `other`, counter by counter.
    pub(crate) fn add(&mut self, other: &Counts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }

    /// Success rate, %, from [`Counter::Ok`] and [`Counter::Known`].
    pub(crate) fn success_rate(&self) -> Option<f64> {
        let known = self.get(Counter::Known);
        (known > 0).then(|| 100.0 * self.get(Counter::Ok) as f64 / known as f64)
    }
}

/// A live session.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Session {
    /// Its `session_start`, or its first recorded event.
    pub(crate) started: Duration,
    pub(crate) last_seen: Duration,
    pub(crate) counts: Counts,
    /// Its last 100 decisions.
    pub(crate) decisions: DecisionWindow,
    /// [`Counter::Events`] as the last composite read of the session saw it
    /// ("lock if dirty"; the rule leaves it alone).
    pub(crate) reflected: u64,
}

impl Session {
    pub(crate) fn new(now: Duration) -> Self {
        Self {
            started: now,
            last_seen: now,
            counts: Counts::default(),
            decisions: DecisionWindow::new(),
            reflected: 0,
        }
    }
}

/// What one event does to a session.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SessionChange<'e> {
    /// Nothing: the event belongs to no session's state.
    None,
    /// Opens the session if it is not live (started now, counters at 0),
    /// marks it seen now and adds `counts`; `restart` sets its start to now.
    Touch {
        id: &'e Arc<str>,
        counts: Counts,
        restart: bool,
    },
    /// Ends the session: its state is dropped.
    End { id: &'e Arc<str> },
}

/// What one event does to the shared state, as generic operations: counters
/// to add to, values to push, a session to touch or end. Nothing here names
/// an event type; [`change`] is where types are read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Change<'e> {
    /// Counted in the rate window at this second.
    pub(crate) second: u64,
    /// Added to the namespace's counters.
    pub(crate) totals: Counts,
    /// A named tool and what is added to its counters.
    pub(crate) tool: Option<(&'e Arc<str>, Counts)>,
    pub(crate) session: SessionChange<'e>,
    /// Pushed to the latency window.
    pub(crate) latency: Option<f64>,
    /// Pushed to the decision window, and to the session's decision list.
    pub(crate) decision: Option<bool>,
}

/// What event `e`, recorded at `now`, does: the rule.
///
/// - every event counts once in the namespace's events and in the rate;
/// - any type but `other` and `session_end` touches its session
///   (`session_start` restarts its clock);
/// - a tool run counts a run (namespace, session, the named tool), its
///   outcome when it has one, and pushes its duration;
/// - an edit pushes its decision when it has one;
/// - a prompt counts a prompt in its session;
/// - an `error` counts an error in its session;
/// - `session_end` ends its session.
#[inline(always)]
pub(crate) fn change(e: &Event, now: Duration) -> Change<'_> {
    let mut totals = Counts::default();
    let mut session_counts = Counts::default();
    let mut tool_counts = Counts::default();
    let mut latency = None;
    let mut decision = None;
    totals.bump(Counter::Events);
    session_counts.bump(Counter::Events);
    let kind = e.event_type;
    if kind.is_tool() {
        for counts in [&mut totals, &mut session_counts, &mut tool_counts] {
            counts.bump(Counter::ToolRuns);
            if let Some(ok) = e.payload.success {
                counts.bump(Counter::Known);
                if ok {
                    counts.bump(Counter::Ok);
                }
            }
        }
        latency = e.duration_ms;
    } else if kind.is_edit() {
        decision = e.payload.accepted;
    } else if kind == EventType::UserPrompt {
        session_counts.bump(Counter::Prompts);
    } else if kind == EventType::Error {
        session_counts.bump(Counter::Errors);
    }
    let session = match kind {
        EventType::Other => SessionChange::None,
        EventType::SessionEnd => SessionChange::End { id: &e.session_id },
        _ => SessionChange::Touch {
            id: &e.session_id,
            counts: session_counts,
            restart: kind == EventType::SessionStart,
        },
    };
    let tool = if kind.is_tool() {
        e.named_tool().map(|name| (name, tool_counts))
    } else {
        None
    };
    Change {
        second: now.as_secs(),
        totals,
        tool,
        session,
        latency,
        decision,
    }
}

/// A set of counters.
#[cfg(feature = "redis")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct CounterSet(u8);

#[cfg(feature = "redis")]
impl CounterSet {
    pub(crate) fn with(self, c: Counter) -> Self {
        Self(self.0 | 1 << c as u8)
    }

    pub(crate) fn has(self, c: Counter) -> bool {
        self.0 & 1 << c as u8 != 0
    }

    pub(crate) fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// Which parts of the state before a change its observation reads: a
/// remote backend returns only these (the Redis backend, feature `redis`). Kept in step with
/// [`SharedState::observe`], line for line.
#[cfg(feature = "redis")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Reads {
    /// The namespace's counters.
    pub(crate) totals: CounterSet,
    /// The named tool's counters.
    pub(crate) tool: CounterSet,
    /// The session's counters.
    pub(crate) session: CounterSet,
    /// The session's start.
    pub(crate) session_start: bool,
}

#[cfg(feature = "redis")]
impl Change<'_> {
    /// What [`SharedState::observe`] reads for this change.
    pub(crate) fn reads(&self) -> Reads {
        let mut r = Reads::default();
        let success = CounterSet::default().with(Counter::Ok).with(Counter::Known);
        if self.totals.get(Counter::Known) > 0 {
            r.totals = r.totals.union(success);
        }
        if let Some((_, add)) = self.tool {
            r.totals = r.totals.with(Counter::ToolRuns);
            r.tool = r.tool.with(Counter::ToolRuns);
            if add.get(Counter::Known) > 0 {
                r.tool = r.tool.union(success);
            }
        }
        match self.session {
            SessionChange::None => {}
            SessionChange::Touch { counts, .. } => {
                if counts.get(Counter::Prompts) > 0 {
                    r.session = r.session.with(Counter::Prompts);
                }
            }
            SessionChange::End { .. } => {
                r.session = r
                    .session
                    .with(Counter::ToolRuns)
                    .with(Counter::Prompts)
                    .with(Counter::Errors);
                r.session_start = true;
            }
        }
        r
    }
}

/// The shared state as a plain value: what [`MemoryState`](super::MemoryState)
/// holds, and what the Redis backend rebuilds from its script's reply to
/// replay a batch on.
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedState {
    /// A session idle this long is gone: its next event starts it afresh
    /// (`None`: sessions never go idle here, as on the Redis worker's replay,
    /// whose sessions the server expires).
    pub(crate) session_ttl: Option<Duration>,
    pub(crate) totals: Counts,
    pub(crate) tools: HashMap<Arc<str>, Counts>,
    pub(crate) sessions: HashMap<Arc<str>, Session>,
    pub(crate) latency: LatencyWindow,
    pub(crate) decisions: DecisionWindow,
    pub(crate) rate: RateWindow,
}

/// What applying a change did to its session.
enum SessionOutcome {
    None,
    /// The session's counters after the change.
    Touched(Counts),
    Ended(Option<Session>),
}

impl SharedState {
    /// Records `e` at `now`: the rule, applied.
    #[inline]
    pub(crate) fn record(&mut self, e: &Event, now: Duration) -> Observation {
        let change = change(e, now);
        self.apply(&change, now)
    }

    /// Applies `change` at `now` and returns what the metrics read back.
    #[inline(always)]
    pub(crate) fn apply(&mut self, change: &Change<'_>, now: Duration) -> Observation {
        self.totals.add(&change.totals);
        self.rate.record(change.second);
        if let Some(ms) = change.latency {
            self.latency.push(ms);
        }
        if let Some(accepted) = change.decision {
            self.decisions.push(accepted);
        }
        let tool = match change.tool {
            Some((name, add)) => {
                // A known tool is found by name; only a new one clones the Arc.
                let counts = match self.tools.get_mut(&**name) {
                    Some(t) => t,
                    None => self.tools.entry(Arc::clone(name)).or_default(),
                };
                counts.add(&add);
                Some(*counts)
            }
            None => None,
        };
        let session = match change.session {
            SessionChange::None => SessionOutcome::None,
            SessionChange::Touch {
                id,
                counts,
                restart,
            } => {
                let ttl = self.session_ttl;
                let s = match self.sessions.get_mut(&**id) {
                    Some(s) => {
                        if ttl.is_some_and(|ttl| now.saturating_sub(s.last_seen) >= ttl) {
                            *s = Session::new(now);
                        }
                        s
                    }
                    None => self
                        .sessions
                        .entry(Arc::clone(id))
                        .or_insert_with(|| Session::new(now)),
                };
                s.last_seen = now;
                if restart {
                    s.started = now;
                }
                s.counts.add(&counts);
                if let Some(accepted) = change.decision {
                    s.decisions.push(accepted);
                }
                SessionOutcome::Touched(s.counts)
            }
            SessionChange::End { id } => {
                let ttl = self.session_ttl;
                let live =
                    |s: &Session| ttl.is_none_or(|ttl| now.saturating_sub(s.last_seen) < ttl);
                SessionOutcome::Ended(self.sessions.remove(&**id).filter(live))
            }
        };
        self.observe(change, tool, session, now)
    }

    /// What the per-event metrics read back after `change` (what they read
    /// of the state before it is [`Change::reads`]).
    #[inline(always)]
    fn observe(
        &self,
        change: &Change<'_>,
        tool: Option<Counts>,
        session: SessionOutcome,
        now: Duration,
    ) -> Observation {
        let mut obs = Observation {
            events_per_second: self.rate.per_second(change.second),
            ..Observation::default()
        };
        if change.latency.is_some() {
            obs.latency = self.latency.summary();
        }
        if change.totals.get(Counter::Known) > 0 {
            obs.overall_success_rate = self.totals.success_rate();
        }
        if let (Some((_, add)), Some(t)) = (change.tool, tool) {
            obs.tool_frequency = Some(
                100.0 * t.get(Counter::ToolRuns) as f64 / self.totals.get(Counter::ToolRuns) as f64,
            );
            if add.get(Counter::Known) > 0 {
                obs.tool_success_rate = t.success_rate();
            }
        }
        if change.decision.is_some() {
            obs.acceptance_rate = self.decisions.acceptance_rate();
        }
        match session {
            SessionOutcome::None | SessionOutcome::Ended(None) => {}
            SessionOutcome::Touched(after) => {
                if let SessionChange::Touch { counts, .. } = change.session {
                    if counts.get(Counter::Prompts) > 0 {
                        obs.prompts_in_session = Some(after.get(Counter::Prompts));
                    }
                }
            }
            SessionOutcome::Ended(Some(s)) => {
                obs.session_end = Some(SessionSummary {
                    duration: now.saturating_sub(s.started),
                    tool_runs: s.counts.get(Counter::ToolRuns),
                    prompts: s.counts.get(Counter::Prompts),
                    errors: s.counts.get(Counter::Errors),
                });
            }
        }
        obs
    }
}
