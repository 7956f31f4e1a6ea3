//! The one time type every layer shares: an instant in UTC. Kept apart from `api` so the
//! store and the streams, which are below the API client, need nothing of it.

use chrono::{DateTime, Utc};

/// Timestamps are RFC 3339 in the API; parsed so that comparisons do not depend on formatting.
pub type Timestamp = DateTime<Utc>;
