//! A hand-written deserializer that remembers which field failed, so every
//! error names it, and that borrows its strings from the line: the event's
//! `Arc<str>`s are the only allocations (none when an interner already
//! holds the session and the tool).
//!
//! The common line takes the direct scan of `fast_parse` instead; anything
//! it does not take (other fields, escapes, nesting, errors) comes here.
//!
//! Adding an optional string field takes a `Field` variant, its wire name in
//! `FieldVisitor::visit_str` and in `EventVisitor::visit_map`'s name match,
//! an `Option<Cow<'de, str>>` in `RawEvent` (`raw_event.rs`) read there with `OptStrSeed`,
//! and its conversion in `RawEvent::finish`. Lines with it then take this
//! path; to keep them on the fast one, add one arm to the key match of
//! `fast_parse::parse_fast` (`"name" => 6`, read with
//! `s.or_null(Scanner::string)?.map(Cow::Borrowed)`).

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::fast_parse::parse_fast;
use super::raw_event::{RawEvent, RawPayload};
use super::Event;
use crate::error::EventError;

type Failed<'a> = &'a Cell<Option<&'static str>>;

impl Event {
    /// Parses one JSON object (one line of the pipeline's JSONL).
    ///
    /// Unknown fields are ignored and unknown `event_type`s are accepted as
    /// [`EventType::Other`]. Every error names the field at fault. The
    /// hooks' canonical event parses as it is: `platform`, `metadata`,
    /// `enqueued_at`, `retry_count` are ignored, `hook_type` is read, and
    /// `tool_name` and `duration_ms` may sit at the top level or inside
    /// `payload` (both: they must agree, or the error names
    /// `payload.tool_name` / `payload.duration_ms`).
    ///
    /// [`EventType::Other`]: super::EventType::Other
    pub fn from_json(json: &str) -> Result<Self, EventError> {
        Self::from_json_interned(json, &mut |s: &str| Arc::from(s), &mut None)
    }

    /// Like [`from_json`](Self::from_json), from bytes: invalid UTF-8 is
    /// [`EventError::InvalidUtf8`], naming the byte offset of the first bad
    /// byte.
    pub fn from_json_bytes(json: &[u8]) -> Result<Self, EventError> {
        Self::from_json(utf8(json)?)
    }

    /// Like [`from_json`](Self::from_json), taking the session id and tool
    /// name from `intern` (which may hand out a shared copy it already holds)
    /// and setting `unknown` to the `event_type` as written when it is not
    /// one of [`EventType::KNOWN`] (the event then has [`EventType::Other`]).
    ///
    /// [`EventType::KNOWN`]: super::EventType::KNOWN
    /// [`EventType::Other`]: super::EventType::Other
    pub(crate) fn from_json_interned<'a>(
        json: &'a str,
        intern: &mut impl FnMut(&str) -> Arc<str>,
        unknown: &mut Option<Cow<'a, str>>,
    ) -> Result<Self, EventError> {
        match parse_fast(json) {
            Some(raw) => raw.finish(intern, unknown),
            None => Self::from_json_serde(json, intern, unknown),
        }
    }

    /// The serde path alone (what the fast path must agree with).
    pub(super) fn from_json_serde<'a>(
        json: &'a str,
        intern: &mut impl FnMut(&str) -> Arc<str>,
        unknown: &mut Option<Cow<'a, str>>,
    ) -> Result<Self, EventError> {
        let failed = Cell::new(None);
        let mut de = serde_json::Deserializer::from_str(json);
        let raw = (&mut de)
            .deserialize_map(EventVisitor { failed: &failed })
            .map_err(|e| classify(e, failed.get()))?;
        de.end().map_err(|e| classify(e, None))?;
        raw.finish(intern, unknown)
    }
}

/// `bytes` as text, or the offset of the first byte that is not UTF-8.
pub(crate) fn utf8(bytes: &[u8]) -> Result<&str, EventError> {
    std::str::from_utf8(bytes).map_err(|e| EventError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })
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

