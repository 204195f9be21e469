//! Time as Herald stores it: integer milliseconds since the Unix epoch, UTC.

use chrono::{DateTime, TimeZone, Utc};

/// Now, in stored form.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// A stored time as a date-time.
pub fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// Parses a date-time as clients send it: RFC 3339 (`2024-05-01T10:00:00Z`, with or without
/// fractions or an offset) or a plain date (`2024-05-01`, midnight UTC).
pub fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
        return Some(t.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| Utc.from_utc_datetime(&t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_parse_in_the_forms_clients_send() {
        assert_eq!(parse_instant("2024-05-01").unwrap().timestamp(), 1_714_521_600);
        assert_eq!(parse_instant("2024-05-01T00:00:00.000Z").unwrap().timestamp(), 1_714_521_600);
        assert_eq!(parse_instant("2024-05-01T02:00:00+02:00").unwrap().timestamp(), 1_714_521_600);
        assert!(parse_instant("yesterday").is_none());
        assert_eq!(from_ms(1_714_521_600_123).timestamp_millis(), 1_714_521_600_123);
    }
}
