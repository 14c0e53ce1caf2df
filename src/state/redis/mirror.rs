//! A worker's copies of the shared latency and decision windows, kept in
//! step with Redis by delta (see record.lua), and the reading of the record
//! script's reply into observations.

use std::time::Duration;

use ::redis::Value;

use super::redis_state::{kind, nanos};
use super::reply::{array, at, int, text, uint, unexpected};
use crate::error::BackendError;
use crate::event::Event;
use crate::state::{Observation, SessionSummary};
use crate::window::{DecisionWindow, LatencyWindow, RATE_SECONDS};

/// The shared windows as this worker last saw them: each with the
/// generation and sequence number the server gave it (`""`/0: none yet, so
/// the next call that needs it gets the whole window).
#[derive(Debug, Clone, Default)]
pub(crate) struct Mirror {
    pub(crate) latency: LatencyWindow,
    pub(crate) latency_gen: String,
    pub(crate) latency_seq: u64,
    pub(crate) decisions: DecisionWindow,
    pub(crate) decisions_gen: String,
    pub(crate) decisions_seq: u64,
    replay: Replay,
}

/// Reused buffers for replaying a batch on the state before it (no
/// allocation per call once they have grown).
#[derive(Debug, Clone, Default)]
struct Replay {
    /// Per event: a duplicate.
    dup: Vec<bool>,
    /// The batch's named tools, in the order the script lists them.
    tools: Vec<ToolCounts>,
    /// By session index (1-based): the state of a session the batch
    /// prompts, starts or ends in; `None` for the others.
    sessions: Vec<Option<SessionState>>,
}

/// A tool's counters, named by the first event (index `at`) that names it.
#[derive(Debug, Clone, Copy)]
struct ToolCounts {
    at: usize,
    runs: u64,
    ok: u64,
    known: u64,
}

/// A session's state as the script sees it.
#[derive(Debug, Clone, Copy, Default)]
struct SessionState {
    live: bool,
    /// Nanoseconds since the epoch, as the client's clock gave them.
    started: Option<u64>,
    runs: u64,
    prompts: u64,
}

/// The tool event `at` names, if any.
fn named(events: &[Event], at: usize) -> Option<&str> {
    events.get(at).and_then(|e| e.named_tool()).map(|t| &**t)
}

fn rate(ok: u64, known: u64) -> Option<f64> {
    (known > 0).then(|| 100.0 * ok as f64 / known as f64)
}

/// What a window part of the reply says: nothing lacking, values to add
/// (newest first), or a new generation with its sequence number and values.
enum Part<'a> {
    InStep,
    Add(&'a [Value]),
    Whole(&'a str, u64, &'a [Value]),
}

fn part<'a>(op: &'static str, v: &'a Value) -> Result<Part<'a>, BackendError> {
    // `0`: nothing lacking (cheaper for the script to return than `{}`).
    if matches!(v, Value::Int(0)) {
        return Ok(Part::InStep);
    }
    let items = array(op, v)?;
    let Some(code) = items.first() else {
        return Ok(Part::InStep);
    };
    match int(op, code)? {
        1 => Ok(Part::Add(items.get(1..).unwrap_or(&[]))),
        2 => Ok(Part::Whole(
            text(op, at(op, items, 1)?)?,
            uint(op, at(op, items, 2)?)?,
            items.get(3..).unwrap_or(&[]),
        )),
        _ => Err(unexpected(op, "unknown window part")),
    }
}

impl Mirror {
    fn sync_latency(&mut self, op: &'static str, v: &Value) -> Result<(), BackendError> {
        let values = match part(op, v)? {
            Part::InStep => return Ok(()),
            Part::Add(values) => {
                self.latency_seq += values.len() as u64;
                values
            }
            Part::Whole(gen, seq, values) => {
                self.latency = LatencyWindow::new();
                self.latency_gen.clear();
                self.latency_gen.push_str(gen);
                self.latency_seq = seq;
                values
            }
        };
        for v in values.iter().rev() {
            let x: f64 = text(op, v)?
                .parse()
                .map_err(|_| unexpected(op, "a latency that is not a number"))?;
            self.latency.push(x);
        }
        Ok(())
    }

    fn sync_decisions(&mut self, op: &'static str, v: &Value) -> Result<(), BackendError> {
        let values = match part(op, v)? {
            Part::InStep => return Ok(()),
            Part::Add(values) => {
                self.decisions_seq += values.len() as u64;
                values
            }
            Part::Whole(gen, seq, values) => {
                self.decisions = DecisionWindow::new();
                self.decisions_gen.clear();
                self.decisions_gen.push_str(gen);
                self.decisions_seq = seq;
                values
            }
        };
        for v in values.iter().rev() {
            self.decisions.push(text(op, v)? == "1");
        }
        Ok(())
    }

