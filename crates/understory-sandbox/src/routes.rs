//! The sandbox's resource API under `/v1` and its admin controls under `/_sandbox`.
// A ready `Response` is the natural error of an axum handler step; boxing it buys nothing here.
#![allow(clippy::result_large_err)]

use crate::poison::UnpoisonedRw as _;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::config::EndOfList;
use super::limits::Slot;
use super::resources::{self, List, PerParent, Range, Resource, Shape};
use super::webhooks::subscriptions::{self, Refusal};
use super::world::Selection;
use super::world::{self, Kind, LANGUAGES, Sort, World};
use super::{State, auth, consent};

/// Where webhook subscriptions are created, and under it replaced and deleted.
const SUBSCRIPTIONS: &str = "/v1/webhook-subscriptions";
/// The scope those writes need (`docs/understory-api.md` §1).
const WEBHOOK_WRITE: &str = "webhook.write";

pub fn router(state: Arc<State>) -> Router {
    let mut router = Router::new()
        .route("/.well-known/openid-configuration", get(auth::discovery))
        .route("/oauth2/token", post(auth::token))
        .route("/oauth2/auth", get(consent::authorize))
        .route("/oauth2/auth/decision", post(consent::decide))
        .route("/v1/me", get(me));
    for res in resources::ALL {
        router = resource(router, res);
    }
    // Beside the list's GET routes at the same paths.
    let router = router.route(SUBSCRIPTIONS, post(create_subscription)).route(
        &format!("{SUBSCRIPTIONS}/{{id}}"),
        put(replace_subscription).delete(delete_subscription),
    );
    let router = router
        .route("/_sandbox/mutate", post(mutate))
        .route("/_sandbox/touch", post(touch))
        .route("/_sandbox/expire-cursors", post(expire_cursors))
        .route("/_sandbox/expire-tokens", post(expire_tokens))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such endpoint") });
    let gzip = state.config.gzip;
    let router = router.with_state(state);
    if gzip {
        // The fastest level: the sandbox shares the machine with the job it serves, and its
        // cost per row must stay small beside the job's (the bytes on loopback are free).
        router.layer(
            tower_http::compression::CompressionLayer::new()
                .gzip(true)
                .quality(tower_http::CompressionLevel::Fastest),
        )
    } else {
        router
    }
}

/// The routes of one resource: a list with its items by id, or a per-parent list.
fn resource(router: Router<Arc<State>>, res: &'static Resource) -> Router<Arc<State>> {
    match &res.shape {
        Shape::List(l) => router
            .route(
                l.path,
                get(
                    move |s: AxState<Arc<State>>, h: HeaderMap, q: Query<ListQuery>| async move {
                        list(&s, &h, &q, res, l)
                    },
                ),
            )
            .route(
                &format!("{}/{{id}}", l.path),
                get(
                    move |s: AxState<Arc<State>>, h: HeaderMap, Path(id): Path<String>| async move {
                        item(&s, &h, res.scope, l, &id)
                    },
                ),
            ),
        // A list answered whole takes no query: whatever is asked is ignored, as before paging.
        Shape::PerParent(p) if p.paged => {
            router.route(
                &res.route(),
                get(
                    move |s: AxState<Arc<State>>,
                          h: HeaderMap,
                          Path(id): Path<String>,
                          q: Query<ListQuery>| async move {
                        per_parent(&s, &h, Some(&q), res, p, &id)
                    },
                ),
            )
        }
        Shape::PerParent(p) => router.route(
            &res.route(),
            get(
                move |s: AxState<Arc<State>>, h: HeaderMap, Path(id): Path<String>| async move {
                    per_parent(&s, &h, None, res, p, &id)
                },
            ),
        ),
    }
}

/// The API's error body (`docs/understory-api.md` §4) with `code` and `message`.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"code": code, "message": message}))).into_response()
}

fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
}

