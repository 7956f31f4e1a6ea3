//! The HTTP client: one `reqwest::Client` (rustls, gzip, timeouts, no redirects), the shared
//! pace, the token source, and the retry loop.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde::de::DeserializeOwned;
use url::Url;

use super::error::Error;
use super::retry::{Retry, classify};
use super::types::ApiErrorBody;
use crate::auth::{AccessToken, TokenSource};
use crate::config::{Config, RetryConfig};
use crate::counts::Counts;
use crate::http::{BodyError, MESSAGE_CHARS, describe, printable, read_capped, retry_after, server_date};
use crate::memory::{Held, Room};
use crate::pace::{self, Lane, Pace};
use crate::shutdown::Stop;
use crate::time::Timestamp;

/// The pace controller's settings from the job's configuration: here, where the pace meets
/// the API, so `pace` itself knows nothing of the configuration.
pub fn pace_settings(config: &crate::config::Config) -> pace::Settings {
    pace::Settings {
        start_rate: f64::from(config.api.requests_per_second.get()),
        max_rate: f64::from(config.api.max_requests_per_second.get()),
        burst: config.api.burst.get(),
        max_concurrent: config.api.max_concurrent,
        rate_limited_wait: config.retry.rate_limited_wait,
        max_retry_after: config.retry.max_retry_after,
    }
}

/// Counters of one stream's traffic, for the run summary.
#[derive(Debug, Default)]
pub struct Stats {
    pub(crate) requests: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
}

impl Stats {
    /// The counts so far.
    pub(crate) fn counts(&self) -> Counts {
        Counts {
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            ..Counts::default()
        }
    }
}

/// A request as `attempt` sends it: its path, its query, and for a write its method and body.
type Request<'a> = (
    &'a str,
    &'a [(&'a str, String)],
    Option<&'a (reqwest::Method, Vec<u8>)>,
);

pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    tokens: TokenSource,
    pace: Pace,
    retry: RetryConfig,
    /// Retries left in this run, over all streams.
    budget: AtomicU32,
    stop: Stop,
    /// `api.max_response_bytes`: a body is read up to this, decoded.
    max_body: usize,
    /// The `Date` of the API's latest answer, in Unix seconds (0: none yet): the walk's second
    /// opinion on what "now" is when it judges an item's timestamp.
    server_clock: AtomicI64,
    /// `sync.max_in_flight_bytes`: what one per-item list may add up to (`per_item_list`).
    pub(super) max_list_bytes: usize,
}

impl ApiClient {
    /// A client for `config`, asking for `scopes` (derived from the enabled streams), starting
    /// at the pace a previous run `learned`, if any.
    pub fn new(
        config: &Config,
        scopes: &[&str],
        stop: Stop,
        learned: Option<pace::Learned>,
    ) -> Result<Self, String> {
        Self::with_pace(config, scopes, stop, Pace::new(pace_settings(config), learned))
    }

    /// A client that shares `pace` with others: `run`'s scheduled syncs and its webhook applier
    /// spend one budget, learned once.
    pub(crate) fn with_pace(
        config: &Config,
        scopes: &[&str],
        stop: Stop,
        pace: Pace,
    ) -> Result<Self, String> {
        let http = crate::http::build(&config.api)?;
        let tokens = crate::auth::source(
            &config.auth,
            http.clone(),
            pace.clone(),
            scopes,
            config.api.max_response_bytes,
        );
        Ok(Self {
            http,
            base: config.api.base_url.clone(),
            tokens,
            pace,
            retry: config.retry.clone(),
            budget: AtomicU32::new(config.retry.run_budget),
            stop,
            max_body: config.api.max_response_bytes,
            server_clock: AtomicI64::new(0),
            max_list_bytes: config.sync.max_in_flight_bytes,
        })
    }

    pub fn tokens(&self) -> &TokenSource {
        &self.tokens
    }

    pub(crate) fn pace(&self) -> &Pace {
        &self.pace
    }

    /// The latest time the API's `Date` header stated, if it sent one.
    pub(crate) fn server_time(&self) -> Option<Timestamp> {
        match self.server_clock.load(Ordering::Relaxed) {
            0 => None,
            secs => chrono::DateTime::from_timestamp(secs, 0),
        }
    }

    /// Fetches the first token with the usual retries: a dead or refusing token endpoint is found
    /// here, once, before any stream starts.
    pub(crate) async fn authenticate(&self, stats: &Stats) -> Result<AccessToken, Error> {
        self.retrying(stats, "/oauth2/token", || async {
            self.tokens.token().await.map_err(Error::Auth)
        })
        .await
    }

