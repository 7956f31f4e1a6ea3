//! `connect`: a third-party app asks one customer for access (the authorization code grant,
//! `docs/understory-api.md` §3) and keeps the refresh token that later syncs run on.
//!
//! It prints the authorize address (and opens a browser when there is a display), listens on
//! the loopback redirect URI for the answer, checks its `state`, exchanges the code, stores the
//! refresh token encrypted, then proves the stored token works by refreshing it for `/v1/me`.
//! On a server without a browser, open the address on any machine and either forward the port
//! (`ssh -L 8976:127.0.0.1:8976 server`) or paste the address the browser ends up on.

use std::io::BufRead as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use understory_sync::auth::Endpoint;
use understory_sync::auth::authorize::{Attempt, CallbackError, OFFLINE};
use understory_sync::auth::token_vault::{Info, Key, Vault};
use understory_sync::config::{self, AuthMethod, Config, ThirdParty};
use understory_sync::pace::Pace;
use understory_sync::poison::Unpoisoned as _;
use understory_sync::shutdown;

use super::config_arg::ConfigArg;
use super::exit::Exit;

/// `connect`'s flags.
#[derive(Debug, clap::Args)]
pub struct Flags {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Only print the address; do not try to open a browser.
    #[arg(long)]
    pub no_browser: bool,
    /// Give up when no redirect arrives within this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout_secs: u64,
}

type Outcome = Result<SecretString, CallbackError>;

fn fail(exit: Exit, e: impl Into<anyhow::Error>) -> (Exit, anyhow::Error) {
    (exit, e.into())
}

pub async fn connect(flags: Flags) -> Result<Exit, (Exit, anyhow::Error)> {
    let cfg = config::load(&flags.config.path, &config::Environment::from_process())
        .map_err(|e| fail(Exit::Config, e))?;
    let AuthMethod::AuthorizationCode(tp) = &cfg.auth.method else {
        return Err(fail(
            Exit::Config,
            anyhow::anyhow!(
                "config key `auth.method`: connect is for third-party apps (auth.method = \"authorization_code\"); an internal integration key needs no connect"
            ),
        ));
    };
    let key = key(tp)?;
    let addr = tp
        .redirect_uri
        .socket_addrs(|| None)
        .ok()
        .and_then(|a| a.into_iter().next())
        .ok_or_else(|| {
            fail(
                Exit::Config,
                anyhow::anyhow!("config key `auth.redirect_uri`: no address to listen on"),
            )
        })?;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        fail(
            Exit::Config,
            anyhow::anyhow!(
                "cannot listen on {addr} for the redirect ({e}); is another connect running? `auth.redirect_uri` names the port"
            ),
        )
    })?;
    let scopes = cfg.scopes();
    let attempt = Arc::new(Attempt::new(
        &tp.authorize_url,
        &cfg.auth.audience,
        &cfg.auth.client_id,
        &tp.redirect_uri,
        &scopes,
        tp.pkce,
    ));
    println!("Open this address in a browser, sign in as the customer and allow access:");
    println!("  {}", attempt.url);
    eprintln!(
        "connect: waiting for the redirect to {} (or paste the address the browser was sent to and press Enter)",
        tp.redirect_uri
    );
    if !flags.no_browser {
        open_browser(attempt.url.as_str());
    }
    let code = wait(listener, &attempt, tp, Duration::from_secs(flags.timeout_secs))
        .await?
        .map_err(|e| fail(Exit::Auth, e))?;

    let http = understory_sync::http::build(&cfg.api).map_err(|e| fail(Exit::Config, anyhow::anyhow!(e)))?;
    let endpoint = Endpoint {
        http,
        pace: Pace::new(understory_sync::api::pace_settings(&cfg), None),
        url: cfg.auth.token_url.clone(),
        max_body: cfg.api.max_response_bytes,
    };
    // Once only: a code is good for one exchange, and a retry after the server took it would
    // be a reuse, which revokes what the first exchange issued.
    let issued = attempt
        .exchange(&endpoint, &cfg.auth.client_id, &cfg.auth.client_secret, &code)
        .await
        .map_err(|e| {
            let exit = if e.is_transient() { Exit::Api } else { Exit::Auth };
            fail(exit, e)
        })?;
    let Some(refresh_token) = issued.refresh_token else {
        return Err(fail(
            Exit::Auth,
            anyhow::anyhow!(
                "the token endpoint issued no refresh token: the app must be allowed the `{OFFLINE}` scope; ask integrations@understory.io"
            ),
        ));
    };
    let now = Utc::now();
    let info = Info {
        client_id: cfg.auth.client_id.clone(),
        scope: issued.scope.unwrap_or_else(|| {
            let mut s = vec![OFFLINE];
            s.extend(scopes.iter().copied());
            s.join(" ")
        }),
        connected_at: now,
        issued_at: now,
    };
    let vault = Vault::new(tp.token_file.clone());
    {
        let _lock = vault.lock().await.map_err(|e| fail(Exit::Database, e))?;
        vault
            .save(&key, &refresh_token, &info)
            .map_err(|e| fail(Exit::Database, e))?;
    }
    println!(
        "ok: connected; the refresh token is stored encrypted in {} (key {})",
        tp.token_file.display(),
        tp.token_key.display()
    );
    prove(&cfg).await?;
    println!(
        "ok: every sync renews the refresh token; unused, it expires on {}",
        info.expires_at().format("%Y-%m-%d")
    );
    Ok(Exit::Ok)
}

