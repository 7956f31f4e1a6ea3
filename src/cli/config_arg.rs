//! `--config FILE`, shared by every command that reads the job's config.

use std::path::PathBuf;

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
