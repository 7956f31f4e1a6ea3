//! The sandbox's authorization server: `POST /oauth2/token` and OIDC discovery.
//!
//! Only the `client_credentials` grant (RFC 6749 §4.4) is served today. Grants are dispatched on
//! `grant_type` and tokens are stored as `Grant` records, so `authorization_code` and rotating
//! refresh tokens can be added as two more arms and one more record field.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;

use super::State;
use super::config::AUDIENCE;
use super::world::mix;

/// What an access token allows.
#[derive(Debug, Clone)]
pub struct Grant {
    pub client_id: String,
    pub scopes: BTreeSet<String>,
    expires: Instant,
}

/// Why a bearer token was refused: all answer 401 `UNAUTHORIZED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    Missing,
    Unknown,
    Expired,
}

impl TokenProblem {
    pub fn message(self) -> &'static str {
        match self {
            Self::Missing => "missing bearer token",
            Self::Unknown => "invalid access token",
            Self::Expired => "access token has expired",
        }
    }
}

/// Issued access tokens.
pub struct Tokens {
    seed: u64,
    counter: AtomicU64,
    ttl_ms: AtomicU64,
    issued: Mutex<HashMap<String, Grant>>,
}

impl Tokens {
    pub fn new(seed: u64, ttl: Duration) -> Self {
        Self {
            seed,
            counter: AtomicU64::new(0),
            ttl_ms: AtomicU64::new(ttl.as_millis() as u64),
            issued: Mutex::default(),
        }
    }

    pub fn set_ttl(&self, ttl: Duration) {
        self.ttl_ms.store(ttl.as_millis() as u64, Ordering::Relaxed);
    }

    fn issue(&self, client_id: &str, scopes: BTreeSet<String>) -> (String, u64) {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id());
        let token = format!(
            "sbx.{:016x}{:016x}",
            mix(self.seed ^ n ^ 0x0074_6f6b),
            mix(n.wrapping_mul(31) ^ nanos ^ self.seed.rotate_left(17))
        );
        let ttl = Duration::from_millis(self.ttl_ms.load(Ordering::Relaxed));
        let grant = Grant {
            client_id: client_id.to_owned(),
            scopes,
            expires: Instant::now() + ttl,
        };
        self.issued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token.clone(), grant);
        (token, ttl.as_secs().max(1))
    }

    /// The grant behind an `Authorization` header value.
    pub fn check(&self, authorization: Option<&str>) -> Result<Grant, TokenProblem> {
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .ok_or(TokenProblem::Missing)?;
        let issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        let grant = issued.get(token.trim()).ok_or(TokenProblem::Unknown)?;
        if Instant::now() >= grant.expires {
            return Err(TokenProblem::Expired);
        }
        Ok(grant.clone())
    }

    /// Expires every token issued so far, as if their lifetime had passed.
    pub fn expire_all(&self) {
        let now = Instant::now();
        for g in self.issued.lock().unwrap_or_else(|e| e.into_inner()).values_mut() {
            g.expires = now;
        }
    }

    /// Every token issued so far, so tests can look for them where they must not be.
    pub fn all(&self) -> Vec<String> {
        self.issued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = serde_json::json!({"error": error, "error_description": description});
    (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// `POST /oauth2/token`, form-encoded (RFC 6749 §4.4.2); errors per §5.2.
pub async fn token(AxState(state): AxState<Arc<State>>, headers: HeaderMap, body: Bytes) -> Response {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !form_type.starts_with("application/x-www-form-urlencoded") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded",
        );
    }
    if state.config.strict_tilde && (body.windows(3).any(|w| w.eq_ignore_ascii_case(b"%7e"))) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the request body is malformed: send '~' unescaped",
        );
    }
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |k: &str| form.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let Some(grant_type) = field("grant_type") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "grant_type is required",
        );
    };
    match grant_type {
        "client_credentials" => {}
        // Third-party flows come later; refuse them the way a server without them would.
        other => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("grant type '{other}' is not supported by this sandbox"),
            );
        }
    }
    let (Some(client_id), Some(secret)) = (field("client_id"), field("client_secret")) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed: client_id and client_secret are required",
        );
    };
    let Some(key) = state.config.clients.iter().find(|k| k.client_id == client_id) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
    };
    if key.client_secret != secret {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
    }
    match field("audience") {
        Some(AUDIENCE) => {}
        Some(other) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("requested audience '{other}' has not been whitelisted by the OAuth 2.0 client"),
            );
        }
        None => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "audience is required"),
    }
    let requested: BTreeSet<String> = field("scope")
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(missing) = requested
        .iter()
        .find(|s| *s != "openid" && !key.scopes.contains(*s))
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            &format!("the requested scope '{missing}' is not granted to this client"),
        );
    }
    let scope = requested.iter().cloned().collect::<Vec<_>>().join(" ");
    let (access_token, expires_in) = state.tokens.issue(client_id, requested);
    let body = json!({
        "access_token": access_token,
        "expires_in": expires_in,
        "scope": scope,
        "token_type": "bearer",
    });
    (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// `GET /.well-known/openid-configuration`, pointing at this sandbox.
pub async fn discovery(headers: HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let issuer = format!("http://{host}");
    Json(json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "authorization_endpoint": format!("{issuer}/oauth2/auth"),
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": ["code"],
        "token_endpoint_auth_methods_supported": ["client_secret_post"],
        "scopes_supported": ["openid", "offline", "booking.read", "booking.write", "event.read",
            "experience.read", "marketing.read", "order.read", "webhook.read", "webhook.write"],
    }))
    .into_response()
}
