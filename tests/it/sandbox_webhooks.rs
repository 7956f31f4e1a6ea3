//! The sandbox as a webhook sender: subscriptions created over its API, and the signed events a
//! receiver on 127.0.0.1 gets when the world changes (`docs/understory-api.md` §2). The
//! signatures are checked with an HMAC computed here, from the Standard Webhooks text, not with
//! any code of the crate.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use sha2::Sha256;
use tower::ServiceExt;
use understory_sandbox::config::WebhookConfig;
use understory_sandbox::{Delivery, Sandbox, SandboxConfig};

use crate::support::{http, small, start, token};

const BOOKING_TYPES: [&str; 3] = ["v1.booking.created", "v1.booking.updated", "v1.booking.cancelled"];
const ALL_TYPES: [&str; 11] = [
    "v1.booking.created",
    "v1.booking.updated",
    "v1.booking.cancelled",
    "v1.event.created",
    "v1.event.updated",
    "v1.event.cancelled",
    "v1.event.completed",
    "v1.event.deleted",
    "v1.experience.created",
    "v1.experience.updated",
    "v1.experience.deleted",
];

// ---- a receiver ------------------------------------------------------------------------

/// One POST as the receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    content_type: String,
    body: String,
    at: Instant,
}

#[derive(Default)]
struct Inbox {
    got: Mutex<Vec<Received>>,
    /// Requests still to be answered 500.
    fail: AtomicUsize,
}

/// A webhook receiver on 127.0.0.1 that records every request and answers 500 to the first
/// `fail_first`, 200 after.
struct Receiver {
    addr: SocketAddr,
    inbox: Arc<Inbox>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(fail_first: usize) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let inbox = Arc::new(Inbox {
            fail: AtomicUsize::new(fail_first),
            ..Inbox::default()
        });
        let router = Router::new().fallback(hook).with_state(Arc::clone(&inbox));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                // Without it each answer waits for the delayed ACK (CONTRIBUTING.md, Tests).
                let _ = stream.set_nodelay(true);
                let router = router.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        router.clone().oneshot(req.map(Body::new))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, inbox, task }
    }

    fn url(&self) -> String {
        format!("http://{}/understory", self.addr)
    }

    fn got(&self) -> Vec<Received> {
        self.inbox.got.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn hook(State(inbox): State<Arc<Inbox>>, headers: HeaderMap, body: String) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    inbox.got.lock().unwrap().push(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        content_type: header("content-type"),
        body,
        at: Instant::now(),
    });
    let failing = inbox
        .fail
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

// ---- helpers ---------------------------------------------------------------------------

/// Whether `r` carries a Standard Webhooks signature of its id, timestamp and body under
/// `secret`, computed here from the specification.
fn verifies(secret: &str, r: &Received) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", r.id, r.timestamp, r.body).as_bytes());
    let expected = format!("v1,{}", b64.encode(mac.finalize().into_bytes()));
    r.signature.split(' ').any(|s| s == expected)
}

fn url_of(sb: &Sandbox, path: &str, id: Option<&str>) -> reqwest::Url {
    let mut url = reqwest::Url::parse(&format!("{}{path}", sb.base_url())).unwrap();
    if let Some(id) = id {
        // Ids may hold `/`, `?` and `#` (hostile ids): one escaped path segment.
        url.path_segments_mut().unwrap().push(id);
    }
    url
}

