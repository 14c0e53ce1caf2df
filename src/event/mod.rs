//! Telemetry events as the pipeline carries them, one JSON object per line.

mod event_type;
mod fast_parse;
mod interner;
mod parse;
mod payload;
mod raw_event;
mod rfc3339;
mod telemetry_event;

pub use self::event_type::EventType;
pub(crate) use self::interner::Interner;
pub(crate) use self::parse::utf8;
pub use self::payload::Payload;
pub use self::telemetry_event::{
    Event, MAX_DURATION_MS, MAX_EVENT_ID_BYTES, MAX_HOOK_TYPE_BYTES, MAX_SESSION_ID_BYTES,
    MAX_TOOL_NAME_BYTES, SHELL_TOOL,
};
