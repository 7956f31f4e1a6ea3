//! The consent step of the authorization code grant: `GET /oauth2/auth` (RFC 6749 §4.1.1) and
//! the customer's answer.
//!
//! A request that names an unknown client or a redirect URI the client has not registered gets
//! an error page and is never redirected (RFC 6749 §4.1.2.1: that would make the server an open
//! redirector). Every other problem goes back to the redirect URI as `error=…` with the `state`.
//! What happens to a valid request is the sandbox's `consent` setting: `page` shows the app,
//! the company and the scopes with Approve and Deny buttons (a form POSTed to
//! `/oauth2/auth/decision`), `approve` and `deny` answer at once, for tests and scripts.

use crate::poison::Unpoisoned as _;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use axum::Form;
use axum::extract::{Query, State as AxState};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::State;
use super::auth::{check_audience, check_scopes, scopes_of};
use super::config::Consent;

/// Hydra refuses a `state` shorter than this ("does not have enough characters").
const MIN_STATE_LEN: usize = 8;

/// An approved-to-be request waiting for the customer's click.
struct Waiting {
    client_id: String,
    redirect_uri: String,
    scopes: BTreeSet<String>,
    state: String,
    challenge: Option<String>,
}

/// The consent setting and the requests shown on a page and not yet answered.
pub struct Consents {
    mode: Mutex<Consent>,
    waiting: Mutex<HashMap<String, Waiting>>,
}

impl Consents {
    pub fn new(mode: Consent) -> Self {
        Self {
            mode: Mutex::new(mode),
            waiting: Mutex::default(),
        }
    }

    pub fn set(&self, mode: Consent) {
        *self.mode.locked() = mode;
    }

    fn mode(&self) -> Consent {
        *self.mode.locked()
    }
}

#[derive(Debug, Deserialize)]
pub struct AuthorizeQuery {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    audience: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head><body><h1>{title}</h1>{body}</body></html>"
    );
    (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

/// Minimal HTML escaping for the few values the page shows.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Sends the browser back to `redirect_uri` with `params` added to its query.
fn back(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return page(StatusCode::BAD_REQUEST, "Invalid redirect_uri", "");
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
    }
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, url.as_str().to_owned())],
    )
        .into_response()
}

fn refuse(redirect_uri: &str, error: &str, description: &str, state: &str) -> Response {
    back(
        redirect_uri,
        &[
            ("error", error),
            ("error_description", description),
            ("state", state),
        ],
    )
}

/// `GET /oauth2/auth`.
pub async fn authorize(AxState(st): AxState<Arc<State>>, Query(q): Query<AuthorizeQuery>) -> Response {
    let Some(key) = q
        .client_id
        .as_deref()
        .and_then(|id| st.config.clients.iter().find(|k| k.client_id == id))
    else {
        return page(
            StatusCode::BAD_REQUEST,
            "Unknown client",
            "<p>The OAuth 2.0 client does not exist (invalid_client).</p>",
        );
    };
    let Some(redirect_uri) = q
        .redirect_uri
        .as_deref()
        .filter(|r| key.redirect_uris.iter().any(|u| u == r))
    else {
        return page(
            StatusCode::BAD_REQUEST,
            "Invalid redirect_uri",
            "<p>The redirect_uri is not one registered for this client (invalid_request).</p>",
        );
    };
    let state = q.state.clone().unwrap_or_default();
    if q.response_type.as_deref() != Some("code") {
        return refuse(
            redirect_uri,
            "unsupported_response_type",
            "The authorization server does not support obtaining a token using this method",
            &state,
        );
    }
    if !key.grant_types.contains("authorization_code") {
        return refuse(
            redirect_uri,
            "unauthorized_client",
            "The client is not authorized to request a token using this method",
            &state,
        );
    }
    if state.len() < MIN_STATE_LEN {
        return refuse(
            redirect_uri,
            "invalid_state",
            "The state is missing or does not have enough characters and is therefore considered too weak",
            &state,
        );
    }
    if check_audience(q.audience.as_deref()).is_err() {
        return refuse(
            redirect_uri,
            "invalid_request",
            "The requested audience has not been whitelisted by the OAuth 2.0 client",
            &state,
        );
    }
    let scopes = scopes_of(q.scope.as_deref());
    if let Err(missing) = check_scopes(key, &scopes) {
        return refuse(
            redirect_uri,
            "invalid_scope",
            &format!("The OAuth 2.0 Client is not allowed to request scope '{missing}'"),
            &state,
        );
    }
    if q.code_challenge.is_some() && q.code_challenge_method.as_deref() != Some("S256") {
        return refuse(
            redirect_uri,
            "invalid_request",
            "code_challenge_method must be S256",
            &state,
        );
    }
    let waiting = Waiting {
        client_id: key.client_id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        scopes,
        state,
        challenge: q.code_challenge.clone(),
    };
    match st.consents.mode() {
        Consent::Approve => approve(&st, waiting),
        Consent::Deny => deny(&waiting),
        Consent::Page => {
            let challenge = super::auth::random_token("");
            let scopes: String = waiting
                .scopes
                .iter()
                .map(|s| format!("<li>{}</li>", esc(s)))
                .collect();
            let body = format!(
                "<p><b>{}</b> asks to access the Understory account of <b>{}</b>:</p><ul>{scopes}</ul>\
                 <form method=\"post\" action=\"/oauth2/auth/decision\">\
                 <input type=\"hidden\" name=\"challenge\" value=\"{challenge}\">\
                 <button name=\"decision\" value=\"approve\">Allow access</button> \
                 <button name=\"decision\" value=\"deny\">Deny</button></form>",
                esc(&key.app_name),
                esc(&key.company_name)
            );
            st.consents.waiting.locked().insert(challenge, waiting);
            page(StatusCode::OK, "Authorize application", &body)
        }
    }
}

fn approve(st: &State, w: Waiting) -> Response {
    let code = st
        .tokens
        .issue_code(&w.client_id, &w.redirect_uri, w.scopes.clone(), w.challenge);
    let scope = w.scopes.iter().cloned().collect::<Vec<_>>().join(" ");
    back(
        &w.redirect_uri,
        &[("code", &code), ("scope", &scope), ("state", &w.state)],
    )
}

fn deny(w: &Waiting) -> Response {
    refuse(
        &w.redirect_uri,
        "access_denied",
        "The user denied the request",
        &w.state,
    )
}

#[derive(Debug, Deserialize)]
pub struct Decision {
    challenge: String,
    decision: String,
}

/// `POST /oauth2/auth/decision`: the consent page's buttons.
pub async fn decide(AxState(st): AxState<Arc<State>>, Form(d): Form<Decision>) -> Response {
    let waiting = st.consents.waiting.locked().remove(&d.challenge);
    let Some(w) = waiting else {
        return page(
            StatusCode::BAD_REQUEST,
            "Unknown consent request",
            "<p>This consent request was answered already or never existed.</p>",
        );
    };
    match d.decision.as_str() {
        "approve" => approve(&st, w),
        _ => deny(&w),
    }
}
