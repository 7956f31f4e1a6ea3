//! The receiver: the HTTP endpoint `run` serves at `webhooks.listen` + `webhooks.path`.
//!
//! A delivery is answered 2xx only once it is committed to `webhook_inbox`, so a kill right
//! after the answer loses nothing, and a delivery sent again (Standard Webhooks retries anything
//! but a 2xx) is recorded once: `webhook-id` is the inbox's unique key. What is refused is never
//! written and never logged with its body: a signature that no stored secret made, or a
//! `webhook-timestamp` outside `webhooks.tolerance_secs`, is a 401; a body past 64 KiB a 413; a
//! signed body that is not an event a 400. Refusals are counted in memory and written now and
//! then, so a flood of bad requests is not a flood of writes or log lines.
//!
//! Slow or many clients cannot starve the sync: at most `MAX_CONNECTIONS` connections are
//! served at once (more wait in the kernel's backlog), headers and the body must arrive within
//! `READ_TIMEOUT`, and a connection lives at most `CONNECTION_LIFETIME`.

use crate::poison::{Unpoisoned as _, UnpoisonedRw as _};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};

use super::delivery;
use super::secrets::Secrets;
use super::signature::{self, SigningKey};
use crate::auth::token_vault::Key;
use crate::shutdown::Stop;
use crate::store::{Received, Store};
use crate::streams::Stream;

/// The largest body taken: thin events are a few hundred bytes.
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;
/// Connections served at once.
pub(crate) const MAX_CONNECTIONS: usize = 64;
/// Headers, and then the whole body, must arrive within this.
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A kept-alive connection is closed after this; the sender opens another.
pub(crate) const CONNECTION_LIFETIME: Duration = Duration::from_secs(120);
/// The stored secrets are read again at most this often (a subscription registered or removed
/// while `run` runs), so requests cannot make it read a file each.
const RELOAD_EVERY: Duration = Duration::from_secs(10);
/// How often refusals are written to `webhook_state` and said in one log line.
const REFUSALS_EVERY: Duration = Duration::from_secs(60);
/// Headers longer than this are refused before anything is computed from them.
const MAX_HEADER_CHARS: usize = 4_096;

/// What every request shares.
pub struct Receiver {
    store: Arc<Store>,
    path: String,
    tolerance: Duration,
    enabled: Vec<&'static Stream>,
    secrets: Secrets,
    key: Key,
    keys: RwLock<Arc<Vec<SigningKey>>>,
    reloaded: Mutex<Instant>,
    refused: AtomicU64,
    /// Told when a delivery is recorded: the applier takes it at once.
    arrived: Arc<Notify>,
}

impl Receiver {
    /// A receiver recording into `store` (a connection of its own: deliveries never wait for the
    /// sync's), verifying with the secrets `secrets` holds under `key`.
    pub fn new(
        store: Arc<Store>,
        config: &crate::config::Webhooks,
        enabled: Vec<&'static Stream>,
        secrets: Secrets,
        key: Key,
        arrived: Arc<Notify>,
    ) -> Result<Self, super::secrets::Error> {
        let keys = secrets.keys(&key)?;
        Ok(Self {
            store,
            path: config.path.clone(),
            tolerance: config.tolerance,
            enabled,
            secrets,
            key,
            keys: RwLock::new(Arc::new(keys)),
            reloaded: Mutex::new(Instant::now()),
            refused: AtomicU64::new(0),
            arrived,
        })
    }

    /// How many subscriptions' secrets it verifies with.
    pub fn secrets_loaded(&self) -> usize {
        self.keys.read_locked().len()
    }

    /// Records that a receiver is up (`webhook_state.receiving_since`): before `serve`, and before
    /// any listing sync of the process starts, so none counts misses from an older receiver's
    /// start.
    pub async fn started(&self) -> Result<(), crate::store::Error> {
        on_store(&self.store, |s| s.receiving(true, chrono::Utc::now())).await
    }

