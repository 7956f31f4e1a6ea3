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

use axum::extract::{RawQuery, State as AxState};
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;
use secrecy::SecretString;
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
    listener: tokio::net::TcpListener,
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
    // Every path goes to one handler that compares it with the redirect URI's: a path given to
    // `route` is route syntax, where a segment starting with `:` or `*` is a capture (and one
    // axum refuses panics), not the text the browser is sent back to.
    let router = axum::Router::new().fallback(callback).with_state(shared);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    // A plain thread: a pending read of the terminal must not keep the process alive at exit.
    let pasted = Arc::clone(attempt);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { return };
            if let Some((_, query)) = line.trim().split_once('?') {
                let outcome = pasted.code(query);
                if matches!(
                    outcome,
                    Err(understory_sync::auth::authorize::CallbackError::StateMismatch)
                ) {
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

struct Callback {
    attempt: Arc<Attempt>,
    /// The redirect URI's path, as the browser sends it.
    path: String,
    tx: Mutex<Option<mpsc::Sender<Outcome>>>,
}

/// The redirect URI: checks the answer and tells the person in the browser what happened;
/// any other path or method is not found.
async fn callback(
    AxState(cb): AxState<Arc<Callback>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    RawQuery(query): RawQuery,
) -> Response {
    if uri.path() != cb.path {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    }
    if method != axum::http::Method::GET {
        return axum::http::StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let outcome = cb.attempt.code(query.as_deref().unwrap_or_default());
    // Anyone on this machine, or any page open in the customer's browser, can send a request
    // here: one that is not this attempt's is refused, and connect keeps waiting for its own.
    if let Err(e @ understory_sync::auth::authorize::CallbackError::StateMismatch) = &outcome {
        tracing::warn!("a redirect with another state was refused; still waiting for this connect's");
        return (
            axum::http::StatusCode::BAD_REQUEST,
            Html(format!(
                "<!doctype html><meta charset=\"utf-8\"><title>understory-sync</title><p>{}</p>",
                e.to_string().replace('&', "&amp;").replace('<', "&lt;")
            )),
        )
            .into_response();
    }
    let text = match &outcome {
        Ok(_) => "Access granted. understory-sync is finishing the connection; the terminal shows the result. You can close this tab.".to_owned(),
        Err(e) => format!("understory-sync did not connect: {e}"),
    };
    let Some(tx) = cb.tx.locked().take() else {
        return Html("<p>This connect attempt has already received its answer.</p>").into_response();
    };
    let _ = tx.send(outcome).await;
    Html(format!(
        "<!doctype html><meta charset=\"utf-8\"><title>understory-sync</title><p>{}</p>",
        text.replace('&', "&amp;").replace('<', "&lt;")
    ))
    .into_response()
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
}
