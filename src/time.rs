//! The one time type every layer shares: an instant in UTC. Kept apart from `api` so the
//! store and the streams, which are below the API client, need nothing of it.

use chrono::{DateTime, SecondsFormat, Timelike as _, Utc};

/// Timestamps are RFC 3339 in the API; parsed so that comparisons do not depend on formatting.
pub(crate) type Timestamp = DateTime<Utc>;

/// The one text form of an instant: RFC 3339 with milliseconds and `Z`, for the database (where
/// text compares in time order) and the API's `from`.
///
/// A leap second (`23:59:60`, which chrono keeps as a nanosecond count past one second) is
/// written as the last millisecond before it, `23:59:59.999`: SQLite's date functions read a
/// `:60` as NULL, and the order of instants is kept.
pub(crate) fn iso(t: Timestamp) -> String {
    let t = if t.nanosecond() >= 1_000_000_000 {
        t.with_nanosecond(999_000_000).unwrap_or(t)
    } else {
        t
    };
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An instant read back from the database (`iso`'s form, or any RFC 3339), if it is one.
pub fn from_iso(text: &str) -> Option<Timestamp> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.to_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(s: &str) -> Timestamp {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_leap_second_is_written_as_the_millisecond_before_it() {
        assert_eq!(iso(parsed("2016-12-31T23:59:60Z")), "2016-12-31T23:59:59.999Z");
        assert_eq!(iso(parsed("2016-12-31T23:59:60.5Z")), "2016-12-31T23:59:59.999Z");
        assert_eq!(
            iso(parsed("2016-12-31T23:59:59.123Z")),
            "2016-12-31T23:59:59.123Z"
        );
        assert!(iso(parsed("2016-12-31T23:59:59.998Z")) < iso(parsed("2016-12-31T23:59:60Z")));
        assert!(iso(parsed("2016-12-31T23:59:60Z")) < iso(parsed("2017-01-01T00:00:00Z")));
    }
}
