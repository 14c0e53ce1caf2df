use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use super::SimRng;
use crate::event::{Event, EventType, Payload};

const TOOLS: [&str; 8] = [
    "bash",
    "read",
    "edit",
    "grep",
    "glob",
    "write",
    "web_fetch",
    "task",
];
const MCP_TOOLS: [&str; 3] = ["mcp__github__search", "mcp__db__query", "mcp__docs__lookup"];

/// Generates realistic events for the simulator: every worker keeps a few
/// live sessions, each opened by `session_start` and closed by `session_end`;
/// in between come tool runs (`tool_use`, `mcp_execution`) with durations and
/// an explicit outcome, edits (`file_edit`, `code_change`) with an explicit
/// accept or reject, and `user_prompt`s with a length.
///
/// The mix, per event after a session's start: 45 % `tool_use`, 10 % `mcp_execution`, 15 %
/// `file_edit`, 5 % `code_change`, 20 % `user_prompt` and 5 % `session_end`
/// (so a session lasts about 20 events; the next event of its slot opens a
/// new one with `session_start`). Tools
/// succeed 92 % of the time and edits are accepted 78 % of the time, so the
/// productivity score has data from the first few events.
///
/// ```
/// use std::time::Duration;
/// use composite_metrics::sim::EventMix;
///
/// let mut mix = EventMix::new(2, 4, 7);
/// let event = mix.next_event(0, Duration::from_secs(1_704_067_200));
/// assert!(event.validate().is_ok());
/// assert!(event.session_id.starts_with("w0-"));
/// ```
#[derive(Debug, Clone)]
pub struct EventMix {
    rng: SimRng,
    sessions: Vec<Vec<Slot>>,
    opened: u64,
    tools: Vec<Arc<str>>,
    mcp_tools: Vec<Arc<str>>,
}

#[derive(Debug, Clone)]
struct Slot {
    id: Arc<str>,
    started: bool,
}

impl EventMix {
    /// A generator for `workers` workers with `sessions` live sessions each
    /// (both at least one), seeded by `seed`.
    pub fn new(workers: usize, sessions: usize, seed: u64) -> Self {
        let mut mix = Self {
            rng: SimRng::stream(seed, 2),
            sessions: Vec::new(),
            opened: 0,
            tools: TOOLS.iter().map(|t| Arc::from(*t)).collect(),
            mcp_tools: MCP_TOOLS.iter().map(|t| Arc::from(*t)).collect(),
        };
        mix.sessions = (0..workers.max(1))
            .map(|w| (0..sessions.max(1)).map(|_| mix.open(w)).collect())
            .collect();
        mix
    }

    fn open(&mut self, worker: usize) -> Slot {
        self.opened += 1;
        Slot {
            id: Arc::from(format!("w{worker}-s{}", self.opened)),
            started: false,
        }
    }

    /// The next event for `worker` (taken modulo the worker count), stamped `at`
    /// (a duration since the UNIX epoch).
    pub fn next_event(&mut self, worker: usize, at: Duration) -> Event {
        // In range: `sessions` holds at least one worker with at least one
        // slot (see `new`), and `below(n)` is less than `n`.
        let worker = worker % self.sessions.len();
        let slots = self.sessions[worker].len() as u64;
        let index = self.rng.below(slots) as usize;
        let slot = &mut self.sessions[worker][index];
        let session = Arc::clone(&slot.id);
        let mut event = Event {
            event_type: EventType::Other,
            session_id: session,
            timestamp: UNIX_EPOCH + at,
            tool_name: None,
            duration_ms: None,
            payload: Payload::default(),
            event_id: None,
            hook_type: None,
        };
        if !slot.started {
            slot.started = true;
            event.event_type = EventType::SessionStart;
            return event;
        }
        let roll = self.rng.next_f64();
        if roll <= 0.05 {
            event.event_type = EventType::SessionEnd;
            let fresh = self.open(worker);
            self.sessions[worker][index] = fresh;
        } else if roll <= 0.50 {
            event.event_type = EventType::ToolUse;
            let tool = self.rng.below(self.tools.len() as u64) as usize;
            event.tool_name = Some(Arc::clone(&self.tools[tool]));
            self.tool_outcome(&mut event, 40.0);
        } else if roll <= 0.60 {
            event.event_type = EventType::McpExecution;
            let tool = self.rng.below(self.mcp_tools.len() as u64) as usize;
            event.tool_name = Some(Arc::clone(&self.mcp_tools[tool]));
            self.tool_outcome(&mut event, 250.0);
        } else if roll <= 0.80 {
            event.event_type = if roll <= 0.75 {
                EventType::FileEdit
            } else {
                EventType::CodeChange
            };
            event.payload.accepted = Some(self.rng.chance(0.78));
        } else {
            event.event_type = EventType::UserPrompt;
            event.payload.prompt_length = Some(20 + self.rng.below(2_000));
        }
        event
    }

    /// A duration with an exponential tail above a floor, and an outcome.
    fn tool_outcome(&mut self, event: &mut Event, mean_ms: f64) {
        let ms = 5.0 + self.rng.exponential(1.0 / mean_ms);
        event.duration_ms = Some((ms * 10.0).round() / 10.0);
        event.payload.success = Some(self.rng.chance(0.92));
    }
}
