//! The fast path of [`Event::from_json`](super::Event::from_json): a direct
//! scan of the common line (one object; strings without escapes; only the
//! known fields, with values of their types). Anything else (another field,
//! nesting, escapes, every error) returns `None`, and the serde path parses
//! the line instead and reports what is wrong, so the fast path never
//! changes what is accepted or how. A field added to the serde path is
//! read correctly at once (its lines take the serde path); adding it to the
//! key match here as well keeps them on the fast path.

use std::borrow::Cow;

use super::raw_event::{RawEvent, RawPayload};

/// Scans `json`; `None` means "let the serde path decide".
pub(super) fn parse_fast(json: &str) -> Option<RawEvent<'_>> {
    let mut s = Scanner { json, at: 0 };
    let mut raw = RawEvent::default();
    let mut seen = 0u32;
    s.expect(b'{')?;
    if !s.eat(b'}') {
        loop {
            let key = s.string()?;
            s.expect(b':')?;
            let bit = match key {
                "event_type" => 0,
                "session_id" => 1,
                "timestamp" => 2,
                "tool_name" => 3,
                "duration_ms" => 4,
                "payload" => 5,
                "event_id" => 6,
                "hook_type" => 7,
                // Any other field: the serde path (which ignores unknown
                // fields) decides, so a field the serde path learns to read
                // is never skipped here.
                _ => return None,
            };
            if seen & (1 << bit) != 0 {
                return None; // a duplicate: the serde path names it
            }
            seen |= 1 << bit;
            match bit {
                0 => raw.event_type = Some(Cow::Borrowed(s.string()?)),
                1 => raw.session_id = Some(Cow::Borrowed(s.string()?)),
                2 => raw.timestamp = Some(Cow::Borrowed(s.string()?)),
                3 => raw.tool_name = s.or_null(Scanner::string)?.map(Cow::Borrowed),
                4 => raw.duration_ms = s.or_null(Scanner::float)?,
                6 => raw.event_id = s.or_null(Scanner::string)?.map(Cow::Borrowed),
                7 => raw.hook_type = s.or_null(Scanner::string)?.map(Cow::Borrowed),
                _ => raw.payload = s.or_null(Scanner::payload)?.unwrap_or_default(),
            }
            if !s.next_member()? {
                break;
            }
        }
    }
    s.skip_ws();
    (s.at == json.len()).then_some(raw)
}

