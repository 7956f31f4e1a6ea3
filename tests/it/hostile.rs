//! A misbehaving API, played by small stub servers on loopback: what it sends never reaches a
//! terminal, the journal, `sync_runs` or `status` unescaped.

use std::path::Path;
use std::process::Command;

use axum::Json;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::json;

use crate::cli::{BIN, sync_cmd};
use crate::support::*;

/// Serves `app` on a free loopback port; returns its base URL.
async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// A token endpoint that issues tokens to anyone.
fn token_endpoint() -> axum::Router {
    axum::Router::new().route(
        "/oauth2/token",
        post(|| async {
            Json(json!({"access_token": "stub-token", "token_type": "bearer", "expires_in": 3600}))
        }),
    )
}

/// A config for the binary: `base` serves the API and the token endpoint; bookings only.
fn stub_config(dir: &Path, base: &str) -> std::path::PathBuf {
    let path = dir.join("stub.toml");
    std::fs::write(
        &path,
        format!(
            r#"database = "stub.sqlite"
[auth]
token_url = "{base}/oauth2/token"
client_id = "stub"
[api]
base_url = "{base}"
[retry]
max_attempts = 2
initial_backoff_ms = 5
max_backoff_ms = 10
rate_limited_wait_secs = 1
[streams]
bookings = true
orders = false
marketing_consents = false
"#
        ),
    )
    .unwrap();
    path
}

/// A message that would forge a second `error:` line and recolour a terminal.
const FORGED: &str = "bad cursor\u{1b}[31m\nerror: everything is fine\r\u{202e}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_text_is_escaped_in_every_output() {
    let app = token_endpoint().route(
        "/v1/bookings",
        get(|| async {
            (
                StatusCode::BAD_REQUEST,
                Json(json!({"code": "BAD\u{1b}[0m", "message": FORGED})),
            )
        }),
    );
    let base = serve(app).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = stub_config(dir.path(), &base);
    for journald in [false, true] {
        let mut cmd = sync_cmd(&cfg, "secret");
        if journald {
            cmd.env("JOURNAL_STREAM", "8:1");
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{err}");
        assert!(
            !err.contains('\u{1b}') && !err.contains('\r') && !err.contains('\u{202e}'),
            "{err:?}"
        );
        let errors: Vec<&str> = err
            .lines()
            .filter(|l| l.starts_with("error:") || l.starts_with("<3>error:"))
            .collect();
        assert_eq!(errors.len(), 1, "one error line, none forged: {err}");
        assert!(
            errors[0].contains(r"bad cursor\u{1b}[31m\u{a}error: everything is fine"),
            "{err}"
        );
    }
    let stored: String = open(&dir.path().join("stub.sqlite"))
        .query_row("SELECT error FROM sync_runs ORDER BY id DESC LIMIT 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(!stored.chars().any(char::is_control), "{stored:?}");
    let status = Command::new(BIN)
        .args(["status", "--database"])
        .arg(dir.path().join("stub.sqlite"))
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(!shown.contains('\u{1b}') && shown.contains(r"\u{1b}"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oauth_error_description_is_shortened_and_escaped() {
    let long = format!("{FORGED}{}", "x".repeat(5_000));
    let app = axum::Router::new().route(
        "/oauth2/token",
        post(move || {
            let long = long.clone();
            async move {
                (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"error": "invalid_client", "error_description": long})),
                )
            }
        }),
    );
    let base = serve(app).await;
    let dir = tempfile::tempdir().unwrap();
    let out = sync_cmd(&stub_config(dir.path(), &base), "secret")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains('\u{1b}'), "{err:?}");
    assert!(
        err.contains("invalid_client") && err.contains('…') && err.len() < 1_000,
        "{err}"
    );
}
