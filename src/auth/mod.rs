//! Access tokens for the Understory API.
//!
//! Internal integration keys use the OAuth2 `client_credentials` grant (RFC 6749 §4.4; seeds
//! 000–002). `TokenSource` caches the token in memory, renews it shortly before it expires and
//! on demand after a 401. The third-party `authorization_code` flow with rotating refresh tokens
//! will be a second grant behind the same `TokenSource` (its refresh token kept encrypted at
//! rest); nothing outside this module needs to change for it.

mod client_credentials;
mod form;

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

pub use client_credentials::TokenSource;

/// A bearer token. Its `Debug` never shows it, so it cannot leak through logs or panics.
#[derive(Clone)]
pub struct AccessToken(SecretString);

impl AccessToken {
    pub fn new(token: String) -> Self {
        Self(SecretString::from(token))
    }
    /// The token text, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken([redacted])")
    }
}

impl PartialEq for AccessToken {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The token endpoint refused the request (RFC 6749 §5.2); retrying cannot help.
    #[error("the token endpoint refused the credentials: {error}{}; {hint}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Rejected {
        error: String,
        description: Option<String>,
        hint: &'static str,
    },
    /// The token endpoint answered 429: over the rate budget like any other request.
    #[error("the token endpoint is rate limiting (HTTP 429)")]
    RateLimited,
    /// The token endpoint could not be reached or answered 5xx; worth retrying.
    #[error("the token endpoint is unreachable: {0}")]
    Unreachable(String),
    /// The token endpoint answered something that is not a token response.
    #[error("the token endpoint sent an unexpected answer: {0}")]
    BadResponse(String),
}

impl Error {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unreachable(_) | Self::RateLimited)
    }
}

/// What the operator must change for each RFC 6749 §5.2 error.
fn hint(error: &str) -> &'static str {
    match error {
        "invalid_client" => {
            "check auth.client_id and the client secret (a Backoffice key's secret is shown only once)"
        }
        "invalid_scope" => {
            "grant the key the scopes of the enabled streams in Backoffice, or disable those streams"
        }
        "invalid_request" => "check auth.audience and auth.token_url",
        "unauthorized_client" => {
            "this key may not use the client_credentials grant; create an internal integration key"
        }
        "unsupported_grant_type" => "check auth.token_url points at Understory's token endpoint",
        _ => "check the auth section of the config",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_debug_is_redacted() {
        let t = AccessToken::new("eyJ-very-secret".to_owned());
        assert_eq!(format!("{t:?}"), "AccessToken([redacted])");
    }
}