    /// Serves `listener` until `stop`; records the receiver's clean stop.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        stop: Stop,
    ) -> Result<(), crate::store::Error> {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut refusals = tokio::time::interval(REFUSALS_EVERY);
        refusals.tick().await;
        loop {
            let permit = tokio::select! {
                p = Arc::clone(&slots).acquire_owned() => p.expect("the semaphore is never closed"),
                () = stop.stopped() => break,
            };
            let (tcp, peer) = tokio::select! {
                a = listener.accept() => match a {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors, say: wait a moment rather than spin.
                        tracing::warn!(error = %e, "the webhook receiver could not accept a connection");
                        stop.sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = refusals.tick() => { self.flush_refusals().await; continue; }
                () = stop.stopped() => break,
            };
            let me = Arc::clone(&self);
            tokio::spawn(async move {
                me.connection(tcp, peer).await;
                drop(permit);
            });
        }
        self.flush_refusals().await;
        on_store(&self.store, |s| s.receiving(false, chrono::Utc::now())).await?;
        Ok(())
    }

    async fn connection(self: Arc<Self>, tcp: tokio::net::TcpStream, peer: SocketAddr) {
        let me = Arc::clone(&self);
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let me = Arc::clone(&me);
            async move { Ok::<_, std::convert::Infallible>(me.handle(req, peer).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(READ_TIMEOUT)
            .max_buf_size(64 * 1024)
            .serve_connection(TokioIo::new(tcp), service);
        let _ = tokio::time::timeout(CONNECTION_LIFETIME, conn).await;
    }

    /// One request: its answer, after the delivery is committed when it is one.
    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
        match self.take(req).await {
            Ok(()) => answer(StatusCode::NO_CONTENT, ""),
            Err(Refusal::Refused(status, why)) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer, status = status.as_u16(), why, "webhook delivery refused");
                answer(status, why)
            }
            Err(Refusal::NotHere(status)) => answer(status, ""),
            Err(Refusal::Unavailable(e)) => {
                tracing::error!(error = %e, "a webhook delivery could not be recorded; answered 503, the sender retries");
                answer(StatusCode::SERVICE_UNAVAILABLE, "not recorded; retry")
            }
        }
    }

    async fn take(&self, req: Request<Incoming>) -> Result<(), Refusal> {
        if req.uri().path() != self.path {
            return Err(Refusal::NotHere(StatusCode::NOT_FOUND));
        }
        if req.method() != Method::POST {
            return Err(Refusal::NotHere(StatusCode::METHOD_NOT_ALLOWED));
        }
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty() && v.len() <= MAX_HEADER_CHARS)
                .map(str::to_owned)
        };
        let (Some(id), Some(timestamp), Some(signature)) = (
            header("webhook-id"),
            header("webhook-timestamp"),
            header("webhook-signature"),
        ) else {
            return Err(refused(
                StatusCode::BAD_REQUEST,
                "webhook-id, webhook-timestamp and webhook-signature are required",
            ));
        };
        if id.len() > 256 || id.chars().any(|c| c.is_control()) {
            return Err(refused(StatusCode::BAD_REQUEST, "webhook-id is not an id"));
        }
        if !self.timely(&timestamp) {
            return Err(refused(
                StatusCode::UNAUTHORIZED,
                "webhook-timestamp is outside the tolerance",
            ));
        }
        let declared = req
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
            return Err(refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the body is larger than 64 KiB",
            ));
        }
        let body = match tokio::time::timeout(
            READ_TIMEOUT,
            Limited::new(req.into_body(), MAX_BODY_BYTES).collect(),
        )
        .await
        {
            Err(_) => {
                return Err(refused(
                    StatusCode::REQUEST_TIMEOUT,
                    "the body did not arrive in time",
                ));
            }
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                return Err(refused(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the body is larger than 64 KiB",
                ));
            }
            Ok(Err(_)) => return Err(refused(StatusCode::BAD_REQUEST, "the body could not be read")),
            Ok(Ok(b)) => b.to_bytes(),
        };
        if !self.verified(&id, &timestamp, &body, &signature) {
            return Err(refused(
                StatusCode::UNAUTHORIZED,
                "no signature by a stored secret",
            ));
        }
        let text = std::str::from_utf8(&body)
            .map_err(|_| refused(StatusCode::BAD_REQUEST, "the body is not UTF-8"))?;
        let event =
            delivery::read(&body, &self.enabled).map_err(|why| refused(StatusCode::BAD_REQUEST, why))?;
        let text = text.to_owned();
        let added = on_store(&self.store, move |store| {
            store.receive(
                &Received {
                    webhook_id: &id,
                    event_type: &event.event_type,
                    stream: event.stream.map(|s| s.name),
                    item_id: event.item_id.as_deref(),
                    event_timestamp: event.timestamp.as_deref(),
                    body: &text,
                },
                chrono::Utc::now(),
            )
        })
        .await
        .map_err(|e| Refusal::Unavailable(e.to_string()))?;
        if added {
            self.arrived.notify_one();
        }
        Ok(())
    }

    /// Whether `timestamp` (Unix seconds) is within the tolerance of our clock, either way.
    fn timely(&self, timestamp: &str) -> bool {
        let Ok(sent) = timestamp.trim().parse::<i64>() else {
            return false;
        };
        let now = chrono::Utc::now().timestamp();
        now.abs_diff(sent) <= self.tolerance.as_secs()
    }

    /// Whether a stored secret signed the delivery. The secrets are read again at most every
    /// [`RELOAD_EVERY`] while deliveries come: one `webhooks register` adds is accepted, and
    /// one `webhooks unregister` removes (a leaked one, say) refused, within seconds.
    fn verified(&self, id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
        self.reload_if_due();
        let keys = Arc::clone(&self.keys.read_locked());
        signature::verify(&keys, id, timestamp, body, header)
    }

    fn reload_if_due(&self) {
        {
            let mut at = self.reloaded.locked();
            if at.elapsed() < RELOAD_EVERY {
                return;
            }
            *at = Instant::now();
        }
        match self.secrets.keys(&self.key) {
            Ok(fresh) => *self.keys.write_locked() = Arc::new(fresh),
            Err(e) => {
                tracing::warn!(error = %e, "the webhook secrets could not be read again; the ones loaded before stay in use");
            }
        }
    }

    async fn flush_refusals(&self) {
        let n = self.refused.swap(0, Ordering::Relaxed);
        if n == 0 {
            return;
        }
        tracing::warn!(
            refused = n,
            "webhook deliveries were refused (bad signature, timestamp or body): see `status`"
        );
        if let Err(e) = on_store(&self.store, move |s| s.add_refused(n)).await {
            tracing::warn!(error = %e, "the count of refused deliveries could not be written");
        }
    }
}

/// Runs a store call on a blocking thread (SQLite's calls block).
async fn on_store<T: Send + 'static>(
    store: &Arc<Store>,
    f: impl FnOnce(&Store) -> Result<T, crate::store::Error> + Send + 'static,
) -> Result<T, crate::store::Error> {
    let s = Arc::clone(store);
    tokio::task::spawn_blocking(move || f(&s))
        .await
        .unwrap_or_else(|e| {
            Err(crate::store::Error::Io {
                path: store.path().to_owned(),
                message: e.to_string(),
            })
        })
}

enum Refusal {
    /// The sender's fault: counted, answered with a short reason.
    Refused(StatusCode, &'static str),
    /// Not a delivery at all (another path, another method).
    NotHere(StatusCode),
    /// Ours: the inbox could not be written; the sender retries.
    Unavailable(String),
}

fn refused(status: StatusCode, why: &'static str) -> Refusal {
    Refusal::Refused(status, why)
}

fn answer(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r
}