    /// GETs `path` (relative to `api.base_url`) and parses the body as `T`, retrying what
    /// `retry::classify` says is worth retrying.
    #[tracing::instrument(level = "debug", skip_all, fields(path = path))]
    pub async fn get<T: DeserializeOwned>(
        &self,
        stats: &Stats,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, Error> {
        self.get_in(Lane::Walk, stats, path, query).await
    }

    /// `get` in a given lane of the pace: fan-out requests yield to list walks.
    pub(crate) async fn get_in<T: DeserializeOwned>(
        &self,
        lane: Lane,
        stats: &Stats,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, Error> {
        let (parsed, _) = self.get_held(lane, stats, path, query, &Held::default()).await?;
        Ok(parsed)
    }

    /// One try of `get_in`, without its retries or a memory budget: for what can wait for a
    /// later run (one item by id).
    pub(crate) async fn get_once<T: DeserializeOwned>(
        &self,
        lane: Lane,
        stats: &Stats,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, Error> {
        let uncounted = Held::default();
        let body = self
            .attempt(lane, stats, (path, query, None), &mut uncounted.room().await)
            .await?;
        parse::<T>(path, &body)
    }

    /// `get_in`, its body counted in `held` (the run's memory budget): each try waits for room
    /// before it is sent, its body takes more room as it is read, and it is counted in `held`
    /// once it is read and parsed. A body that outgrows its room while the budget is full is
    /// dropped and asked for again once the largest body allowed fits (`memory`); that second
    /// request is no retry of a failure, so it spends no retry budget. Returns the parsed body
    /// and its length.
    pub(crate) async fn get_held<T: DeserializeOwned>(
        &self,
        lane: Lane,
        stats: &Stats,
        path: &str,
        query: &[(&str, String)],
        held: &Held,
    ) -> Result<(T, usize), Error> {
        self.retrying(stats, path, || async {
            let mut room = tokio::select! {
                r = held.room() => r,
                () = self.stop.stopped() => return Err(Error::Stopped { path: shown(path) }),
            };
            let (room, body) = match self.attempt(lane, stats, (path, query, None), &mut room).await {
                Err(Error::NoRoom { .. }) => {
                    drop(room);
                    let mut room = tokio::select! {
                        r = held.room_for(self.max_body) => r,
                        () = self.stop.stopped() => return Err(Error::Stopped { path: shown(path) }),
                    };
                    let body = self.attempt(lane, stats, (path, query, None), &mut room).await?;
                    (room, body)
                }
                got => (room, got?),
            };
            let parsed = parse::<T>(path, &body)?;
            room.fill(body.len());
            Ok((parsed, body.len()))
        })
        .await
    }

    /// Runs `op` until it succeeds, fails for good, or the attempts or the run's budget run out.
    async fn retrying<T, F, Fut>(&self, stats: &Stats, path: &str, op: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let mut op = op;
        let backoff = ExponentialBuilder::new()
            .with_jitter()
            .with_min_delay(self.retry.initial_backoff)
            .with_max_delay(self.retry.max_backoff)
            .with_max_times(self.retry.max_attempts.saturating_sub(1) as usize);
        let attempts = AtomicU32::new(0);
        let budget_spent = AtomicBool::new(false);
        let stop = self.stop.clone();
        let result = (|| {
            attempts.fetch_add(1, Ordering::Relaxed);
            op()
        })
        .retry(backoff)
        .sleep(move |d: Duration| {
            let stop = stop.clone();
            async move { stop.sleep(d).await }
        })
        .when(|e| {
            if classify(e) == Retry::Never || self.stop.is_stopped() {
                return false;
            }
            let took = self.budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1)).is_ok();
            if !took {
                budget_spent.store(true, Ordering::Relaxed);
            }
            took
        })
        .adjust(|e, delay| match classify(e) {
            Retry::Paced => delay.map(|_| Duration::ZERO),
            _ => delay,
        })
        .notify(|e, delay| {
            stats.retries.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(path = %shown(path), error = %e, retry_in_ms = delay.as_millis() as u64, "request failed, retrying");
        })
        .await;
        result.map_err(|e| {
            if classify(&e) == Retry::Never || self.stop.is_stopped() {
                e
            } else {
                Error::GaveUp {
                    last: Box::new(e),
                    attempts: attempts.load(Ordering::Relaxed),
                    budget: budget_spent.load(Ordering::Relaxed),
                }
            }
        })
    }

    /// One write (`POST`, `PUT`, `DELETE`) with an optional JSON body, in the pace's walk lane,
    /// tried once: a write is not repeated blindly (a create sent twice makes two), so a failure
    /// is the caller's to report. Returns the answer's body (empty for a 204).
    pub(crate) async fn send(
        &self,
        stats: &Stats,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Bytes, Error> {
        let body = body.map(|b| (method.clone(), serde_json::to_vec(b).unwrap_or_default()));
        let body = body.unwrap_or((method, Vec::new()));
        let uncounted = Held::default();
        self.attempt(
            Lane::Walk,
            stats,
            (path, &[], Some(&body)),
            &mut uncounted.room().await,
        )
        .await
    }

    /// One try, renewing the token once if the API answers 401. `request` is the path, its
    /// query, and for a write its method and JSON body.
    async fn attempt(
        &self,
        lane: Lane,
        stats: &Stats,
        request: Request<'_>,
        room: &mut Room<'_>,
    ) -> Result<Bytes, Error> {
        let (path, query, write) = request;
        let url = self
            .base
            .join(path.trim_start_matches('/'))
            .map_err(|e| Error::Refused {
                path: shown(path),
                status: 0,
                code: "BAD_PATH".into(),
                message: e.to_string(),
            })?;
        let stopped = || Error::Stopped { path: shown(path) };
        let mut renewed = false;
        loop {
            if self.stop.is_stopped() {
                return Err(stopped());
            }
            // The token first: fetching one takes a place of its own.
            let token = tokio::select! {
                t = self.tokens.token() => t?,
                () = self.stop.stopped() => return Err(stopped()),
            };
            let permit = tokio::select! {
                p = self.pace.admit(lane) => p,
                () = self.stop.stopped() => return Err(stopped()),
            };
            // A stop abandons the request in flight: nothing was written for it yet, and the
            // next run asks again. Waiting out a slow server could take `request_timeout`.
            let (status, retry_after, body) = tokio::select! {
                r = self.exchange(stats, &url, (path, query, write), &token, room) => r?,
                () = self.stop.stopped() => return Err(stopped()),
            };
            if status == StatusCode::TOO_MANY_REQUESTS {
                stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                permit.throttled(retry_after);
            } else {
                permit.success();
            }
            drop(permit);
            if status == StatusCode::UNAUTHORIZED && !renewed {
                tracing::info!(path = %shown(path), "access token refused (401); fetching a new one");
                self.tokens.invalidate(&token).await;
                renewed = true;
                continue;
            }
            return answer(path, status, retry_after, body);
        }
    }

    /// One request with `token` (a GET, or the write given): the status, its `Retry-After`, and
    /// the body read up to the cap.
    async fn exchange(
        &self,
        stats: &Stats,
        url: &Url,
        (path, query, write): Request<'_>,
        token: &AccessToken,
        room: &mut Room<'_>,
    ) -> Result<(StatusCode, Option<Duration>, Bytes), Error> {
        let mut authorization =
            HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                Error::Auth(crate::auth::Error::BadResponse(
                    "the access token is not a valid header value".into(),
                ))
            })?;
        authorization.set_sensitive(true);
        stats.requests.fetch_add(1, Ordering::Relaxed);
        let network = |e: reqwest::Error| Error::Network {
            path: shown(path),
            detail: describe(&e),
        };
        let request = match write {
            None => self.http.get(url.clone()),
            Some((method, body)) if body.is_empty() => self.http.request(method.clone(), url.clone()),
            Some((method, body)) => self
                .http
                .request(method.clone(), url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone()),
        };
        let resp = request
            .query(query)
            .header(AUTHORIZATION, authorization)
            .send()
            .await
            .map_err(network)?;
        let status = resp.status();
        let retry_after = retry_after(resp.headers());
        if let Some(date) = server_date(resp.headers()) {
            self.server_clock.store(date.timestamp(), Ordering::Relaxed);
        }
        let body = read_capped(resp, self.max_body, |n| room.grow(n))
            .await
            .map_err(|e| match e {
                BodyError::TooLarge { cap } => Error::TooLarge {
                    path: shown(path),
                    cap,
                },
                BodyError::Read(e) => network(e),
                BodyError::NoRoom => Error::NoRoom { path: shown(path) },
            })?;
        Ok((status, retry_after, body))
    }
}

