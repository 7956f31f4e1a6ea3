//! The shipped example configs parse, and name every key the code reads.

use std::path::Path;

use understory_sandbox::SandboxConfig;
use understory_sync::config::{self, Environment};

use crate::support::{assert_bookings_converged, small, start, temp_db};

/// Every key `RawConfig` reads besides `[streams]`; `deny_unknown_fields` makes sure nothing
/// else is accepted.
const KEYS: [&str; 40] = [
    "database",
    "schedule",
    "auth.token_url",
    "auth.audience",
    "auth.client_id",
    "auth.client_secret",
    "auth.client_secret_file",
    "auth.renew_before_secs",
    "auth.method",
    "auth.authorize_url",
    "auth.redirect_uri",
    "auth.token_file",
    "auth.token_key_file",
    "auth.pkce",
    "api.base_url",
    "api.user_agent",
    "api.accept_language",
    "api.connect_timeout_secs",
    "api.request_timeout_secs",
    "api.requests_per_second",
    "api.max_requests_per_second",
    "api.burst",
    "api.max_concurrent",
    "api.page_size",
    "retry.max_attempts",
    "retry.initial_backoff_ms",
    "retry.max_backoff_ms",
    "retry.rate_limited_wait_secs",
    "retry.max_retry_after_secs",
    "retry.run_budget",
    "sync.overlap_secs",
    "sync.cursor_ttl_secs",
    "metrics.textfile",
    "metrics.account",
    "webhooks.listen",
    "webhooks.path",
    "webhooks.tolerance_secs",
    "webhooks.secret_file",
    "webhooks.key_file",
    "webhooks.keep_days",
];

/// Every key: the fixed ones and one per stream.
fn keys() -> Vec<String> {
    KEYS.iter()
        .map(|k| (*k).to_owned())
        .chain(
            understory_sync::streams::ALL
                .iter()
                .map(|s| format!("streams.{}", s.name)),
        )
        .collect()
}

#[test]
fn the_example_config_loads_and_documents_every_key() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/understory-sync.toml");
    let env = Environment {
        vars: vec![
            ("UNDERSTORY_CLIENT_ID".into(), "id".into()),
            ("UNDERSTORY_CLIENT_SECRET".into(), "s".into()),
        ],
    };
    let cfg = config::load(&path, &env).expect("example config loads");
    assert_eq!(cfg.api.base_url.as_str(), "https://api.understory.io/");
    let text = std::fs::read_to_string(&path).unwrap();
    for key in keys() {
        let leaf = key.rsplit('.').next().unwrap();
        assert!(
            text.lines().any(|l| l
                .trim_start()
                .trim_start_matches("# ")
                .starts_with(&format!("{leaf} ="))),
            "config/understory-sync.toml does not mention {key}"
        );
    }
    // It says which streams are on by default: each stream's value there is its default.
    let table: toml::Table = toml::from_str(&text).unwrap();
    for s in understory_sync::streams::ALL {
        assert_eq!(
            table["streams"].get(s.name).and_then(toml::Value::as_bool),
            Some(s.enabled_by_default),
            "config/understory-sync.toml's streams.{} is its default",
            s.name
        );
    }
    // Every key really is read: setting it through the environment is accepted, not unknown.
    for key in keys()
        .iter()
        .filter(|k| !k.starts_with("auth.client_secret") && *k != "schedule")
    {
        let var = format!("UNDERSTORY_SYNC__{}", key.replace('.', "__").to_uppercase());
        let value = if key.starts_with("streams.") || key == "auth.pkce" {
            "true"
        } else if key == "auth.method" {
            "client_credentials"
        } else if key.contains("token_file") || key.contains("token_key_file") || key.contains("redirect_uri")
        {
            "x"
        } else if key == "webhooks.listen" {
            "127.0.0.1:8788"
        } else if key == "webhooks.path" {
            "/hooks"
        } else if key.ends_with("_url") {
            "http://127.0.0.1:1/"
        } else if key.contains("rate_limited_wait") || key.contains("retry_after") {
            "60"
        } else if key == "database"
            || key.contains("user_agent")
            || key.contains("language")
            || key.contains("audience")
            || key.contains("client_id")
        {
            "x"
        } else {
            "7"
        };
        let mut env = env.clone();
        env.vars.push((var.clone(), value.into()));
        // A `[webhooks]` section needs its key.
        if key.starts_with("webhooks.") && key != "webhooks.key_file" {
            env.vars.push((
                "UNDERSTORY_SYNC__WEBHOOKS__KEY_FILE".into(),
                "/etc/understory-sync/keys/webhooks.key".into(),
            ));
        }
        // A per-parent stream needs its parent on.
        if let Some(parent) = key
            .strip_prefix("streams.")
            .and_then(understory_sync::test_support::streams::by_name)
            .and_then(|s| s.parent())
        {
            let parent = format!("UNDERSTORY_SYNC__STREAMS__{}", parent.name.to_uppercase());
            env.vars.push((parent, "true".into()));
        }
        config::load(&path, &env).unwrap_or_else(|e| panic!("{var}={value}: {e}"));
    }
    let mut env = env.clone();
    env.vars
        .push(("UNDERSTORY_SYNC__API__BASE_URLL".into(), "x".into()));
    let err = config::load(&path, &env).unwrap_err().to_string();
    assert!(err.contains("base_url"), "{err}");
}

