//! The sandbox's resource API under `/v1` and its admin controls under `/_sandbox`.
// A ready `Response` is the natural error of an axum handler step; boxing it buys nothing here.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::config::EndOfList;
use super::limits::Slot;
use super::world::{self, Kind, LANGUAGES, Listing, Sort, World};
use super::{State, auth, consent};

pub fn router(state: Arc<State>) -> Router {
    let router = Router::new()
        .route("/.well-known/openid-configuration", get(auth::discovery))
        .route("/oauth2/token", post(auth::token))
        .route("/oauth2/auth", get(consent::authorize))
        .route("/oauth2/auth/decision", post(consent::decide))
        .route("/v1/me", get(me))
        .route("/v1/bookings", get(list_bookings))
        .route("/v1/bookings/{id}", get(booking))
        .route("/v1/orders", get(list_orders))
        .route("/v1/orders/{id}", get(order))
        .route("/v1/orders/{id}/line-items", get(line_items))
        .route("/v1/orders/{id}/transactions", get(transactions))
        .route("/v1/orders/{id}/refunds", get(refunds))
        .route("/v1/marketing-consents", get(list_consents))
        .route("/v1/marketing-consents/{id}", get(consent))
        .route("/v1/events", get(list_events))
        .route("/v1/events/{id}", get(event))
        .route("/v1/experiences", get(list_experiences))
        .route("/v1/experiences/{id}", get(experience))
        .route("/v1/experiences/{id}/ticket-variants", get(ticket_variants))
        .route(
            "/v1/experiences/{id}/information-requests",
            get(information_requests),
        )
        .route("/v1/bookings/{id}/tickets", get(tickets))
        .route("/v1/bookings/{id}/information-request-answers", get(answers))
        .route("/_sandbox/mutate", post(mutate))
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

/// The API's error body (§4) with `code` and `message`.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"code": code, "message": message}))).into_response()
}

fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
}

/// A 429 as the real API sends it: no headers unless configured (§6.7).
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
    state.world.read().unwrap_or_else(|e| e.into_inner())
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

/// What differs between the lists.
struct Spec {
    scope: &'static str,
    max_limit: usize,
    sortable: bool,
    /// `from`/`to` are local date-times (events) rather than instants.
    local_range: bool,
    filterable: bool,
}

const fn spec(listing: Listing) -> Spec {
    let (scope, max_limit, sortable, filterable) = match listing {
        Listing::Bookings => ("booking.read", 100, true, true),
        Listing::Orders => ("order.read", 100, true, true),
        Listing::Consents => ("marketing.read", 100, false, false),
        Listing::Events => ("event.read", 500, false, true),
        Listing::Experiences => ("experience.read", 100, false, false),
    };
    Spec {
        scope,
        max_limit,
        sortable,
        local_range: matches!(listing, Listing::Events),
        filterable,
    }
}

async fn list_bookings(s: AxState<Arc<State>>, h: HeaderMap, q: Query<ListQuery>) -> Response {
    list(s, h, q, Listing::Bookings)
}
async fn list_orders(s: AxState<Arc<State>>, h: HeaderMap, q: Query<ListQuery>) -> Response {
    list(s, h, q, Listing::Orders)
}
async fn list_consents(s: AxState<Arc<State>>, h: HeaderMap, q: Query<ListQuery>) -> Response {
    list(s, h, q, Listing::Consents)
}
async fn list_events(s: AxState<Arc<State>>, h: HeaderMap, q: Query<ListQuery>) -> Response {
    list(s, h, q, Listing::Events)
}
async fn list_experiences(s: AxState<Arc<State>>, h: HeaderMap, q: Query<ListQuery>) -> Response {
    list(s, h, q, Listing::Experiences)
}

/// The language to render experiences in: the best `Accept-Language` entry the storefront has.
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

