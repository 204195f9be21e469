//! Relative times ("3 min ago") that stay current, with the exact time on hover.
//!
//! The server renders times relative to the moment it rendered the page, and the browser
//! hydrates with that same moment, so both produce the same text; only after hydration does
//! the browser switch to its own clock and refresh the texts every 30 seconds.
//!
//! Dates are written out by the few fixed formats below rather than by chrono's `format`:
//! its `strftime` parser and generic formatter are code the browser bundle would otherwise
//! carry for five format strings.

use chrono::{DateTime, Datelike, Timelike, Utc};
use leptos::prelude::*;

/// The browser's clock and time zone, provided as context.
#[derive(Clone, Copy)]
pub struct Clock {
    /// Milliseconds since the epoch; `None` until the page is hydrated (and on the server).
    pub now: RwSignal<Option<i64>>,
    /// The browser's offset from UTC in minutes east; 0 until hydrated.
    pub tz: RwSignal<i32>,
}

impl Clock {
    /// Provides the clock and, in the browser, starts it.
    pub fn provide() -> Clock {
        let clock = Clock { now: RwSignal::new(None), tz: RwSignal::new(0) };
        provide_context(clock);
        #[cfg(feature = "hydrate")]
        Effect::new(move |_| {
            let read = move || {
                let date = js_sys_date();
                clock.now.set(Some(date.0));
                clock.tz.set(date.1);
            };
            read();
            let _ = set_interval_with_handle(read, std::time::Duration::from_secs(30));
        });
        clock
    }
}

/// Now in milliseconds and the offset in minutes east of UTC, from the browser.
#[cfg(feature = "hydrate")]
fn js_sys_date() -> (i64, i32) {
    let d = js_sys::Date::new_0();
    (d.get_time() as i64, -(d.get_timezone_offset() as i32))
}

/// `at` relative to `now`, as people say it.
pub fn relative(at: DateTime<Utc>, now_ms: i64) -> String {
    let secs = (now_ms - at.timestamp_millis()) / 1000;
    let now = DateTime::<Utc>::from_timestamp_millis(now_ms).unwrap_or(at);
    match secs {
        s if s < 60 => "just now".to_string(),
        s if s < 3600 => format!("{} min ago", s / 60),
        s if s < 86_400 => format!("{} h ago", s / 3600),
        s if s < 2 * 86_400 => "yesterday".to_string(),
        s if s < 7 * 86_400 => format!("{} days ago", s / 86_400),
        _ if at.year() == now.year() => format!("{} {}", month(at), at.day()),
        _ => format!("{} {}, {}", month(at), at.day(), at.year()),
    }
}

/// The month's short English name ("Nov").
fn month(at: DateTime<Utc>) -> &'static str {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    MONTHS[at.month0() as usize]
}

/// The date and the time to the minute, in UTC: "2026-11-27 10:00 UTC".
pub fn utc_minute(at: DateTime<Utc>) -> String {
    format!("{} {:02}:{:02} UTC", iso_date(at), at.hour(), at.minute())
}

/// The date and the time to the second, in UTC: "2026-11-27 10:00:05 UTC".
pub fn utc_second(at: DateTime<Utc>) -> String {
    format!("{} {:02}:{:02}:{:02} UTC", iso_date(at), at.hour(), at.minute(), at.second())
}

/// The day of the week, the date and the time to the minute, in UTC: "Fri Nov 27, 10:00 UTC".
pub fn weekday_utc_minute(at: DateTime<Utc>) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let day = DAYS[at.weekday().num_days_from_monday() as usize];
    format!("{day} {} {}, {:02}:{:02} UTC", month(at), at.day(), at.hour(), at.minute())
}

/// The value of a `datetime-local` input for `at`, read as local time: "2026-11-27T10:00:05".
pub fn datetime_local(at: DateTime<Utc>) -> String {
    format!("{}T{:02}:{:02}:{:02}", iso_date(at), at.hour(), at.minute(), at.second())
}

/// A `datetime` attribute's value, to the second: "2026-11-27T10:00:05Z". Not chrono's
/// `to_rfc3339`, whose formatter the browser bundle would carry for it.
pub fn machine_readable(at: DateTime<Utc>) -> String {
    format!("{}T{:02}:{:02}:{:02}Z", iso_date(at), at.hour(), at.minute(), at.second())
}

/// A time in milliseconds since the epoch (as the browser's pages carry times: reading
/// chrono's text formats would take its parsers into the bundle).
pub fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// "2026-11-27".
fn iso_date(at: DateTime<Utc>) -> String {
    format!("{:04}-{:02}-{:02}", at.year(), at.month(), at.day())
}

/// A time (`at`, in milliseconds since the epoch) shown relative to now, with the exact time
/// in its tooltip. `rendered_at` is the moment the server rendered the data (see the
/// module's note).
#[component]
pub fn RelativeTime(at: i64, rendered_at: i64) -> impl IntoView {
    let clock = expect_context::<Clock>();
    let at = from_ms(at);
    let text = move || relative(at, clock.now.get().unwrap_or(rendered_at));
    view! {
        <time datetime=machine_readable(at) title=utc_second(at)>
            {text}
        </time>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_like_speech() {
        let at = DateTime::parse_from_rfc3339("2026-11-27T10:00:00Z").unwrap().with_timezone(&Utc);
        let t = at.timestamp_millis();
        assert_eq!(relative(at, t + 20_000), "just now");
        assert_eq!(relative(at, t + 3 * 60_000), "3 min ago");
        assert_eq!(relative(at, t + 5 * 3_600_000), "5 h ago");
        assert_eq!(relative(at, t + 30 * 3_600_000), "yesterday");
        assert_eq!(relative(at, t + 3 * 86_400_000), "3 days ago");
        assert_eq!(relative(at, t + 20 * 86_400_000), "Nov 27");
        assert_eq!(relative(at, t + 60 * 86_400_000), "Nov 27, 2026");
        assert_eq!(relative(at, t - 5_000), "just now", "a clock slightly behind says just now");
    }

    #[test]
    fn fixed_formats_match_strftime() {
        // The formats they replace, checked against chrono's own `format` on dates that pad
        // (single-digit months, days and hours), every weekday and month, and a leap day.
        let mut at = DateTime::parse_from_rfc3339("2024-01-01T03:04:05Z").unwrap().with_timezone(&Utc);
        for _ in 0..400 {
            assert_eq!(utc_minute(at), at.format("%Y-%m-%d %H:%M UTC").to_string());
            assert_eq!(utc_second(at), at.format("%Y-%m-%d %H:%M:%S UTC").to_string());
            assert_eq!(weekday_utc_minute(at), at.format("%a %b %-d, %H:%M UTC").to_string());
            assert_eq!(datetime_local(at), at.format("%Y-%m-%dT%H:%M:%S").to_string());
            assert_eq!(machine_readable(at), at.format("%Y-%m-%dT%H:%M:%SZ").to_string());
            assert_eq!(from_ms(at.timestamp_millis()), at);
            assert_eq!(format!("{} {}", month(at), at.day()), at.format("%b %-d").to_string());
            at += chrono::Duration::seconds(86_400 + 3_661);
        }
    }
}
