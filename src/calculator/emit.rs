//! Per-event metrics from an [`Observation`].

use std::sync::Arc;
use std::time::Duration;

use crate::event::{Event, EventType};
use crate::metric::{names, Category, Metric};
use crate::state::Observation;

/// A metric built whole, labels included (no copy through a builder).
#[inline(always)]
fn metric(
    category: Category,
    name: &'static str,
    value: f64,
    at: Duration,
    tool: Option<Arc<str>>,
    session: Option<Arc<str>>,
) -> Metric {
    Metric {
        category,
        name,
        value,
        tool,
        session,
        at,
        generation: None,
    }
}

/// Appends the metrics one event produced.
pub(crate) fn push_metrics(event: &Event, obs: &Observation, at: Duration, out: &mut Vec<Metric>) {
    let plain = |name, value| metric(Category::Tools, name, value, at, None, None);
    if let Some(l) = obs.latency {
        // One push each: built in place, no array copied in.
        out.push(plain(names::TOOL_LATENCY_P50, l.p50));
        out.push(plain(names::TOOL_LATENCY_P95, l.p95));
        out.push(plain(names::TOOL_LATENCY_P99, l.p99));
        out.push(plain(names::TOOL_LATENCY_AVG, l.avg));
    }
    if let Some(tool) = event.named_tool() {
        let tool_metric = |name, value| {
            metric(
                Category::Tools,
                name,
                value,
                at,
                Some(Arc::clone(tool)),
                None,
            )
        };
        if let Some(rate) = obs.tool_success_rate {
            out.push(tool_metric(names::TOOL_SUCCESS_RATE, rate));
        }
        if let Some(freq) = obs.tool_frequency {
            out.push(tool_metric(names::TOOL_FREQUENCY, freq));
        }
    }
    if let Some(rate) = obs.overall_success_rate {
        out.push(plain(names::OVERALL_SUCCESS_RATE, rate));
    }
    let session = |name, value| {
        metric(
            Category::Session,
            name,
            value,
            at,
            None,
            Some(Arc::clone(&event.session_id)),
        )
    };
    if let Some(rate) = obs.acceptance_rate {
        let unlabelled = |name, value| metric(Category::Session, name, value, at, None, None);
        out.push(unlabelled(names::ACCEPTANCE_RATE, rate));
        out.push(unlabelled(names::REJECTION_RATE, 100.0 - rate));
    }
    if event.event_type == EventType::UserPrompt {
        if let Some(len) = event.payload.prompt_length {
            out.push(session(names::PROMPT_LENGTH, len as f64));
        }
    }
    if let Some(prompts) = obs.prompts_in_session {
        out.push(session(names::PROMPTS_PER_SESSION, prompts as f64));
    }
    if let Some(end) = obs.session_end {
        let secs = end.duration.as_secs_f64();
        out.push(session(names::SESSION_DURATION, secs));
        if secs > 0.0 {
            out.push(session(
                names::TOOLS_PER_MINUTE,
                end.tool_runs as f64 * 60.0 / secs,
            ));
        }
        out.push(session(names::PROMPTS_PER_SESSION, end.prompts as f64));
        out.push(session(names::ERRORS_PER_SESSION, end.errors as f64));
    }
    out.push(metric(
        Category::Realtime,
        names::EVENTS_PER_SECOND,
        obs.events_per_second,
        at,
        None,
        None,
    ));
}
