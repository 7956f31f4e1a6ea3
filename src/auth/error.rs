//! Why no token could be had, with what the operator must change.

use super::token_vault;

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
pub(super) fn hint(grant: &str, error: &str) -> &'static str {
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
