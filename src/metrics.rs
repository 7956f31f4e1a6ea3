//! A Prometheus textfile (node_exporter's textfile collector format) written after each run.
//!
//! Written to a temporary file beside the target and renamed over it, so the collector never
//! reads half a file.

use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::sync::{RunReport, RunStatus, StreamReport};

/// The textfile's content for a finished run.
///
/// Every series carries `account`: node_exporter merges the files of its textfile directory
/// into one scrape, and drops a series that a second file repeats with the same labels, so
/// the accounts of one server are told apart by this label.
pub fn render(report: &RunReport, finished: DateTime<Utc>, account: &str) -> String {
    let mut out = Gauges {
        text: String::new(),
        account: format!("account=\"{account}\""),
    };
    run(&mut out, report, finished);
    streams(&mut out, report);
    pace(&mut out, report);
    if let Some(rt) = &report.refresh_token {
        refresh_token(&mut out, rt, finished);
    }
    out.text
}

/// The textfile being written: one gauge after another, each sample labelled with the account.
struct Gauges {
    text: String,
    /// `account="…"`, first among every sample's labels.
    account: String,
}

impl Gauges {
    /// A gauge with its help line and its samples, each `(labels, value)`, where labels are
    /// `{…}` or empty.
    fn gauge(&mut self, name: &str, help: &str, samples: impl IntoIterator<Item = (String, f64)>) {
        let out = &mut self.text;
        let _ = writeln!(
            out,
            "# HELP understory_sync_{name} {help}\n# TYPE understory_sync_{name} gauge"
        );
        for (labels, v) in samples {
            let labels = match labels.strip_prefix('{') {
                Some(rest) => format!("{{{},{rest}", self.account),
                None => format!("{{{}}}", self.account),
            };
            let _ = writeln!(out, "understory_sync_{name}{labels} {v}");
        }
    }

    /// A gauge with one unlabelled sample.
    fn one(&mut self, name: &str, help: &str, v: f64) {
        self.gauge(name, help, [(String::new(), v)]);
    }
}

fn run(out: &mut Gauges, report: &RunReport, finished: DateTime<Utc>) {
    out.one(
        "last_run_timestamp_seconds",
        "When the last run ended (Unix time).",
        finished.timestamp() as f64,
    );
    out.one(
        "last_success_timestamp_seconds",
        "When the last successful run ended (Unix time); 0 if none yet.",
        report.last_success.map_or(0.0, |t| t.timestamp() as f64),
    );
    out.one(
        "last_run_duration_seconds",
        "How long the last run took.",
        report.duration_ms as f64 / 1000.0,
    );
    out.gauge(
        "last_run_status",
        "1 for the last run's status, 0 for the others.",
        RunStatus::ALL.map(|s| {
            let is = if s == report.status { 1.0 } else { 0.0 };
            (format!("{{status=\"{}\"}}", s.as_str()), is)
        }),
    );
    if let Some(missed) = report.webhook_missed {
        out.one(
            "last_run_webhook_missed",
            "Rows the last listing sync inserted or changed that a webhook delivery should have brought (the receiver was up).",
            missed as f64,
        );
    }
    out.one(
        "quarantined_items",
        "Items in quarantine (could not be read) when the last run ended.",
        report.quarantined as f64,
    );
}

/// Each stream's counters, from its report's `Counts`.
fn streams(out: &mut Gauges, report: &RunReport) {
    let label = |s: &StreamReport| format!("stream=\"{}\"", s.stream);
    let per_stream = |f: fn(&StreamReport) -> u64| -> Vec<(String, f64)> {
        report
            .streams
            .iter()
            .map(|s| (format!("{{{}}}", label(s)), f(s) as f64))
            .collect()
    };
    out.gauge(
        "last_run_rows",
        "Rows the last run inserted, updated, left unchanged or marked removed.",
        report.streams.iter().flat_map(|s| {
            s.counts
                .changes()
                .map(|(change, n)| (format!("{{{},change=\"{change}\"}}", label(s)), n as f64))
        }),
    );
    out.gauge(
        "last_run_requests",
        "HTTP requests the last run made.",
        per_stream(|s| s.counts.requests),
    );
    out.gauge(
        "last_run_retries",
        "Requests the last run retried.",
        per_stream(|s| s.counts.retries),
    );
    out.gauge(
        "last_run_rate_limited",
        "429 answers the last run received.",
        per_stream(|s| s.counts.rate_limited),
    );
    out.gauge(
        "last_run_newly_quarantined",
        "Items the last run put in quarantine for the first time.",
        per_stream(|s| s.counts.quarantined),
    );
    out.gauge(
        "last_run_stream_ok",
        "1 if the stream synced without error in the last run (a per-parent stream fails with its parent's fan-out).",
        per_stream(|s| u64::from(s.failure.is_none())),
    );
}