/// The body of a successful answer, or the error its status means (a 401 here came with a
/// token just renewed).
fn answer(
    path: &str,
    status: StatusCode,
    retry_after: Option<Duration>,
    body: Bytes,
) -> Result<Bytes, Error> {
    let path = shown(path);
    Err(match status {
        s if s.is_success() => return Ok(body),
        StatusCode::UNAUTHORIZED => Error::Unauthorized { path },
        StatusCode::TOO_MANY_REQUESTS => Error::RateLimited { path, retry_after },
        s if s.is_server_error() => Error::Server {
            path,
            status: s.as_u16(),
        },
        s => {
            let (code, message) = match serde_json::from_slice::<ApiErrorBody>(&body) {
                Ok(b) => (printable(&b.code, 64), printable(&b.message, MESSAGE_CHARS)),
                Err(_) => (
                    "UNKNOWN".to_owned(),
                    printable(&String::from_utf8_lossy(&body), 200),
                ),
            };
            Error::Refused {
                path,
                status: s.as_u16(),
                code,
                message,
            }
        }
    })
}

/// A body parsed as `T`.
fn parse<T: DeserializeOwned>(path: &str, body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice::<T>(body).or_else(|e| {
        // Bytes that are not UTF-8 inside an item's strings: the page is read with them
        // marked, and that item goes to quarantine (`mend`).
        crate::mend::mend(body)
            .and_then(|mended| serde_json::from_slice::<T>(&mended).ok())
            .ok_or_else(|| Error::Malformed {
                path: shown(path),
                detail: printable(&e.to_string(), MESSAGE_CHARS),
            })
    })
}

/// A path as an error names it: the ids in it are the API's text, so at most a line of it.
pub(super) fn shown(path: &str) -> String {
    printable(path, 300)
}
