//! The one time type every layer shares: an instant in UTC. Kept apart from `api` so the
//! store and the streams, which are below the API client, need nothing of it.

use chrono::{DateTime, SecondsFormat, Utc};

/// Timestamps are RFC 3339 in the API; parsed so that comparisons do not depend on formatting.
pub type Timestamp = DateTime<Utc>;

/// The one text form of an instant: RFC 3339 with milliseconds and `Z`, for the database (where
/// text compares in time order) and the API's `from`.
pub fn iso(t: Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}
