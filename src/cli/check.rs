//! `check`: the config, the key (token, `/v1/me`, scopes) and the database, one line each.

use understory_sync::config::{self, Config};
use understory_sync::shutdown;
use understory_sync::store::Store;

use super::exit::Exit;

/// `check`: each step prints one `ok:` line, or fails with one `error:` line and its exit code.
pub async fn check(path: &std::path::Path) -> Result<Exit, (Exit, anyhow::Error)> {
    let cfg =
        config::load(path, &config::Environment::from_process()).map_err(|e| (Exit::Config, e.into()))?;
    let names: Vec<&str> = cfg.streams.iter().map(|s| s.name).collect();
    println!(
        "ok: config {} is valid; streams: {}",
        path.display(),
        names.join(", ")
    );
    let scopes = cfg.scopes();
    let api = understory_sync::api::ApiClient::new(&cfg, &scopes, shutdown::Stop::never(), None)
        .map_err(|e| (Exit::Config, anyhow::anyhow!(e)))?;
    match api.tokens().token().await {
        Ok(_) => {}
        Err(understory_sync::auth::Error::Rejected { error, .. }) if error == "invalid_scope" => {
            let missing = missing_scopes(&cfg, &scopes).await;
            return Err((
                Exit::Auth,
                anyhow::anyhow!(
                    "the key lacks {} needed by the enabled streams (invalid_scope); grant it in Backoffice or disable those streams",
                    missing.join(", ")
                ),
            ));
        }
        Err(e) => {
            let exit = if e.is_transient() { Exit::Api } else { Exit::Auth };
            return Err((exit, anyhow::Error::new(e)));
        }
    }
    println!("ok: the token endpoint {} issued a token", cfg.auth.token_url);
    if let config::AuthMethod::AuthorizationCode(tp) = &cfg.auth.method {
        let info = api.tokens().refresh_token_info();
        println!(
            "ok: connection: {}",
            super::status::describe_connection(&tp.token_file, info.as_ref())
        );
    }
    let stats = understory_sync::api::Stats::default();
    let me: understory_sync::api::types::Me = api.get(&stats, "v1/me", &[]).await.map_err(|e| {
        let exit = if matches!(e.root(), understory_sync::api::Error::Unauthorized { .. }) {
            Exit::Auth
        } else {
            Exit::Api
        };
        (exit, anyhow::Error::new(e))
    })?;
    println!(
        "ok: /v1/me: company \"{}\" ({})",
        understory_sync::http::printable(&me.company_name, 200),
        understory_sync::http::printable(&me.company_id, 100)
    );
    if let Some(granted) = api.tokens().granted_scopes().await {
        let missing: Vec<&str> = scopes
            .iter()
            .copied()
            .filter(|s| !granted.iter().any(|g| g == s))
            .collect();
        if !missing.is_empty() {
            return Err((
                Exit::Auth,
                anyhow::anyhow!(
                    "the key was not granted {} needed by the enabled streams; grant it in Backoffice or disable those streams",
                    missing.join(", ")
                ),
            ));
        }
        println!(
            "ok: granted scopes cover the enabled streams ({})",
            understory_sync::http::printable(&granted.join(" "), 300)
        );
    }
    let store = Store::open(&cfg.database).map_err(|e| (Exit::Database, e.into()))?;
    store.check_writable().map_err(|e| (Exit::Database, e.into()))?;
    println!("ok: database {} is writable and migrated", cfg.database.display());
    Ok(Exit::Ok)
}

/// Asks for each scope alone, to name every one the key lacks (the server names only one).
async fn missing_scopes<'a>(cfg: &Config, scopes: &[&'a str]) -> Vec<&'a str> {
    let Ok(http) = understory_sync::http::build(&cfg.api) else {
        return scopes.to_vec();
    };
    let mut missing = Vec::new();
    for scope in scopes {
        let pace = understory_sync::pace::Pace::new(understory_sync::api::pace_settings(cfg), None);
        let probe = understory_sync::auth::source(
            &cfg.auth,
            http.clone(),
            pace,
            &[scope],
            cfg.api.max_response_bytes,
        );
        if probe.token().await.is_err() {
            missing.push(*scope);
        }
    }
    missing
}
