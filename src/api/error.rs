//! Why a request did not produce a usable answer: each failure names the path it asked for.

use std::time::Duration;

/// A request that did not produce a usable answer. Every variant names the URL path (never the
/// query's token or any header) so that the operator can tell which call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 400, 403, 404 and other 4xx: the request itself is wrong, retrying cannot help.
    #[error("GET {path} was refused with HTTP {status} {code}: {message}{}", hint(*status))]
    Refused {
        path: String,
        status: u16,
        code: String,
        message: String,
    },
    /// 401 even with a freshly fetched token.
    #[error(
        "GET {path} was refused with HTTP 401 even with a new token: check the key is still active in Backoffice"
    )]
    Unauthorized { path: String },
    /// 429: over Understory's rate limit.
    #[error("GET {path} was rate limited (HTTP 429)")]
    RateLimited {
        path: String,
        retry_after: Option<Duration>,
    },
    /// 5xx.
    #[error("GET {path} failed with HTTP {status}")]
    Server { path: String, status: u16 },
    /// Connect failure, timeout, reset, or a body cut short.
    #[error("GET {path} failed: {detail}")]
    Network { path: String, detail: String },
    /// The body is larger than `api.max_response_bytes`, decoded: not retried, since the same
    /// request gets the same answer.
    #[error(
        "GET {path} answered with more than {cap} bytes (api.max_response_bytes, decoded); a documented page is far smaller, so the API or a proxy sent something else (raise the limit only if that answer is expected)"
    )]
    TooLarge { path: String, cap: usize },
    /// The body is not the JSON the endpoint documents (garbled, or truncated by a proxy).
    #[error("GET {path} returned a malformed body: {detail}")]
    Malformed { path: String, detail: String },
    #[error(transparent)]
    Auth(#[from] crate::auth::Error),
    /// Retries are exhausted for this request or for the whole run.
    #[error("{last} (gave up after {attempts} attempts{})", if *budget { "; the run's retry budget is spent" } else { "" })]
    GaveUp {
        last: Box<Error>,
        attempts: u32,
        budget: bool,
    },
    /// A by-id answer about another item than the one asked for: not stored, not retried (the
    /// same request gets the same answer).
    #[error("GET {path} answered with item {got}, not the one asked for; nothing of it was stored")]
    WrongItem { path: String, got: String },
    /// An item whose id no URL can address (empty, `.` or `..`): nothing was asked.
    #[error("an item of {list} has an id no URL can address (empty, `.` or `..`); nothing was asked for it")]
    Unaddressable { list: String },
    /// A list handed back a `next` cursor it had already handed out.
    #[error(
        "GET {path} handed back a `next` cursor already followed; stopped instead of asking for ever (nothing of the list was stored)"
    )]
    Looping { path: String },
    /// One item's per-item list ran past `paging::MAX_LIST_ITEMS`.
    #[error(
        "GET {path} ran past {max} items; stopped instead of holding the list whole (nothing of it was stored)"
    )]
    ListTooLong { path: String, max: usize },
    /// A list's `next` cursor is longer than `paging::MAX_CURSOR_BYTES`: nothing was asked.
    #[error(
        "GET {path} handed back a `next` cursor of {len} bytes, longer than the {max} this job sends back; the API sent a cursor this job cannot use (nothing was asked with it)"
    )]
    CursorTooLong { path: String, len: usize, max: usize },
    /// One item's per-item lists added up past `sync.max_in_flight_bytes`.
    #[error(
        "GET {path} added up to more than {max} bytes with the item's other lists; stopped instead of holding the lists whole (sync.max_in_flight_bytes; nothing of them was stored)"
    )]
    ListTooBig { path: String, max: usize },
    /// A body outgrew the room its request reserved while the run's memory budget was full:
    /// the request is sent again once the largest body allowed fits (`ApiClient::get_held`),
    /// so this never leaves the client.
    #[error("GET {path} found no room in the memory budget for its body")]
    NoRoom { path: String },
    /// The run is stopping (SIGTERM/SIGINT); no new request was sent.
    #[error("stopped before GET {path}")]
    Stopped { path: String },
}

fn hint(status: u16) -> &'static str {
    match status {
        403 => " (the key lacks this endpoint's scope: grant it in Backoffice or disable the stream)",
        404 => " (check api.base_url)",
        _ => "",
    }
}

impl Error {
    /// The error that ended the retries, looking through `GaveUp`.
    pub fn root(&self) -> &Error {
        match self {
            Self::GaveUp { last, .. } => last.root(),
            other => other,
        }
    }

    /// True when the server refused a cursor we sent: the pass restarts without it.
    pub(crate) fn is_bad_request(&self) -> bool {
        matches!(self.root(), Self::Refused { status: 400, .. })
    }

    /// True when nothing was asked because no URL addresses the item.
    pub(crate) fn is_unaddressable(&self) -> bool {
        matches!(self.root(), Self::Unaddressable { .. })
    }

    /// True when one item's per-item list was refused for its shape (too long, too large, a
    /// loop, or a cursor too long to send): that item's fault, not the API's as a whole.
    pub(crate) fn is_list_refused(&self) -> bool {
        matches!(
            self.root(),
            Self::ListTooLong { .. }
                | Self::ListTooBig { .. }
                | Self::Looping { .. }
                | Self::CursorTooLong { .. }
        )
    }

    /// True when the key or its token is refused (a 401 after a fresh token, a 403, or the token
    /// endpoint saying no): the operator's to fix, not a moment's failure.
    pub fn is_auth(&self) -> bool {
        match self.root() {
            Self::Unauthorized { .. } | Self::Refused { status: 403, .. } => true,
            Self::Auth(a) => !a.is_transient(),
            _ => false,
        }
    }

    /// True when the API no longer has what was asked for (404).
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self.root(), Self::Refused { status: 404, .. })
    }
}