/// How many bytes from the start of `bytes` are neither `"`, `\\` nor a
/// control character, looking at eight bytes at a time.
fn plain_run(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // The high bit of each byte of `x` that is zero (and maybe of later
    // bytes, through a borrow: the lowest flag is always a true one).
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut at = 0;
    while let Some(Ok(chunk)) = bytes.get(at..at + 8).map(<[u8; 8]>::try_from) {
        let x = u64::from_le_bytes(chunk);
        let special = zero(x ^ (ONES * u64::from(b'"')))
            | zero(x ^ (ONES * u64::from(b'\\')))
            | (x.wrapping_sub(ONES * 0x20) & !x & HIGH);
        if special != 0 {
            return at + (special.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    let tail = bytes.get(at..).unwrap_or_default();
    at + tail
        .iter()
        .position(|c| matches!(c, b'"' | b'\\' | 0..=0x1f))
        .unwrap_or(tail.len())
}

struct Scanner<'a> {
    json: &'a str,
    at: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.json.as_bytes().get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.at += 1;
        }
    }

    /// Skips whitespace, then takes `c` if it comes next.
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() != Some(c) {
            self.skip_ws();
            if self.peek() != Some(c) {
                return false;
            }
        }
        self.at += 1;
        true
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        self.eat(c).then_some(())
    }

    /// After a member: `true` at a `,` (another follows), `false` at the `}`.
    fn next_member(&mut self) -> Option<bool> {
        if self.eat(b',') {
            Some(true)
        } else {
            self.expect(b'}').map(|()| false)
        }
    }

    /// A string without escapes or control characters, borrowed.
    fn string(&mut self) -> Option<&'a str> {
        let bytes = self.json.as_bytes();
        if bytes.get(self.at) != Some(&b'"') {
            self.skip_ws();
            if bytes.get(self.at) != Some(&b'"') {
                return None;
            }
        }
        let start = self.at + 1;
        let rest = bytes.get(start..)?;
        let len = plain_run(rest);
        if rest.get(len) != Some(&b'"') {
            return None; // an escape, a control character or the end
        }
        // Both ends are at an ASCII quote: char boundaries.
        let text = self.json.get(start..start + len)?;
        self.at = start + len + 1;
        Some(text)
    }

    /// `null` (then `None`), or what `value` reads.
    #[inline]
    fn or_null<T>(&mut self, value: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.literal("null") {
            Some(None)
        } else {
            value(self).map(Some)
        }
    }

    fn literal(&mut self, word: &str) -> bool {
        if self.peek() != word.as_bytes().first().copied() {
            self.skip_ws();
        }
        let hit = self
            .json
            .as_bytes()
            .get(self.at..)
            .is_some_and(|rest| rest.starts_with(word.as_bytes()));
        if hit {
            self.at += word.len();
        }
        hit
    }

    fn bool(&mut self) -> Option<bool> {
        if self.literal("true") {
            Some(true)
        } else if self.literal("false") {
            Some(false)
        } else {
            None
        }
    }

    /// The text of a number, checked against JSON's grammar.
    fn number(&mut self) -> Option<&'a str> {
        self.skip_ws();
        let start = self.at;
        let bytes = self.json.as_bytes();
        let digits = |at: &mut usize| {
            let from = *at;
            while bytes.get(*at).is_some_and(u8::is_ascii_digit) {
                *at += 1;
            }
            *at - from
        };
        let mut at = self.at;
        if bytes.get(at) == Some(&b'-') {
            at += 1;
        }
        let first = *bytes.get(at)?;
        let int = digits(&mut at);
        if int == 0 || (first == b'0' && int > 1) {
            return None;
        }
        if bytes.get(at) == Some(&b'.') {
            at += 1;
            if digits(&mut at) == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = bytes.get(at) {
            at += 1;
            if let Some(b'+' | b'-') = bytes.get(at) {
                at += 1;
            }
            if digits(&mut at) == 0 {
                return None;
            }
        }
        self.at = at;
        self.json.get(start..at)
    }

    /// A number as `f64`: plain integers of up to 15 digits here (exact),
    /// any other through serde_json itself, so the value is the same bits.
    fn float(&mut self) -> Option<f64> {
        let text = self.number()?;
        if text.len() <= 15 && text.bytes().all(|c| c.is_ascii_digit()) {
            let n = text.bytes().fold(0u64, |n, c| n * 10 + u64::from(c - b'0'));
            return Some(n as f64);
        }
        serde_json::from_str::<f64>(text).ok()
    }

    /// A non-negative integer that fits a `u64`.
    fn unsigned(&mut self) -> Option<u64> {
        let text = self.number()?;
        text.bytes().try_fold(0u64, |n, c| {
            if !c.is_ascii_digit() {
                return None;
            }
            n.checked_mul(10)?.checked_add(u64::from(c - b'0'))
        })
    }

    fn payload(&mut self) -> Option<RawPayload<'a>> {
        let mut raw = RawPayload::default();
        let mut seen = 0u32;
        self.expect(b'{')?;
        if self.eat(b'}') {
            return Some(raw);
        }
        loop {
            let key = self.string()?;
            self.expect(b':')?;
            let bit = match key {
                "success" => 0,
                "accepted" => 1,
                "prompt_length" => 2,
                "tool_name" => 3,
                "duration_ms" => 4,
                _ => return None,
            };
            if seen & (1 << bit) != 0 {
                return None;
            }
            seen |= 1 << bit;
            match bit {
                0 => raw.payload.success = self.or_null(Self::bool)?,
                1 => raw.payload.accepted = self.or_null(Self::bool)?,
                2 => raw.payload.prompt_length = self.or_null(Self::unsigned)?,
                3 => raw.tool_name = self.or_null(Self::string)?.map(Cow::Borrowed),
                _ => raw.duration_ms = self.or_null(Self::float)?,
            }
            if !self.next_member()? {
                return Some(raw);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::parse_fast;
    use crate::event::Event;

    type Parsed = (Event, Option<String>);

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("\"tool_use\"".to_owned()),
            Just("\"code_edit\"".to_owned()),
            Just("\"PreToolUse\"".to_owned()),
            Just("{\"tool_name\":\"bash\",\"duration_ms\":5}".to_owned()),
            Just("{\"tool_name\":\"s-1\",\"duration_ms\":42,\"success\":true}".to_owned()),
            Just("{\"tool_name\":null,\"duration_ms\":12.75}".to_owned()),
            Just("\"session_end\"".to_owned()),
            Just("\"s-1\"".to_owned()),
            Just("\"a\\\"b\"".to_owned()),
            Just("\"tab\there\"".to_owned()),
            Just("\"ünï\"".to_owned()),
            Just("\"2024-05-01T12:00:00Z\"".to_owned()),
            Just("\"2024-05-01T12:00:00.25+02:00\"".to_owned()),
            Just("\"2024-13-01T12:00:00Z\"".to_owned()),
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("false".to_owned()),
            Just("tru".to_owned()),
            Just("0".to_owned()),
            Just("-0".to_owned()),
            Just("01".to_owned()),
            Just("42".to_owned()),
            Just("-3".to_owned()),
            Just("1.".to_owned()),
            Just("12.75".to_owned()),
            Just("1e999".to_owned()),
            Just("2.5E-3".to_owned()),
            Just("18446744073709551616".to_owned()),
            Just("123456789012345678".to_owned()),
            Just("0.1000000000000000055511151231257827".to_owned()),
            Just("[1]".to_owned()),
            Just("{}".to_owned()),
            Just("{\"success\":true,\"accepted\":null,\"prompt_length\":12}".to_owned()),
            Just("{\"success\":1}".to_owned()),
            Just("{\"prompt_length\":-1}".to_owned()),
            Just("{\"prompt_length\":3,\"prompt_length\":4}".to_owned()),
            Just("{\"x\":\"y\", \"accepted\" : false }".to_owned()),
            Just("{\"x\":{}}".to_owned()),
        ]
    }

    fn key() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            Just("event_type"),
            Just("session_id"),
            Just("timestamp"),
            Just("tool_name"),
            Just("duration_ms"),
            Just("payload"),
            Just("event_id"),
            Just("hook_type"),
            Just("other"),
            Just("event\\u005ftype"),
        ]
    }

    fn ws() -> impl Strategy<Value = &'static str> {
        prop_oneof![Just(""), Just(""), Just(" "), Just("\n\t "), Just("\r")]
    }

    fn line() -> impl Strategy<Value = String> {
        let member = (key(), value(), ws(), ws());
        (
            proptest::collection::vec(member, 0..9),
            ws(),
            prop_oneof![Just(""), Just(""), Just(" "), Just("x"), Just("}")],
        )
            .prop_map(|(members, w, trail)| {
                let body: Vec<String> = members
                    .into_iter()
                    .map(|(k, v, a, b)| format!("{a}\"{k}\"{b}:{a}{v}{b}"))
                    .collect();
                format!("{w}{{{}}}{w}{trail}", body.join(","))
            })
    }

    /// A line that certainly parses, with every field in a random order.
    fn good_line() -> impl Strategy<Value = String> {
        (
            Just(vec![
                "\"event_type\":\"tool_use\"",
                "\"session_id\":\"s-42\"",
                "\"timestamp\":\"2024-05-01T12:00:00.5Z\"",
                "\"tool_name\":\"bash\"",
                "\"duration_ms\":12.5",
                "\"payload\":{\"success\":true}",
                "\"hook_type\":\"PostToolUse\"",
                "\"extra\":[1,2]",
            ])
            .prop_shuffle(),
            0usize..8,
        )
            .prop_map(|(members, drop)| {
                let kept: Vec<&str> = members
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| *i != drop)
                    .map(|(_, m)| m)
                    .collect();
                format!("{{{}}}", kept.join(","))
            })
    }

    fn both(
        line: &str,
    ) -> (
        Result<Parsed, crate::EventError>,
        Result<Parsed, crate::EventError>,
    ) {
        let mut intern = |s: &str| Arc::from(s);
        let (mut a, mut b) = (None, None);
        let serde = Event::from_json_serde(line, &mut intern, &mut a)
            .map(|e| (e, a.map(|t| t.into_owned())));
        let fast = Event::from_json_interned(line, &mut intern, &mut b)
            .map(|e| (e, b.map(|t| t.into_owned())));
        (fast, serde)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Every line, taken by the fast path or not, gives exactly what the
        /// serde path gives: the same event, or the same error.
        #[test]
        fn fast_path_agrees_with_the_serde_path(line in line()) {
            let (fast, serde) = both(&line);
            prop_assert_eq!(fast, serde, "{}", line);
        }

        #[test]
        fn fast_path_takes_plain_lines_and_agrees(line in good_line()) {
            let (fast, serde) = both(&line);
            prop_assert_eq!(&fast, &serde, "{}", line);
            // Only known fields, no escapes: the fast path takes it.
            if !line.contains("extra") {
                prop_assert!(parse_fast(&line).is_some(), "{}", line);
            }
        }
    }
}
