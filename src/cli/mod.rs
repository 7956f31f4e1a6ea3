//! The command line: its flags, the exit codes (all mapped here), and one module per command.

mod check;
mod connect;
mod demo;
mod run;
mod sandbox;
mod status;
mod sync;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::logging::LogFormat;
use understory_sync::config::{self, Config};
use understory_sync::sync::{Failure, RunReport, RunStatus};

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
    /// Connect a customer's account to this third-party app (auth.method = "authorization_code"):
    /// ask for consent in a browser and store the refresh token, encrypted.
    Connect(connect::Flags),
    /// Start the sandbox in-process, sync it into a local file and print rows per table.
    Demo {
        /// The SQLite file to sync the demo into, created if missing.
        #[arg(long, default_value = "understory-demo.sqlite")]
        database: PathBuf,
        /// Bookings in the generated sandbox (orders follow one to one).
        #[arg(long, default_value_t = 1_000)]
        bookings: u32,
    },
    /// Serve the stand-in Understory API (auth server and `/v1`) on loopback.
    Sandbox(sandbox::Flags),
}

/// Runs the parsed command; errors carry their exit code.
pub async fn run(cli: Cli) -> Result<Exit, (Exit, anyhow::Error)> {
    use std::io::IsTerminal;
    let live = cli.log_format == LogFormat::Auto
        && std::io::stderr().is_terminal()
        && std::env::var_os("JOURNAL_STREAM").is_none();
    sync::LIVE_PROGRESS.store(live, std::sync::atomic::Ordering::Relaxed);
    match cli.command {
        Command::Sync { config } => sync::once(&load(&config)?).await,
        Command::Run { config } => run::scheduled(load(&config)?).await,
        Command::Check { config } => check::check(&config.path).await,
        Command::Connect(flags) => connect::connect(flags).await,
        Command::Status {
            config,
            database,
            json,
        } => status::status(&config.path, database, json),
        Command::Demo { database, bookings } => demo::demo(database, bookings).await,
        Command::Sandbox(flags) => sandbox::serve(flags).await,
    }
}

/// The job's config, or exit 2 naming what to fix.
fn load(config: &ConfigArg) -> Result<Config, (Exit, anyhow::Error)> {
    config::load(&config.path, &config::Environment::from_process())
        .map_err(|e| (Exit::Config, anyhow::Error::new(e)))
}

/// The exit code of a failure that ended a run before it could finish.
pub fn exit_for_failure(f: Failure) -> Exit {
    match f {
        Failure::Auth => Exit::Auth,
        Failure::Store => Exit::Database,
        Failure::Api => Exit::Api,
        Failure::Stopped => Exit::Interrupted,
        Failure::Internal => Exit::Internal,
        Failure::LockBusy => Exit::LockBusy,
    }
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
