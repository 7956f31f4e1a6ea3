//! `TokenSource`: the access token every request carries, cached in memory and renewed shortly
//! before it expires or at once after a 401, whichever grant issues it.

use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::client_credentials::ClientCredentials;
use super::endpoint::{Endpoint, Issued};
use super::error::Error;
use super::refresh::Refresher;
use super::token::AccessToken;
use super::token_vault;
use super::token_vault::Info;
use crate::config::{AuthConfig, AuthMethod};

/// How access tokens are obtained (`auth.method`).
pub(crate) enum Grant {
    /// An internal integration key (Understory's *Authentication* guide).
    ClientCredentials(ClientCredentials),
    /// A third-party connection made by `connect` (Understory's *Third-party integrations* guide).
    Refresh(Refresher),
}

struct Cached {
    token: AccessToken,
    renew_at: Instant,
    scope: Option<String>,
}

/// Hands out a valid access token, fetching a new one only when needed.
pub struct TokenSource {
    endpoint: Endpoint,
    grant: Grant,
    renew_before: Duration,
    /// Held across a fetch, so concurrent streams wait for one token instead of each fetching
    /// (for a refresh token, two fetches at once would be a reuse).
    cached: Mutex<Option<Cached>>,
}

impl TokenSource {
    pub(crate) fn new(endpoint: Endpoint, grant: Grant, renew_before: Duration) -> Self {
        Self {
            endpoint,
            grant,
            renew_before,
            cached: Mutex::new(None),
        }
    }

    /// A token valid for a while yet.
    pub async fn token(&self) -> Result<AccessToken, Error> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && Instant::now() < c.renew_at
        {
            return Ok(c.token.clone());
        }
        let Issued {
            access_token,
            lifetime,
            scope,
            ..
        } = match &self.grant {
            Grant::ClientCredentials(cc) => cc.fetch(&self.endpoint).await?,
            Grant::Refresh(r) => r.fetch(&self.endpoint).await?,
        };
        // Renew `renew_before` early, but never later than half-way: short-lived tokens would
        // otherwise be renewed before every request or, worse, used after they expired.
        let margin = self.renew_before.min(lifetime / 2);
        *cached = Some(Cached {
            token: access_token.clone(),
            renew_at: Instant::now() + lifetime - margin,
            scope,
        });
        Ok(access_token)
    }

    /// The scopes granted with the current token (after `token()`), as the server listed them.
    pub async fn granted_scopes(&self) -> Option<Vec<String>> {
        let cached = self.cached.lock().await;
        let scope = cached.as_ref()?.scope.as_ref()?;
        Some(
            scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }

    /// The stored refresh token's metadata, for a third-party connection after a refresh.
    pub fn refresh_token_info(&self) -> Option<Info> {
        match &self.grant {
            Grant::Refresh(r) => r.info(),
            Grant::ClientCredentials(_) => None,
        }
    }

    /// Forgets `stale` after the API refused it, so the next `token()` fetches a new one.
    pub(crate) async fn invalidate(&self, stale: &AccessToken) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|c| &c.token == stale) {
            *cached = None;
        }
    }
}

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
