//! What the benchmarks share: a job config pointed at an in-process sandbox.

use std::path::Path;

use secrecy::SecretString;
use understory_sandbox::Sandbox;
use understory_sync::config::RawConfig;

/// A raw config for `db`, authenticated against `sb` with its default key.
#[allow(dead_code)] // not every bench uses every helper
pub fn raw_config(sb: &Sandbox, db: &Path) -> RawConfig {
    let mut raw = RawConfig {
        database: db.to_owned(),
        ..RawConfig::default()
    };
    raw.auth.token_url = sb.token_url();
    raw.auth.client_id = Some("sandbox-client".into());
    raw.auth.client_secret = Some(SecretString::from("sandbox-secret".to_owned()));
    raw.api.base_url = sb.base_url();
    raw
}

#[allow(dead_code)] // not every bench uses every helper
pub mod budget_trial;
