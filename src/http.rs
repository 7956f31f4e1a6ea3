//! The one `reqwest::Client` every request uses, and what both the token endpoint and the API
//! need to read from an answer: a failure described in one line, a `Retry-After`.
//!
//! Shared by `auth` and `api` so that neither imports the other's internals.

use std::time::Duration;

use reqwest::header::{ACCEPT, ACCEPT_LANGUAGE, HeaderMap, HeaderValue};

use crate::config::ApiConfig;

/// Builds the one HTTP client every request uses. Redirects are never followed: a token must
/// not be replayed to wherever a `Location` points (oauth2-rs's SSRF warning).
pub fn build(cfg: &ApiConfig) -> Result<reqwest::Client, String> {
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    // Required by experiences; harmless elsewhere, and one header for all keeps it simple.
    let lang = HeaderValue::from_str(&cfg.accept_language)
        .map_err(|_| "api.accept_language is not a valid header value".to_owned())?;
    headers.insert(ACCEPT_LANGUAGE, lang);
    reqwest::Client::builder()
        .user_agent(cfg.user_agent.clone())
        .default_headers(headers)
        .connect_timeout(cfg.connect_timeout)
        .timeout(cfg.request_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .gzip(true)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// A `Retry-After` given in seconds (the only form Understory could plausibly send).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// The server's clock as its `Date` header states it (RFC 9110 §6.6.1, IMF-fixdate), if the
/// header is there and reads.
pub(crate) fn server_date(headers: &reqwest::header::HeaderMap) -> Option<chrono::DateTime<chrono::Utc>> {
    let text = headers.get(reqwest::header::DATE)?.to_str().ok()?;
    chrono::DateTime::parse_from_rfc2822(text.trim())
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// A `reqwest` error as one line, with its causes but never a URL query (tokens never travel
/// in URLs here, but cursors do and they are noise).
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the response body was cut short"
    } else if e.is_request() {
        "the connection failed"
    } else {
        "HTTP error"
    };
    let mut detail = kind.to_owned();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    detail
}

/// Why a body could not be read whole.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// More than the cap, decoded (a gzip body counts as what it inflates to).
    TooLarge {
        cap: usize,
    },
    Read(reqwest::Error),
    /// The caller's `room` refused the body's next chunk (the run's memory budget is full).
    NoRoom,
}

/// Reads `resp`'s body, decoded, up to `cap` bytes: past it the read stops, so memory stays
/// bounded whatever the server sends (a gzip bomb, a page of a million items). `room` is asked
/// before each chunk is kept, with the length the body would reach (the run's memory budget,
/// `memory::Room::grow`); when it refuses, the read stops with `NoRoom`.
pub(crate) async fn read_capped(
    mut resp: reqwest::Response,
    cap: usize,
    mut room: impl FnMut(usize) -> bool,
) -> Result<bytes::Bytes, BodyError> {
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(BodyError::TooLarge { cap });
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Read)? {
        let total = body.len() + chunk.len();
        if total > cap {
            return Err(BodyError::TooLarge { cap });
        }
        if !room(total) {
            return Err(BodyError::NoRoom);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Server text (an error `code` or `message`, an OAuth `error_description`, a parser's quote of
/// a body) made safe to put in a log line, an `error:` line, `sync_runs` or `status`: control
/// characters (ESC, newlines, C1, bidi overrides) are written as `\u{…}` escapes, so a server
/// cannot forge a second log line or recolour a terminal, and the text is cut at `max_chars`.
pub fn printable(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars * 2));
    for (n, c) in text.chars().enumerate() {
        if n == max_chars {
            out.push('…');
            break;
        }
        let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || bidi {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// How much of a server's message is kept: enough to read, not a page of HTML.
pub(crate) const MESSAGE_CHARS: usize = 300;

#[cfg(test)]
mod printable_tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_long_text_cut() {
        assert_eq!(
            printable("bad\n\u{1b}[31merror: forged\r", 100),
            "bad\\u{a}\\u{1b}[31merror: forged\\u{d}"
        );
        assert_eq!(printable("\u{202e}abc", 100), "\\u{202e}abc");
        assert_eq!(printable("abcdef", 3), "abc…");
        assert_eq!(printable("plain text, ünïcode", 100), "plain text, ünïcode");
    }
}