/// A 429 as the real API sends it: no headers unless configured (`docs/understory-api.md` §6.7).
pub fn too_many(retry_after: Option<u64>, why: &str) -> Response {
    let mut resp = error(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS", why);
    if let Some(secs) = retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// Checks user agent, token, scope and rate limit, in that order; the slot is held until the
/// answer is built so the concurrency cap counts requests in flight.
fn admit(state: &State, headers: &HeaderMap, scope: Option<&str>) -> Result<(auth::Grant, Slot), Response> {
    if state.config.require_user_agent && !headers.contains_key(header::USER_AGENT) {
        return Err(bad_request("a User-Agent header is required"));
    }
    let authz = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let grant = state
        .tokens
        .check(authz)
        .map_err(|p| error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", p.message()))?;
    if let Some(scope) = scope
        && !grant.scopes.contains(scope)
    {
        return Err(error(
            StatusCode::FORBIDDEN,
            "UNAUTHORIZED",
            &format!("the access token lacks the '{scope}' scope"),
        ));
    }
    let slot = state
        .limiter
        .admit(&grant.client_id)
        .map_err(|o| too_many(o.retry_after, o.why))?;
    Ok((grant, slot))
}

fn world(state: &State) -> std::sync::RwLockReadGuard<'_, World> {
    state.world.read_locked()
}

async fn me(AxState(state): AxState<Arc<State>>, headers: HeaderMap) -> Response {
    let (grant, _slot) = match admit(&state, &headers, None) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let w = world(&state);
    let key = state
        .config
        .clients
        .iter()
        .find(|k| k.client_id == grant.client_id);
    Json(json!({
        "company_id": w.company_id(),
        "company_name": key.map_or("", |k| k.company_name.as_str()),
        "user_id": format!("integration:{}", grant.client_id),
        "email": "integrations@example.org",
    }))
    .into_response()
}

/// Query parameters of every list; all strings so bad values get the API's own 400 body.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    cursor: Option<String>,
    limit: Option<String>,
    sort: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// The language to render a localized resource in: the best `Accept-Language` entry the storefront has.
fn language(headers: &HeaderMap) -> Result<&'static str, Response> {
    let raw = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| bad_request("the Accept-Language header is required"))?;
    let mut ranked: Vec<(f32, &str)> = raw
        .split(',')
        .filter_map(|part| {
            let mut it = part.split(';');
            let tag = it.next()?.trim();
            let q = it
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse().ok())
                .unwrap_or(1.0);
            Some((q, tag))
        })
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    ranked
        .iter()
        .find_map(|(_, tag)| {
            let primary = tag.split('-').next().unwrap_or_default();
            LANGUAGES.iter().find(|l| **l == primary).copied()
        })
        .ok_or_else(|| {
            bad_request(&format!(
                "none of the languages '{raw}' is offered; use one of da, en, de"
            ))
        })
}

/// The language a request asks for: required by localized resources, `en` for the others.
fn language_for(headers: &HeaderMap, localized: bool) -> Result<&'static str, Response> {
    if localized { language(headers) } else { Ok("en") }
}

/// `GET` a top-level list: checks, then the page its cursor points at.
fn list(
    state: &State,
    headers: &HeaderMap,
    q: &ListQuery,
    res: &'static Resource,
    l: &'static List,
) -> Response {
    let (grant, _slot) = match admit(state, headers, Some(res.scope)) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let lang = match language_for(headers, l.localized) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let limit = match limit(state, q, l.max_limit) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let sort = match (q.sort.as_deref(), l.sortable) {
        (None | Some(""), _) => Sort::CreatedDesc,
        (Some(raw), true) => match Sort::parse(raw) {
            Ok(s) => s,
            Err(m) => return bad_request(&m),
        },
        (Some(_), false) => return bad_request("this list cannot be sorted"),
    };
    let [from, to] = match range(q, l.range) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let query = world::mix(
        world::hash_str(l.path).rotate_left(13)
            ^ (sort as u64) << 48
            ^ world::mix(from.unwrap_or(i64::MIN) as u64)
            ^ world::mix(to.unwrap_or(i64::MAX) as u64).rotate_left(7)
            ^ world::hash_str(&grant.client_id),
    );
    let pos = match position(state, q, query) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let w = world(state);
    let selection = Selection {
        sort,
        from,
        to,
        pos,
        limit,
    };
    let (rows, more) = (l.select)(&w, &selection);
    let items: Vec<Arc<RawValue>> = rows
        .iter()
        .map(|&i| {
            let i = i as usize;
            state
                .rendered
                .get(res.stream, i, lang, || (l.render)(&w, i, lang))
        })
        .collect();
    let items: Vec<&RawValue> = items.iter().map(|t| &**t).collect();
    page(
        state,
        w.seed() ^ world::hash_str(l.path),
        &items,
        more,
        pos,
        query,
    )
}

