//! Logging to stderr through `tracing`: text (coloured on a terminal) or JSON lines.
//! The level comes from `RUST_LOG` (default `info`). Secrets never reach a log field: they are
//! `SecretString`s, and the `Authorization` header is marked sensitive.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_ansi(false).init(),
        LogFormat::Auto => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}
