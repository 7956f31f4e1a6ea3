//! The envelopes the client parses: list pages, sub-resource lists, error bodies, `/v1/me`.
//!
//! Items themselves are not typed here: `crate::streams::read` reads them field by field, so an
//! unexpected shape makes a column NULL instead of failing a page. The sandbox renders its own
//! JSON and shares none of this, so it can send what the job cannot read.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Timestamps are RFC 3339 in the API; parsed so that comparisons do not depend on formatting.
pub type Timestamp = DateTime<Utc>;

/// The envelope of every paged list: the end is `next` empty **or absent** (§1.1).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Page<T> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    pub items: Vec<T>,
}

/// The envelope of order sub-resources: all items, no `next` (§6.13).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Items<T> {
    pub items: Vec<T>,
}

/// The error body of every 400–599 answer from the resource API (§4).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiErrorBody {
    pub code: String,
    pub message: String,
}

/// `GET /v1/me`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Me {
    pub company_id: String,
    pub company_name: String,
    pub user_id: String,
    pub email: String,
}
