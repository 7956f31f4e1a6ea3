//! The command line: `sync` (one run, for timers), `demo` (the sandbox synced into a local
//! file, no credentials needed) and `sandbox` (serve the stand-in API).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use secrecy::SecretString;

use understory_sync::config::{self, Config, RawConfig};
use understory_sync::sandbox::{Sandbox, SandboxConfig};
use understory_sync::shutdown;
use understory_sync::store::Store;
use understory_sync::sync::{self, Failure, RunReport, RunStatus};

/// Exit codes, documented in the README: each names a class of problem an operator acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    Ok = 0,
    /// A bug or an environment problem not covered below.
    Internal = 1,
    /// The config file, a key, or a flag is wrong.
    Config = 2,
    /// The token endpoint refused the key, or the API refused the token.
    Auth = 3,
    /// The API was unreachable or kept failing after retries, or sent unreadable data.
    Api = 4,
    /// Some streams synced, others failed.
    Partial = 5,
    /// Another instance holds the database's lock.
    LockBusy = 6,
    /// Stopped by SIGTERM/SIGINT; the next run resumes.
    Interrupted = 7,
    /// The database could not be written (disk full, permissions, corruption).
    Database = 8,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "understory-sync",
    version,
    about = "Sync the Understory API into SQLite"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format on stderr; `auto` is text with colours on a terminal, plain otherwise.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Auto,
    Text,
    Json,
}

