//! An event's fields as read from a line, before they are checked and
//! made an [`Event`]: what both parsers (the direct scan of `fast_parse`
//! and the serde path of `parse`) fill.

use std::borrow::Cow;
use std::sync::Arc;

use super::rfc3339::parse_rfc3339;
use super::{Event, EventType, Payload};
use crate::error::EventError;

/// The fields as read, strings borrowed from the line where it has no
/// escapes.
#[derive(Default)]
pub(super) struct RawEvent<'de> {
    pub(super) event_type: Option<Cow<'de, str>>,
    pub(super) session_id: Option<Cow<'de, str>>,
    pub(super) timestamp: Option<Cow<'de, str>>,
    pub(super) tool_name: Option<Cow<'de, str>>,
    pub(super) duration_ms: Option<f64>,
    pub(super) payload: RawPayload<'de>,
    pub(super) event_id: Option<Cow<'de, str>>,
    pub(super) hook_type: Option<Cow<'de, str>>,
}

/// The `payload` object as read: the three payload fields, and the tool
/// name and duration when the producer put them there.
#[derive(Default)]
pub(super) struct RawPayload<'de> {
    pub(super) payload: Payload,
    pub(super) tool_name: Option<Cow<'de, str>>,
    pub(super) duration_ms: Option<f64>,
}

/// `top` or `nested` (the one given); both given must agree.
fn either<T: PartialEq>(
    top: Option<T>,
    nested: Option<T>,
    field: &'static str,
) -> Result<Option<T>, EventError> {
    match (top, nested) {
        (Some(a), Some(b)) if a != b => Err(EventError::InvalidField {
            field,
            reason: "differs from the same field at the top level".to_owned(),
        }),
        (Some(a), _) => Ok(Some(a)),
        (None, b) => Ok(b),
    }
}

impl<'de> RawEvent<'de> {
    #[inline]
    pub(super) fn finish(
        self,
        intern: &mut impl FnMut(&str) -> Arc<str>,
        unknown: &mut Option<Cow<'de, str>>,
    ) -> Result<Event, EventError> {
        let type_name = self.event_type.ok_or(EventError::MissingField {
            field: "event_type",
        })?;
        let session_id = self.session_id.ok_or(EventError::MissingField {
            field: "session_id",
        })?;
        let timestamp = self
            .timestamp
            .ok_or(EventError::MissingField { field: "timestamp" })?;
        let timestamp = parse_rfc3339(&timestamp)?;
        let tool_name = either(self.tool_name, self.payload.tool_name, "payload.tool_name")?;
        let duration_ms = either(
            self.duration_ms,
            self.payload.duration_ms,
            "payload.duration_ms",
        )?;
        let event_type = match EventType::known(&type_name) {
            Some(t) => t,
            None => {
                *unknown = Some(type_name);
                EventType::Other
            }
        };
        let event = Event {
            event_type,
            session_id: intern(&session_id),
            timestamp,
            tool_name: tool_name.map(|t| intern(&t)),
            duration_ms,
            payload: self.payload.payload,
            event_id: self.event_id.map(|id| Arc::from(&*id)),
            hook_type: self.hook_type.map(|h| intern(&h)),
        };
        event.validate()?;
        Ok(event)
    }
}
