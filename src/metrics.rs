//! A Prometheus textfile (node_exporter's textfile collector format) written after each run.
//!
//! Written to a temporary file beside the target and renamed over it, so the collector never
//! reads half a file.

use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::sync::RunReport;

const STATUSES: [&str; 4] = ["succeeded", "partial", "failed", "interrupted"];

/// The textfile's content for a finished run.
pub fn render(report: &RunReport, finished: DateTime<Utc>) -> String {
    let last_success = report.last_success;
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, samples: Vec<(String, f64)>| {
        let _ = writeln!(
            out,
            "# HELP understory_sync_{name} {help}\n# TYPE understory_sync_{name} gauge"
        );
        for (labels, v) in samples {
            let _ = writeln!(out, "understory_sync_{name}{labels} {v}");
        }
    };
    gauge(
        "last_run_timestamp_seconds",
        "When the last run ended (Unix time).",
        vec![(String::new(), finished.timestamp() as f64)],
    );
    gauge(
        "last_success_timestamp_seconds",
        "When the last successful run ended (Unix time); 0 if none yet.",
        vec![(String::new(), last_success.map_or(0.0, |t| t.timestamp() as f64))],
    );
    gauge(
        "last_run_duration_seconds",
        "How long the last run took.",
        vec![(String::new(), report.duration_ms as f64 / 1000.0)],
    );
    gauge(
        "last_run_status",
        "1 for the last run's status, 0 for the others.",
        STATUSES
            .iter()
            .map(|s| {
                (
                    format!("{{status=\"{s}\"}}"),
                    if *s == report.status.as_str() { 1.0 } else { 0.0 },
                )
            })
            .collect(),
    );
    let per_stream = |f: fn(&crate::sync::StreamReport) -> u64| -> Vec<(String, f64)> {
        report
            .streams
            .iter()
            .map(|s| (format!("{{stream=\"{}\"}}", s.stream), f(s) as f64))
            .collect()
    };
    let mut rows = Vec::new();
    for s in &report.streams {
        for (change, n) in [
            ("inserted", s.inserted),
            ("updated", s.updated),
            ("unchanged", s.unchanged),
            ("removed", s.removed),
        ] {
            rows.push((
                format!("{{stream=\"{}\",change=\"{change}\"}}", s.stream),
                n as f64,
            ));
        }
    }
    gauge(
        "last_run_rows",
        "Rows the last run inserted, updated, left unchanged or marked removed.",
        rows,
    );
    gauge(
        "last_run_requests",
        "HTTP requests the last run made.",
        per_stream(|s| s.requests),
    );
    gauge(
        "last_run_retries",
        "Requests the last run retried.",
        per_stream(|s| s.retries),
    );
    gauge(
        "last_run_rate_limited",
        "429 answers the last run received.",
        per_stream(|s| s.rate_limited),
    );
    gauge(
        "last_run_pace_requests_per_second",
        "The adaptive pace at the end of the last run.",
        vec![(String::new(), report.pace.rate)],
    );
    gauge(
        "last_run_peak_pace_requests_per_second",
        "The highest pace the last run reached.",
        vec![(String::new(), report.pace.peak_rate)],
    );
    gauge(
        "last_run_rate_limited_total",
        "429 answers the last run received from any endpoint, the token endpoint included.",
        vec![(String::new(), report.pace.rate_limited as f64)],
    );
    gauge(
        "last_run_paused_seconds",
        "Time every stream spent paused after 429s in the last run.",
        vec![(String::new(), report.pace.paused_ms as f64 / 1000.0)],
    );
    gauge(
        "quarantined_items",
        "Items in quarantine (could not be read) when the last run ended.",
        vec![(String::new(), report.quarantined as f64)],
    );
    gauge(
        "last_run_newly_quarantined",
        "Items the last run put in quarantine for the first time.",
        per_stream(|s| s.quarantined),
    );
    gauge(
        "last_run_stream_ok",
        "1 if the stream synced without error in the last run (a per-parent stream fails with its parent's fan-out).",
        per_stream(|s| u64::from(s.failure.is_none())),
    );
    if let Some(rt) = &report.refresh_token {
        gauge(
            "refresh_token_issued_timestamp_seconds",
            "When the stored refresh token was issued (Unix time); it lives 30 days unless rotated.",
            vec![(String::new(), rt.issued_at.timestamp() as f64)],
        );
        gauge(
            "refresh_token_expires_timestamp_seconds",
            "When the stored refresh token stops working unless a run rotates it (Unix time).",
            vec![(String::new(), rt.expires_at().timestamp() as f64)],
        );
        gauge(
            "refresh_token_expiring",
            "1 when the stored refresh token is older than 25 days: re-run `understory-sync connect`.",
            vec![(String::new(), if rt.is_aging(finished) { 1.0 } else { 0.0 })],
        );
    }
    out
}

/// Atomically replaces `path` with `content`.
pub fn write(path: &Path, content: &str) -> std::io::Result<()> {
    // Readable by node_exporter's group, not by everyone: it names the account's streams.
    crate::files::replace(path, content.as_bytes(), 0o640)
}