/// `--config FILE`, shared by every command that reads the job's config.
#[derive(Debug, clap::Args)]
pub struct ConfigArg {
    /// The TOML config file (see config/understory-sync.toml).
    #[arg(
        long = "config",
        short = 'c',
        env = "UNDERSTORY_SYNC_CONFIG",
        default_value = "config/understory-sync.toml"
    )]
    pub path: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one sync and exit (for systemd timers and cron).
    Sync {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Stay running and sync on the config's `schedule` (cron) until SIGTERM/SIGINT.
    Run {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Check the config, the key (token, /v1/me, scopes) and the database, one line each.
    Check {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Show recent runs, each stream's checkpoint and rows per table; reads the database only.
    Status {
        #[command(flatten)]
        config: ConfigArg,
        /// Read this database instead of the config's.
        #[arg(long)]
        database: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Start the sandbox in-process, sync it into a local file and print rows per table.
    Demo {
        #[arg(long, default_value = "understory-demo.sqlite")]
        database: PathBuf,
        /// Bookings in the generated sandbox (orders follow one to one).
        #[arg(long, default_value_t = 1_000)]
        bookings: u32,
    },
    /// Serve the stand-in Understory API (auth server and `/v1`) on loopback.
    Sandbox {
        #[arg(long, default_value_t = 8787)]
        port: u16,
        #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
        bind: IpAddr,
        /// Sandbox settings (see config/sandbox.toml); flags below override it.
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        seed: Option<u64>,
        #[arg(long)]
        bookings: Option<u32>,
        #[arg(long)]
        token_ttl_secs: Option<u64>,
        #[arg(long)]
        cursor_ttl_secs: Option<u64>,
        /// Advance the simulated clock one mutation step this often.
        #[arg(long)]
        mutate_every_secs: Option<u64>,
    },
}

/// Runs the parsed command; errors carry their exit code.
pub async fn run(cli: Cli) -> Result<Exit, (Exit, anyhow::Error)> {
    use std::io::IsTerminal;
    let live = cli.log_format == LogFormat::Auto
        && std::io::stderr().is_terminal()
        && std::env::var_os("JOURNAL_STREAM").is_none();
    LIVE_PROGRESS.store(live, std::sync::atomic::Ordering::Relaxed);
    match cli.command {
        Command::Sync { config } => {
            let cfg = config::load(&config.path, &config::Environment::from_process())
                .map_err(|e| (Exit::Config, anyhow::Error::new(e)))?;
            sync_once(&cfg).await
        }
        Command::Run { config } => {
            let cfg = config::load(&config.path, &config::Environment::from_process())
                .map_err(|e| (Exit::Config, anyhow::Error::new(e)))?;
            run_scheduled(cfg).await
        }
        Command::Check { config } => check(&config.path).await,
        Command::Status {
            config,
            database,
            json,
        } => status(&config.path, database, json),
        Command::Demo { database, bookings } => demo(database, bookings).await,
        Command::Sandbox {
            port,
            bind,
            config,
            seed,
            bookings,
            token_ttl_secs,
            cursor_ttl_secs,
            mutate_every_secs,
        } => {
            let mut cfg = match config {
                Some(p) => SandboxConfig::from_file(&p).map_err(|e| (Exit::Config, anyhow::anyhow!(e)))?,
                None => SandboxConfig::default(),
            };
            cfg.seed = seed.unwrap_or(cfg.seed);
            cfg.data.bookings = bookings.unwrap_or(cfg.data.bookings);
            cfg.token_ttl_secs = token_ttl_secs.unwrap_or(cfg.token_ttl_secs);
            cfg.cursor_ttl_secs = cursor_ttl_secs.unwrap_or(cfg.cursor_ttl_secs);
            let key = cfg
                .clients
                .first()
                .map(|k| k.client_id.clone())
                .unwrap_or_default();
            let sandbox = Sandbox::start(cfg, SocketAddr::new(bind, port))
                .await
                .with_context(|| format!("cannot listen on {bind}:{port}"))
                .map_err(|e| (Exit::Internal, e))?;
            eprintln!(
                "sandbox: serving Understory's API and token endpoint on {}",
                sandbox.base_url()
            );
            eprintln!(
                "sandbox: token endpoint {} (client_id {key}; secret as configured, default 'sandbox-secret')",
                sandbox.token_url()
            );
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
    }
}

async fn sync_once(cfg: &Config) -> Result<Exit, (Exit, anyhow::Error)> {
    let (trigger, stop) = shutdown::channel();
    shutdown::on_signals(trigger).map_err(|e| (Exit::Internal, anyhow::Error::new(e)))?;
    sync_with(cfg, stop).await
}

fn exit_for_failure(f: Failure) -> Exit {
    match f {
        Failure::Auth => Exit::Auth,
        Failure::Store => Exit::Database,
        Failure::Api => Exit::Api,
        Failure::Stopped => Exit::Interrupted,
        Failure::Internal => Exit::Internal,
        Failure::LockBusy => Exit::LockBusy,
    }
}

/// Whether to draw the live progress line: only for a person at a terminal.
static LIVE_PROGRESS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// One sync, its summary and its metrics file.
async fn sync_with(cfg: &Config, stop: shutdown::Stop) -> Result<Exit, (Exit, anyhow::Error)> {
    let progress = std::sync::Arc::new(sync::Progress::default());
    let painter = LIVE_PROGRESS.load(std::sync::atomic::Ordering::Relaxed).then(|| {
        let progress = std::sync::Arc::clone(&progress);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                // Redraws one line in place; a log line printed meanwhile simply pushes it down.
                eprint!("\r\x1b[2K{}", progress.render());
            }
        })
    });
    let result = sync::run_with_progress(cfg, stop, progress).await;
    if let Some(painter) = painter {
        painter.abort();
        eprint!("\r\x1b[2K");
    }
    let report = result.map_err(|e| (exit_for_failure(e.failure()), anyhow::Error::new(e)))?;
    summarise(&report);
    if let Some(path) = &cfg.metrics_textfile {
        let text = understory_sync::metrics::render(&report, chrono::Utc::now());
        if let Err(e) = understory_sync::metrics::write(path, &text) {
            tracing::warn!(path = %path.display(), error = %e, "could not write the metrics textfile");
        }
    }
    Ok(exit_for(&report))
}

/// `run`: the cron loop. A clean stop (SIGTERM/SIGINT) exits 0; the sync it interrupted is
/// recorded as interrupted and the next run resumes it.
async fn run_scheduled(cfg: Config) -> Result<Exit, (Exit, anyhow::Error)> {
    let schedule = cfg.schedule.clone().ok_or_else(|| {
        (
            Exit::Config,
            anyhow::anyhow!(
                "config key `schedule`: missing: `run` needs a cron expression, e.g. \"*/15 * * * *\""
            ),
        )
    })?;
    let (trigger, stop) = shutdown::channel();
    shutdown::on_signals(trigger).map_err(|e| (Exit::Internal, anyhow::Error::new(e)))?;
    let cfg = std::sync::Arc::new(cfg);
    let job_stop = stop.clone();
    understory_sync::schedule::run_loop(
        &schedule,
        stop,
        move || {
            let cfg = std::sync::Arc::clone(&cfg);
            let stop = job_stop.clone();
            async move {
                if let Err((exit, e)) = sync_with(&cfg, stop).await {
                    tracing::error!(exit_code = exit as u8, "sync failed: {e:#}");
                }
            }
        },
        |_| {},
    )
    .await;
    tracing::info!("stopped");
    Ok(Exit::Ok)
}

/// `check`: each step prints one `ok:` line, or fails with one `error:` line and its exit code.
async fn check(path: &std::path::Path) -> Result<Exit, (Exit, anyhow::Error)> {
    let cfg =
        config::load(path, &config::Environment::from_process()).map_err(|e| (Exit::Config, e.into()))?;
    let names: Vec<&str> = cfg.streams.iter().map(|s| s.name()).collect();
    println!(
        "ok: config {} is valid; streams: {}",
        path.display(),
        names.join(", ")
    );
    let scopes: Vec<&str> = cfg.streams.iter().map(|s| s.scope()).collect();
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
    let stats = understory_sync::api::Stats::default();
    let me: understory_sync::api::types::Me = api.get(&stats, "v1/me", &[]).await.map_err(|e| {
        let exit = if matches!(e.root(), understory_sync::api::Error::Unauthorized { .. }) {
            Exit::Auth
        } else {
            Exit::Api
        };
        (exit, anyhow::Error::new(e))
    })?;
    println!("ok: /v1/me: company \"{}\" ({})", me.company_name, me.company_id);
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
            granted.join(" ")
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
        let probe = understory_sync::auth::TokenSource::new(
            http.clone(),
            understory_sync::pace::Pace::new(understory_sync::pace::Settings::from_config(cfg), None),
            cfg.auth.token_url.clone(),
            cfg.auth.audience.clone(),
            cfg.auth.client_id.clone(),
            cfg.auth.client_secret.clone(),
            &[scope],
            cfg.auth.renew_before,
        );
        if probe.token().await.is_err() {
            missing.push(*scope);
        }
    }
    missing
}

