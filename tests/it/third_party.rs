//! Third-party integrations: `connect` through the sandbox's consent step with a
//! scripted browser, the refresh token kept encrypted and rotated, and the sandbox's
//! authorization server refusing what Ory Hydra refuses.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use chrono::Utc;
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::Value;
use understory_sandbox::config::{ClientKey, Consent, FaultConfig};
use understory_sandbox::{Sandbox, SandboxConfig};
use understory_sync::auth::token_vault::{Key, Vault};

use crate::cli::BIN;
use crate::support::*;

const APP_SECRET: &str = "sandbox-app-secret";

/// A free loopback port for a redirect URI (bound, then released for `connect` to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A sandbox whose third-party app is registered at `redirect`.
fn app_sandbox(redirect: &str, consent: Consent) -> SandboxConfig {
    let mut sc = small();
    sc.clients = vec![ClientKey::default(), ClientKey::third_party(redirect)];
    sc.consent = consent;
    sc
}

/// One connected customer: its config, data and key directories.
pub struct Customer {
    dir: tempfile::TempDir,
    cfg: PathBuf,
}

impl Customer {
    fn db(&self) -> PathBuf {
        self.dir.path().join("data/sync.sqlite")
    }
    fn token_file(&self) -> PathBuf {
        self.dir.path().join("data/customer.token")
    }
    fn key_file(&self) -> PathBuf {
        self.dir.path().join("keys/token.key")
    }
}

/// A config for `auth.method = "authorization_code"` against `sb`, with `extra` TOML appended.
fn customer(sb: &Sandbox, redirect: &str, extra: &str) -> Customer {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::create_dir(dir.path().join("keys")).unwrap();
    let cfg = dir.path().join("customer.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"database = "data/sync.sqlite"
[auth]
method = "authorization_code"
token_url = "{token}"
authorize_url = "{authorize}"
client_id = "sandbox-app"
redirect_uri = "{redirect}"
token_file = "data/customer.token"
token_key_file = "keys/token.key"
{extra}
{fast}
[metrics]
textfile = "data/metrics.prom"
[streams]
events = true
experiences = true
"#,
            token = sb.token_url(),
            authorize = sb.authorize_url(),
            fast = crate::cli::fast_api(sb),
        ),
    )
    .unwrap();
    Customer { dir, cfg }
}

fn command(c: &Customer, sub: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg(sub)
        .arg("--config")
        .arg(&c.cfg)
        .env("UNDERSTORY_CLIENT_SECRET", APP_SECRET)
        .env_remove("RUST_LOG")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove(understory_sync_crash_hook());
    cmd
}

fn understory_sync_crash_hook() -> &'static str {
    "UNDERSTORY_SYNC_TEST_CRASH_AT"
}

/// `connect` started, with the authorize address it printed.
fn start_connect(c: &Customer) -> (Child, String) {
    let mut child = command(c, "connect")
        .arg("--timeout-secs")
        .arg("60")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("connect prints the address").unwrap();
        if let Some(u) = line.trim().strip_prefix("http") {
            break format!("http{u}");
        }
    };
    // Keep draining stdout on a thread so connect never blocks on a full pipe.
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().join("\n"));
    STDOUT_TAIL.with(|t| *t.borrow_mut() = Some(rest));
    (child, url)
}

thread_local! {
    static STDOUT_TAIL: std::cell::RefCell<Option<std::thread::JoinHandle<String>>> = const { std::cell::RefCell::new(None) };
}

/// Waits for `connect` to exit: its status, the rest of its stdout, its stderr.
fn finish_connect(mut child: Child) -> (Option<i32>, String, String) {
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    let out = STDOUT_TAIL
        .with(|t| t.borrow_mut().take())
        .map(|h| h.join().unwrap())
        .unwrap_or_default();
    (status.code(), out, err)
}

/// A form body (the client here is built without reqwest's `form` feature).
fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get(reqwest::header::LOCATION)
        .expect("a redirect")
        .to_str()
        .unwrap()
        .to_owned()
}