#[derive(Clone, Copy)]
enum Field {
    EventType,
    SessionId,
    Timestamp,
    ToolName,
    DurationMs,
    Payload,
    EventId,
    HookType,
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
            "hook_type" => Field::HookType,
            _ => Field::Other,
        })
    }
}

impl<'de> de::Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_identifier(FieldVisitor)
    }
}

struct EventVisitor<'a> {
    failed: Failed<'a>,
}

fn duplicate<E: de::Error>(field: &'static str) -> E {
    E::custom(format_args!("duplicate field `{field}`"))
}

impl<'de> Visitor<'de> for EventVisitor<'_> {
    type Value = RawEvent<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawEvent<'de>, A::Error> {
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
                Field::HookType => "hook_type",
                Field::Other => {
                    self.failed.set(None);
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            self.failed.set(Some(name));
            seen.first(field as u8, name)?;
            match field {
                Field::EventType => raw.event_type = Some(map.next_value_seed(StrSeed)?),
                Field::SessionId => raw.session_id = Some(map.next_value_seed(StrSeed)?),
                Field::Timestamp => raw.timestamp = Some(map.next_value_seed(StrSeed)?),
                Field::ToolName => raw.tool_name = map.next_value_seed(OptStrSeed)?,
                Field::DurationMs => raw.duration_ms = map.next_value::<Option<f64>>()?,
                Field::EventId => raw.event_id = map.next_value_seed(OptStrSeed)?,
                Field::HookType => raw.hook_type = map.next_value_seed(OptStrSeed)?,
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

/// A string, borrowed from the line when it has no escapes.
struct StrSeed;

impl<'de> DeserializeSeed<'de> for StrSeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for StrSeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// A string or `null`.
struct OptStrSeed;

impl<'de> DeserializeSeed<'de> for OptStrSeed {
    type Value = Option<Cow<'de, str>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for OptStrSeed {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        StrSeed.deserialize(d).map(Some)
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
    type Value = Option<RawPayload<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for PayloadSeed<'_> {
    type Value = Option<RawPayload<'de>>;

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
    type Value = RawPayload<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a payload object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawPayload<'de>, A::Error> {
        let mut raw = RawPayload::default();
        let mut seen = Seen::default();
        while let Some(key) = map.next_key::<PayloadField>()? {
            let name = match key {
                PayloadField::Success => "payload.success",
                PayloadField::Accepted => "payload.accepted",
                PayloadField::PromptLength => "payload.prompt_length",
                PayloadField::ToolName => "payload.tool_name",
                PayloadField::DurationMs => "payload.duration_ms",
                PayloadField::Other => {
                    self.failed.set(Some("payload"));
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            self.failed.set(Some(name));
            seen.first(key as u8, name)?;
            match key {
                PayloadField::Success => raw.payload.success = map.next_value::<Option<bool>>()?,
                PayloadField::Accepted => {
                    raw.payload.accepted = map.next_value::<Option<bool>>()?;
                }
                PayloadField::PromptLength => {
                    raw.payload.prompt_length = map.next_value::<Option<u64>>()?;
                }
                PayloadField::ToolName => raw.tool_name = map.next_value_seed(OptStrSeed)?,
                PayloadField::DurationMs => raw.duration_ms = map.next_value::<Option<f64>>()?,
                PayloadField::Other => {}
            }
        }
        self.failed.set(Some("payload"));
        Ok(raw)
    }
}

#[derive(Clone, Copy)]
enum PayloadField {
    Success,
    Accepted,
    PromptLength,
    ToolName,
    DurationMs,
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
            "tool_name" => PayloadField::ToolName,
            "duration_ms" => PayloadField::DurationMs,
            _ => PayloadField::Other,
        })
    }
}

impl<'de> de::Deserialize<'de> for PayloadField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_identifier(PayloadFieldVisitor)
    }
}
