//! The sandbox's authorization server: `POST /oauth2/token` for three grants and OIDC discovery
//! (the consent page of the authorization code grant is `consent.rs`).
//!
//! - `client_credentials` (RFC 6749 §4.4) for internal integration keys;
//! - `authorization_code` (RFC 6749 §4.1) for third-party apps: one-shot codes that expire quickly, bound
//!   to the client, the redirect URI and, when the authorize request sent one, a PKCE challenge
//!   (RFC 7636, S256); a second use of a code revokes what the first one issued (RFC 6749 §4.1.2);
//! - `refresh_token` (RFC 6749 §6), issued only with the `offline` scope, and rotated like Ory Hydra's:
//!   every refresh returns a new one and retires the old; presenting a retired one is taken as
//!   theft and revokes the whole chain, access tokens included.
//!
//! Errors follow RFC 6749 §5.2; every refusal of a code or refresh token is `invalid_grant`.
// A ready `Response` is the natural error of an axum handler step; boxing it buys nothing here.
#![allow(clippy::result_large_err)]

use crate::poison::Unpoisoned as _;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;
use chacha20poly1305::aead::{OsRng, rand_core::RngCore};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::State;
use super::config::{AUDIENCE, ClientKey, SandboxConfig};
use super::world::mix;

/// The scope that earns a refresh token (Hydra also accepts the OIDC name).
const OFFLINE_SCOPES: [&str; 2] = ["offline", "offline_access"];

/// What an access token allows.
#[derive(Debug, Clone)]
pub struct Grant {
    pub client_id: String,
    pub scopes: BTreeSet<String>,
    expires: Instant,
    /// The refresh-token chain it belongs to; revoking the chain revokes it.
    chain: Option<u64>,
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

/// What the authorization server has done, for tests to count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthStats {
    pub codes_issued: u64,
    pub codes_exchanged: u64,
    pub refreshes: u64,
    /// Retired refresh tokens presented again (each revoked its chain).
    pub reuses: u64,
    pub chains_revoked: u64,
}

/// A code handed out by the consent step, good for one exchange.
struct Code {
    client_id: String,
    redirect_uri: String,
    scopes: BTreeSet<String>,
    challenge: Option<String>,
    expires: Instant,
    used: bool,
    chain: u64,
}

struct Refresh {
    client_id: String,
    scopes: BTreeSet<String>,
    expires: Instant,
    /// Retired by a rotation: presenting it again is a reuse.
    retired: bool,
    chain: u64,
}

#[derive(Default)]
struct Ledger {
    access: HashMap<String, Grant>,
    codes: HashMap<String, Code>,
    refresh: HashMap<String, Refresh>,
    revoked: HashSet<u64>,
    next_chain: u64,
    stats: AuthStats,
}

impl Ledger {
    fn revoke(&mut self, chain: u64) {
        if self.revoked.insert(chain) {
            self.stats.chains_revoked += 1;
        }
    }
}

/// Issued tokens and codes.
pub struct Tokens {
    seed: u64,
    counter: AtomicU64,
    ttl_ms: AtomicU64,
    code_ttl: Duration,
    refresh_ttl: Duration,
    rotate: bool,
    ledger: Mutex<Ledger>,
}

/// An unguessable token: the authorization server's secrets must not be predictable from the
/// seed, unlike the data.
pub fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

impl Tokens {
    pub fn new(config: &SandboxConfig) -> Self {
        Self {
            seed: config.seed,
            counter: AtomicU64::new(0),
            ttl_ms: AtomicU64::new(config.token_ttl_secs.saturating_mul(1000)),
            code_ttl: Duration::from_secs(config.code_ttl_secs),
            refresh_ttl: Duration::from_secs(config.refresh_token_ttl_secs),
            rotate: config.rotate_refresh_tokens,
            ledger: Mutex::default(),
        }
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.locked()
    }

    pub fn set_ttl(&self, ttl: Duration) {
        self.ttl_ms.store(ttl.as_millis() as u64, Ordering::Relaxed);
    }