/// The key of the token file: loaded, or created when it is a file that does not exist yet.
fn key(tp: &ThirdParty) -> Result<Key, (Exit, anyhow::Error)> {
    let (key, created) =
        Key::load_or_create(&tp.token_key, tp.key_is_credential).map_err(|e| fail(Exit::Config, e))?;
    if created {
        eprintln!(
            "connect: created a new key {} (mode 0600); keep it, and keep it out of the database's backups",
            tp.token_key.display()
        );
    }
    Ok(key)
}

/// Serves the redirect URI until one answer arrives (or one is pasted), or the time is up.
async fn wait(
    listener: TcpListener,
    attempt: &Arc<Attempt>,
    tp: &ThirdParty,
    timeout: Duration,
) -> Result<Outcome, (Exit, anyhow::Error)> {
    let (tx, mut rx) = mpsc::channel::<Outcome>(1);
    let shared = Arc::new(Callback {
        attempt: Arc::clone(attempt),
        path: tp.redirect_uri.path().to_owned(),
        tx: Mutex::new(Some(tx.clone())),
    });
    let server = tokio::spawn(serve(listener, shared));
    // A plain thread: a pending read of the terminal must not keep the process alive at exit.
    let pasted = Arc::clone(attempt);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { return };
            if let Some((_, query)) = line.trim().split_once('?') {
                let outcome = pasted.code(query);
                if matches!(outcome, Err(CallbackError::StateMismatch)) {
                    eprintln!(
                        "that address is not this connect's (its state does not match); paste the one the browser opened from the address above"
                    );
                    continue;
                }
                let _ = tx.blocking_send(outcome);
                return;
            }
        }
    });
    let (trigger, stop) = shutdown::channel();
    shutdown::on_signals(trigger).map_err(|e| fail(Exit::Internal, e))?;
    let outcome = tokio::select! {
        o = rx.recv() => o.ok_or_else(|| fail(Exit::Internal, anyhow::anyhow!("the redirect listener stopped")))?,
        () = tokio::time::sleep(timeout) => {
            server.abort();
            return Err(fail(Exit::Auth, anyhow::anyhow!(
                "no redirect arrived within {} s; run connect again and finish in the browser", timeout.as_secs()
            )));
        }
        () = stop.stopped() => {
            server.abort();
            return Err(fail(Exit::Interrupted, anyhow::anyhow!("connect was stopped; nothing was stored")));
        }
    };
    // Let the browser's page finish before the listener goes.
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.abort();
    Ok(outcome)
}

