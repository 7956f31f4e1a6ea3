//! `demo`: the sandbox in-process, synced into a local file; no credentials, no network.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use secrecy::SecretString;
use understory_sandbox::{Sandbox, SandboxConfig};
use understory_sync::config::{self, RawConfig};

use super::exit::Exit;

pub async fn demo(database: PathBuf, bookings: u32) -> Result<Exit, (Exit, anyhow::Error)> {
    let mut sandbox_cfg = SandboxConfig::default();
    sandbox_cfg.data.bookings = bookings;
    sandbox_cfg.data.consents = bookings / 4;
    sandbox_cfg.data.events = (bookings / 20).max(10);
    let key = sandbox_cfg.clients[0].clone();
    let sandbox = Sandbox::start(sandbox_cfg, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .context("cannot start the sandbox")
        .map_err(|e| (Exit::Internal, e))?;
    eprintln!(
        "demo: sandbox serving on {} with {bookings} bookings",
        sandbox.base_url()
    );
    let mut raw = RawConfig {
        database: database.clone(),
        ..RawConfig::default()
    };
    raw.auth.token_url = sandbox.token_url();
    raw.auth.client_id = Some(key.client_id);
    raw.auth.client_secret = Some(SecretString::from(key.client_secret));
    raw.api.base_url = sandbox.base_url();
    raw.api.requests_per_second = 2_000;
    raw.api.max_requests_per_second = 2_000;
    raw.api.burst = 200;
    raw.api.max_concurrent = 8;
    // Every stream, the optional ones included, so the demo shows the whole account.
    for stream in understory_sync::streams::ALL {
        raw.streams.set(stream.name, true);
    }
    let cfg =
        config::validate(raw, &config::Environment::default(), None).map_err(|e| (Exit::Config, e.into()))?;
    let exit = super::sync::once(&cfg).await?;
    let counts = understory_sync::store::status(&database, 0, &understory_sync::streams::tables())
        .map_err(|e| (Exit::Database, anyhow::Error::new(e)))?
        .rows;
    println!(
        "synced {} from the sandbox at {}:",
        database.display(),
        sandbox.base_url()
    );
    for (table, n) in counts {
        println!("  {table:<28} {n:>8} rows");
    }
    println!("open it with: sqlite3 {}", database.display());
    Ok(exit)
}
