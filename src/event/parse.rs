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
//! an `Option<Cow<'de, str>>` in `RawEvent` read there with `OptStrSeed`,
//! and its conversion in `RawEvent::finish`. Lines with it then take this
//! path; to keep them on the fast one, add one arm to the key match of
//! `fast_parse::parse_fast` (`"name" => 6`, read with
//! `s.or_null(Scanner::string)?.map(Cow::Borrowed)`).

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::fast_parse::parse_fast;
use super::{Event, EventType, Payload};
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
    fn finish(
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

fn parse_rfc3339(text: &str) -> Result<SystemTime, EventError> {
    if let Some(t) = fast_rfc3339(text.as_bytes()) {
        return Ok(t);
    }
    let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| EventError::InvalidField {
            field: "timestamp",
            reason: format!("not an RFC 3339 date-time ({e})"),
        })?;
    Ok(SystemTime::from(parsed))
}

/// The common form `YYYY-MM-DDTHH:MM:SS[.F]` with `Z` or `±HH:MM`, at or
/// after 1970, up to 9 fraction digits: parsed here, in a few dozen
/// instructions. `None` for anything else, which the `time` crate then
/// parses or rejects, so what is accepted, and how, does not change.
pub(crate) fn fast_rfc3339(b: &[u8]) -> Option<SystemTime> {
    let head: &[u8; 19] = b.get(..19)?.try_into().ok()?;
    // `YYYY-MM-DDTHH:MM:SS` as three overlapping words: every digit
    // position holds 0x30..=0x39 (its high nibble is 3, also after adding
    // 6), every separator its character.
    let word = |from: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&head[from..from + 8]);
        u64::from_le_bytes(w)
    };
    let digits_ok = |x: u64, digits: u64| {
        const NIBBLE: u64 = 0xF0F0_F0F0_F0F0_F0F0;
        let threes = 0x3030_3030_3030_3030 & digits;
        x & NIBBLE & digits == threes
            && x.wrapping_add(0x0606_0606_0606_0606) & NIBBLE & digits == threes
    };
    // Bytes 0..8 `YYYY-MM-`, 8..16 `DDTHH:MM`, 11..19 `HH:MM:SS`.
    let (w0, w1, w2) = (word(0), word(8), word(11));
    // Digit bytes 0-3, 5, 6; 0, 1, 3, 4, 6, 7; and 0, 1, 3, 4, 6, 7.
    if !(digits_ok(w0, 0x00FF_FF00_FFFF_FFFF)
        && digits_ok(w1, 0xFFFF_00FF_FF00_FFFF)
        && digits_ok(w2, 0xFFFF_00FF_FF00_FFFF))
        || head[4] != b'-'
        || head[7] != b'-'
        || head[10] != b'T'
        || head[13] != b':'
        || head[16] != b':'
    {
        return None;
    }
    let d = |i: usize| u32::from(head[i].wrapping_sub(b'0'));
    let year = d(0) * 1000 + d(1) * 100 + d(2) * 10 + d(3);
    let (month, day) = (d(5) * 10 + d(6), d(8) * 10 + d(9));
    let (hour, minute, second) = (d(11) * 10 + d(12), d(14) * 10 + d(15), d(17) * 10 + d(18));
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > days_in_month || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = b.get(19..)?;
    let mut nanos = 0u32;
    if let [b'.', fraction @ ..] = rest {
        let digits = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        let (taken, after) = fraction.split_at(digits);
        let value = taken.iter().fold(0u32, |n, c| n * 10 + u32::from(c - b'0'));
        nanos = value * 10u32.pow(9 - digits as u32);
        rest = after;
    }
    let offset: i64 = match rest {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let two = |a: &u8, b: &u8| {
                let (a, b) = (a.wrapping_sub(b'0'), b.wrapping_sub(b'0'));
                (a < 10 && b < 10).then(|| u32::from(a) * 10 + u32::from(b))
            };
            let (h, m) = (two(h1, h2)?, two(m1, m2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let secs = i64::from(h * 3_600 + m * 60);
            if *sign == b'+' {
                secs
            } else {
                -secs
            }
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(year), month, day);
    let unix = days * 86_400 + i64::from(hour * 3_600 + minute * 60 + second) - offset;
    let unix = u64::try_from(unix).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(unix, nanos))
}

/// Days from 1970-01-01 to a proleptic Gregorian date (month and day valid).
#[inline]
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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

#[cfg(test)]
mod tests {
    use super::fast_rfc3339;
    use proptest::prelude::*;
    use std::time::SystemTime;

    fn by_time_crate(text: &str) -> Option<SystemTime> {
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .ok()
            .map(SystemTime::from)
    }

    proptest! {
        /// Whatever the fast path accepts, the `time` crate accepts as the
        /// same instant; dates that exist are all taken by the fast path.
        #[test]
        fn fast_path_agrees_with_the_time_crate(
            year in prop_oneof![1960u32..2100, 0u32..10_000],
            month in 0u32..14, day in 0u32..33, hour in 0u32..26, minute in 0u32..62,
            second in 0u32..62,
            frac in proptest::option::of("[0-9]{1,11}"),
            offset in prop_oneof![Just("Z".to_owned()), Just("z".to_owned()),
                "[+-](0[0-9]|1[0-9]|2[0-5]):[0-6][0-9]"],
        ) {
            let short_fraction = frac.as_ref().is_none_or(|f| f.len() <= 9);
            let text = format!(
                "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{}{offset}",
                frac.map(|f| format!(".{f}")).unwrap_or_default()
            );
            let slow = by_time_crate(&text);
            match fast_rfc3339(text.as_bytes()) {
                Some(fast) => prop_assert_eq!(Some(fast), slow, "{}", text),
                None => {
                    // Only what the fast path leaves out by design.
                    let ordinary = year >= 1971 && (1..=12).contains(&month) && (1..=28).contains(&day)
                        && hour < 24 && minute < 60 && second < 60
                        && offset != "z" && short_fraction;
                    prop_assert!(!(ordinary && slow.is_some()), "{}", text);
                }
            }
        }
    }

    proptest! {
        /// One byte of a valid date-time replaced by anything: the fast path
        /// still agrees with the `time` crate, or leaves the text to it.
        #[test]
        fn fast_path_checks_every_byte(at in 0usize..20, byte in any::<u8>()) {
            let mut text = b"2024-05-01T12:34:56Z".to_vec();
            text[at] = byte;
            if let (Some(fast), Ok(text)) = (fast_rfc3339(&text), std::str::from_utf8(&text)) {
                prop_assert_eq!(Some(fast), by_time_crate(text), "{}", text);
            }
        }
    }

    #[test]
    fn common_forms() {
        for text in [
            "2024-05-01T12:00:00Z",
            "2024-02-29T23:59:59.999999999+05:30",
            "1970-01-01T00:00:00Z",
            "2000-03-01T00:00:00.5-01:00",
        ] {
            assert_eq!(fast_rfc3339(text.as_bytes()), by_time_crate(text), "{text}");
            assert!(fast_rfc3339(text.as_bytes()).is_some(), "{text}");
        }
        for text in [
            "2023-02-29T00:00:00Z",
            "2024-05-01 12:00:00Z",
            "2024-05-01T12:00:00",
            "2024-0:-01T12:00:00Z",
            "2024-05-0/T12:00:00Z",
            "2024-05-01T1:00:00Z",
            "2024-05-01T12:0a:00Z",
            "2024-05-01T12:00:0:Z",
            "2:24-05-01T12:00:00Z",
        ] {
            assert_eq!(fast_rfc3339(text.as_bytes()), None, "{text}");
        }
    }
}