/// The scripted person at the browser: opens the address, clicks `button` on the consent page
/// if there is one, and follows the redirect back to `connect`.
async fn click_through(url: &str, button: &str) -> String {
    let b = browser();
    let resp = b.get(url).send().await.unwrap();
    let resp = if resp.status() == StatusCode::OK {
        let page = resp.text().await.unwrap();
        assert!(
            page.contains("Sandbox Marketing App") && page.contains("booking.read"),
            "{page}"
        );
        let challenge = page
            .split("name=\"challenge\" value=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("the consent page carries its challenge");
        let origin = url.split("/oauth2/").next().unwrap();
        b.post(format!("{origin}/oauth2/auth/decision"))
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form(&[("challenge", challenge), ("decision", button)]))
            .send()
            .await
            .unwrap()
    } else {
        resp
    };
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let back = location(&resp);
    let landing = b.get(&back).send().await.unwrap();
    assert_eq!(landing.status(), StatusCode::OK);
    landing.text().await.unwrap()
}

/// Runs `connect` to the end through the consent page, approving.
async fn connect(c: &Customer) -> (Option<i32>, String, String) {
    let (child, url) = start_connect(c);
    click_through(&url, "approve").await;
    finish_connect(child)
}

/// Runs `sub` for the customer to its end, with `env` added.
pub fn run(c: &Customer, sub: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = command(c, sub);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// A command's stdout then stderr, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn rows(db: &Path) -> i64 {
    open(db)
        .query_row("SELECT count(*) FROM bookings", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_path_that_looks_like_route_syntax_is_served_as_written() {
    // `:` and `*` start captures in a router's route syntax; the path is the browser's, literally.
    let port = free_port();
    let redirect = format!("http://127.0.0.1:{port}/:cb/*rest");
    let sb = start(app_sandbox(&redirect, Consent::Page)).await;
    let c = customer(&sb, &redirect, "");
    let (child, url) = start_connect(&c);
    let other = browser()
        .get(format!("http://127.0.0.1:{port}/x/y?code=c&state=s"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        other.status(),
        StatusCode::NOT_FOUND,
        "only the redirect path is served"
    );
    let landing = click_through(&url, "approve").await;
    assert!(landing.contains("Access granted"), "{landing}");
    let (code, out, err) = finish_connect(child);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("ok: connected"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_through_the_consent_page_then_sync_on_the_refresh_token_alone() {
    let redirect = format!("http://127.0.0.1:{}/callback", free_port());
    let sb = start(app_sandbox(&redirect, Consent::Page)).await;
    let c = customer(&sb, &redirect, "");
    let (child, url) = start_connect(&c);
    let q: HashMap<String, String> = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "sandbox-app");
    assert_eq!(q["redirect_uri"], redirect);
    assert_eq!(q["audience"], "https://api.understory.io");
    assert!(q["scope"].split(' ').any(|s| s == "offline"), "{url}");
    assert_eq!(q["code_challenge_method"], "S256");
    let landing = click_through(&url, "approve").await;
    assert!(landing.contains("Access granted"), "{landing}");
    let (code, out, err) = finish_connect(child);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(
        out.contains("ok: connected") && out.contains("Sandbox Adventures ApS"),
        "{out}"
    );
    assert!(err.contains("created a new key"), "{err}");
    let stats = sb.auth_stats();
    assert_eq!((stats.codes_issued, stats.codes_exchanged), (1, 1));
    assert_eq!(
        stats.refreshes, 1,
        "connect proved the stored token by refreshing it once"
    );

    let key_mode = std::fs::metadata(c.key_file()).unwrap().permissions().mode();
    assert_eq!(key_mode & 0o777, 0o600);
    let sync = run(&c, "sync", &[("RUST_LOG", "trace")]);
    assert_eq!(sync.status.code(), Some(0), "{}", text(&sync));
    assert_eq!(rows(&c.db()), 240);
    let again = run(&c, "sync", &[]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let stats = sb.auth_stats();
    assert_eq!(stats.refreshes, 3);
    assert_eq!((stats.reuses, stats.chains_revoked), (0, 0));

    let status = run(&c, "status", &[]);
    let shown = text(&status);
    assert!(
        shown.contains("connection: refresh token issued") && shown.contains("0 days ago"),
        "{shown}"
    );
    let check = run(&c, "check", &[]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    assert!(text(&check).contains("ok: connection: refresh token issued"));

    // Nothing the server issued (codes, access and refresh tokens) is anywhere in plain text.
    let token_file = std::fs::read_to_string(c.token_file()).unwrap();
    let metrics = metrics(&c);
    let db_bytes = std::fs::read(c.db()).unwrap();
    let issued = sb.issued_tokens();
    assert!(issued.iter().any(|t| t.starts_with("ory_rt_")));
    for t in &issued {
        for (place, hay) in [
            ("connect output", format!("{out}{err}")),
            ("trace log", text(&sync)),
            ("status", shown.clone()),
            ("check", text(&check)),
            ("token file", token_file.clone()),
            ("metrics", metrics.clone()),
        ] {
            assert!(!hay.contains(t.as_str()), "{place} holds an issued token");
        }
        assert!(
            !db_bytes.windows(t.len()).any(|w| w == t.as_bytes()),
            "the database holds an issued token"
        );
    }
    assert!(!text(&sync).contains(APP_SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_state_is_refused_and_connect_waits_for_the_real_redirect() {
    let redirect = format!("http://127.0.0.1:{}/callback", free_port());
    let sb = start(app_sandbox(&redirect, Consent::Approve)).await;
    let c = customer(&sb, &redirect, "");
    let (child, url) = start_connect(&c);
    // Another site (or user) sends the browser to the redirect URI with a code of its own.
    let forged = browser()
        .get(format!("{redirect}?code=attacker-code&state=attacker-state"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    let page = forged.text().await.unwrap();
    assert!(page.contains("cross-site request forgery"), "{page}");
    // An error forged the same way does not end the attempt either.
    let denied = browser()
        .get(format!("{redirect}?error=access_denied&state=attacker-state"))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), StatusCode::BAD_REQUEST);
    // The customer's own consent still connects.
    let landing = click_through(&url, "approve").await;
    assert!(landing.contains("Access granted"), "{landing}");
    let (code, out, err) = finish_connect(child);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(!err.lines().any(|l| l.starts_with("error:")), "{err}");
    assert!(c.token_file().exists());
    assert_eq!(
        sb.auth_stats().codes_exchanged,
        1,
        "only the customer's code is exchanged, never the forged one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denial_is_reported_and_nothing_is_stored() {
    let redirect = format!("http://127.0.0.1:{}/callback", free_port());
    let sb = start(app_sandbox(&redirect, Consent::Page)).await;
    let c = customer(&sb, &redirect, "");
    let (child, url) = start_connect(&c);
    let landing = click_through(&url, "deny").await;
    assert!(landing.contains("did not connect"), "{landing}");
    let (code, _out, err) = finish_connect(child);
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains("did not grant access (access_denied: The user denied the request)"),
        "{err}"
    );
    assert!(!c.token_file().exists());

    // The same through the sandbox's auto-deny switch.
    sb.set_consent(Consent::Deny);
    let (child, url) = start_connect(&c);
    click_through(&url, "unused").await;
    let (code, _out, err) = finish_connect(child);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("access_denied"), "{err}");
}

/// The sandbox's `/oauth2/auth` with approve on, read by hand: the code and the state it returns.
async fn code_for(sb: &Sandbox, redirect: &str, scope: &str, challenge: Option<&str>) -> String {
    let mut url = url::Url::parse(&sb.authorize_url()).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "sandbox-app")
        .append_pair("redirect_uri", redirect)
        .append_pair("audience", "https://api.understory.io")
        .append_pair("scope", scope)
        .append_pair("state", "state-1234567");
    if let Some(ch) = challenge {
        url.query_pairs_mut()
            .append_pair("code_challenge", ch)
            .append_pair("code_challenge_method", "S256");
    }
    let resp = browser().get(url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let back = url::Url::parse(&location(&resp)).unwrap();
    let q: HashMap<String, String> = back.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "state-1234567");
    q.get("code")
        .cloned()
        .unwrap_or_else(|| panic!("no code: {back}"))
}

async fn token(sb: &Sandbox, pairs: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut all = vec![("client_id", "sandbox-app"), ("client_secret", APP_SECRET)];
    all.extend_from_slice(pairs);
    let resp = browser()
        .post(sb.token_url())
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&all))
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

async fn me(sb: &Sandbox, access: &Value) -> StatusCode {
    browser()
        .get(format!("{}/v1/me", sb.base_url()))
        .bearer_auth(access.as_str().unwrap())
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_is_good_once_and_a_reuse_revokes_what_it_issued() {
    let redirect = "http://127.0.0.1:9/callback";
    let mut sc = app_sandbox(redirect, Consent::Approve);
    sc.code_ttl_secs = 2;
    let sb = start(sc).await;
    let code = code_for(&sb, redirect, "offline booking.read", None).await;
    let exchange = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect),
    ];
    let (status, first) = token(&sb, &exchange).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert!(first["refresh_token"].as_str().unwrap().starts_with("ory_rt_"));
    assert_eq!(me(&sb, &first["access_token"]).await, StatusCode::OK);
    let (status, again) = token(&sb, &exchange).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(again["error"], "invalid_grant", "{again}");
    assert_eq!(me(&sb, &first["access_token"]).await, StatusCode::UNAUTHORIZED);
    let rt = first["refresh_token"].as_str().unwrap();
    let (_, refused) = token(&sb, &[("grant_type", "refresh_token"), ("refresh_token", rt)]).await;
    assert_eq!(
        refused["error"], "invalid_grant",
        "the reused code's refresh token is revoked"
    );

    // Expired, for another redirect URI, without the PKCE verifier, or without `offline`.
    let late = code_for(&sb, redirect, "offline booking.read", None).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (_, e) = token(
        &sb,
        &[
            ("grant_type", "authorization_code"),
            ("code", &late),
            ("redirect_uri", redirect),
        ],
    )
    .await;
    assert_eq!(e["error"], "invalid_grant");
    assert!(
        e["error_description"].as_str().unwrap().contains("expired"),
        "{e}"
    );
    let other = code_for(&sb, redirect, "offline booking.read", None).await;
    let (_, e) = token(
        &sb,
        &[
            ("grant_type", "authorization_code"),
            ("code", &other),
            ("redirect_uri", "http://127.0.0.1:9/other"),
        ],
    )
    .await;
    assert_eq!(e["error"], "invalid_grant", "{e}");
    // S256 of the verifier below, computed outside Rust (Python's hashlib and base64).
    let challenge = "uobNuCG5FfWKoBNxsrAQKqDKYBZW8QUzQyPmfG69NLs";
    let pkce = code_for(&sb, redirect, "offline booking.read", Some(challenge)).await;
    let (_, e) = token(
        &sb,
        &[
            ("grant_type", "authorization_code"),
            ("code", &pkce),
            ("redirect_uri", redirect),
            ("code_verifier", "wrong"),
        ],
    )
    .await;
    assert_eq!(e["error"], "invalid_grant", "{e}");
    let pkce = code_for(&sb, redirect, "offline booking.read", Some(challenge)).await;
    let (status, ok) = token(
        &sb,
        &[
            ("grant_type", "authorization_code"),
            ("code", &pkce),
            ("redirect_uri", redirect),
            ("code_verifier", "dBjftJeZ4CVP-mJ92K9cBgRJeZ4Nse0LSBa1M4J1Akw"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{ok}");
    let online = code_for(&sb, redirect, "booking.read", None).await;
    let (status, no_rt) = token(
        &sb,
        &[
            ("grant_type", "authorization_code"),
            ("code", &online),
            ("redirect_uri", redirect),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        no_rt.get("refresh_token").is_none(),
        "refresh tokens need `offline`: {no_rt}"
    );

    // An unregistered redirect URI gets an error page, never a redirect.
    let resp = browser()
        .get(format!(
            "{}?response_type=code&client_id=sandbox-app&redirect_uri=http%3A%2F%2Fevil.example%2Fcb&state=abcdefghij&audience=https%3A%2F%2Fapi.understory.io",
            sb.authorize_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.headers().get(reqwest::header::LOCATION).is_none());
    // The internal key may not use this grant.
    let resp = browser()
        .post(sb.token_url())
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "sandbox-client"),
            ("client_secret", "sandbox-secret"),
            ("code", "x"),
        ]))
        .send()
        .await
        .unwrap();
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["error"], "unauthorized_client", "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotates_and_a_retired_token_presented_again_revokes_the_chain() {
    let redirect = "http://127.0.0.1:9/callback";
    let sb = start(app_sandbox(redirect, Consent::Approve)).await;
    let code = code_for(&sb, redirect, "offline booking.read", None).await;
    let (_, first) = token(
        &sb,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
        ],
    )
    .await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_owned();
    let (status, second) = token(&sb, &[("grant_type", "refresh_token"), ("refresh_token", &rt1)]).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let rt2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2, "every refresh rotates");
    assert_eq!(me(&sb, &second["access_token"]).await, StatusCode::OK);
    // The retired token again: taken as theft, the whole chain goes.
    let (status, e) = token(&sb, &[("grant_type", "refresh_token"), ("refresh_token", &rt1)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"], "invalid_grant", "{e}");
    let (_, e) = token(&sb, &[("grant_type", "refresh_token"), ("refresh_token", &rt2)]).await;
    assert_eq!(
        e["error"], "invalid_grant",
        "the newest token of the chain is revoked too: {e}"
    );
    assert_eq!(me(&sb, &second["access_token"]).await, StatusCode::UNAUTHORIZED);
    let stats = sb.auth_stats();
    assert_eq!((stats.reuses, stats.chains_revoked), (1, 1));
}

/// A customer connected through `connect`; `rotate` is the sandbox's rotation switch.
pub async fn connected(rotate: bool) -> (Sandbox, Customer) {
    let redirect = format!("http://127.0.0.1:{}/callback", free_port());
    let mut sc = app_sandbox(&redirect, Consent::Approve);
    sc.rotate_refresh_tokens = rotate;
    let sb = start(sc).await;
    let c = customer(&sb, &redirect, "");
    let (code, out, err) = connect(&c).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    (sb, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_runs_for_many_access_token_lifetimes_on_refresh_alone() {
    let (sb, c) = connected(true).await;
    sb.set_token_ttl(Duration::from_secs(1));
    sb.set_faults(FaultConfig {
        slow: 1.0,
        slow_ms: 40,
        ..FaultConfig::default()
    });
    let before = sb.auth_stats().refreshes;
    let started = std::time::Instant::now();
    let out = run(&c, "sync", &[]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let refreshes = sb.auth_stats().refreshes - before;
    assert!(
        took > Duration::from_secs(4),
        "the run must outlive several tokens: {took:?}"
    );
    assert!(refreshes >= 4, "{refreshes} refreshes in {took:?}");
    assert_eq!(sb.auth_stats().reuses, 0);
    assert_eq!(rows(&c.db()), 240);
    // The file holds the newest token of the chain: the next run starts from it.
    sb.set_faults(FaultConfig::default());
    let next = run(&c, "sync", &[]);
    assert_eq!(next.status.code(), Some(0), "{}", text(&next));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_right_after_the_save_loses_nothing_and_one_before_it_asks_for_connect() {
    let (sb, c) = connected(true).await;
    let out = run(&c, "sync", &[(understory_sync_crash_hook(), "refresh-saved")]);
    assert_eq!(
        out.status.signal(),
        Some(6),
        "aborted at the hook: {}",
        text(&out)
    );
    let out = run(&c, "sync", &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the saved token carries on: {}",
        text(&out)
    );
    assert_eq!(sb.auth_stats().reuses, 0);
    let stored = rows(&c.db());

    // Killed between the answer and the save: the file still has the token the server just
    // retired. Using it is a reuse; the chain is revoked and only connect helps. (The job's
    // save-before-use order makes this window one fsync wide.)
    let out = run(&c, "sync", &[(understory_sync_crash_hook(), "refresh-received")]);
    assert_eq!(out.status.signal(), Some(6), "{}", text(&out));
    let out = run(&c, "sync", &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
    assert!(
        err.contains("invalid_grant") && err.contains("re-run `understory-sync connect`"),
        "{err}"
    );
    assert_eq!(sb.auth_stats().reuses, 1);
    assert_eq!(rows(&c.db()), stored, "the data stays");
    assert!(integrity_ok(&c.db()));

    // connect again, and syncing resumes.
    let (code, out, err) = connect(&c).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    let out = run(&c, "sync", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_file_is_unreadable_without_its_key() {
    let (_sb, c) = connected(true).await;
    let vault = Vault::new(c.token_file());
    let key = Key::load(&c.key_file(), understory_sync::auth::token_vault::KeyFrom::File).unwrap();
    assert!(vault.load(&key).is_ok());
    let other_path = c.dir.path().join("keys/other.key");
    let other = Key::create(&other_path).unwrap();
    let e = vault.load(&other).unwrap_err().to_string();
    assert!(e.contains("cannot be opened with this key"), "{e}");

    // The job with the wrong key: one clear line, exit 3, the file left as it was.
    let before = std::fs::read(c.token_file()).unwrap();
    let out = run(
        &c,
        "sync",
        &[(
            "UNDERSTORY_SYNC__AUTH__TOKEN_KEY_FILE",
            other_path.to_str().unwrap(),
        )],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("cannot be opened with this key"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read(c.token_file()).unwrap(), before);
    // A key others can read is refused before it is used.
    std::fs::set_permissions(c.key_file(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(&c, "sync", &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("chmod 600"), "{}", text(&out));
    std::fs::set_permissions(c.key_file(), std::fs::Permissions::from_mode(0o600)).unwrap();
    // No token stored: connect first.
    std::fs::remove_file(c.token_file()).unwrap();
    let out = run(&c, "sync", &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("run `understory-sync connect` first"),
        "{}",
        text(&out)
    );
}

/// Rewrites the stored token's metadata as if it had been issued `days` ago (with its key, so the
/// file still opens).
fn age_stored_token(c: &Customer, days: i64) {
    let vault = Vault::new(c.token_file());
    let key = Key::load(&c.key_file(), understory_sync::auth::token_vault::KeyFrom::File).unwrap();
    let (token, mut info) = vault.load(&key).unwrap();
    info.issued_at = Utc::now() - chrono::Duration::days(days);
    vault.save(&key, &token, &info).unwrap();
}

/// The metrics textfile the customer's last run wrote.
pub fn metrics(c: &Customer) -> String {
    std::fs::read_to_string(c.dir.path().join("data/metrics.prom")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_token_the_server_never_rotated_is_warned_about_in_log_status_and_metrics() {
    let (_sb, c) = connected(false).await;
    // As if the server had never rotated it since.
    age_stored_token(&c, 26);

    let out = run(&c, "sync", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("more than 25 days ago"), "{}", text(&out));
    let metrics = metrics(&c);
    assert!(
        metrics.contains("understory_sync_refresh_token_expiring{account=\"customer\"} 1"),
        "{metrics}"
    );
    let status = text(&run(&c, "status", &[]));
    assert!(
        status.contains("26 days ago") && status.contains("older than 25 days"),
        "{status}"
    );
    let json = Command::new(BIN)
        .args(["status", "--json", "--config"])
        .arg(&c.cfg)
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["refresh_token"]["expiring"], true, "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_token_is_fresh_and_a_key_beside_the_database_is_refused() {
    let (_sb, c) = connected(true).await;
    age_stored_token(&c, 26);
    let vault = Vault::new(c.token_file());
    let out = run(&c, "sync", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        !text(&out).contains("more than 25 days ago"),
        "rotated, so fresh: {}",
        text(&out)
    );
    let metrics = metrics(&c);
    assert!(
        metrics.contains("understory_sync_refresh_token_expiring{account=\"customer\"} 0"),
        "{metrics}"
    );
    assert_eq!(vault.info().unwrap().unwrap().age_days(Utc::now()), 0);

    let out = run(
        &c,
        "sync",
        &[("UNDERSTORY_SYNC__AUTH__TOKEN_KEY_FILE", "data/token.key")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`auth.token_key_file`") && err.contains("same directory as the database"),
        "{err}"
    );
}