fn pace(out: &mut Gauges, report: &RunReport) {
    let pace = &report.pace;
    out.one(
        "last_run_pace_requests_per_second",
        "The adaptive pace at the end of the last run.",
        pace.rate,
    );
    out.one(
        "last_run_peak_pace_requests_per_second",
        "The highest pace the last run reached.",
        pace.peak_rate,
    );
    out.one(
        "last_run_rate_limited_total",
        "429 answers the last run received from any endpoint, the token endpoint included.",
        pace.rate_limited as f64,
    );
    out.one(
        "last_run_paused_seconds",
        "Time every stream spent paused after 429s in the last run.",
        pace.paused_ms as f64 / 1000.0,
    );
}

fn refresh_token(out: &mut Gauges, rt: &crate::auth::token_vault::Info, now: DateTime<Utc>) {
    out.one(
        "refresh_token_issued_timestamp_seconds",
        "When the stored refresh token was issued (Unix time); it lives 30 days unless rotated.",
        rt.issued_at.timestamp() as f64,
    );
    out.one(
        "refresh_token_expires_timestamp_seconds",
        "When the stored refresh token stops working unless a run rotates it (Unix time).",
        rt.expires_at().timestamp() as f64,
    );
    out.one(
        "refresh_token_expiring",
        "1 when the stored refresh token is older than 25 days: re-run `understory-sync connect`.",
        if rt.is_aging(now) { 1.0 } else { 0.0 },
    );
}

/// Where `run` writes the webhook gauges: beside `textfile`, `NAME.prom` → `NAME-webhooks.prom`,
/// rewritten every few seconds (the run's own file is rewritten only after each sync).
pub fn webhooks_textfile(textfile: &Path) -> std::path::PathBuf {
    let stem = textfile.file_stem().unwrap_or_default().to_string_lossy();
    let ext = textfile
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_else(|| "prom".into());
    textfile.with_file_name(format!("{stem}-webhooks.{ext}"))
}

/// The webhook path's gauges: what the receiver took and refused, what waits, and how fresh
/// the last applied item was.
pub fn render_webhooks(h: &crate::store::WebhookHealth, now: DateTime<Utc>, account: &str) -> String {
    let mut out = Gauges {
        text: String::new(),
        account: format!("account=\"{account}\""),
    };
    let age = |at: &Option<String>| {
        at.as_deref()
            .and_then(crate::time::from_iso)
            .map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0)
    };
    out.one(
        "webhook_receiver_up",
        "1 while the webhook receiver is serving.",
        if h.receiving_since.is_some() && h.stopped_at.is_none() {
            1.0
        } else {
            0.0
        },
    );
    out.one(
        "webhook_received",
        "Deliveries recorded in the inbox (kept ones; applied ones are pruned after webhooks.keep_days).",
        h.received as f64,
    );
    out.one(
        "webhook_applied",
        "Deliveries applied (kept ones).",
        h.applied as f64,
    );
    out.one(
        "webhook_failed",
        "Deliveries the applier gave up on (kept ones): their item could not be fetched; the listing sync brings it.",
        h.failed as f64,
    );
    out.one(
        "webhook_duplicates_total",
        "Deliveries of a webhook-id already recorded.",
        h.duplicates as f64,
    );
    out.one(
        "webhook_refused_total",
        "Deliveries refused: bad signature, timestamp or body.",
        h.refused as f64,
    );
    out.one(
        "webhook_waiting",
        "Deliveries waiting for the applier.",
        h.waiting as f64,
    );
    out.one(
        "webhook_oldest_waiting_seconds",
        "Age of the oldest delivery waiting for the applier; 0 when none waits.",
        age(&h.oldest_waiting_at),
    );
    out.one(
        "webhook_last_lag_seconds",
        "From the last applied event's timestamp to its item committed.",
        h.last_lag_ms.map_or(0.0, |ms| ms as f64 / 1000.0),
    );
    out.one(
        "webhook_last_applied_timestamp_seconds",
        "When the applier last applied a delivery (Unix time); 0 if never.",
        h.last_applied_at
            .as_deref()
            .and_then(crate::time::from_iso)
            .map_or(0.0, |t| t.timestamp() as f64),
    );
    out.text
}

/// Atomically replaces `path` with `content`.
pub fn write(path: &Path, content: &str) -> std::io::Result<()> {
    // Readable by node_exporter's group, not by everyone: it names the account's streams.
    crate::files::replace(path, content.as_bytes(), 0o640)
}
