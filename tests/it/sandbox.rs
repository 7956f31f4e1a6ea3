//! Issue 2: the sandbox over real HTTP on 127.0.0.1.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use understory_sandbox::config::{EndOfList, FaultConfig, RateLimitConfig};
use understory_sandbox::{Fault, Sandbox};

use crate::support::{http, small, start, token};

async fn post_token(sb: &Sandbox, body: &str) -> (StatusCode, Value) {
    let resp = http()
        .post(sb.token_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

async fn get(
    sb: &Sandbox,
    token: &str,
    path_and_query: &str,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let resp = http()
        .get(format!("{}{path_and_query}", sb.base_url()))
        .bearer_auth(token)
        .header("accept-language", "da")
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

/// Starts the real `understory-sync sandbox` binary on a free port with `args`; returns it and
/// the base URL it announces.
fn sandbox_binary(args: &[&str]) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_understory-sync"))
        .args(["sandbox", "--port", "0"])
        .args(args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let base = lines
        .find_map(|l| {
            l.ok()?
                .strip_prefix("sandbox: serving Understory's API and token endpoint on ")
                .map(str::to_owned)
        })
        .expect("the sandbox says where it serves");
    // Keep reading its stderr: a closed pipe would make its next log line kill it.
    std::thread::spawn(move || lines.for_each(drop));
    (child, base)
}
/// Sends `req` and parses the answer as JSON.
async fn json_of(req: reqwest::RequestBuilder) -> Value {
    req.send().await.unwrap().json().await.unwrap()
}

const GOOD: &str = "grant_type=client_credentials&audience=https://api.understory.io&client_id=sandbox-client&client_secret=sandbox-secret";

#[tokio::test]
async fn a_token_asked_as_the_authentication_guide_asks_then_a_page_of_bookings() {
    let sb = start(small()).await;
    // The *Authentication* guide's body, byte for byte: scopes joined by a literal space,
    // audience unescaped.
    let (status, body) = post_token(&sb, &format!("{GOOD}&scope=openid booking.read")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["scope"], "booking.read openid");
    let token = body["access_token"].as_str().unwrap();
    let (status, _, page) = get(&sb, token, "/v1/bookings?limit=100").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"].as_array().unwrap().len(), 100);
    assert!(page["next"].as_str().is_some_and(|n| !n.is_empty()));
    let me = get(&sb, token, "/v1/me").await.2;
    assert_eq!(me["company_name"], "Sandbox Adventures ApS");
}

#[tokio::test]
async fn token_errors_follow_rfc_6749() {
    let sb = start(small()).await;
    let cases = [
        (
            "grant_type=client_credentials&audience=https://api.understory.io&client_id=sandbox-client&client_secret=wrong&scope=booking.read",
            401,
            "invalid_client",
        ),
        (
            "grant_type=client_credentials&audience=https://api.understory.io&client_id=nobody&client_secret=x&scope=booking.read",
            401,
            "invalid_client",
        ),
        (&format!("{GOOD}&scope=booking.write"), 400, "invalid_scope"),
        (
            "grant_type=client_credentials&audience=https://evil.example&client_id=sandbox-client&client_secret=sandbox-secret",
            400,
            "invalid_request",
        ),
        (
            "grant_type=client_credentials&client_id=sandbox-client&client_secret=sandbox-secret",
            400,
            "invalid_request",
        ),
        (
            "audience=https://api.understory.io&client_id=sandbox-client&client_secret=sandbox-secret",
            400,
            "invalid_request",
        ),
        (
            "grant_type=password&audience=https://api.understory.io&client_id=sandbox-client&client_secret=sandbox-secret",
            400,
            "unsupported_grant_type",
        ),
        // The `%7E` quirk: an escaped tilde is refused.
        (
            "grant_type=client_credentials&audience=https://api.understory.io&client_id=sandbox-client&client_secret=a%7Eb",
            400,
            "invalid_request",
        ),
    ];
    for (body, status, error) in cases {
        let (got, json) = post_token(&sb, body).await;
        assert_eq!(got.as_u16(), status, "{body}");
        assert_eq!(json["error"], error, "{body}");
        assert!(json["error_description"].is_string());
    }
    let discovery: Value =
        json_of(http().get(format!("{}/.well-known/openid-configuration", sb.base_url()))).await;
    assert_eq!(discovery["token_endpoint"], sb.token_url());
}

#[tokio::test]
async fn missing_scope_is_403_and_bad_or_expired_tokens_are_401() {
    let sb = start(small()).await;
    let t = token(&sb, "booking.read").await;
    let (status, _, body) = get(&sb, &t, "/v1/orders").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "UNAUTHORIZED");
    let (status, _, body) = get(&sb, "not-a-token", "/v1/bookings").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "UNAUTHORIZED");
    let resp = http()
        .get(format!("{}/v1/bookings", sb.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    sb.set_token_ttl(Duration::from_secs(1));
    let short = token(&sb, "booking.read").await;
    assert_eq!(get(&sb, &short, "/v1/bookings?limit=1").await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, _, body) = get(&sb, &short, "/v1/bookings?limit=1").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["message"], "access token has expired");
}

#[tokio::test]
async fn cursors_expire_and_tampering_is_refused() {
    let sb = start(small()).await;
    let t = token(&sb, "booking.read").await;
    let first = get(&sb, &t, "/v1/bookings?limit=10").await.2;
    let next = first["next"].as_str().unwrap().to_owned();
    let (status, _, second) = get(&sb, &t, &format!("/v1/bookings?limit=10&cursor={}", esc(&next))).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(first["items"][0]["id"], second["items"][0]["id"]);

    let mut tampered = next.clone().into_bytes();
    tampered[10] = if tampered[10] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let (status, _, body) = get(&sb, &t, &format!("/v1/bookings?cursor={}", esc(&tampered))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "INVALID_CURSOR");
    // A cursor carries its query: another sort is refused.
    let (status, _, _) = get(
        &sb,
        &t,
        &format!("/v1/bookings?sort=-updated_at&cursor={}", esc(&next)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    tokio::time::sleep(Duration::from_millis(5)).await;
    sb.expire_cursors();
    let (status, _, body) = get(&sb, &t, &format!("/v1/bookings?limit=10&cursor={}", esc(&next))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["message"], "cursor has expired; start the listing again");

    sb.set_cursor_ttl(Duration::from_millis(200));
    let fresh = get(&sb, &t, "/v1/bookings?limit=10").await.2["next"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        get(&sb, &t, &format!("/v1/bookings?limit=10&cursor={}", esc(&fresh)))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn limit_bounds_sort_escaping_and_date_filters() {
    let sb = start(small()).await;
    let t = token(&sb, "booking.read event.read").await;
    for bad in ["0", "101", "-3", "ten"] {
        let (status, _, body) = get(&sb, &t, &format!("/v1/bookings?limit={bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "limit={bad}");
        assert_eq!(body["code"], "BAD_REQUEST");
    }
    assert_eq!(get(&sb, &t, "/v1/events?limit=500").await.0, StatusCode::OK);
    assert_eq!(
        get(&sb, &t, "/v1/events?limit=501").await.0,
        StatusCode::BAD_REQUEST
    );

    // A literal `+` decodes to a space: refused with a hint; `%2B` works.
    let (status, _, body) = get(&sb, &t, "/v1/bookings?sort=+created_at").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap().contains("%2B"));
    let asc = get(&sb, &t, "/v1/bookings?sort=%2Bcreated_at&limit=5").await.2;
    let created: Vec<&str> = asc["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["created_at"].as_str().unwrap())
        .collect();
    assert!(created.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(
        get(&sb, &t, "/v1/bookings?sort=name").await.0,
        StatusCode::BAD_REQUEST
    );

    // `from` inclusive, `to` exclusive, on created_at.
    let from = created[1];
    let to = created[3];
    let window = get(
        &sb,
        &t,
        &format!("/v1/bookings?sort=%2Bcreated_at&from={from}&to={to}"),
    )
    .await
    .2;
    let got: Vec<&str> = window["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["created_at"].as_str().unwrap())
        .collect();
    assert!(got.iter().all(|c| *c >= from && *c < to), "{got:?}");
    assert!(got.contains(&from));
    assert_eq!(
        get(&sb, &t, "/v1/bookings?from=yesterday").await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn clamp_mode_clamps_instead_of_refusing() {
    let mut cfg = small();
    cfg.clamp_limit = true;
    let sb = start(cfg).await;
    let t = token(&sb, "booking.read").await;
    let (status, _, page) = get(&sb, &t, "/v1/bookings?limit=1000").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"].as_array().unwrap().len(), 100);
}

async fn last_page(sb: &Sandbox, token: &str) -> Value {
    let mut cursor = String::new();
    loop {
        let page = get(
            sb,
            token,
            &format!("/v1/marketing-consents?limit=50&cursor={}", esc(&cursor)),
        )
        .await
        .2;
        match page["next"].as_str() {
            Some(n) if !n.is_empty() => cursor = n.to_owned(),
            _ => return page,
        }
    }
}

#[tokio::test]
async fn end_of_list_is_signalled_both_ways() {
    for (mode, expect_key) in [(EndOfList::Empty, true), (EndOfList::Absent, false)] {
        let mut cfg = small();
        cfg.end_of_list = mode;
        let sb = start(cfg).await;
        let t = token(&sb, "marketing.read").await;
        let last = last_page(&sb, &t).await;
        assert_eq!(
            last.as_object().unwrap().contains_key("next"),
            expect_key,
            "{mode:?}"
        );
        if expect_key {
            assert_eq!(last["next"], "");
        }
    }
}

#[tokio::test]
async fn rate_limit_answers_429_with_and_without_retry_after() {
    let sb = start(small()).await;
    let t = token(&sb, "booking.read").await;
    for retry_after in [None, Some(7)] {
        sb.set_rate_limit(RateLimitConfig {
            requests_per_window: 2,
            window_ms: 60_000,
            shape: Default::default(),
            max_concurrent: 10,
            retry_after_secs: retry_after,
            penalty_ms: 0,
        });
        let mut last = None;
        for _ in 0..3 {
            last = Some(get(&sb, &t, "/v1/bookings?limit=1").await);
        }
        let (status, headers, body) = last.unwrap();
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(body["code"], "TOO_MANY_REQUESTS");
        assert_eq!(
            headers.get("retry-after").map(|v| v.to_str().unwrap().to_owned()),
            retry_after.map(|s| s.to_string())
        );
        // A new window for the next case.
        sb.set_rate_limit(RateLimitConfig {
            requests_per_window: 1_000,
            window_ms: 1,
            shape: Default::default(),
            max_concurrent: 10,
            retry_after_secs: None,
            penalty_ms: 0,
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn every_fault_kind_can_be_injected() {
    let sb = start(small()).await;
    let t = token(&sb, "booking.read").await;
    let url = format!("{}/v1/bookings?limit=5", sb.base_url());
    for code in [500u16, 502, 503] {
        sb.inject(Fault::Status(code), 1);
        assert_eq!(get(&sb, &t, "/v1/bookings?limit=5").await.0.as_u16(), code);
    }
    sb.inject(Fault::Reset, 1);
    let err = http().get(&url).bearer_auth(&t).send().await.unwrap_err();
    assert!(err.is_request() || err.is_connect(), "{err:?}");

    sb.inject(Fault::Truncated, 1);
    let resp = http().get(&url).bearer_auth(&t).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.bytes().await.is_err(), "a truncated body must fail to read");

    sb.inject(Fault::Malformed, 1);
    let resp = http().get(&url).bearer_auth(&t).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.json::<Value>().await.is_err(),
        "a malformed body must not parse"
    );

    sb.inject(Fault::Slow(Duration::from_millis(800)), 1);
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = quick.get(&url).bearer_auth(&t).send().await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");

    // And afterwards the sandbox answers normally again.
    assert_eq!(get(&sb, &t, "/v1/bookings?limit=5").await.0, StatusCode::OK);
}

#[tokio::test]
async fn random_faults_are_reproducible_for_a_seed() {
    let mut cfg = small();
    cfg.faults = FaultConfig {
        status_503: 0.3,
        ..FaultConfig::default()
    };
    let pattern = |cfg| async move {
        let sb = start(cfg).await;
        let t = token(&sb, "booking.read").await;
        let mut out = Vec::new();
        for _ in 0..30 {
            out.push(get(&sb, &t, "/v1/bookings?limit=1").await.0.as_u16());
        }
        out
    };
    let a = pattern(cfg.clone()).await;
    let b = pattern(cfg).await;
    assert_eq!(a, b);
    assert!(a.contains(&503) && a.contains(&200), "{a:?}");
}

#[tokio::test]
async fn same_seed_same_data_and_mutation_changes_the_truth() {
    let a = start(small()).await;
    let b = start(small()).await;
    let (ta, tb) = (token(&a, "booking.read").await, token(&b, "booking.read").await);
    assert_eq!(
        get(&a, &ta, "/v1/bookings?limit=50").await.2["items"],
        get(&b, &tb, "/v1/bookings?limit=50").await.2["items"]
    );
    assert_eq!(a.truth(), b.truth());

    let before = a.truth();
    a.mutate(1);
    let after = a.truth();
    assert!(
        after.rows("bookings").len() > before.rows("bookings").len(),
        "new bookings"
    );
    assert!(
        after.rows("marketing_consents").len() != before.rows("marketing_consents").len()
            || after.rows("marketing_consents") != before.rows("marketing_consents"),
        "consents churn"
    );
    let updated = before
        .rows("bookings")
        .iter()
        .filter(|(id, v)| after.rows("bookings").get(*id).is_some_and(|n| n != *v))
        .count();
    assert!(updated > 0, "some bookings updated");
    // The API serves the new truth: the newest update comes first.
    let top = get(&a, &ta, "/v1/bookings?sort=-updated_at&limit=1").await.2;
    let id = top["items"][0]["id"].as_str().unwrap();
    assert_eq!(
        &top["items"][0],
        after
            .rows("bookings")
            .get(&(String::new(), id.to_owned()))
            .unwrap()
    );
    assert!(top["items"][0]["updated_at"].as_str().unwrap() > "2026-01-01T00:00:00Z");
}

#[tokio::test]
async fn a_traversal_is_not_a_snapshot() {
    let sb = start(small()).await;
    let t = token(&sb, "booking.read").await;
    let first = get(&sb, &t, "/v1/bookings?sort=-updated_at&limit=60").await.2;
    sb.mutate(1);
    let next = first["next"].as_str().unwrap();
    let second = get(
        &sb,
        &t,
        &format!("/v1/bookings?sort=-updated_at&limit=60&cursor={}", esc(next)),
    )
    .await
    .2;
    let ids = |p: &Value| -> Vec<String> {
        p["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (a, b) = (ids(&first), ids(&second));
    let repeated = b.iter().filter(|id| a.contains(id)).count();
    assert!(
        repeated > 0,
        "rows updated between pages shift the walk, so the second page repeats some"
    );
}

#[tokio::test]
async fn experiences_need_accept_language_and_single_items_404() {
    let sb = start(small()).await;
    let t = token(&sb, "experience.read booking.read order.read").await;
    let resp = http()
        .get(format!("{}/v1/experiences", sb.base_url()))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let da = get(&sb, &t, "/v1/experiences").await.2;
    let en: Value = http()
        .get(format!("{}/v1/experiences", sb.base_url()))
        .bearer_auth(&t)
        .header("accept-language", "en-GB; q=1.0, da; q=0.5")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(da["items"][0]["name"], en["items"][0]["name"]);
    let resp = http()
        .get(format!("{}/v1/experiences", sb.base_url()))
        .bearer_auth(&t)
        .header("accept-language", "fr")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    let page = get(&sb, &t, "/v1/orders?limit=1").await.2;
    let id = page["items"][0]["id"].as_str().unwrap();
    assert_eq!(
        get(&sb, &t, &format!("/v1/orders/{id}")).await.2,
        page["items"][0]
    );
    let items = get(&sb, &t, &format!("/v1/orders/{id}/line-items")).await.2;
    assert!(!items["items"].as_array().unwrap().is_empty());
    assert!(items.get("next").is_none());
    let (status, _, body) = get(&sb, &t, "/v1/orders/00000000-0000-4000-a000-000000000000").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_command_serves_the_guides_curl_unchanged_but_for_the_host() {
    use std::process::Command;
    let (mut child, base) = sandbox_binary(&["--bookings", "500"]);
    // The guides' curl commands, byte for byte, with only the host changed.
    let (client_id, client_secret, scopes) = (
        "sandbox-client",
        "sandbox-secret",
        "openid marketing.read booking.read",
    );
    let token = Command::new("curl")
        .args(["-s", "-X", "POST", &format!("{base}/oauth2/token")])
        .args(["-H", "User-Agent: My-Company/Marketing-Automation-App"])
        .args(["-H", "Content-Type: application/x-www-form-urlencoded"])
        .args(["-d", &format!("grant_type=client_credentials&scope={scopes}&audience=https://api.understory.io&client_id={client_id}&client_secret={client_secret}")])
        .output()
        .expect("curl is installed (CI installs it)");
    let token: Value = serde_json::from_slice(&token.stdout).unwrap();
    assert_eq!(token["token_type"], "bearer");
    let access = token["access_token"].as_str().unwrap();
    let page = Command::new("curl")
        .args([
            "-s",
            "-X",
            "GET",
            &format!("{base}/v1/bookings?cursor=&limit=100"),
        ])
        .args(["-H", &format!("Authorization: Bearer {access}")])
        .output()
        .unwrap();
    let page: Value = serde_json::from_slice(&page.stdout).unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 100);
    let consents = Command::new("curl")
        .args([
            "-s",
            "-i",
            "-X",
            "GET",
            &format!("{base}/v1/marketing-consents?cursor=string&limit=100"),
        ])
        .args(["-H", &format!("Authorization: Bearer {access}")])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&consents.stdout).contains("INVALID_CURSOR"),
        "a made-up cursor is refused"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn the_strict_user_agent_mode_refuses_requests_without_one() {
    let mut cfg = small();
    cfg.require_user_agent = true;
    let sb = start(cfg).await;
    let t = token(&sb, "booking.read").await;
    let bare = reqwest::Client::builder().build().unwrap(); // sends no User-Agent
    let resp = bare
        .get(format!("{}/v1/bookings", sb.base_url()))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(get(&sb, &t, "/v1/bookings?limit=1").await.0, StatusCode::OK);
}

#[tokio::test]
async fn admin_endpoints_mutate_and_expire_over_http() {
    let sb = start(small()).await;
    let t = token(&sb, "booking.read").await;
    let first = get(&sb, &t, "/v1/bookings?limit=10").await.2;
    let cursor = first["next"].as_str().unwrap().to_owned();

    let resp: Value = json_of(http().post(format!("{}/_sandbox/mutate?steps=2", sb.base_url()))).await;
    assert!(resp["bookings"].as_u64().unwrap() > 240, "{resp}");
    assert_eq!(
        resp["bookings"].as_u64().unwrap() as usize,
        sb.truth().rows("bookings").len()
    );

    tokio::time::sleep(Duration::from_millis(5)).await;
    let status = http()
        .post(format!("{}/_sandbox/expire-cursors", sb.base_url()))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        get(&sb, &t, &format!("/v1/bookings?limit=10&cursor={}", esc(&cursor)))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );

    let status = http()
        .post(format!("{}/_sandbox/expire-tokens", sb.base_url()))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        get(&sb, &t, "/v1/bookings?limit=1").await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_command_can_mutate_on_a_timer() {
    let (mut child, base) = sandbox_binary(&["--bookings", "300", "--mutate-every-secs", "1"]);
    let token: Value = json_of(
        http()
            .post(format!("{base}/oauth2/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("{GOOD}&scope=booking.read")),
    )
    .await;
    let newest = || async {
        let v: Value = json_of(
            http()
                .get(format!("{base}/v1/bookings?limit=1"))
                .bearer_auth(token["access_token"].as_str().unwrap()),
        )
        .await;
        v["items"][0]["created_at"].as_str().unwrap().to_owned()
    };
    let before = newest().await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let after = newest().await;
    assert!(
        after > before,
        "the clock advanced and new bookings appeared: {before} → {after}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn answers_are_gzipped_for_clients_that_ask() {
    for gzip in [true, false] {
        let mut cfg = small();
        cfg.gzip = gzip;
        let sb = start(cfg).await;
        let t = token(&sb, "booking.read").await;
        // A client that does not decompress, to see the wire.
        let raw = reqwest::Client::builder()
            .no_gzip()
            .user_agent("test")
            .build()
            .unwrap();
        let resp = raw
            .get(format!("{}/v1/bookings?limit=100", sb.base_url()))
            .bearer_auth(&t)
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        let encoding = resp
            .headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = resp.bytes().await.unwrap();
        if gzip {
            assert_eq!(encoding.as_deref(), Some("gzip"));
            assert_eq!(&body[..2], &[0x1f, 0x8b], "a gzip stream");
        } else {
            assert_eq!(encoding, None);
            assert!(serde_json::from_slice::<Value>(&body).is_ok());
        }
    }
}

/// A cursor as it must travel in a query string: base64's `+`, `/` and `=` escaped.
fn esc(cursor: &str) -> String {
    url::form_urlencoded::byte_serialize(cursor.as_bytes()).collect()
}
