//! Access tokens for the Understory API.
//!
//! Two ways in (`auth.method`), one `TokenSource` in front of them:
//! - internal integration keys use the `client_credentials` grant (RFC 6749 §4.4; seeds
//!   000–002);
//! - a third-party app connects a customer once with the authorization code grant (§4.1; seeds
//!   003–004, `authorize` and the `connect` command) and then runs on rotating refresh tokens
//!   (§6, `refresh`), the newest one always stored encrypted at rest (`token_vault`).
//!
//! `TokenSource` caches the access token in memory, renews it shortly before it expires and on
//! demand after a 401; nothing outside this module knows which grant issued it.

pub mod authorize;
mod client_credentials;
pub mod endpoint;
mod form;
mod refresh;
mod source;
pub mod token_vault;

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

pub use client_credentials::ClientCredentials;
pub use endpoint::Endpoint;
pub use refresh::Refresher;
pub use source::{Grant, TokenSource};

use crate::config::{AuthConfig, AuthMethod};

/// The token source `auth` describes; `scopes` are those the enabled streams need.
pub fn source(
    auth: &AuthConfig,
    http: reqwest::Client,
    pace: crate::pace::Pace,
    scopes: &[&str],
    max_body: usize,
) -> TokenSource {
    let endpoint = Endpoint {
        http,
        pace,
        url: auth.token_url.clone(),
        max_body,
    };
    let grant = match &auth.method {
        AuthMethod::ClientCredentials => Grant::ClientCredentials(ClientCredentials {
            client_id: auth.client_id.clone(),
            secret: auth.client_secret.clone(),
            audience: auth.audience.clone(),
            scopes: scopes.join(" "),
        }),
        // The scopes were fixed by the customer's consent; a refresh cannot widen them.
        AuthMethod::AuthorizationCode(tp) => Grant::Refresh(Refresher::new(
            auth.client_id.clone(),
            auth.client_secret.clone(),
            token_vault::Vault::new(tp.token_file.clone()),
            tp.token_key.clone(),
            token_vault::KeyFrom::of(tp.key_is_credential),
        )),
    };
    TokenSource::new(endpoint, grant, auth.renew_before)
}

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
    /// The stored refresh token or its key could not be used.
    #[error(transparent)]
    Vault(#[from] token_vault::Error),
}

impl Error {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unreachable(_) | Self::RateLimited)
    }
}

/// What the operator must change for each RFC 6749 §5.2 error of `grant`.
fn hint(grant: &str, error: &str) -> &'static str {
    match error {
        "invalid_grant" if grant == "refresh_token" => {
            "the stored refresh token is expired, revoked or was already used: re-run `understory-sync connect` to ask the customer again"
        }
        "invalid_grant" => {
            "the authorization code is used or expired (it is good once, for a short time): run `understory-sync connect` again"
        }
        "unauthorized_client" if grant != "client_credentials" => {
            "this client may not use the authorization code grant; ask integrations@understory.io to enable it"
        }
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