/// `status`: reads the database only.
fn status(
    config: &std::path::Path,
    database: Option<PathBuf>,
    json: bool,
) -> Result<Exit, (Exit, anyhow::Error)> {
    let db = match database {
        Some(db) => db,
        None => config::database_path(config, &config::Environment::from_process())
            .map_err(|e| (Exit::Config, e.into()))?,
    };
    let st = understory_sync::store::status(&db, 10).map_err(|e| (Exit::Database, e.into()))?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&st).map_err(|e| (Exit::Internal, e.into()))?
        );
        return Ok(Exit::Ok);
    }
    println!("database {}", st.database.display());
    println!("recent runs:");
    for r in &st.runs {
        println!(
            "  #{:<5} {} → {}  {:<11} +{} ~{} ={}  requests {} retries {} 429s {} paused {}s pace {}{}",
            r.id,
            r.started_at,
            r.ended_at.as_deref().unwrap_or("…"),
            r.status,
            r.rows_inserted,
            r.rows_updated,
            r.rows_unchanged,
            r.requests,
            r.retries,
            r.rate_limited,
            r.paused_ms / 1000,
            r.pace_rps.map_or_else(|| "-".to_owned(), |p| format!("{p:.1}/s")),
            r.error
                .as_deref()
                .map(|e| format!("  error: {e}"))
                .unwrap_or_default()
        );
    }
    println!("streams:");
    let now = chrono::Utc::now();
    for s in &st.streams {
        let age = s
            .cursor_saved_at
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| format!("checkpoint {}s old", (now - t.to_utc()).num_seconds()))
            .unwrap_or_else(|| "no pass in progress".to_owned());
        println!(
            "  {:<20} high-water mark {:<26} {}{}",
            s.stream,
            s.high_water_mark.as_deref().unwrap_or("-"),
            age,
            s.pass_in_progress
                .as_deref()
                .map(|p| format!(" ({p} pass, {} pages)", s.pass_pages))
                .unwrap_or_default()
        );
    }
    println!("rows:");
    for (t, n) in &st.rows {
        println!("  {t:<20} {n:>10}");
    }
    if st.quarantine.is_empty() {
        println!("quarantine: empty");
    } else {
        println!("quarantine (items that could not be read; see the quarantine table):");
        for (t, n) in &st.quarantine {
            println!("  {t:<20} {n:>10}");
        }
    }
    Ok(Exit::Ok)
}

/// The exit code of a finished run.
pub fn exit_for(report: &RunReport) -> Exit {
    match report.status {
        RunStatus::Succeeded => Exit::Ok,
        RunStatus::Interrupted => Exit::Interrupted,
        RunStatus::Partial => match report.failure() {
            Some(Failure::Auth) => Exit::Auth,
            Some(Failure::Store) => Exit::Database,
            _ => Exit::Partial,
        },
        RunStatus::Failed => report.failure().map_or(Exit::Api, exit_for_failure),
    }
}

fn summarise(report: &RunReport) {
    let total = report.total();
    tracing::info!(
        run_id = report.run_id,
        status = report.status.as_str(),
        inserted = total.inserted,
        updated = total.updated,
        unchanged = total.unchanged,
        removed = total.removed,
        duration_ms = report.duration_ms,
        pace_rps = format!("{:.1}", report.pace.rate),
        peak_pace_rps = format!("{:.1}", report.pace.peak_rate),
        rate_limited = report.pace.rate_limited,
        paused_ms = report.pace.paused_ms,
        quarantined = report.quarantined,
        "run finished"
    );
    for s in &report.streams {
        if let Some(e) = &s.error {
            eprintln!("error: {e}");
        }
    }
}

async fn demo(database: PathBuf, bookings: u32) -> Result<Exit, (Exit, anyhow::Error)> {
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
    raw.streams.events = true;
    raw.streams.experiences = true;
    let cfg =
        config::validate(raw, &config::Environment::default(), None).map_err(|e| (Exit::Config, e.into()))?;
    let exit = sync_once(&cfg).await?;
    let counts = understory_sync::store::status(&database, 0)
        .map_err(|e| (Exit::Database, anyhow::Error::new(e)))?
        .rows;
    println!(
        "synced {} from the sandbox at {}:",
        database.display(),
        sandbox.base_url()
    );
    for (table, n) in counts {
        println!("  {table:<20} {n:>8} rows");
    }
    println!("open it with: sqlite3 {}", database.display());
    Ok(exit)
}
