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

use crate::cli::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Auto if journald => builder.with_ansi(false).event_format(Journald).init(),
        LogFormat::Text => builder.with_ansi(false).init(),
        LogFormat::Auto => builder.with_ansi(std::io::stderr().is_terminal()).init(),
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