    fn issue(
        &self,
        ledger: &mut Ledger,
        client_id: &str,
        scopes: BTreeSet<String>,
        chain: Option<u64>,
    ) -> (String, u64) {
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
            chain,
        };
        ledger.access.insert(token.clone(), grant);
        (token, ttl.as_secs().max(1))
    }

    /// A code for `client_id` (the consent step); see `Code`.
    pub fn issue_code(
        &self,
        client_id: &str,
        redirect_uri: &str,
        scopes: BTreeSet<String>,
        challenge: Option<String>,
    ) -> String {
        let code = random_token("ory_ac_");
        let mut l = self.ledger();
        let chain = l.next_chain;
        l.next_chain += 1;
        l.stats.codes_issued += 1;
        l.codes.insert(
            code.clone(),
            Code {
                client_id: client_id.to_owned(),
                redirect_uri: redirect_uri.to_owned(),
                scopes,
                challenge,
                expires: Instant::now() + self.code_ttl,
                used: false,
                chain,
            },
        );
        code
    }

    /// The grant behind an `Authorization` header value.
    pub fn check(&self, authorization: Option<&str>) -> Result<Grant, TokenProblem> {
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .ok_or(TokenProblem::Missing)?;
        let l = self.ledger();
        let grant = l.access.get(token.trim()).ok_or(TokenProblem::Unknown)?;
        if grant.chain.is_some_and(|c| l.revoked.contains(&c)) {
            return Err(TokenProblem::Unknown);
        }
        if Instant::now() >= grant.expires {
            return Err(TokenProblem::Expired);
        }
        Ok(grant.clone())
    }

    /// Expires every access token issued so far, as if their lifetime had passed.
    pub fn expire_all(&self) {
        let now = Instant::now();
        for g in self.ledger().access.values_mut() {
            g.expires = now;
        }
    }

    /// Every access token, refresh token and code issued so far, so tests can look for them
    /// where they must not be.
    pub fn all(&self) -> Vec<String> {
        let l = self.ledger();
        l.access
            .keys()
            .chain(l.refresh.keys())
            .chain(l.codes.keys())
            .cloned()
            .collect()
    }

    pub fn stats(&self) -> AuthStats {
        self.ledger().stats
    }

    /// A token response (RFC 6749 §5.1): an access token of `chain` (none for `client_credentials`), and
    /// `refresh` when the grant issued one.
    fn respond(
        &self,
        l: &mut Ledger,
        client_id: &str,
        scopes: BTreeSet<String>,
        chain: Option<u64>,
        refresh: Option<String>,
    ) -> Response {
        let scope = scopes.iter().cloned().collect::<Vec<_>>().join(" ");
        let (access_token, expires_in) = self.issue(l, client_id, scopes, chain);
        let mut body = json!({
            "access_token": access_token,
            "expires_in": expires_in,
            "scope": scope,
            "token_type": "bearer",
        });
        if let Some(rt) = refresh {
            body["refresh_token"] = json!(rt);
        }
        ok(body)
    }

    fn new_refresh(
        &self,
        l: &mut Ledger,
        client_id: &str,
        scopes: &BTreeSet<String>,
        chain: u64,
    ) -> Option<String> {
        if !scopes.iter().any(|s| OFFLINE_SCOPES.contains(&s.as_str())) {
            return None;
        }
        let rt = random_token("ory_rt_");
        l.refresh.insert(
            rt.clone(),
            Refresh {
                client_id: client_id.to_owned(),
                scopes: scopes.clone(),
                expires: Instant::now() + self.refresh_ttl,
                retired: false,
                chain,
            },
        );
        Some(rt)
    }

    /// `grant_type=authorization_code` (RFC 6749 §4.1.3).
    fn exchange(
        &self,
        key: &ClientKey,
        code: &str,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
    ) -> Response {
        let mut l = self.ledger();
        let Some(c) = l.codes.get_mut(code) else {
            return invalid_grant("The authorization code is invalid or was not issued by this server");
        };
        if c.used {
            // RFC 6749 §4.1.2: a code used twice may be stolen; what the first use issued is revoked.
            let chain = c.chain;
            l.revoke(chain);
            return invalid_grant("The authorization code has already been used");
        }
        if c.client_id != key.client_id {
            return invalid_grant("The authorization code was issued to another client");
        }
        if Instant::now() >= c.expires {
            return invalid_grant("The authorization code has expired");
        }
        if redirect_uri != Some(c.redirect_uri.as_str()) {
            return invalid_grant("The redirect_uri does not match the one of the authorization request");
        }
        if let Some(challenge) = &c.challenge {
            let expected = verifier.map(|v| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes()))
            });
            if expected.as_deref() != Some(challenge.as_str()) {
                return invalid_grant("The PKCE code_verifier does not match the code_challenge");
            }
        }
        c.used = true;
        let (scopes, chain) = (c.scopes.clone(), c.chain);
        l.stats.codes_exchanged += 1;
        let refresh = self.new_refresh(&mut l, &key.client_id, &scopes, chain);
        self.respond(&mut l, &key.client_id, scopes, Some(chain), refresh)
    }

    /// `grant_type=refresh_token` (RFC 6749 §6), rotating.
    fn refresh(&self, key: &ClientKey, token: &str) -> Response {
        let mut l = self.ledger();
        let Some(r) = l.refresh.get(token) else {
            return invalid_grant("The refresh token is invalid or was not issued by this server");
        };
        let (chain, retired, expires, scopes) = (r.chain, r.retired, r.expires, r.scopes.clone());
        if r.client_id != key.client_id {
            return invalid_grant("The refresh token was issued to another client");
        }
        if retired {
            l.stats.reuses += 1;
            l.revoke(chain);
            return invalid_grant(
                "The refresh token has already been used; every token of this grant is now revoked",
            );
        }
        if l.revoked.contains(&chain) {
            return invalid_grant("The refresh token has been revoked");
        }
        if Instant::now() >= expires {
            return invalid_grant("The refresh token has expired");
        }
        l.stats.refreshes += 1;
        let next = if self.rotate {
            if let Some(r) = l.refresh.get_mut(token) {
                r.retired = true;
            }
            self.new_refresh(&mut l, &key.client_id, &scopes, chain)
        } else {
            None
        };
        self.respond(&mut l, &key.client_id, scopes, Some(chain), next)
    }
}

