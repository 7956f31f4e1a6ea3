//! The token endpoint (RFC 6749 §3.2): one form POST, shared by every grant, and its answers,
//! a token response (RFC 6749 §5.1) or an error (RFC 6749 §5.2).
//!
//! The client does not follow redirects (http.rs), so neither a form nor a secret can be sent
//! on to another host.

use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use super::error::{Error, hint};
use super::form;
use super::token::AccessToken;
use crate::http::printable;
use crate::pace::{Lane, Pace};

/// The longest access-token lifetime believed: a day. Tokens are renewed before they expire,
/// so a server claiming more only makes us renew sooner than it would need.
const MAX_LIFETIME_SECS: u64 = 24 * 3600;

/// The error body of the token endpoint, RFC 6749 §5.2.
#[derive(Deserialize)]
struct OAuthErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default, deserialize_with = "whole_seconds")]
    expires_in: Option<u64>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// `expires_in` as whole seconds: RFC 6749 §5.1 says a number of seconds, and some servers
/// write it with a fraction (`3600.0`), so any non-negative finite number is taken, floored
/// (a huge one saturates, and is capped by the caller).
fn whole_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    if let Some(secs) = n.as_u64() {
        return Ok(Some(secs));
    }
    match n.as_f64() {
        // `as` saturates: 1e300 becomes u64::MAX.
        Some(f) if f.is_finite() && f >= 0.0 => Ok(Some(f.floor() as u64)),
        _ => Err(serde::de::Error::custom(format!(
            "expires_in {n} is not a non-negative number of seconds"
        ))),
    }
}

/// What the token endpoint issued.
pub struct Issued {
    pub(crate) access_token: AccessToken,
    pub(crate) lifetime: Duration,
    /// The scopes the server says it granted (RFC 6749 §5.1), if it said.
    pub scope: Option<String>,
    /// Sent with `offline` in the grant's scope; may be a new one on every refresh
    /// (`docs/understory-api.md` §3).
    pub refresh_token: Option<SecretString>,
}

/// Where tokens come from, and the pace their requests count against.
pub struct Endpoint {
    pub http: reqwest::Client,
    /// The job's one pace: token requests count against the same budget as the rest.
    pub pace: Pace,
    pub url: Url,
    /// `api.max_response_bytes`: the answer is read up to this, decoded.
    pub max_body: usize,
}

impl Endpoint {
    /// POSTs `pairs` form-encoded and reads the answer.
    #[tracing::instrument(level = "debug", skip_all, fields(token_url = %self.url, grant = grant))]
    pub(crate) async fn request(&self, grant: &str, pairs: &[(&str, &str)]) -> Result<Issued, Error> {
        let mut all = vec![("grant_type", grant)];
        all.extend_from_slice(pairs);
        let body = form::encode(&all);
        let permit = self.pace.admit(Lane::Walk).await;
        let resp = self
            .http
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| Error::Unreachable(crate::http::describe(&e)))?;
        let status = resp.status();
        let retry_after = crate::http::retry_after(resp.headers());
        let bytes = crate::http::read_capped(resp, self.max_body, |_| true)
            .await
            .map_err(|e| match e {
                crate::http::BodyError::TooLarge { cap } => Error::BadResponse(format!(
                    "the answer is larger than {cap} bytes (api.max_response_bytes, decoded)"
                )),
                crate::http::BodyError::Read(e) => Error::Unreachable(crate::http::describe(&e)),
                // The token's body is not counted in the memory budget: its room never refuses.
                crate::http::BodyError::NoRoom => {
                    Error::Unreachable("the answer found no room in memory".to_owned())
                }
            })?;
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            permit.throttled(retry_after);
            return Err(Error::RateLimited);
        }
        permit.success();
        if status.is_server_error() {
            return Err(Error::Unreachable(format!("HTTP {status}")));
        }
        if !status.is_success() {
            return Err(match serde_json::from_slice::<OAuthErrorBody>(&bytes) {
                Ok(e) => Error::Rejected {
                    hint: hint(grant, &e.error),
                    error: printable(&e.error, 64),
                    description: e
                        .error_description
                        .map(|d| printable(&d, crate::http::MESSAGE_CHARS)),
                },
                Err(_) => Error::BadResponse(format!("HTTP {status} without an OAuth error body")),
            });
        }
        let token: TokenResponse = serde_json::from_slice(&bytes).map_err(|e| {
            Error::BadResponse(format!(
                "HTTP {status}, body is not a token response: {}",
                printable(&e.to_string(), crate::http::MESSAGE_CHARS)
            ))
        })?;
        if let Some(kind) = token.token_type.as_deref()
            && !kind.eq_ignore_ascii_case("bearer")
        {
            return Err(Error::BadResponse(format!(
                "token_type '{}' is not bearer",
                printable(kind, 64)
            )));
        }
        // The docs fix no lifetime; an absent one is taken as the *Authentication* guide's 3599 s,
        // and a huge one as a day (the clock arithmetic must not overflow on a server's word).
        let lifetime = Duration::from_secs(token.expires_in.unwrap_or(3_599).clamp(1, MAX_LIFETIME_SECS));
        tracing::debug!(
            lifetime_secs = lifetime.as_secs(),
            scope = %printable(token.scope.as_deref().unwrap_or(""), 200),
            refresh_token = token.refresh_token.is_some(),
            "token endpoint issued an access token"
        );
        Ok(Issued {
            access_token: AccessToken::new(token.access_token),
            lifetime,
            scope: token.scope,
            refresh_token: token
                .refresh_token
                .filter(|t| !t.is_empty())
                .map(SecretString::from),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expires_in(text: &str) -> Result<Option<u64>, String> {
        serde_json::from_str::<TokenResponse>(&format!(r#"{{"access_token":"a"{text}}}"#))
            .map(|t| t.expires_in)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn expires_in_is_any_non_negative_number_of_seconds_floored() {
        assert_eq!(expires_in(r#","expires_in":3600"#), Ok(Some(3600)));
        assert_eq!(expires_in(r#","expires_in":3600.0"#), Ok(Some(3600)));
        assert_eq!(expires_in(r#","expires_in":3599.9"#), Ok(Some(3599)));
        assert_eq!(expires_in(r#","expires_in":1e300"#), Ok(Some(u64::MAX)));
        assert_eq!(expires_in(r#","expires_in":null"#), Ok(None));
        assert_eq!(expires_in(""), Ok(None));
        for refused in ["-1", "-0.5", "\"3600\""] {
            assert!(
                expires_in(&format!(r#","expires_in":{refused}"#)).is_err(),
                "{refused}"
            );
        }
    }
}