fn list(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
    listing: Listing,
) -> Response {
    let spec = spec(listing);
    let (grant, _slot) = match admit(&state, &headers, Some(spec.scope)) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let lang = if listing == Listing::Experiences {
        match language(&headers) {
            Ok(l) => l,
            Err(r) => return r,
        }
    } else {
        "en"
    };
    let limit = match limit(&state, &q, spec.max_limit) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let sort = match (q.sort.as_deref(), spec.sortable) {
        (None | Some(""), _) => Sort::CreatedDesc,
        (Some(raw), true) => match Sort::parse(raw) {
            Ok(s) => s,
            Err(m) => return bad_request(&m),
        },
        (Some(_), false) => return bad_request("this list cannot be sorted"),
    };
    let parse = if spec.local_range {
        world::parse_local
    } else {
        world::parse_instant
    };
    let mut range = [None, None];
    for (slot, (name, raw)) in range.iter_mut().zip([("from", &q.from), ("to", &q.to)]) {
        if let Some(raw) = raw.as_deref().filter(|r| !r.is_empty()) {
            if !spec.filterable {
                return bad_request(&format!("'{name}' is not supported on this list"));
            }
            match parse(raw) {
                Some(t) => *slot = Some(t),
                None => return bad_request(&format!("'{name}' must be an RFC 3339 date-time, got '{raw}'")),
            }
        }
    }
    let [from, to] = range;
    let query = world::mix(
        (listing as u64) << 56
            ^ (sort as u64) << 48
            ^ world::mix(from.unwrap_or(i64::MIN) as u64)
            ^ world::mix(to.unwrap_or(i64::MAX) as u64).rotate_left(7)
            ^ world::hash_str(&grant.client_id),
    );
    let pos = match position(&state, &q, query) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let w = world(&state);
    let (rows, more) = w.select(listing, sort, from, to, pos, limit);
    let items: Vec<Arc<RawValue>> = rows
        .iter()
        .map(|&i| {
            let i = i as usize;
            state.rendered.get(listing, i, lang, || match listing {
                Listing::Bookings => w.booking(i),
                Listing::Orders => w.order(i),
                Listing::Consents => w.consent(i),
                Listing::Events => w.event(i),
                Listing::Experiences => w.experience(i, lang),
            })
        })
        .collect();
    let items: Vec<&RawValue> = items.iter().map(|t| &**t).collect();
    page(&state, w.seed() ^ listing as u64, &items, more, pos, query)
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

/// A paged list of one experience's items (ticket variants, information requests): `cursor`
/// and `limit` as on the top-level lists, the cursor bound to this experience and client.
fn experience_list(
    state: &State,
    headers: &HeaderMap,
    q: &ListQuery,
    id: &str,
    list: u64,
    render: impl Fn(&World, usize, &str) -> Vec<Value>,
) -> Response {
    let (grant, _slot) = match admit(state, headers, Some("experience.read")) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let lang = match language(headers) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let limit = match limit(state, q, 100) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let w = world(state);
    let e = match found(&w, Kind::Experience, id) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let query = world::mix(list << 56 ^ e as u64 ^ world::hash_str(&grant.client_id) ^ world::hash_str(lang));
    let pos = match position(state, q, query) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let all = render(&w, e, lang);
    let end = pos.saturating_add(limit).min(all.len());
    let more = end < all.len();
    let items = all.get(pos.min(end)..end).unwrap_or_default();
    page(state, w.seed() ^ list, items, more, pos, query)
}

async fn ticket_variants(
    AxState(s): AxState<Arc<State>>,
    h: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Response {
    experience_list(&s, &h, &q, &id, 0x21, World::ticket_variants)
}

async fn information_requests(
    AxState(s): AxState<Arc<State>>,
    h: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Response {
    experience_list(&s, &h, &q, &id, 0x22, |w, e, _| w.information_requests(e))
}

async fn tickets(AxState(s): AxState<Arc<State>>, h: HeaderMap, Path(id): Path<String>) -> Response {
    items_of(&s, &h, "booking.read", Kind::Booking, &id, World::tickets)
}

async fn answers(AxState(s): AxState<Arc<State>>, h: HeaderMap, Path(id): Path<String>) -> Response {
    items_of(&s, &h, "booking.read", Kind::Booking, &id, World::answers)
}

/// A per-item list answered whole as `{items}` (an order's line items, a booking's tickets).
fn items_of(
    state: &State,
    headers: &HeaderMap,
    scope: &str,
    kind: Kind,
    id: &str,
    render: fn(&World, usize) -> Vec<Value>,
) -> Response {
    one(
        state,
        headers,
        scope,
        kind,
        id,
        |w, i| json!({"items": render(w, i)}),
    )
}

fn found(w: &World, kind: Kind, id: &str) -> Result<usize, Response> {
    w.lookup(kind, id).map(|i| i as usize).ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("no such resource: {id}"),
        )
    })
}

/// Serves one item, or all of an order's sub-resources, after the usual checks.
fn one(
    state: &State,
    headers: &HeaderMap,
    scope: &str,
    kind: Kind,
    id: &str,
    render: impl Fn(&World, usize) -> Value,
) -> Response {
    if let Err(r) = admit(state, headers, Some(scope)) {
        return r;
    }
    let w = world(state);
    match found(&w, kind, id) {
        Ok(i) => Json(render(&w, i)).into_response(),
        Err(r) => r,
    }
}

async fn booking(AxState(s): AxState<Arc<State>>, h: HeaderMap, Path(id): Path<String>) -> Response {
    one(&s, &h, "booking.read", Kind::Booking, &id, World::booking)
}
async fn order(AxState(s): AxState<Arc<State>>, h: HeaderMap, Path(id): Path<String>) -> Response {
    one(&s, &h, "order.read", Kind::Order, &id, World::order)
}
async fn line_items(AxState(s): AxState<Arc<State>>, h: HeaderMap, Path(id): Path<String>) -> Response {
    items_of(&s, &h, "order.read", Kind::Order, &id, World::line_items)
}
async fn transactions(AxState(s): AxState<Arc<State>>, h: HeaderMap, Path(id): Path<String>) -> Response {
    items_of(&s, &h, "order.read", Kind::Order, &id, World::transactions)
}
async fn refunds(AxState(s): AxState<Arc<State>>, h: HeaderMap, Path(id): Path<String>) -> Response {
    items_of(&s, &h, "order.read", Kind::Order, &id, World::refunds)
}
/// `GET /v1/marketing-consents/{id}` (Gen C): 404 once the consent is withdrawn; legacy consents
/// have no id and cannot be fetched.
async fn consent(AxState(s): AxState<Arc<State>>, h: HeaderMap, Path(id): Path<String>) -> Response {
    one(&s, &h, "marketing.read", Kind::Consent, &id, World::consent)
}

async fn event(AxState(s): AxState<Arc<State>>, h: HeaderMap, Path(id): Path<String>) -> Response {
    one(&s, &h, "event.read", Kind::Event, &id, World::event)
}
async fn experience(AxState(s): AxState<Arc<State>>, h: HeaderMap, Path(id): Path<String>) -> Response {
    let lang = match language(&h) {
        Ok(l) => l,
        Err(r) => return r,
    };
    one(&s, &h, "experience.read", Kind::Experience, &id, |w, e| {
        w.experience(e, lang)
    })
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
