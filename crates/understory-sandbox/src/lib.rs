//! A faithful stand-in for Understory's auth server and API, served on loopback.
//!
//! Understory has no sandbox of its own; the tests, the README demo, the benchmarks and
//! integrators all talk to this one instead. It simulates `docs/understory-api.md` §1–§4
//! including the awkward parts: expiring tokens and cursors, scope checks, limit bounds, a `+`
//! that must be escaped, both end-of-list forms, best-effort traversal under concurrent changes,
//! 429s without `Retry-After`, and faults on demand.
//!
//! It is also a webhook sender (`webhooks`): subscriptions created through its API receive
//! signed events as the world changes.
//!
//! The server runs in-process (`Sandbox::start`) on any address, `127.0.0.1:0` for tests.
//! Faults are applied in front of the router, at the connection, because a reset or a truncated
//! body is something a proxy does to any answer, not something an endpoint decides.
//!
//! A crate of its own beside the job (`understory-sync`, the repository's root): the job's binary
//! uses it for its `demo` and `sandbox` commands (the default `sandbox` feature), its tests and
//! benchmarks as a dev-dependency, and the job's library not at all, so the job builds without
//! this server's HTTP stack. It uses nothing of the job: it renders its JSON from its own model,
//! written from `docs/understory-api.md`, so it can send what the job cannot read, and it states
//! the API's paths and scopes itself. The job's `tests/it/agreement.rs` is the one place the two
//! are held in agreement (through [`resources::served`]): a wrong path in the job fails there
//! instead of being mirrored here.
#![forbid(unsafe_code)]

pub mod auth;
pub mod config;
mod consent;
pub mod cursor;
pub mod faults;
pub mod limits;
mod poison;
mod rendered;
pub mod resources;
pub mod routes;
pub mod webhooks;
pub mod world;

use crate::poison::{Unpoisoned as _, UnpoisonedRw as _};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower::ServiceExt;

pub use config::SandboxConfig;
pub use faults::Fault;
pub use resources::Truth;
pub use webhooks::{Attempt, Delivery};

/// Shared by every request.
pub struct State {
    pub config: SandboxConfig,
    world: RwLock<world::World>,
    /// List items as sent, until the world next changes.
    rendered: rendered::Rendered,
    tokens: auth::Tokens,
    consents: consent::Consents,
    cursors: cursor::Cursors,
    limiter: limits::RateLimiter,
    faults: faults::Faults,
    requests: std::sync::atomic::AtomicU64,
    /// Requests that accepted a gzip answer.
    gzip_requests: std::sync::atomic::AtomicU64,
    /// Every request's arrival, path and status, while a test records them.
    log: std::sync::Mutex<Option<Vec<Arrival>>>,
    /// Sends webhook events to the subscriptions created through the API.
    webhooks: webhooks::Sender,
}

/// One request as the sandbox saw it, for tests that check when requests were sent. Its time is
/// tokio's, so a test or benchmark on a paused clock reads the log in that clock.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub at: tokio::time::Instant,
    pub path: String,
    /// The query string, without its `?` (empty when there is none).
    pub query: String,
    pub status: u16,
}

impl State {
    fn new(config: SandboxConfig, runtime: tokio::runtime::Handle) -> Self {
        let seed = config.seed;
        Self {
            world: RwLock::new(world::World::new(
                seed,
                config.data.clone(),
                config.mutate.clone(),
            )),
            tokens: auth::Tokens::new(&config),
            consents: consent::Consents::new(config.consent),
            cursors: cursor::Cursors::new(seed, Duration::from_secs(config.cursor_ttl_secs)),
            limiter: limits::RateLimiter::new(config.rate_limit.clone()),
            rendered: rendered::Rendered::default(),
            faults: faults::Faults::new(seed, config.faults.clone()),
            requests: std::sync::atomic::AtomicU64::new(0),
            gzip_requests: std::sync::atomic::AtomicU64::new(0),
            log: std::sync::Mutex::new(None),
            webhooks: webhooks::Sender::new(seed, config.webhooks.clone(), runtime),
            config,
        }
    }

