//! Telemetry events as the pipeline carries them, one JSON object per line.

// A file holds the type it is named after, here as elsewhere.
#[allow(clippy::module_inception)]
mod event;
mod event_type;
mod fast_parse;
mod interner;
mod parse;
mod raw_event;
mod rfc3339;

pub use self::event::{
    Event, Payload, MAX_DURATION_MS, MAX_EVENT_ID_BYTES, MAX_HOOK_TYPE_BYTES, MAX_SESSION_ID_BYTES,
    MAX_TOOL_NAME_BYTES, SHELL_TOOL,
};
pub use self::event_type::EventType;
pub(crate) use self::interner::Interner;
pub(crate) use self::parse::utf8;