    /// Reads the record script's reply (after the epoch code) for `events`
    /// (`refs`: each event's session index, 1-based, 0 for none, as the
    /// script was given them): brings the windows up to date, replays the
    /// batch on the state before it that the reply holds, and hands each
    /// event's observation to `emit`, in order. Returns how many events were
    /// applied (not duplicates). On an error the copies may be half updated.
    pub(crate) fn read(
        &mut self,
        op: &'static str,
        items: &[Value],
        events: &[Event],
        refs: &[(usize, usize)],
        now: Duration,
        emit: &mut dyn FnMut(Observation),
    ) -> Result<u64, BackendError> {
        // Events in the rate window before this batch (the window ends at the
        // newest second recorded, as in `RateWindow`).
        let before = uint(op, at(op, items, 0)?)?;
        self.sync_latency(op, at(op, items, 1)?)?;
        self.sync_decisions(op, at(op, items, 2)?)?;
        let mut values = items.get(3..).unwrap_or(&[]).iter();
        let mut next = || {
            values
                .next()
                .ok_or_else(|| unexpected(op, "too few values in the reply"))
        };
        let Replay {
            dup,
            tools,
            sessions,
        } = &mut self.replay;
        dup.clear();
        dup.resize(events.len(), false);
        for _ in 0..uint(op, next()?)? {
            let i = uint(op, next()?)?;
            let slot = usize::try_from(i)
                .ok()
                .and_then(|i| i.checked_sub(1))
                .and_then(|i| dup.get_mut(i))
                .ok_or_else(|| unexpected(op, "a duplicate's index out of range"))?;
            *slot = true;
        }
        tools.clear();
        sessions.clear();
        let (mut runs, mut ok, mut known) = (0, 0, 0);
        if dup.iter().any(|d| !d) {
            let any_run = events
                .iter()
                .zip(dup.iter())
                .any(|(e, d)| !d && e.event_type.is_tool());
            if any_run {
                (runs, ok, known) = (uint(op, next()?)?, uint(op, next()?)?, uint(op, next()?)?);
            }
            for (at, e) in events.iter().enumerate() {
                if dup.get(at) != Some(&false) || !e.event_type.is_tool() {
                    continue;
                }
                let Some(name) = e.named_tool() else {
                    continue;
                };
                if !tools.iter().any(|t| named(events, t.at) == Some(name)) {
                    tools.push(ToolCounts {
                        at,
                        runs: uint(op, next()?)?,
                        ok: uint(op, next()?)?,
                        known: uint(op, next()?)?,
                    });
                }
            }
            // The sessions the batch prompts, starts or ends in, duplicates
            // included, in index order.
            for (e, &(s, _)) in events.iter().zip(refs) {
                if s > 0 && matches!(kind(e.event_type), "p" | "s" | "x") {
                    if sessions.len() <= s {
                        sessions.resize(s + 1, None);
                    }
                    if let Some(slot) = sessions.get_mut(s) {
                        *slot = Some(SessionState::default());
                    }
                }
            }
            for slot in sessions.iter_mut().flatten() {
                let live = uint(op, next()?)? == 1;
                let started = text(op, next()?)?;
                let started = if started.is_empty() {
                    None
                } else {
                    Some(
                        started
                            .parse::<u64>()
                            .map_err(|_| unexpected(op, "a session start that is not a number"))?,
                    )
                };
                *slot = SessionState {
                    live,
                    started,
                    runs: uint(op, next()?)?,
                    prompts: uint(op, next()?)?,
                };
            }
        }
        let now_nanos = nanos(now);
        let mut applied = 0u64;
        for (at, e) in events.iter().enumerate() {
            let mut obs = Observation::default();
            if dup.get(at) != Some(&false) {
                obs.duplicate = true;
                emit(obs);
                continue;
            }
            applied += 1;
            obs.events_per_second = (before + applied) as f64 / RATE_SECONDS as f64;
            let k = kind(e.event_type);
            let mut session = refs
                .get(at)
                .and_then(|&(s, _)| sessions.get_mut(s))
                .and_then(Option::as_mut);
            // As the script does: an event in a session that is not live
            // starts it afresh.
            if k != "x" && k != "o" {
                if let Some(st) = session.as_deref_mut() {
                    if !st.live {
                        *st = SessionState {
                            live: true,
                            started: Some(now_nanos),
                            runs: 0,
                            prompts: 0,
                        };
                    }
                }
            }
            match k {
                "t" => {
                    runs += 1;
                    if let Some(st) = session {
                        st.runs += 1;
                    }
                    let mut tool = e.named_tool().and_then(|name| {
                        tools.iter_mut().find(|t| named(events, t.at) == Some(name))
                    });
                    if let Some(t) = tool.as_deref_mut() {
                        t.runs += 1;
                    }
                    if let Some(success) = e.payload.success {
                        ok += u64::from(success);
                        known += 1;
                        obs.overall_success_rate = rate(ok, known);
                        if let Some(t) = tool.as_deref_mut() {
                            t.ok += u64::from(success);
                            t.known += 1;
                            obs.tool_success_rate = rate(t.ok, t.known);
                        }
                    }
                    if let Some(t) = tool {
                        obs.tool_frequency = Some(100.0 * t.runs as f64 / runs as f64);
                    }
                    if let Some(d) = e.duration_ms {
                        self.latency.push(d);
                        self.latency_seq += 1;
                        obs.latency = self.latency.summary();
                    }
                }
                "e" => {
                    if let Some(a) = e.payload.accepted {
                        self.decisions.push(a);
                        self.decisions_seq += 1;
                        obs.acceptance_rate = self.decisions.acceptance_rate();
                    }
                }
                "p" => {
                    let st = session.ok_or_else(|| unexpected(op, "a prompt's session missing"))?;
                    st.prompts += 1;
                    obs.prompts_in_session = Some(st.prompts);
                }
                "s" => {
                    let st = session.ok_or_else(|| unexpected(op, "a start's session missing"))?;
                    st.started = Some(now_nanos);
                }
                "x" => {
                    let st = session.ok_or_else(|| unexpected(op, "an end's session missing"))?;
                    if let (true, Some(started)) = (st.live, st.started) {
                        obs.session_end = Some(SessionSummary {
                            duration: now.saturating_sub(Duration::from_nanos(started)),
                            tool_runs: st.runs,
                            prompts: st.prompts,
                        });
                        st.live = false;
                    }
                }
                _ => {}
            }
            emit(obs);
        }
        if next().is_ok() {
            return Err(unexpected(op, "too many values in the reply"));
        }
        Ok(applied)
    }
}