fn ok(body: serde_json::Value) -> Response {
    (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = serde_json::json!({"error": error, "error_description": description});
    (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

fn invalid_grant(description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

/// `POST /oauth2/token`, form-encoded (RFC 6749 §4.1.3, §4.4.2, §6); errors per RFC 6749 §5.2.
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
    if !["client_credentials", "authorization_code", "refresh_token"].contains(&grant_type) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("grant type '{grant_type}' is not supported by this sandbox"),
        );
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
    if !key.grant_types.contains(grant_type) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            &format!("the OAuth 2.0 client is not allowed to use the grant type '{grant_type}'"),
        );
    }
    match grant_type {
        "authorization_code" => {
            let Some(code) = field("code") else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "code is required");
            };
            state
                .tokens
                .exchange(key, code, field("redirect_uri"), field("code_verifier"))
        }
        "refresh_token" => {
            let Some(rt) = field("refresh_token") else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "refresh_token is required",
                );
            };
            state.tokens.refresh(key, rt)
        }
        _ => client_credentials(&state, key, field("audience"), field("scope")),
    }
}

/// `grant_type=client_credentials` (RFC 6749 §4.4.2), with the audience and scopes Understory's
/// *Authentication* guide requires.
fn client_credentials(
    state: &State,
    key: &ClientKey,
    audience: Option<&str>,
    scope: Option<&str>,
) -> Response {
    if let Err(r) = check_audience(audience) {
        return r;
    }
    let requested = scopes_of(scope);
    if let Err(missing) = check_scopes(key, &requested) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            &format!("the requested scope '{missing}' is not granted to this client"),
        );
    }
    let mut l = state.tokens.ledger();
    state
        .tokens
        .respond(&mut l, &key.client_id, requested, None, None)
}

/// The audience every grant must name; Hydra's wording for any other.
pub fn check_audience(audience: Option<&str>) -> Result<(), Response> {
    match audience {
        Some(AUDIENCE) => Ok(()),
        Some(other) => Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("requested audience '{other}' has not been whitelisted by the OAuth 2.0 client"),
        )),
        None => Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "audience is required",
        )),
    }
}

/// A space-separated `scope` parameter as a set.
pub fn scopes_of(scope: Option<&str>) -> BTreeSet<String> {
    scope
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The first requested scope the client was not granted (`openid` is always allowed).
pub fn check_scopes<'a>(key: &ClientKey, requested: &'a BTreeSet<String>) -> Result<(), &'a str> {
    match requested
        .iter()
        .find(|s| *s != "openid" && !key.scopes.contains(*s))
    {
        Some(missing) => Err(missing),
        None => Ok(()),
    }
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
        "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post"],
        "scopes_supported": ["openid", "offline", "booking.read", "booking.write", "event.read",
            "experience.read", "marketing.read", "order.read", "webhook.read", "webhook.write"],
    }))
    .into_response()
}
