//! A hand-written deserializer that remembers which field failed, so every
//! error names it, and that allocates only for the strings it keeps.

use std::cell::Cell;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::{Event, EventType, Payload};
use crate::error::EventError;

type Failed<'a> = &'a Cell<Option<&'static str>>;

impl Event {
    /// Parses one JSON object (one line of the pipeline's JSONL).
    ///
    /// Unknown fields are ignored and unknown `event_type`s are accepted as
    /// [`EventType::Other`]. Every error names the field at fault.
    pub fn from_json(json: &str) -> Result<Self, EventError> {
        let failed = Cell::new(None);
        let mut de = serde_json::Deserializer::from_str(json);
        let raw = (&mut de)
            .deserialize_map(EventVisitor { failed: &failed })
            .map_err(|e| classify(e, failed.get()))?;
        de.end().map_err(|e| classify(e, None))?;
        raw.finish()
    }
}

fn classify(e: serde_json::Error, field: Option<&'static str>) -> EventError {
    match (e.classify(), field) {
        (serde_json::error::Category::Data, Some(field)) => EventError::InvalidField {
            field,
            reason: strip_position(&e),
        },
        // A number beyond f64 (`1e999`) is a syntax error to serde_json, but
        // it is a bad value of the field being read: name the field.
        (serde_json::error::Category::Syntax, Some(field))
            if strip_position(&e) == "number out of range" =>
        {
            EventError::InvalidField {
                field,
                reason: "number out of range (not a finite number)".to_owned(),
            }
        }
        _ => EventError::Malformed {
            line: e.line(),
            column: e.column(),
            message: strip_position(&e),
        },
    }
}

fn strip_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

#[derive(Default)]
struct RawEvent {
    event_type: Option<EventType>,
    session_id: Option<String>,
    timestamp: Option<String>,
    tool_name: Option<String>,
    duration_ms: Option<f64>,
    payload: Payload,
    event_id: Option<String>,
}

impl RawEvent {
    fn finish(self) -> Result<Event, EventError> {
        let event_type = self.event_type.ok_or(EventError::MissingField {
            field: "event_type",
        })?;
        let session_id = self.session_id.ok_or(EventError::MissingField {
            field: "session_id",
        })?;
        let timestamp = self
            .timestamp
            .ok_or(EventError::MissingField { field: "timestamp" })?;
        let timestamp = parse_rfc3339(&timestamp)?;
        let event = Event {
            event_type,
            session_id: Arc::from(session_id),
            timestamp,
            tool_name: self.tool_name.map(Arc::from),
            duration_ms: self.duration_ms,
            payload: self.payload,
            event_id: self.event_id.map(Arc::from),
        };
        event.validate()?;
        Ok(event)
    }
}

fn parse_rfc3339(text: &str) -> Result<SystemTime, EventError> {
    let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| EventError::InvalidField {
            field: "timestamp",
            reason: format!("not an RFC 3339 date-time ({e})"),
        })?;
    Ok(SystemTime::from(parsed))
}

#[derive(Clone, Copy)]
enum Field {
    EventType,
    SessionId,
    Timestamp,
    ToolName,
    DurationMs,
    Payload,
    EventId,
    Other,
}

struct FieldVisitor;

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Field, E> {
        Ok(match name {
            "event_type" => Field::EventType,
            "session_id" => Field::SessionId,
            "timestamp" => Field::Timestamp,
            "tool_name" => Field::ToolName,
            "duration_ms" => Field::DurationMs,
            "payload" => Field::Payload,
            "event_id" => Field::EventId,
            _ => Field::Other,
        })
    }
}

impl<'de> de::Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_identifier(FieldVisitor)
    }
}

struct EventTypeVisitor;

impl<'de> Visitor<'de> for EventTypeVisitor {
    type Value = EventType;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event type string")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<EventType, E> {
        Ok(EventType::from_wire(name))
    }
}

struct EventTypeSeed;

impl<'de> DeserializeSeed<'de> for EventTypeSeed {
    type Value = EventType;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<EventType, D::Error> {
        d.deserialize_str(EventTypeVisitor)
    }
}

struct EventVisitor<'a> {
    failed: Failed<'a>,
}

