//! Logging to stderr through `tracing`.
//!
//! * a terminal: human-readable text with colours;
//! * systemd (`JOURNAL_STREAM` is set): one line per event prefixed with its syslog priority
//!   (`<3>` error … `<7>` debug), which journald maps to the entry's priority; no colours and no
//!   timestamp, as journald stamps entries itself;
//! * `--log-format json`: one JSON object per line.
//!
//! The level comes from `RUST_LOG` (default `info`). Secrets never reach a log field: they are
//! `SecretString`s, and the `Authorization` header is marked sensitive.

use std::fmt;
use std::io::IsTerminal;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields};
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// How log lines are written on stderr (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Auto,
    Text,
    Json,
}

/// How the log was set up, so the `error:` lines printed outside `tracing` match it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sink {
    Plain,
    Journald,
    Json,
}

static SINK: std::sync::OnceLock<Sink> = std::sync::OnceLock::new();

pub fn init(format: LogFormat) {
    // rusqlite_migration logs each schema step at info; what matters to an operator (a
    // migration that failed) is an error of ours. `RUST_LOG` still shows them on request.
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,rusqlite_migration=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let sink = match format {
        LogFormat::Json => {
            builder.json().init();
            Sink::Json
        }
        LogFormat::Auto if journald => {
            builder.with_ansi(false).event_format(Journald).init();
            Sink::Journald
        }
        LogFormat::Text => {
            builder.with_ansi(false).init();
            Sink::Plain
        }
        LogFormat::Auto => {
            builder.with_ansi(std::io::stderr().is_terminal()).init();
            Sink::Plain
        }
    };
    let _ = SINK.set(sink);
}

/// Prints one `error:` line the way the log is written: plain text on a terminal, with
/// journald's `<3>` (err) priority under systemd so `journalctl -p err` finds it, or as one
/// JSON object with `--log-format json`. Not a `tracing` event, so `RUST_LOG=off` cannot hide
/// the one line that says why the job failed.
pub fn error_line(message: &str) {
    let message = message.replace(['\n', '\r'], " ");
    match SINK.get().copied().unwrap_or(Sink::Plain) {
        Sink::Plain => eprintln!("error: {message}"),
        Sink::Journald => eprintln!("<3>error: {message}"),
        Sink::Json => {
            let line = serde_json::json!({
                "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "level": "ERROR",
                "fields": { "message": format!("error: {message}") },
                "target": "understory_sync",
            });
            eprintln!("{line}");
        }
    }
}

/// `<priority>span{fields}: message fields`, as journald's stderr parser expects.
struct Journald;

impl<S, N> FormatEvent<S, N> for Journald
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: format::Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let priority = match *event.metadata().level() {
            Level::ERROR => 3,
            Level::WARN => 4,
            Level::INFO => 6,
            Level::DEBUG | Level::TRACE => 7,
        };
        write!(writer, "<{priority}>")?;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                write!(writer, "{}", span.name())?;
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    write!(writer, "{{{fields}}}")?;
                }
                write!(writer, ": ")?;
            }
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}