#[test]
fn the_example_sandbox_config_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sandbox-server.toml");
    let cfg = SandboxConfig::from_file(&path).expect("sandbox config loads");
    assert_eq!(cfg.data.bookings, 10_000);
    assert_eq!(cfg.clients[0].client_id, "sandbox-client");
    assert_eq!(cfg.clients[1].redirect_uris, ["http://127.0.0.1:8976/callback"]);
}

/// `config/sandbox-job.toml` is what an operator copies to try the installed service against
/// the sandbox: with only its address and database moved (the sandbox here is on a free port),
/// and the secret its comments give, it syncs the sandbox to the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_job_config_syncs_the_sandbox_with_the_secret_it_names() {
    let shipped =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sandbox-job.toml"))
            .unwrap();
    assert!(
        shipped.contains(
            "echo sandbox-secret | sudo install -m 0600 /dev/stdin /etc/understory-sync/sandbox.secret"
        ),
        "the config says which secret to install"
    );
    let sb = start(small()).await;
    let (dir, db) = temp_db();
    let text = shipped.replace("http://127.0.0.1:8787", &sb.base_url()).replace(
        "/var/lib/understory-sync/sandbox/understory.sqlite",
        &db.display().to_string(),
    );
    assert_ne!(
        text, shipped,
        "the config names the sandbox's address and the template's database"
    );
    let cfg = dir.path().join("sandbox.toml");
    std::fs::write(&cfg, text).unwrap();
    crate::cli::sync_ok(&cfg);
    assert_bookings_converged(&db, &sb);
}

#[test]
fn the_sandbox_app_config_is_a_valid_third_party_connection() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sandbox-app.toml");
    let env = Environment {
        vars: vec![("UNDERSTORY_CLIENT_SECRET".into(), "sandbox-app-secret".into())],
    };
    let cfg = config::load(&path, &env).expect("sandbox-app config loads");
    let config::AuthMethod::AuthorizationCode(tp) = &cfg.auth.method else {
        panic!("not a third-party config: {:?}", cfg.auth.method);
    };
    assert!(tp.token_key.ends_with("config/keys/sandbox-app.key"), "{tp:?}");
    assert!(
        tp.token_file.ends_with("config/sandbox-app.sqlite.refresh-token"),
        "{tp:?}"
    );
    assert_eq!(tp.redirect_uri.as_str(), "http://127.0.0.1:8976/callback");
}

