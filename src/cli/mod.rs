//! The command line: its flags, and one module per command; exit codes in `exit`.

mod check;
mod config_arg;
mod connect;
mod demo;
mod exit;
mod run;
mod sandbox;
mod status;
mod sync;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::logging::LogFormat;
use understory_sync::config::{self, Config};

pub use config_arg::ConfigArg;
pub use exit::Exit;

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
