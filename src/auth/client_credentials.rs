//! The `client_credentials` grant (RFC 6749 §4.4) as Understory's seeds show it: a form POST
//! with `grant_type`, `client_id`, `client_secret`, `audience` and space-separated `scope`.

use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;
use url::Url;

use super::{AccessToken, Error, form, hint};
use crate::pace::Pace;

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
    expires_in: Option<u64>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

struct Cached {
    token: AccessToken,
    renew_at: Instant,
    /// The scopes the server says it granted (RFC 6749 §5.1), if it said.
    scope: Option<String>,
}

/// Hands out a valid access token, fetching a new one only when needed.
pub struct TokenSource {
    http: reqwest::Client,
    /// The job's one pace: token requests count against the same budget as the rest.
    pace: Pace,
    token_url: Url,
    audience: String,
    client_id: String,
    secret: SecretString,
    scopes: String,
    renew_before: Duration,
    /// Held across a fetch, so concurrent streams wait for one token instead of each fetching.
    cached: Mutex<Option<Cached>>,
}

impl TokenSource {
    #[allow(clippy::too_many_arguments)] // one per grant parameter; a struct would only rename them
    pub fn new(
        http: reqwest::Client,
        pace: Pace,
        token_url: Url,
        audience: String,
        client_id: String,
        secret: SecretString,
        scopes: &[&str],
        renew_before: Duration,
    ) -> Self {
        Self {
            http,
            pace,
            token_url,
            audience,
            client_id,
            secret,
            scopes: scopes.join(" "),
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
        let (token, lifetime, scope) = self.fetch().await?;
        // Renew `renew_before` early, but never later than half-way: short-lived tokens would
        // otherwise be renewed before every request or, worse, used after they expired.
        let margin = self.renew_before.min(lifetime / 2);
        *cached = Some(Cached {
            token: token.clone(),
            renew_at: Instant::now() + lifetime - margin,
            scope,
        });
        Ok(token)
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

    /// Forgets `stale` after the API refused it, so the next `token()` fetches a new one.
    pub async fn invalidate(&self, stale: &AccessToken) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|c| &c.token == stale) {
            *cached = None;
        }
    }

    #[tracing::instrument(skip_all, fields(token_url = %self.token_url, client_id = %self.client_id))]
    async fn fetch(&self) -> Result<(AccessToken, Duration, Option<String>), Error> {
        let body = form::encode(&[
            ("grant_type", "client_credentials"),
            ("client_id", &self.client_id),
            ("client_secret", self.secret.expose_secret()),
            ("audience", &self.audience),
            ("scope", &self.scopes),
        ]);
        let permit = self.pace.admit(crate::pace::Lane::Walk).await;
        let resp = self
            .http
            .post(self.token_url.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| Error::Unreachable(crate::http::describe(&e)))?;
        let status = resp.status();
        let retry_after = crate::http::retry_after(resp.headers());
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| Error::Unreachable(crate::http::describe(&e)))?;
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
                    hint: hint(&e.error),
                    error: e.error,
                    description: e.error_description,
                },
                Err(_) => Error::BadResponse(format!("HTTP {status} without an OAuth error body")),
            });
        }
        let token: TokenResponse = serde_json::from_slice(&bytes)
            .map_err(|e| Error::BadResponse(format!("HTTP {status}, body is not a token response: {e}")))?;
        if let Some(kind) = token.token_type.as_deref()
            && !kind.eq_ignore_ascii_case("bearer")
        {
            return Err(Error::BadResponse(format!("token_type '{kind}' is not bearer")));
        }
        // The docs leave the lifetime undocumented; an absent one is treated as the seeds' hour.
        let lifetime = Duration::from_secs(token.expires_in.unwrap_or(3_599).max(1));
        tracing::debug!(
            lifetime_secs = lifetime.as_secs(),
            scope = token.scope.as_deref().unwrap_or(""),
            "fetched access token"
        );
        Ok((AccessToken::new(token.access_token), lifetime, token.scope))
    }
}