    /// Advances the world `steps` steps, then sends the webhook events of what changed.
    fn mutate(&self, steps: u32) {
        let mut changes = Vec::new();
        let targets = {
            let mut w = self.world.write_locked();
            let targets = w.hook_targets();
            for _ in 0..steps {
                // Only a world someone subscribed to pays for the snapshot.
                let before = (!targets.is_empty()).then(|| webhooks::changes::Before::of(&w));
                w.mutate();
                if let Some(before) = before {
                    changes.extend(before.changes(&w));
                }
            }
            // Under the write lock: a page being rendered holds the read lock, so none can put
            // an item of the old world back after this.
            self.rendered.clear();
            targets
        };
        // After the lock: a receiver that fetches the item at once sees the change.
        self.webhooks.send(changes, &targets);
    }

    /// Changes one row of `kind` now and sends its event; returns the row's id.
    fn touch(&self, kind: world::Kind) -> Option<String> {
        let (change, targets) = {
            let mut w = self.world.write_locked();
            let (i, before) = w.touch(kind)?;
            self.rendered.clear();
            (webhooks::changes::touched(&w, kind, i, before)?, w.hook_targets())
        };
        let id = change.item_id.clone();
        self.webhooks.send(vec![change], &targets);
        Some(id)
    }
}

/// A running sandbox. Dropping it stops accepting connections.
pub struct Sandbox {
    state: Arc<State>,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Sandbox {
    /// Generates the world and starts serving on `addr` (port 0 picks a free port).
    pub async fn start(config: SandboxConfig, addr: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Handle::current();
        let state = Arc::new(tokio::task::spawn_blocking(move || State::new(config, runtime)).await?);
        let router = routes::router(Arc::clone(&state));
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&state), router));
        Ok(Self { state, addr, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API base URL, for `api.base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The token endpoint, for `auth.token_url`.
    pub fn token_url(&self) -> String {
        format!("http://{}/oauth2/token", self.addr)
    }

    /// Advances the simulated clock `steps` times (see `world::World::mutate`).
    pub fn mutate(&self, steps: u32) {
        self.state.mutate(steps);
    }

    /// Updates one booking now (its `updated_at` becomes the simulated now) and sends its
    /// event at once: a single change whose webhook latency a benchmark can time. Returns the
    /// booking's id. Which booking is drawn from the seed and the touches so far.
    pub fn touch_booking(&self) -> String {
        self.touch(world::Kind::Booking)
            .expect("a world always has bookings")
    }

    /// Like `touch_booking`, for a booking, an event or an experience; `None` for another
    /// kind, or when there is no row of it.
    pub fn touch(&self, kind: world::Kind) -> Option<String> {
        self.state.touch(kind)
    }

    /// Every webhook delivery so far (made, dropped or still retrying), in the order the events
    /// arose.
    pub fn webhook_log(&self) -> Vec<Delivery> {
        self.state.webhooks.log()
    }

    /// What a correct, complete sync must hold now.
    pub fn truth(&self) -> Truth {
        self.state.world.read_locked().truth()
    }

    pub fn expire_cursors(&self) {
        self.state.cursors.expire_all();
    }

    pub fn set_cursor_ttl(&self, ttl: Duration) {
        self.state.cursors.set_ttl(ttl);
    }

    /// Expires every access token issued so far: the next request with one answers 401.
    pub fn expire_tokens(&self) {
        self.state.tokens.expire_all();
    }

    pub fn set_token_ttl(&self, ttl: Duration) {
        self.state.tokens.set_ttl(ttl);
    }

    /// Every access token, refresh token and authorization code issued so far.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.state.tokens.all()
    }

    /// The authorize endpoint of third-party apps, for `auth.authorize_url`.
    pub fn authorize_url(&self) -> String {
        format!("http://{}/oauth2/auth", self.addr)
    }

    /// What the consent step does from now on.
    pub fn set_consent(&self, consent: config::Consent) {
        self.state.consents.set(consent);
    }

    /// Codes, refreshes, reuses and revocations so far.
    pub fn auth_stats(&self) -> auth::AuthStats {
        self.state.tokens.stats()
    }

    pub fn set_faults(&self, faults: config::FaultConfig) {
        self.state.faults.set(faults);
    }

    /// Makes the next `count` token requests fail with `fault` (only `Status`, `RateLimited`
    /// and `Reset` apply there).
    pub fn inject_token(&self, fault: Fault, count: usize) {
        self.state.faults.inject_token(fault, count);
    }

    /// Starts keeping a log of every request (see `arrivals`).
    pub fn record(&self) {
        *self.state.log.locked() = Some(Vec::new());
    }

    /// The requests seen since `record`, in the order they were answered.
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.state.log.locked().clone().unwrap_or_default()
    }

    /// The requests seen since `record`, from the `from`-th on: a watcher polling the log
    /// copies only what is new.
    pub fn arrivals_since(&self, from: usize) -> Vec<Arrival> {
        self.state
            .log
            .locked()
            .as_ref()
            .map(|log| log.get(from..).unwrap_or_default().to_vec())
            .unwrap_or_default()
    }

    /// Makes the next `count` `/v1` requests fail with `fault`.
    pub fn inject(&self, fault: Fault, count: usize) {
        self.state.faults.inject(fault, count);
    }

    /// Lets `skip` `/v1` requests through, then fails the next `count` with `fault`.
    pub fn inject_after(&self, skip: usize, fault: Fault, count: usize) {
        self.state.faults.inject_after(skip, fault, count);
    }

    pub fn set_rate_limit(&self, limit: config::RateLimitConfig) {
        self.state.limiter.set(limit);
    }

    /// Requests served so far (every path).
    pub fn requests(&self) -> u64 {
        self.state.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Requests so far whose `Accept-Encoding` allowed gzip.
    pub fn gzip_requests(&self) -> u64 {
        self.state
            .gzip_requests
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Serves until the process ends (the `sandbox` command).
    pub async fn serve_forever(mut self) -> io::Result<()> {
        (&mut self.task).await.map_err(io::Error::other)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.task.abort();
        self.state.webhooks.stop();
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<State>, router: Router) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        // Without it every page pays the ~40 ms Nagle/delayed-ACK stall (CONTRIBUTING.md, Tests).
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        let router = router.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                serve(Arc::clone(&state), router.clone(), req)
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// One request: draws a fault for `/v1` paths, then lets the router answer (or not).
async fn serve(state: Arc<State>, router: Router, req: Request<Incoming>) -> io::Result<Response<Body>> {
    state.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let accepts_gzip = req
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("gzip"));
    if accepts_gzip {
        state
            .gzip_requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    let arrived = tokio::time::Instant::now();
    let path = req.uri().path().to_owned();
    let req_query = req.uri().query().unwrap_or_default().to_owned();
    let method = req.method().clone();
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let fault = if path.starts_with("/v1/") {
        state.faults.draw()
    } else if path == "/oauth2/token" {
        state.faults.draw_token()
    } else {
        None
    };
    let resp = match fault {
        Some(Fault::Reset) => {
            tracing::debug!(%method, %target, "sandbox: injected connection reset");
            return Err(io::Error::new(io::ErrorKind::ConnectionReset, "injected reset"));
        }
        Some(Fault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            routes::error(status, "INTERNAL_SERVER_ERROR", "injected server error")
        }
        Some(Fault::RateLimited) => {
            routes::too_many(state.config.rate_limit.retry_after_secs, "injected rate limit")
        }
        other => {
            if let Some(Fault::Slow(delay)) = other {
                tokio::time::sleep(delay).await;
            }
            let resp = match router.oneshot(req.map(Body::new)).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            match other {
                Some(Fault::Truncated) => truncate(resp).await,
                Some(Fault::Malformed) => malformed(resp),
                _ => resp,
            }
        }
    };
    tracing::debug!(%method, %target, status = resp.status().as_u16(), fault = ?fault, "sandbox request");
    if let Some(log) = state.log.locked().as_mut() {
        log.push(Arrival {
            at: arrived,
            path,
            query: req_query,
            status: resp.status().as_u16(),
        });
    }
    Ok(resp)
}

/// Sends half of the body under a `Content-Length` for all of it, then breaks the stream.
async fn truncate(resp: Response<Body>) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    let full = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let half = full.slice(..full.len() / 2);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(full.len()));
    // The pause lets hyper flush the headers and the first half before the stream breaks, so the
    // client sees a 200 whose body ends early rather than no answer at all.
    let body = futures::stream::unfold(0u8, move |step| {
        let half = half.clone();
        async move {
            match step {
                0 => Some((Ok::<Bytes, io::Error>(half), 1)),
                1 => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Some((
                        Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "injected truncation",
                        )),
                        2,
                    ))
                }
                _ => None,
            }
        }
    });
    Response::from_parts(parts, Body::from_stream(body))
}

/// A complete 200 answer whose body is not JSON, as a misbehaving proxy might send.
fn malformed(resp: Response<Body>) -> Response<Body> {
    let (mut parts, _) = resp.into_parts();
    parts.status = StatusCode::OK;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_ENCODING);
    Response::from_parts(
        parts,
        Body::from("{\"next\": \"abc\", \"items\": [{\"id\": <html>upstream hiccup</html>"),
    )
}