/// The `from`/`to` a list request filters on, checked against what the list accepts.
fn range(q: &ListQuery, accepted: Range) -> Result<[Option<i64>; 2], Response> {
    let parse = match accepted {
        Range::LocalStart => world::parse_local,
        Range::Created | Range::None => world::parse_instant,
    };
    let mut range = [None, None];
    for (slot, (name, raw)) in range.iter_mut().zip([("from", &q.from), ("to", &q.to)]) {
        if let Some(raw) = raw.as_deref().filter(|r| !r.is_empty()) {
            if accepted == Range::None {
                return Err(bad_request(&format!("'{name}' is not supported on this list")));
            }
            match parse(raw) {
                Some(t) => *slot = Some(t),
                None => {
                    return Err(bad_request(&format!(
                        "'{name}' must be an RFC 3339 date-time, got '{raw}'"
                    )));
                }
            }
        }
    }
    Ok(range)
}

/// Where the page starts: 0, or the position the cursor carries if it is valid for `query`.
fn position(state: &State, q: &ListQuery, query: u64) -> Result<usize, Response> {
    match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => Ok(0),
        Some(raw) => state
            .cursors
            .check(raw, query)
            .map(|c| c.pos as usize)
            .map_err(|e| error(StatusCode::BAD_REQUEST, "INVALID_CURSOR", e.message())),
    }
}

/// The `limit` asked for, checked against the list's bounds (or clamped, in clamp mode).
fn limit(state: &State, q: &ListQuery, max: usize) -> Result<usize, Response> {
    match q.limit.as_deref() {
        None | Some("") => Ok(100.min(max)),
        Some(raw) => match raw.parse::<i64>() {
            Ok(n) if (1..=max as i64).contains(&n) => Ok(n as usize),
            Ok(n) if state.config.clamp_limit => Ok(n.clamp(1, max as i64) as usize),
            _ => Err(bad_request(&format!(
                "limit must be an integer between 1 and {max}"
            ))),
        },
    }
}

/// A page of a list: `items` from `pos`, with a cursor when `more` follow, or the end of the
/// list in the configured form (`salt` picks it in mixed mode).
fn page<T: Serialize>(state: &State, salt: u64, items: &[T], more: bool, pos: usize, query: u64) -> Response {
    let next = if more {
        Some(json!(state.cursors.issue((pos + items.len()) as u64, query)))
    } else if state.config.data.variants {
        Some(Value::Null)
    } else {
        match state.config.end_of_list {
            EndOfList::Empty => Some(json!("")),
            EndOfList::Absent => None,
            EndOfList::Mixed => (world::mix(salt ^ pos as u64) & 1 == 0).then(|| json!("")),
        }
    };
    Json(Page { next, items }).into_response()
}

/// A list page: `{next, items}`, or `{items}` when the end of the list is an absent `next`.
#[derive(Serialize)]
struct Page<'a, T> {
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<Value>,
    items: &'a [T],
}

/// `GET` one parent's list: paged (`cursor` and `limit`, the cursor bound to this parent, client
/// and language) or answered whole as `{items}`.
fn per_parent(
    state: &State,
    headers: &HeaderMap,
    q: Option<&ListQuery>,
    res: &'static Resource,
    p: &'static PerParent,
    id: &str,
) -> Response {
    let (grant, _slot) = match admit(state, headers, Some(res.scope)) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let lang = match language_for(headers, p.localized) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let parent = p.parent.list().expect("a parent is a top-level list");
    let Some(q) = q else {
        let w = world(state);
        return match found(&w, parent, id) {
            Ok(i) => Json(json!({"items": (p.render)(&w, i, lang)})).into_response(),
            Err(r) => r,
        };
    };
    let limit = match limit(state, q, 100) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let w = world(state);
    let i = match found(&w, parent, id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let list = world::hash_str(res.stream);
    let query = world::mix(list ^ i as u64 ^ world::hash_str(&grant.client_id) ^ world::hash_str(lang));
    let pos = match position(state, q, query) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let all = (p.render)(&w, i, lang);
    let end = pos.saturating_add(limit).min(all.len());
    let more = end < all.len();
    let items = all.get(pos.min(end)..end).unwrap_or_default();
    page(state, w.seed() ^ list, items, more, pos, query)
}

fn found(w: &World, l: &List, id: &str) -> Result<usize, Response> {
    (l.find)(w, id).ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("no such resource: {id}"),
        )
    })
}