/// Answers every connection on `listener` with [`Callback::answer`], until the task is aborted.
async fn serve(listener: TcpListener, cb: Arc<Callback>) {
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // Out of file descriptors, say: wait a moment rather than spin.
                tracing::debug!(error = %e, "the redirect listener could not accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Headers and page in one go on loopback, without Nagle's 40 ms (CONTRIBUTING.md).
        let _ = tcp.set_nodelay(true);
        let cb = Arc::clone(&cb);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let cb = Arc::clone(&cb);
                async move { Ok::<_, std::convert::Infallible>(cb.answer(&req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

struct Callback {
    attempt: Arc<Attempt>,
    /// The redirect URI's path, as the browser sends it.
    path: String,
    tx: Mutex<Option<mpsc::Sender<Outcome>>>,
}

impl Callback {
    /// The redirect URI: checks the answer and tells the person in the browser what happened.
    /// The path is compared as text with the redirect URI's (no route syntax, so `:` or `*` in
    /// it are just characters); any other path is not found, and another method not allowed.
    async fn answer<B>(&self, req: &Request<B>) -> Response<Full<Bytes>> {
        if req.uri().path() != self.path {
            return empty(StatusCode::NOT_FOUND);
        }
        if req.method() != Method::GET {
            return empty(StatusCode::METHOD_NOT_ALLOWED);
        }
        let outcome = self.attempt.code(req.uri().query().unwrap_or_default());
        // Anyone on this machine, or any page open in the customer's browser, can send a request
        // here: one that is not this attempt's is refused, and connect keeps waiting for its own.
        if let Err(e @ CallbackError::StateMismatch) = &outcome {
            tracing::warn!("a redirect with another state was refused; still waiting for this connect's");
            return html(StatusCode::BAD_REQUEST, page(&e.to_string()));
        }
        let text = match &outcome {
            Ok(_) => "Access granted. understory-sync is finishing the connection; the terminal shows the result. You can close this tab.".to_owned(),
            Err(e) => format!("understory-sync did not connect: {e}"),
        };
        let Some(tx) = self.tx.locked().take() else {
            return html(
                StatusCode::OK,
                "<p>This connect attempt has already received its answer.</p>".to_owned(),
            );
        };
        let _ = tx.send(outcome).await;
        html(StatusCode::OK, page(&text))
    }
}

/// A page of one paragraph, `text` escaped: it may quote what the browser's address held.
fn page(text: &str) -> String {
    format!(
        "<!doctype html><meta charset=\"utf-8\"><title>understory-sync</title><p>{}</p>",
        text.replace('&', "&amp;").replace('<', "&lt;")
    )
}

fn html(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

fn empty(status: StatusCode) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

/// Tries the desktop's opener when there is a display; the printed address always works.
fn open_browser(url: &str) {
    let display = std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    if !display {
        return;
    }
    let _ = std::process::Command::new("xdg-open")
        .arg(url)
        .env_clear()
        .envs(browser_env(std::env::vars()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

/// What the browser opener may see of connect's environment: what a desktop session needs to
/// show a page, nothing of the job's (`UNDERSTORY_*` holds the client secret and key paths).
fn browser_env(vars: impl Iterator<Item = (String, String)>) -> Vec<(String, String)> {
    const DESKTOP: [&str; 10] = [
        "DISPLAY",
        "WAYLAND_DISPLAY",
        "XAUTHORITY",
        "XDG_RUNTIME_DIR",
        "XDG_SESSION_TYPE",
        "DBUS_SESSION_BUS_ADDRESS",
        "HOME",
        "PATH",
        "LANG",
        "USER",
    ];
    vars.filter(|(k, _)| DESKTOP.contains(&k.as_str())).collect()
}

/// Refreshes the stored token once and asks `/v1/me`, so a connection that cannot sync fails
/// here, while the person who connected it is still at the terminal.
async fn prove(cfg: &Config) -> Result<(), (Exit, anyhow::Error)> {
    let scopes = cfg.scopes();
    let api = understory_sync::api::ApiClient::new(cfg, &scopes, shutdown::Stop::never(), None)
        .map_err(|e| fail(Exit::Config, anyhow::anyhow!(e)))?;
    let stats = understory_sync::api::Stats::default();
    let me: understory_sync::api::types::Me = api
        .get(&stats, "v1/me", &[])
        .await
        .map_err(|e| fail(Exit::Auth, e))?;
    println!(
        "ok: the stored token refreshes; /v1/me: company \"{}\" ({})",
        understory_sync::http::printable(&me.company_name, 200),
        understory_sync::http::printable(&me.company_id, 100)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_browser_sees_no_secret_of_the_job() {
        let vars = [
            ("UNDERSTORY_CLIENT_SECRET", "s3cret"),
            ("UNDERSTORY_SYNC__AUTH__TOKEN_KEY_FILE", "/etc/k"),
            ("CREDENTIALS_DIRECTORY", "/run/c"),
            ("DISPLAY", ":0"),
            ("PATH", "/usr/bin"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let kept: Vec<String> = browser_env(vars.into_iter())
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(kept, ["DISPLAY", "PATH"]);
    }

    /// A callback for redirect path `/cb`, the state its attempt sent, and where its outcome goes.
    fn callback() -> (Callback, String, mpsc::Receiver<Outcome>) {
        let redirect = url::Url::parse("http://127.0.0.1:8976/cb").unwrap();
        let authorize = url::Url::parse("http://127.0.0.1:1/oauth2/auth").unwrap();
        let attempt = Attempt::new(&authorize, "aud", "app", &redirect, &["booking.read"], true);
        let state = attempt
            .url
            .query_pairs()
            .find(|(k, _)| k == "state")
            .unwrap()
            .1
            .into_owned();
        let (tx, rx) = mpsc::channel(1);
        let cb = Callback {
            attempt: Arc::new(attempt),
            path: "/cb".to_owned(),
            tx: Mutex::new(Some(tx)),
        };
        (cb, state, rx)
    }

    fn request(method: Method, target: &str) -> Request<()> {
        Request::builder().method(method).uri(target).body(()).unwrap()
    }

    async fn text_of(r: Response<Full<Bytes>>) -> String {
        use http_body_util::BodyExt as _;
        let body = r.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn only_a_get_of_the_redirect_path_with_this_state_ends_the_wait() {
        let (cb, state, mut rx) = callback();
        let other = cb.answer(&request(Method::GET, "/other?code=c")).await;
        assert_eq!(other.status(), StatusCode::NOT_FOUND);
        assert!(text_of(other).await.is_empty());
        let post = cb
            .answer(&request(Method::POST, &format!("/cb?code=c&state={state}")))
            .await;
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);

        let forged = cb.answer(&request(Method::GET, "/cb?code=c&state=forged")).await;
        assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
        assert_eq!(forged.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert!(text_of(forged).await.contains("cross-site request forgery"));
        assert!(rx.try_recv().is_err(), "a forged redirect ends nothing");

        let denied = format!("/cb?error=%3Cscript%3E%26&state={state}");
        let page = cb.answer(&request(Method::GET, &denied)).await;
        assert_eq!(page.status(), StatusCode::OK);
        let page = text_of(page).await;
        assert!(
            page.contains("(&lt;script>&amp;)") && !page.contains("<script>"),
            "{page}"
        );
        assert!(matches!(rx.try_recv(), Ok(Err(CallbackError::Denied { .. }))));

        let late = cb
            .answer(&request(Method::GET, &format!("/cb?code=c&state={state}")))
            .await;
        assert_eq!(late.status(), StatusCode::OK);
        assert!(text_of(late).await.contains("already received its answer"));
    }
}
