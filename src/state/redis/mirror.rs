//! A worker's copies of the shared latency and decision windows, kept in
//! step with Redis by delta (see record.lua), and the reading of the record
//! script's reply into observations.

use std::time::Duration;

use ::redis::Value;

use super::reply::{array, at, int, text, uint, unexpected};
use crate::error::BackendError;
use crate::event::{Event, EventType};
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

    /// Reads the record script's reply (after the epoch code) for `events`:
    /// brings the windows up to date, then hands each event's observation
    /// to `emit`, in order. Returns how many events were applied (not
    /// duplicates). On an error the copies may be half updated.
    pub(crate) fn read(
        &mut self,
        op: &'static str,
        items: &[Value],
        events: &[Event],
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
                .ok_or_else(|| unexpected(op, "too few per-event values"))
        };
        let mut applied = 0u64;
        for e in events {
            let mut obs = Observation::default();
            if uint(op, next()?)? == 1 {
                obs.duplicate = true;
                emit(obs);
                continue;
            }
            applied += 1;
            obs.events_per_second = (before + applied) as f64 / RATE_SECONDS as f64;
            if e.event_type.is_tool() {
                let named = e.named_tool().is_some();
                let outcome = e.payload.success.is_some();
                let runs = uint(op, next()?)?;
                let tool_runs = if named { uint(op, next()?)? } else { 0 };
                if outcome {
                    let (ok, known) = (uint(op, next()?)?, uint(op, next()?)?);
                    obs.overall_success_rate = rate(ok, known);
                    if named {
                        let (ok, known) = (uint(op, next()?)?, uint(op, next()?)?);
                        obs.tool_success_rate = rate(ok, known);
                    }
                }
                if named && runs > 0 {
                    obs.tool_frequency = Some(100.0 * tool_runs as f64 / runs as f64);
                }
                if let Some(d) = e.duration_ms {
                    self.latency.push(d);
                    self.latency_seq += 1;
                    obs.latency = self.latency.summary();
                }
            } else if e.event_type.is_edit() {
                if let Some(a) = e.payload.accepted {
                    self.decisions.push(a);
                    self.decisions_seq += 1;
                    obs.acceptance_rate = self.decisions.acceptance_rate();
                }
            } else if e.event_type == EventType::UserPrompt {
                obs.prompts_in_session = Some(uint(op, next()?)?);
            } else if e.event_type == EventType::SessionEnd {
                let started = text(op, next()?)?;
                let (tool_runs, prompts) = (uint(op, next()?)?, uint(op, next()?)?);
                if !started.is_empty() {
                    let started: u64 = started
                        .parse()
                        .map_err(|_| unexpected(op, "a session start that is not a number"))?;
                    obs.session_end = Some(SessionSummary {
                        duration: now.saturating_sub(Duration::from_nanos(started)),
                        tool_runs,
                        prompts,
                    });
                }
            }
            emit(obs);
        }
        if next().is_ok() {
            return Err(unexpected(op, "too many per-event values"));
        }
        Ok(applied)
    }
}