/// `GET` one item of a list by id, after the usual checks.
fn item(state: &State, headers: &HeaderMap, scope: &str, l: &'static List, id: &str) -> Response {
    let lang = match language_for(headers, l.localized) {
        Ok(l) => l,
        Err(r) => return r,
    };
    if let Err(r) = admit(state, headers, Some(scope)) {
        return r;
    }
    let w = world(state);
    match found(&w, l, id) {
        Ok(i) => Json((l.render)(&w, i, lang)).into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct MutateQuery {
    steps: Option<u32>,
}

/// `POST /_sandbox/mutate?steps=N`: advances the simulated clock N steps.
async fn mutate(AxState(s): AxState<Arc<State>>, Query(q): Query<MutateQuery>) -> Response {
    s.mutate(q.steps.unwrap_or(1));
    let w = world(&s);
    Json(json!({ "now": w.now(), "bookings": w.booking_count(), "consents": w.consent_count() }))
        .into_response()
}

async fn expire_cursors(AxState(s): AxState<Arc<State>>) -> StatusCode {
    s.cursors.expire_all();
    StatusCode::NO_CONTENT
}

async fn expire_tokens(AxState(s): AxState<Arc<State>>) -> StatusCode {
    s.tokens.expire_all();
    StatusCode::NO_CONTENT
}

/// An answer of a subscription write, or its refusal in the API's error body.
fn written(status: StatusCode, result: Result<Value, Refusal>) -> Response {
    match result {
        Ok(v) => (status, Json(v)).into_response(),
        Err(r) => error(r.status, r.code, &r.message),
    }
}

/// `POST /v1/webhook-subscriptions`: 201 with the new subscription and its secret.
async fn create_subscription(AxState(s): AxState<Arc<State>>, h: HeaderMap, body: Bytes) -> Response {
    match admit(&s, &h, Some(WEBHOOK_WRITE)) {
        Ok(_admitted) => written(StatusCode::CREATED, subscriptions::create(&s, &body)),
        Err(r) => r,
    }
}

/// `PUT /v1/webhook-subscriptions/{id}`: 200 with the subscription as replaced.
async fn replace_subscription(
    AxState(s): AxState<Arc<State>>,
    h: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    match admit(&s, &h, Some(WEBHOOK_WRITE)) {
        Ok(_admitted) => written(StatusCode::OK, subscriptions::replace(&s, &id, &body)),
        Err(r) => r,
    }
}

/// `DELETE /v1/webhook-subscriptions/{id}`: 204.
async fn delete_subscription(
    AxState(s): AxState<Arc<State>>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match admit(&s, &h, Some(WEBHOOK_WRITE)) {
        Ok(_admitted) => match subscriptions::delete(&s, &id) {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(r) => error(r.status, r.code, &r.message),
        },
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct TouchQuery {
    kind: Option<String>,
}

/// `POST /_sandbox/touch?kind=booking|event|experience`: changes one row now and sends its
/// webhook event; answers its id.
async fn touch(AxState(s): AxState<Arc<State>>, Query(q): Query<TouchQuery>) -> Response {
    let kind = match q.kind.as_deref().unwrap_or("booking") {
        "booking" => Kind::Booking,
        "event" => Kind::Event,
        "experience" => Kind::Experience,
        other => {
            return bad_request(&format!(
                "kind must be booking, event or experience, got '{other}'"
            ));
        }
    };
    match s.touch(kind) {
        Some(id) => Json(json!({ "id": id })).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "there is no row of that kind to change",
        ),
    }
}