/// Runs the binary with `env` set on a config that is otherwise fine; returns its exit code
/// and its `error:` lines.
fn sync_with<V: AsRef<std::ffi::OsStr>>(cfg: &Path, env: &[(&str, V)]) -> (Option<i32>, Vec<String>) {
    let mut cmd = crate::cli::sync_cmd(cfg, "sandbox-secret");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let lines = err
        .lines()
        .filter(|l| l.starts_with("error:"))
        .map(str::to_owned)
        .collect();
    (out.status.code(), lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_textfile_or_snapshot_naming_the_database_however_spelled_is_refused_untouched() {
    let sb = crate::support::start(crate::support::small()).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = crate::cli::write_config(d, &sb, "");
    crate::cli::sync_ok(&cfg);
    let db = d.join("sync.sqlite");
    std::fs::create_dir(d.join("sub")).unwrap();
    std::os::unix::fs::symlink(d, d.join("link")).unwrap();
    std::os::unix::fs::symlink(&db, d.join("metrics.prom")).unwrap();
    let files =
        || ["sync.sqlite", "sync.sqlite-wal", "understory-sync.toml"].map(|f| std::fs::read(d.join(f)).ok());
    let before = files();
    const METRICS: &str = "UNDERSTORY_SYNC__METRICS__TEXTFILE";
    const SNAPSHOT: &str = "UNDERSTORY_SYNC__SNAPSHOT__PATH";
    let snapshot = d.join("copy.sqlite");
    for (env, key, other) in [
        (
            vec![(METRICS, d.join("sync.sqlite"))],
            "metrics.textfile",
            "`database`",
        ),
        // Through a link to the directory, and a link to the file itself.
        (
            vec![(METRICS, d.join("link/sync.sqlite"))],
            "metrics.textfile",
            "`database`",
        ),
        (
            vec![(METRICS, d.join("metrics.prom"))],
            "metrics.textfile",
            "`database`",
        ),
        // Through `..`, from a directory that exists and from one that does not.
        (
            vec![(METRICS, d.join("sub/../sync.sqlite"))],
            "metrics.textfile",
            "`database`",
        ),
        (
            vec![(METRICS, d.join("nowhere/../sync.sqlite-wal"))],
            "metrics.textfile",
            "-wal",
        ),
        (
            vec![(METRICS, d.join("link/sub/../sync.sqlite.lock"))],
            "metrics.textfile",
            "lock",
        ),
        (
            vec![(METRICS, d.join("understory-sync.toml"))],
            "metrics.textfile",
            "`--config`",
        ),
        (
            vec![(SNAPSHOT, d.join("link/sync.sqlite-shm"))],
            "snapshot.path",
            "-shm",
        ),
        (
            vec![
                (SNAPSHOT, snapshot.clone()),
                (METRICS, d.join("sub/../link/copy.sqlite")),
            ],
            "metrics.textfile",
            "`snapshot.path`",
        ),
    ] {
        let shown = format!("{env:?}");
        let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
        let (code, errors) = sync_with(&cfg, &env);
        assert_eq!(code, Some(2), "{shown}: {errors:?}");
        assert_eq!(errors.len(), 1, "{shown}: {errors:?}");
        assert!(
            errors[0].contains(&format!("`{key}`")) && errors[0].contains(other),
            "{shown}: {}",
            errors[0]
        );
        assert!(before == files(), "{shown}: the database or the config changed");
    }
    assert!(!snapshot.exists());
    // Files of their own are accepted.
    let (code, errors) = sync_with(
        &cfg,
        &[(METRICS, &d.join("link/sub/sync.prom")), (SNAPSHOT, &snapshot)],
    );
    assert_eq!(code, Some(0), "{errors:?}");
    assert!(d.join("sub/sync.prom").exists() && snapshot.exists());
}

/// Every duration setting, as its environment variable.
const DURATIONS: [&str; 11] = [
    "AUTH__RENEW_BEFORE_SECS",
    "API__CONNECT_TIMEOUT_SECS",
    "API__REQUEST_TIMEOUT_SECS",
    "RETRY__INITIAL_BACKOFF_MS",
    "RETRY__MAX_BACKOFF_MS",
    "RETRY__RATE_LIMITED_WAIT_SECS",
    "RETRY__MAX_RETRY_AFTER_SECS",
    "SYNC__OVERLAP_SECS",
    "SYNC__CURSOR_TTL_SECS",
    "SYNC__PROGRESS_SECS",
    "SYNC__MAX_RUN_SECS",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duration_beyond_a_week_is_a_config_error_naming_its_key_never_a_panic() {
    let sb = crate::support::start(crate::support::small()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = crate::cli::write_config(dir.path(), &sb, "");
    let week = understory_sync::test_support::config::MAX_DURATION_SECS;
    for var in DURATIONS {
        let key = var.to_lowercase().replace("__", ".");
        let over = if var.ends_with("_MS") {
            week * 1000 + 1
        } else {
            week + 1
        };
        for value in [i64::MAX as u64, u64::MAX / 1000 / 1000, over] {
            let mut env = vec![(format!("UNDERSTORY_SYNC__{var}"), value.to_string())];
            // The wait after a 429 may not be longer than the longest Retry-After obeyed.
            if var == "RETRY__RATE_LIMITED_WAIT_SECS" {
                env.push((
                    "UNDERSTORY_SYNC__RETRY__MAX_RETRY_AFTER_SECS".into(),
                    value.to_string(),
                ));
            }
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let (code, errors) = sync_with(&cfg, &env);
            assert_eq!(code, Some(2), "{key} = {value}: {errors:?}");
            assert_eq!(errors.len(), 1, "{key} = {value}: {errors:?}");
            assert!(
                errors[0].contains(&format!("`{key}`")) && errors[0].contains("a week"),
                "{key} = {value}: {}",
                errors[0]
            );
        }
    }
    // A week itself is accepted.
    let env: Vec<(String, String)> = DURATIONS
        .iter()
        .map(|v| {
            let n = if v.ends_with("_MS") { week * 1000 } else { week };
            (format!("UNDERSTORY_SYNC__{v}"), n.to_string())
        })
        .collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (code, errors) = sync_with(&cfg, &env);
    assert_eq!(code, Some(0), "{errors:?}");
}
