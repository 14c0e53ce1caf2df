//! RFC 3339 timestamps: the common form parsed directly, anything else by
//! the `time` crate.

use std::time::{Duration, SystemTime};

use crate::error::EventError;

/// `text` as an instant, or an error naming the `timestamp` field.
pub(super) fn parse_rfc3339(text: &str) -> Result<SystemTime, EventError> {
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
fn fast_rfc3339(b: &[u8]) -> Option<SystemTime> {
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
