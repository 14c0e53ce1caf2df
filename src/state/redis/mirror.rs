//! A worker's copy of the shared latency and decision windows, kept in step
//! with Redis by delta (see record.lua), and the replay of a batch on the
//! state the record script found: the one rule, run here for the
//! observations.

use std::sync::Arc;
use std::time::Duration;

use ::redis::Value;

use super::record_plan::{Owner, Plan};
use crate::error::BackendError;
use crate::event::Event;
use crate::redis::{array, at, int, text, uint, unexpected};
use crate::state::rule::{Counter, CounterSet, Counts, Session, SharedState};
use crate::state::Observation;
use crate::window::{DecisionWindow, LatencyWindow, RateWindow};

/// The shared windows as this worker last saw them, each with the
/// generation and sequence number the server gave it (`""`/0: none yet, so
/// the next call that needs it gets the whole window), inside the state
/// each batch is replayed on.
#[derive(Debug, Clone, Default)]
pub(crate) struct Mirror {
    state: SharedState,
    pub(crate) latency_gen: String,
    pub(crate) latency_seq: u64,
    pub(crate) decisions_gen: String,
    pub(crate) decisions_seq: u64,
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

/// Reads a window part of the reply: the values the copy lacks (to push
/// oldest first), and whether the copy must be emptied first (a new
/// generation); the generation and sequence are brought up to date.
fn sync<'a>(
    op: &'static str,
    v: &'a Value,
    gen: &mut String,
    seq: &mut u64,
) -> Result<(bool, &'a [Value]), BackendError> {
    Ok(match part(op, v)? {
        Part::InStep => (false, &[]),
        Part::Add(values) => {
            *seq += values.len() as u64;
            (false, values)
        }
        Part::Whole(new_gen, new_seq, values) => {
            gen.clear();
            gen.push_str(new_gen);
            *seq = new_seq;
            (true, values)
        }
    })
}

/// A stored count: '' is absent (0).
fn count(op: &'static str, v: &Value) -> Result<Option<u64>, BackendError> {
    let t = text(op, v)?;
    if t.is_empty() {
        return Ok(None);
    }
    t.parse()
        .map(Some)
        .map_err(|_| unexpected(op, "a stored count that is not a number"))
}

/// The next value of the reply.
fn next<'a>(
    op: &'static str,
    values: &mut std::slice::Iter<'a, Value>,
) -> Result<&'a Value, BackendError> {
    values
        .next()
        .ok_or_else(|| unexpected(op, "too few values in the reply"))
}

/// A scope's counters as the reply lists them (those in `listed`, in
/// [`Counter::ALL`] order), and whether any was stored.
fn counts(
    op: &'static str,
    values: &mut std::slice::Iter<'_, Value>,
    listed: CounterSet,
) -> Result<(Counts, bool), BackendError> {
    let mut c = Counts::default();
    let mut any = false;
    for counter in Counter::ALL.into_iter().filter(|&c| listed.has(c)) {
        let v = count(op, next(op, values)?)?;
        any |= v.is_some();
        c.set(counter, v.unwrap_or(0));
    }
    Ok((c, any))
}

impl Mirror {
    /// Reads the record script's reply (after the epoch code) for `events`
    /// as `plan` packed them: brings the windows up to date, replays the
    /// batch on the state before it that the reply holds, and hands each
    /// event's observation to `emit`, in order. On an error the copies may
    /// be half updated.
    pub(crate) fn read(
        &mut self,
        op: &'static str,
        items: &[Value],
        plan: &Plan,
        events: &[Event],
        now: Duration,
        emit: &mut dyn FnMut(Observation),
    ) -> Result<(), BackendError> {
        let newest = now.as_secs() + uint(op, at(op, items, 0)?)?;
        let before = uint(op, at(op, items, 1)?)?;
        let state = &mut self.state;
        let (reset, values) = sync(
            op,
            at(op, items, 2)?,
            &mut self.latency_gen,
            &mut self.latency_seq,
        )?;
        if reset {
            state.latency = LatencyWindow::new();
        }
        for v in values.iter().rev() {
            let ms = text(op, v)?
                .parse()
                .map_err(|_| unexpected(op, "a latency that is not a number"))?;
            state.latency.push(ms);
        }
        let (reset, values) = sync(
            op,
            at(op, items, 3)?,
            &mut self.decisions_gen,
            &mut self.decisions_seq,
        )?;
        if reset {
            state.decisions = DecisionWindow::new();
        }
        for v in values.iter().rev() {
            state.decisions.push(text(op, v)? == "1");
        }
        state.rate = RateWindow::resume(newest, before);
        let mut values = items.get(4..).unwrap_or(&[]).iter();
        state.totals = Counts::default();
        state.tools.clear();
        state.sessions.clear();
        for part in plan.returned() {
            let (c, any) = counts(op, &mut values, part.counters)?;
            let started = if part.started {
                count(op, next(op, &mut values)?)?
            } else {
                None
            };
            let last_seen = if part.last_seen {
                count(op, next(op, &mut values)?)?
            } else {
                None
            };
            match part.owner {
                Owner::Totals => state.totals = c,
                Owner::Tool(at) => {
                    if let (true, Some(name)) = (any, events.get(at).and_then(Event::named_tool)) {
                        state.tools.insert(Arc::clone(name), c);
                    }
                }
                Owner::Session(at) => {
                    // A live session has its start; without, it starts anew.
                    if let (Some(started), Some(e)) = (started, events.get(at)) {
                        let mut s = Session::new(Duration::from_nanos(started));
                        s.last_seen = Duration::from_nanos(last_seen.unwrap_or(started));
                        s.counts = c;
                        state.sessions.insert(Arc::clone(&e.session_id), s);
                    }
                }
            }
        }
        if values.next().is_some() {
            return Err(unexpected(op, "too many values in the reply"));
        }
        let (latency, decisions) = plan.pushes();
        self.latency_seq += latency as u64;
        self.decisions_seq += decisions as u64;
        for (e, &dup) in events.iter().zip(&plan.dup) {
            if dup {
                emit(Observation {
                    duplicate: true,
                    ..Observation::default()
                });
            } else {
                emit(state.record(e, now));
            }
        }
        Ok(())
    }
}
