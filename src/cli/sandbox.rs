//! `sandbox`: serve the stand-in Understory API on a port.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use understory_sandbox::config::Consent;
use understory_sandbox::{Sandbox, SandboxConfig};

use super::exit::Exit;

/// The `sandbox` command's flags; each overrides the config file's value.
#[derive(Debug, clap::Args)]
pub struct Flags {
    /// The port to serve the API and token endpoint on; the job's examples expect 8787.
    #[arg(long, default_value_t = 8787)]
    pub port: u16,
    /// The address to listen on; loopback by default, as the sandbox's keys are public.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
    /// Sandbox settings (see config/sandbox-server.toml); the flags below override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Seed of the generated data, so a run can be reproduced byte for byte (default 42).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Bookings to generate, orders following one to one (default 10000).
    #[arg(long)]
    pub bookings: Option<u32>,
    /// Lifetime of access tokens; a few seconds shows the job renewing one mid-run (default 3599).
    #[arg(long)]
    pub token_ttl_secs: Option<u64>,
    /// How long a list cursor stays valid; a few seconds shows a stale cursor (default 600).
    #[arg(long)]
    pub cursor_ttl_secs: Option<u64>,
    /// Advance the simulated clock one step this often, so syncs find changes (unset: never).
    #[arg(long)]
    pub mutate_every_secs: Option<u64>,
    /// The consent step of third-party apps: show the page (default), or approve or deny at once.
    #[arg(long, value_enum)]
    pub consent: Option<Consent>,
}

/// Serves until SIGINT.
pub async fn serve(flags: Flags) -> Result<Exit, (Exit, anyhow::Error)> {
    let Flags {
        port,
        bind,
        config,
        seed,
        bookings,
        token_ttl_secs,
        cursor_ttl_secs,
        mutate_every_secs,
        consent,
    } = flags;
    let mut cfg = match config {
        Some(p) => SandboxConfig::from_file(&p).map_err(|e| (Exit::Config, anyhow::anyhow!(e)))?,
        None => SandboxConfig::default(),
    };
    cfg.seed = seed.unwrap_or(cfg.seed);
    cfg.data.bookings = bookings.unwrap_or(cfg.data.bookings);
    cfg.token_ttl_secs = token_ttl_secs.unwrap_or(cfg.token_ttl_secs);
    cfg.cursor_ttl_secs = cursor_ttl_secs.unwrap_or(cfg.cursor_ttl_secs);
    cfg.consent = consent.unwrap_or(cfg.consent);
    let consent = cfg.consent;
    let key = cfg
        .clients
        .iter()
        .find(|k| k.grant_types.contains("client_credentials"))
        .map(|k| k.client_id.clone())
        .unwrap_or_default();
    let apps: Vec<String> = cfg
        .clients
        .iter()
        .filter(|k| k.grant_types.contains("authorization_code"))
        .map(|k| format!("{} → {}", k.client_id, k.redirect_uris.join(", ")))
        .collect();
    let sandbox = match Sandbox::start(cfg, SocketAddr::new(bind, port)).await {
        Ok(s) => s,
        // Another process has the port: a flag to change, not a bug to report.
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            return Err((
                Exit::Config,
                anyhow::anyhow!(
                    "cannot listen on {bind}:{port}: the address is already in use (another sandbox?); stop that process or pick another --port"
                ),
            ));
        }
        Err(e) => {
            return Err((
                Exit::Internal,
                anyhow::Error::new(e).context(format!("cannot listen on {bind}:{port}")),
            ));
        }
    };
    eprintln!(
        "sandbox: serving Understory's API and token endpoint on {}",
        sandbox.base_url()
    );
    eprintln!(
        "sandbox: token endpoint {} (client_id {key}; secret as configured, default 'sandbox-secret')",
        sandbox.token_url()
    );
    if !apps.is_empty() {
        eprintln!(
            "sandbox: third-party apps at {} (consent {}): {}",
            sandbox.authorize_url(),
            format!("{consent:?}").to_lowercase(),
            apps.join("; ")
        );
    }
    if let Some(every) = mutate_every_secs.filter(|s| *s > 0) {
        let handle = std::sync::Arc::new(sandbox);
        let h = std::sync::Arc::clone(&handle);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(every)).await;
                h.mutate(1);
                tracing::info!("sandbox: advanced the simulated clock one step");
            }
        });
        tokio::signal::ctrl_c().await.ok();
        return Ok(Exit::Ok);
    }
    tokio::select! {
        r = sandbox.serve_forever() => r.map_err(|e| (Exit::Internal, e.into()))?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(Exit::Ok)
}
