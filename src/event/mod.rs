//! Telemetry events as the pipeline carries them, one JSON object per line.

mod telemetry_event;
mod event_type;
mod parse;
mod payload;

pub use self::telemetry_event::{Event, MAX_SESSION_ID_BYTES, MAX_TOOL_NAME_BYTES};
pub use self::event_type::EventType;
pub use self::payload::Payload;
