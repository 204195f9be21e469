//! A notification's timestamps written as chrono writes them, in one piece.
//!
//! chrono's `Serialize` writes RFC 3339 (`2026-12-06T05:32:57.123Z`: UTC as `Z`, the fraction
//! of a second in 0, 3, 6 or 9 digits as it needs) a character or two at a time through
//! `collect_str`, and serde_json checks each piece for characters to escape on its own: about
//! 5% of the instructions of an inbox page, which carries two or three timestamps for each of
//! its notifications. Here the text is built in a buffer on the stack and handed over once.
//! The text is the same, byte for byte (the tests compare the two); years outside 0–9999,
//! which RFC 3339 cannot write, are left to chrono.

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use serde::Serializer;

/// The longest text written here: `9999-12-31T23:59:60.999999999Z`.
const LONGEST: usize = 30;

/// Serializes `t` as chrono does, for `#[serde(serialize_with)]`.
pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; LONGEST];
    match write(t, &mut buf) {
        Some(len) => s.serialize_str(std::str::from_utf8(&buf[..len]).unwrap_or_default()),
        None => s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
    }
}

/// [`serialize`] for an optional timestamp: `None` is `null`.
pub fn serialize_option<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => serialize(t, s),
        None => s.serialize_none(),
    }
}

/// Writes `t` into `out`; its length, or `None` for a year RFC 3339 has no four digits for.
fn write(t: &DateTime<Utc>, out: &mut [u8; LONGEST]) -> Option<usize> {
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    // A leap second (a nanosecond count past one second) is written as second 60.
    let (mut second, mut nano) = (t.second(), t.nanosecond());
    if nano >= 1_000_000_000 {
        second += 1;
        nano -= 1_000_000_000;
    }
    let mut two = |at: usize, v: u32| {
        out[at] = b'0' + (v / 10) as u8;
        out[at + 1] = b'0' + (v % 10) as u8;
    };
    two(0, year / 100);
    two(2, year % 100);
    two(5, t.month());
    two(8, t.day());
    two(11, t.hour());
    two(14, t.minute());
    two(17, second);
    out[4] = b'-';
    out[7] = b'-';
    out[10] = b'T';
    out[13] = b':';
    out[16] = b':';
    let mut len = 19;
    let digits = match nano {
        0 => 0,
        n if n % 1_000_000 == 0 => 3,
        n if n % 1_000 == 0 => 6,
        _ => 9,
    };
    if digits > 0 {
        out[len] = b'.';
        let mut fraction = nano / 10u32.pow(9 - digits as u32);
        for at in (len + 1..=len + digits).rev() {
            out[at] = b'0' + (fraction % 10) as u8;
            fraction /= 10;
        }
        len += 1 + digits;
    }
    out[len] = b'Z';
    Some(len + 1)
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone};

    use super::*;

    /// What chrono's own `Serialize` writes.
    fn chrono_json(t: &DateTime<Utc>) -> String {
        serde_json::to_string(t).unwrap()
    }

    fn ours(t: &DateTime<Utc>) -> String {
        let mut out = Vec::new();
        serialize(t, &mut serde_json::Serializer::new(&mut out)).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn writes_what_chrono_writes_for_every_kind_of_fraction() {
        // A spread of instants over the years, each with no fraction and with fractions
        // that need 3, 6 and 9 digits (leading and trailing zeros included).
        let fractions = [0, 1_000_000, 120_000_000, 999_000_000, 1_000, 450_500_000, 1, 5, 123_456_789, 999_999_999];
        let mut s: i64 = 0;
        for step in 0..2_000i64 {
            s = (s + 7_919 * step + 86_399) % 253_402_300_799; // up to 9999-12-31T23:59:59
            for nano in fractions {
                let t = Utc.timestamp_opt(s, nano).unwrap();
                assert_eq!(ours(&t), chrono_json(&t), "{t:?}");
            }
        }
        for t in [
            Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(2026, 12, 6, 5, 32, 57).unwrap() + chrono::Duration::milliseconds(7),
        ] {
            assert_eq!(ours(&t), chrono_json(&t), "{t:?}");
        }
    }

    #[test]
    fn writes_a_leap_second_and_years_beyond_four_digits_as_chrono_does() {
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31).unwrap().and_hms_nano_opt(23, 59, 59, 1_500_000_000).unwrap();
        let leap = Utc.from_utc_datetime(&leap);
        assert_eq!(ours(&leap), "\"2016-12-31T23:59:60.500Z\"");
        assert_eq!(ours(&leap), chrono_json(&leap));
        for year in [-1, -10_000, 10_000, 200_000] {
            let t = Utc.with_ymd_and_hms(year, 3, 4, 5, 6, 7).unwrap();
            assert_eq!(ours(&t), chrono_json(&t), "{t:?}");
        }
    }

    #[test]
    fn writes_null_for_no_time() {
        let mut out = Vec::new();
        serialize_option(&None, &mut serde_json::Serializer::new(&mut out)).unwrap();
        assert_eq!(out, b"null");
    }
}