fn duplicate<E: de::Error>(field: &'static str) -> E {
    E::custom(format_args!("duplicate field `{field}`"))
}

impl<'de> Visitor<'de> for EventVisitor<'_> {
    type Value = RawEvent;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawEvent, A::Error> {
        let mut raw = RawEvent::default();
        let mut seen = Seen::default();
        while let Some(field) = map.next_key::<Field>()? {
            let name = match field {
                Field::EventType => "event_type",
                Field::SessionId => "session_id",
                Field::Timestamp => "timestamp",
                Field::ToolName => "tool_name",
                Field::DurationMs => "duration_ms",
                Field::Payload => "payload",
                Field::EventId => "event_id",
                Field::Other => {
                    self.failed.set(None);
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            self.failed.set(Some(name));
            seen.first(field as u8, name)?;
            match field {
                Field::EventType => raw.event_type = Some(map.next_value_seed(EventTypeSeed)?),
                Field::SessionId => raw.session_id = Some(map.next_value::<String>()?),
                Field::Timestamp => raw.timestamp = Some(map.next_value::<String>()?),
                Field::ToolName => raw.tool_name = map.next_value::<Option<String>>()?,
                Field::DurationMs => raw.duration_ms = map.next_value::<Option<f64>>()?,
                Field::EventId => raw.event_id = map.next_value::<Option<String>>()?,
                Field::Payload => {
                    raw.payload = map
                        .next_value_seed(PayloadSeed {
                            failed: self.failed,
                        })?
                        .unwrap_or_default();
                }
                Field::Other => {}
            }
        }
        self.failed.set(None);
        Ok(raw)
    }
}

/// Which fields of an object were seen, to reject duplicates (even of a
/// field whose first value was `null`).
#[derive(Default)]
struct Seen(u32);

impl Seen {
    fn first<E: de::Error>(&mut self, bit: u8, field: &'static str) -> Result<(), E> {
        let mask = 1u32 << bit;
        if self.0 & mask != 0 {
            return Err(duplicate(field));
        }
        self.0 |= mask;
        Ok(())
    }
}

struct PayloadSeed<'a> {
    failed: Failed<'a>,
}

impl<'de> DeserializeSeed<'de> for PayloadSeed<'_> {
    type Value = Option<Payload>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for PayloadSeed<'_> {
    type Value = Option<Payload>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a payload object or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(PayloadVisitor {
            failed: self.failed,
        })
        .map(Some)
    }
}

struct PayloadVisitor<'a> {
    failed: Failed<'a>,
}

impl<'de> Visitor<'de> for PayloadVisitor<'_> {
    type Value = Payload;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a payload object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Payload, A::Error> {
        let mut payload = Payload::default();
        let mut seen = Seen::default();
        while let Some(key) = map.next_key::<PayloadField>()? {
            let name = match key {
                PayloadField::Success => "payload.success",
                PayloadField::Accepted => "payload.accepted",
                PayloadField::PromptLength => "payload.prompt_length",
                PayloadField::Other => {
                    self.failed.set(Some("payload"));
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            self.failed.set(Some(name));
            seen.first(key as u8, name)?;
            match key {
                PayloadField::Success => payload.success = map.next_value::<Option<bool>>()?,
                PayloadField::Accepted => payload.accepted = map.next_value::<Option<bool>>()?,
                PayloadField::PromptLength => {
                    payload.prompt_length = map.next_value::<Option<u64>>()?;
                }
                PayloadField::Other => {}
            }
        }
        self.failed.set(Some("payload"));
        Ok(payload)
    }
}

#[derive(Clone, Copy)]
enum PayloadField {
    Success,
    Accepted,
    PromptLength,
    Other,
}

struct PayloadFieldVisitor;

impl<'de> Visitor<'de> for PayloadFieldVisitor {
    type Value = PayloadField;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a payload field name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<PayloadField, E> {
        Ok(match name {
            "success" => PayloadField::Success,
            "accepted" => PayloadField::Accepted,
            "prompt_length" => PayloadField::PromptLength,
            _ => PayloadField::Other,
        })
    }
}

impl<'de> de::Deserialize<'de> for PayloadField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_identifier(PayloadFieldVisitor)
    }
}