/// Sends a request with `token` and an optional JSON body; the status and JSON answer.
async fn call(
    method: reqwest::Method,
    url: reqwest::Url,
    token: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut req = http()
        .request(method, url)
        .bearer_auth(token)
        .header("accept-language", "en");
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await.unwrap();
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn subscribe(sb: &Sandbox, token: &str, body: Value) -> Value {
    let (status, created) = call(
        reqwest::Method::POST,
        url_of(sb, "/v1/webhook-subscriptions", None),
        token,
        Some(&body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

async fn writer(sb: &Sandbox) -> String {
    token(
        sb,
        "webhook.read webhook.write booking.read event.read experience.read",
    )
    .await
}

/// Waits until every delivery in the log has settled and `done` holds (at most 15 s).
async fn settled(sb: &Sandbox, done: impl Fn(&[Delivery]) -> bool) -> Vec<Delivery> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let log = sb.webhook_log();
        if log.iter().all(Delivery::settled) && done(&log) {
            return log;
        }
        assert!(Instant::now() < deadline, "deliveries did not settle: {log:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn with_webhooks(webhooks: WebhookConfig) -> SandboxConfig {
    let mut cfg = small();
    cfg.webhooks = webhooks;
    cfg
}

fn fast_retries() -> WebhookConfig {
    WebhookConfig {
        retry_schedule_ms: vec![50, 50],
        ..WebhookConfig::default()
    }
}

// ---- tests -----------------------------------------------------------------------------

/// Create, read, replace and delete: the secret comes once, in the 201; a url already
/// subscribed is a 409; bad bodies are 400s; unknown ids 404s; writes need `webhook.write`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_created_read_replaced_and_deleted() {
    let sb = start(small()).await;
    let t = writer(&sb).await;
    let list_url = url_of(&sb, "/v1/webhook-subscriptions", None);
    let (_, before) = call(reqwest::Method::GET, list_url.clone(), &t, None).await;
    let generated = before["items"].as_array().unwrap().len();
    assert!(generated >= 2);

    let created = subscribe(
        &sb,
        &t,
        json!({"url": "http://127.0.0.1:9/a", "event_types": ["v1.booking.updated"],
               "description": "sync", "metadata": {"team": "data"}}),
    )
    .await;
    let secret = created["secret"].as_str().unwrap();
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    assert_eq!(key.len(), 24);
    assert_eq!(created["state"], "ENABLED", "the default state");
    assert_eq!(created["event_types"], json!(["v1.booking.updated"]));
    assert_eq!(created["description"], "sync");
    assert_eq!(created["metadata"], json!({"team": "data"}));
    let id = created["id"].as_str().unwrap().to_owned();
    let other = subscribe(
        &sb,
        &t,
        json!({"url": "http://127.0.0.1:9/b", "event_types": ["v1.event.updated"]}),
    )
    .await;
    assert_ne!(other["secret"], created["secret"], "a secret per subscription");

    let (status, by_id) = call(
        reqwest::Method::GET,
        url_of(&sb, "/v1/webhook-subscriptions", Some(&id)),
        &t,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut without_secret = created.clone();
    without_secret.as_object_mut().unwrap().remove("secret");
    assert_eq!(by_id, without_secret, "GET by id is the 201 without its secret");
    let (_, list) = call(reqwest::Method::GET, list_url.clone(), &t, None).await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), generated + 2);
    assert_eq!(
        items[generated], without_secret,
        "created ones follow the generated ones"
    );
    assert!(
        !list.to_string().contains("secret"),
        "a list never carries a secret"
    );

    // The same url again, and bodies the API refuses.
    let post = |body: Value| {
        let url = list_url.clone();
        let t = t.clone();
        async move { call(reqwest::Method::POST, url, &t, Some(&body)).await }
    };
    let (status, err) =
        post(json!({"url": "http://127.0.0.1:9/a", "event_types": ["v1.booking.created"]})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert!(err["code"].is_string() && err["message"].is_string());
    let generated_url = items[0]["url"].as_str().unwrap();
    let (status, _) = post(json!({"url": generated_url, "event_types": ["v1.booking.created"]})).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a generated subscription's url is taken too"
    );
    for bad in [
        json!({"event_types": ["v1.booking.created"]}),
        json!({"url": "ftp://127.0.0.1/x", "event_types": ["v1.booking.created"]}),
        json!({"url": "http://127.0.0.1:9/c", "event_types": []}),
        json!({"url": "http://127.0.0.1:9/c", "event_types": ["v1.order.created"]}),
        json!({"url": "http://127.0.0.1:9/c", "event_types": ["v1.booking.created"], "state": "PAUSED"}),
    ] {
        let (status, err) = post(bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {err}");
        assert!(err["message"].is_string());
    }

    // A full replace: what is left out is gone.
    let (status, replaced) = call(
        reqwest::Method::PUT,
        url_of(&sb, "/v1/webhook-subscriptions", Some(&id)),
        &t,
        Some(&json!({"url": "http://127.0.0.1:9/a2", "event_types": ["v1.booking.created", "v1.event.updated"], "state": "DISABLED"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert!(replaced.get("secret").is_none());
    assert_eq!(replaced["url"], "http://127.0.0.1:9/a2");
    assert_eq!(replaced["state"], "DISABLED");
    assert_eq!(
        replaced["event_types"],
        json!(["v1.booking.created", "v1.event.updated"])
    );
    assert!(replaced.get("description").is_none_or(Value::is_null));
    assert!(replaced.get("metadata").is_none_or(Value::is_null));
    let (_, by_id) = call(
        reqwest::Method::GET,
        url_of(&sb, "/v1/webhook-subscriptions", Some(&id)),
        &t,
        None,
    )
    .await;
    assert_eq!(by_id, replaced);
    let (status, _) = call(
        reqwest::Method::PUT,
        url_of(&sb, "/v1/webhook-subscriptions", Some("no-such-id")),
        &t,
        Some(&json!({"url": "http://127.0.0.1:9/z", "event_types": ["v1.booking.created"]})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Delete: gone from the list and by id.
    let one = url_of(&sb, "/v1/webhook-subscriptions", Some(&id));
    let (status, _) = call(reqwest::Method::DELETE, one.clone(), &t, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(reqwest::Method::GET, one.clone(), &t, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(reqwest::Method::DELETE, one, &t, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = call(reqwest::Method::GET, list_url.clone(), &t, None).await;
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert!(!ids.contains(&id.as_str()));
    assert_eq!(ids.len(), generated + 1);

    // Reading is not writing.
    let reader = token(&sb, "webhook.read").await;
    let body = json!({"url": "http://127.0.0.1:9/r", "event_types": ["v1.booking.created"]});
    let other_id = other["id"].as_str().unwrap();
    for (method, url) in [
        (reqwest::Method::POST, list_url.clone()),
        (
            reqwest::Method::PUT,
            url_of(&sb, "/v1/webhook-subscriptions", Some(other_id)),
        ),
        (
            reqwest::Method::DELETE,
            url_of(&sb, "/v1/webhook-subscriptions", Some(other_id)),
        ),
    ] {
        let (status, err) = call(method.clone(), url, &reader, Some(&body)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method}: {err}");
    }
    let (status, _) = call(
        reqwest::Method::GET,
        url_of(&sb, "/v1/webhook-subscriptions", Some(other_id)),
        &t,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the refused delete deleted nothing");
}

/// After a mutation the receiver gets one thin event per change, signed under the secret of
/// the 201, its ids those the API's GET endpoints use (hostile ones included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutation_sends_signed_thin_events() {
    let mut cfg = small();
    cfg.data.hostile_ids = true;
    let sb = start(cfg).await;
    let t = writer(&sb).await;
    let rx = Receiver::start(0).await;
    let sub = subscribe(&sb, &t, json!({"url": rx.url(), "event_types": ALL_TYPES})).await;
    let secret = sub["secret"].as_str().unwrap();
    let sent_after = SystemTime::now();
    sb.mutate(2);
    let log = settled(&sb, |log| !log.is_empty()).await;
    let got = rx.got();
    assert_eq!(
        got.len(),
        log.len(),
        "one POST per delivery: no duplicates by default"
    );
    let types: BTreeSet<&str> = log.iter().map(|d| d.event_type.as_str()).collect();
    for t in ["v1.booking.created", "v1.booking.updated", "v1.event.updated"] {
        assert!(types.contains(t), "{t} in {types:?}");
    }
    let (_, me) = call(reqwest::Method::GET, url_of(&sb, "/v1/me", None), &t, None).await;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let mut ids = BTreeSet::new();
    for r in &got {
        assert!(verifies(secret, r), "signature of {r:?}");
        assert_eq!(r.content_type, "application/json");
        let ts: u64 = r.timestamp.parse().unwrap();
        assert!(ts.abs_diff(now) < 30, "webhook-timestamp {ts} is the wall clock");
        let body: Value = serde_json::from_str(&r.body).unwrap();
        let keys: BTreeSet<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, BTreeSet::from(["id", "type", "timestamp", "payload"]));
        assert!(r.body.starts_with(r#"{"id":"evt_"#), "{}", r.body);
        assert_eq!(body["id"], r.id, "webhook-id is the event's id");
        assert!(r.id.starts_with("evt_"));
        assert!(ids.insert(r.id.clone()), "each event its own id");
        let stamp = body["timestamp"].as_str().unwrap();
        let parsed = chrono::DateTime::parse_from_rfc3339(stamp).unwrap();
        assert!(
            stamp.ends_with('Z') && stamp.split('.').nth(1).unwrap().len() == 10,
            "nanoseconds: {stamp}"
        );
        assert!(SystemTime::from(parsed) >= sent_after);
        let payload = &body["payload"];
        let kind = body["type"].as_str().unwrap();
        let delivery = log.iter().find(|d| d.webhook_id == r.id).unwrap();
        assert_eq!(delivery.event_type, kind);
        assert_eq!(delivery.subscription_id, sub["id"].as_str().unwrap());
        match kind.split('.').nth(1).unwrap() {
            "booking" => {
                let keys: BTreeSet<&str> = payload.as_object().unwrap().keys().map(String::as_str).collect();
                assert_eq!(
                    keys,
                    BTreeSet::from(["booking_id", "host_id", "experience_id", "event_id"])
                );
                let id = payload["booking_id"].as_str().unwrap();
                assert_eq!(id, delivery.item_id);
                let (status, booking) = call(
                    reqwest::Method::GET,
                    url_of(&sb, "/v1/bookings", Some(id)),
                    &t,
                    None,
                )
                .await;
                assert_eq!(status, StatusCode::OK, "{id}");
                assert_eq!(booking["id"], id);
                assert_eq!(payload["host_id"], me["company_id"]);
                assert_eq!(payload["host_id"], booking["company_id"]);
                assert_eq!(payload["event_id"], booking["event_id"]);
                assert_eq!(payload["experience_id"], booking["experience_id"]);
                if kind == "v1.booking.cancelled" {
                    assert_eq!(booking["status"], "CANCELLED");
                }
            }
            "event" => {
                let id = payload["event_id"].as_str().unwrap();
                let (status, event) = call(
                    reqwest::Method::GET,
                    url_of(&sb, "/v1/events", Some(id)),
                    &t,
                    None,
                )
                .await;
                assert_eq!(status, StatusCode::OK, "{id}");
                assert_eq!(payload["experience_id"], event["experience_id"]);
                assert_eq!(payload.as_object().unwrap().len(), 2);
            }
            "experience" => {
                let id = payload["experience_id"].as_str().unwrap();
                let (status, _) = call(
                    reqwest::Method::GET,
                    url_of(&sb, "/v1/experiences", Some(id)),
                    &t,
                    None,
                )
                .await;
                assert_eq!(status, StatusCode::OK, "{id}");
                assert_eq!(payload.as_object().unwrap().len(), 1);
            }
            other => panic!("unexpected kind {other}"),
        }
    }
    // A booking changed on demand: its event names it, and its GET already shows the change.
    let before = rx.got().len();
    let (_, list) = call(
        reqwest::Method::GET,
        url_of(&sb, "/v1/bookings?sort=-updated_at&limit=1", None),
        &t,
        None,
    )
    .await;
    let newest = list["items"][0]["updated_at"].as_str().unwrap().to_owned();
    let id = sb.touch_booking();
    settled(&sb, |log| log.len() > got.len()).await;
    let last = rx.got().into_iter().skip(before).collect::<Vec<_>>();
    assert_eq!(last.len(), 1);
    let body: Value = serde_json::from_str(&last[0].body).unwrap();
    assert_eq!(body["payload"]["booking_id"], id);
    assert!(verifies(secret, &last[0]));
    let (_, booking) = call(
        reqwest::Method::GET,
        url_of(&sb, "/v1/bookings", Some(&id)),
        &t,
        None,
    )
    .await;
    assert!(
        booking["updated_at"].as_str().unwrap() >= newest.as_str(),
        "it is among the newest"
    );
}

/// A 500 is retried on the schedule under the same `webhook-id`, each attempt with a fresh
/// timestamp and signature; a receiver that never says yes, or is not there, is given up after
/// the last retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_attempts_are_retried_then_given_up() {
    // Waits over a second, so each retry's `webhook-timestamp` (whole seconds) is a new one.
    let sb = start(with_webhooks(WebhookConfig {
        retry_schedule_ms: vec![1_100, 1_100],
        ..WebhookConfig::default()
    }))
    .await;
    let t = writer(&sb).await;
    let flaky = Receiver::start(2).await;
    let sub = subscribe(&sb, &t, json!({"url": flaky.url(), "event_types": BOOKING_TYPES})).await;
    let secret = sub["secret"].as_str().unwrap();
    sb.touch_booking();
    let log = settled(&sb, |log| !log.is_empty()).await;
    let got = flaky.got();
    assert_eq!(got.len(), 3, "two 500s, then a 200");
    assert!(
        got.iter().all(|r| r.id == got[0].id),
        "the same webhook-id on every retry"
    );
    assert!(got.iter().all(|r| r.body == got[0].body), "the same body");
    assert!(got.iter().all(|r| verifies(secret, r)));
    let stamps: Vec<u64> = got.iter().map(|r| r.timestamp.parse().unwrap()).collect();
    assert!(
        stamps.windows(2).all(|w| w[0] < w[1]),
        "fresh timestamps: {stamps:?}"
    );
    assert!(got[1].at - got[0].at >= Duration::from_millis(1_100));
    let statuses: Vec<Option<u16>> = log[0].attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [Some(500), Some(500), Some(200)]);
    assert_eq!((log[0].delivered, log[0].given_up), (1, 0));
    drop(sb);

    let sb = start(with_webhooks(fast_retries())).await;
    let t = writer(&sb).await;
    let down = Receiver::start(usize::MAX).await;
    subscribe(&sb, &t, json!({"url": down.url(), "event_types": BOOKING_TYPES})).await;
    // A port nobody listens on: the connection is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    subscribe(
        &sb,
        &t,
        json!({"url": format!("http://{closed}/hook"), "event_types": BOOKING_TYPES}),
    )
    .await;
    sb.touch_booking();
    let log = settled(&sb, |log| log.len() == 2).await;
    assert_eq!(down.got().len(), 3, "the first attempt and two retries");
    for d in &log {
        assert_eq!(d.attempts.len(), 3, "{d:?}");
        assert_eq!((d.delivered, d.given_up), (0, 1), "{d:?}");
    }
    assert!(
        log.iter()
            .any(|d| d.attempts.iter().all(|a| a.status.is_none() && a.error.is_some()))
    );
}

/// The switches: drops are never sent, duplicates come twice under one `webhook-id`, delayed
/// ones arrive after later events; and the same seed draws the same ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drops_duplicates_and_delays_happen_as_configured() {
    let webhooks = WebhookConfig {
        drop_share: 0.25,
        duplicate_share: 0.25,
        delay_share: 0.25,
        delay_ms: 400,
        ..fast_retries()
    };
    let mut draws = Vec::new();
    for _ in 0..2 {
        let sb = start(with_webhooks(webhooks.clone())).await;
        let t = writer(&sb).await;
        let rx = Receiver::start(0).await;
        subscribe(&sb, &t, json!({"url": rx.url(), "event_types": ALL_TYPES})).await;
        sb.mutate(4);
        let log = settled(&sb, |log| !log.is_empty()).await;
        let got = rx.got();
        let mut arrivals: BTreeMap<&str, Vec<Instant>> = BTreeMap::new();
        for r in &got {
            arrivals.entry(r.id.as_str()).or_default().push(r.at);
        }
        let count = |f: fn(&Delivery) -> bool| log.iter().filter(|d| f(d)).count();
        assert!(count(|d| d.dropped) > 0 && count(|d| d.duplicated) > 0 && count(|d| d.delayed) > 0);
        assert!(count(|d| !d.dropped && !d.duplicated) > 0);
        for d in &log {
            let n = arrivals.get(d.webhook_id.as_str()).map_or(0, Vec::len);
            assert_eq!(n as u32, d.copies(), "{d:?}");
            assert_eq!(d.delivered, d.copies());
        }
        assert_eq!(got.len() as u32, log.iter().map(Delivery::copies).sum::<u32>());
        // Out of order: a delayed event arrives after an event made later than it.
        let first = |d: &Delivery| arrivals[d.webhook_id.as_str()].iter().min().copied();
        let overtaken = log.iter().enumerate().any(|(n, d)| {
            d.delayed
                && !d.dropped
                && log[n + 1..]
                    .iter()
                    .filter(|l| !l.dropped && !l.delayed)
                    .any(|l| first(l) < first(d))
        });
        assert!(overtaken, "some delayed delivery is overtaken");
        draws.push(
            log.iter()
                .map(|d| {
                    (
                        d.webhook_id.clone(),
                        d.event_type.clone(),
                        d.item_id.clone(),
                        d.dropped,
                        d.duplicated,
                        d.delayed,
                    )
                })
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(draws[0], draws[1], "the same seed draws the same misbehaviour");
}

/// Only enabled subscriptions created through the API are sent anything, and only the types
/// they asked for: never a disabled or deleted one, nor the generated ones at
/// hooks.example.org.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_deleted_and_generated_subscriptions_get_nothing() {
    let sb = start(with_webhooks(fast_retries())).await;
    let t = writer(&sb).await;
    let (on, off, deleted) = (
        Receiver::start(0).await,
        Receiver::start(0).await,
        Receiver::start(0).await,
    );
    let on_sub = subscribe(&sb, &t, json!({"url": on.url(), "event_types": BOOKING_TYPES})).await;
    let off_sub = subscribe(
        &sb,
        &t,
        json!({"url": off.url(), "event_types": ALL_TYPES, "state": "DISABLED"}),
    )
    .await;
    let gone = subscribe(&sb, &t, json!({"url": deleted.url(), "event_types": ALL_TYPES})).await;
    let (status, _) = call(
        reqwest::Method::DELETE,
        url_of(
            &sb,
            "/v1/webhook-subscriptions",
            Some(gone["id"].as_str().unwrap()),
        ),
        &t,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, list) = call(
        reqwest::Method::GET,
        url_of(&sb, "/v1/webhook-subscriptions", None),
        &t,
        None,
    )
    .await;
    assert!(
        list["items"].as_array().unwrap().iter().any(|s| s["url"]
            .as_str()
            .unwrap()
            .contains("hooks.example.org")
            && s["state"] == "ENABLED"),
        "an enabled generated subscription exists, and must be left alone"
    );

    sb.mutate(3);
    let log = settled(&sb, |log| !log.is_empty()).await;
    let on_id = on_sub["id"].as_str().unwrap();
    assert!(
        log.iter().all(|d| d.subscription_id == on_id),
        "only the enabled created one"
    );
    assert!(
        log.iter().all(|d| BOOKING_TYPES.contains(&d.event_type.as_str())),
        "only its types"
    );
    assert_eq!(on.got().len(), log.len());
    // Enabling the disabled one makes it a receiver from then on.
    let (status, _) = call(
        reqwest::Method::PUT,
        url_of(
            &sb,
            "/v1/webhook-subscriptions",
            Some(off_sub["id"].as_str().unwrap()),
        ),
        &t,
        Some(&json!({"url": off.url(), "event_types": ["v1.event.updated"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(off.got().len(), 0);
    let event = sb.touch(understory_sandbox::world::Kind::Event).unwrap();
    let log = settled(&sb, |l| l.iter().any(|d| d.item_id == event)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(off.got().len(), 1, "enabled now, for events");
    assert_eq!(deleted.got().len(), 0, "a deleted subscription is sent nothing");
    assert!(
        log.iter()
            .all(|d| d.subscription_id != gone["id"].as_str().unwrap())
    );
}
