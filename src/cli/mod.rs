//! The command line: its flags, and one module per command; exit codes in `exit`. `demo` and
//! `sandbox` serve the stand-in API (the `understory-sandbox` crate) and exist only with the
//! `sandbox` feature, on by default; a build without it has no such commands.

mod check;
mod config_arg;
mod connect;
mod datasette;
#[cfg(feature = "sandbox")]
mod demo;
mod exit;
mod man;
mod run;
#[cfg(feature = "sandbox")]
mod sandbox;
mod status;
mod sync;
mod webhooks;

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
    about = "Sync the Understory API into SQLite",
    after_long_help = AFTER_LONG_HELP
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
    /// Stay running and sync on the config's `schedule` (cron) until SIGTERM/SIGINT; with
    /// `[webhooks]`, also receive webhook deliveries and store their items within seconds.
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
    /// Print the Datasette metadata for the database (every table, view and column described,
    /// the example queries, the dashboard), for `datasette DATABASE -m FILE`.
    DatasetteMetadata {
        #[command(flatten)]
        config: ConfigArg,
        /// The database Datasette serves (its name comes from the file's), instead of the
        /// config's; the published snapshot, say.
        #[arg(long)]
        database: Option<PathBuf>,
        /// Write the metadata to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Connect a customer's account to this third-party app (auth.method = "authorization_code"):
    /// ask for consent in a browser and store the refresh token, encrypted.
    Connect(connect::Flags),
    /// Start the sandbox in-process, sync it into a local file and print rows per table.
    #[cfg(feature = "sandbox")]
    Demo {
        /// The SQLite file to sync the demo into, created if missing.
        #[arg(long, default_value = "understory-demo.sqlite")]
        database: PathBuf,
        /// Bookings in the generated sandbox (orders follow one to one).
        #[arg(long, default_value_t = 1_000)]
        bookings: u32,
    },
    /// Serve the stand-in Understory API (auth server and `/v1`) on loopback.
    #[cfg(feature = "sandbox")]
    Sandbox(sandbox::Flags),
    /// Manage the webhook subscriptions `run`'s receiver verifies (needs `[webhooks]`).
    #[command(subcommand)]
    Webhooks(webhooks::Action),
    /// Write the manual pages (roff) into DIR: understory-sync.1 and one per command.
    Man {
        /// The directory to write them into, created if missing.
        dir: PathBuf,
    },
}

/// The closing sections of `understory-sync --help`, and of its man page (`man` renders each
/// heading as a section and each line as a term and its text, split at the first double space).
const AFTER_LONG_HELP: &str = "\
Files:
  /etc/understory-sync/understory-sync.toml  the config (the package installs the example, every key shown)
  /etc/understory-sync/client-secret  the key's secret, root's alone: the unit hands it over as a credential
  /etc/understory-sync/NAME.toml  the config of template instance understory-sync@NAME (one account)
  /etc/understory-sync/NAME.secret  its secret
  /etc/understory-sync/keys/webhooks.key  the key of the webhook secrets, root's alone: the run unit gets it as a credential
  /var/lib/understory-sync/  the databases (and beside each its sealed .webhook-secrets): the units' state directory
  /usr/share/doc/understory-sync/  the README, docs/ with the guides, examples/ with the example configs

Exit status:
  0  success
  1  internal error (a bug: report it with the log)
  2  configuration error: fix the key the message names
  3  authentication error: check the key and its scopes
  4  API unreachable, failing after retries, or unreadable; rows already stored are kept
  5  some streams synced, others failed
  6  another instance holds the database's lock
  7  interrupted by SIGTERM or SIGINT: the next run resumes
  8  database error (disk full, permissions, not this job's file, a root run over another user's database)
  9  the API's pages loop: report it to Understory

Environment:
  UNDERSTORY_SYNC__SECTION__KEY  overrides a config key, e.g. UNDERSTORY_SYNC__API__BASE_URL
  UNDERSTORY_SYNC_CONFIG  the config file, when --config is not given
  UNDERSTORY_CLIENT_ID  the key's client id, before auth.client_id
  UNDERSTORY_CLIENT_SECRET  the key's secret, before auth.client_secret_file and the credential
  CREDENTIALS_DIRECTORY  systemd's credentials: the secret as understory-client-secret
  RUST_LOG  the log level (info)";

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
        Command::DatasetteMetadata {
            config,
            database,
            output,
        } => datasette::metadata(&config.path, database, output),
        #[cfg(feature = "sandbox")]
        Command::Demo { database, bookings } => demo::demo(database, bookings).await,
        #[cfg(feature = "sandbox")]
        Command::Sandbox(flags) => sandbox::serve(flags).await,
        Command::Webhooks(action) => webhooks::webhooks(action).await,
        Command::Man { dir } => man::write(&dir),
    }
}

/// The job's config, or exit 2 naming what to fix.
fn load(config: &ConfigArg) -> Result<Config, (Exit, anyhow::Error)> {
    config::load(&config.path, &config::Environment::from_process())
        .map_err(|e| (Exit::Config, anyhow::Error::new(e)))
}
