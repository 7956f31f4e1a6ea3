//! `sync`: one run of every enabled stream, its summary, its metrics file.

use understory_sync::config::Config;
use understory_sync::shutdown;
use understory_sync::sync::{self, RunReport};

use super::exit::{Exit, exit_for, exit_for_failure};

/// One sync with SIGTERM/SIGINT handled (a stop finishes the page in flight).
pub async fn once(cfg: &Config) -> Result<Exit, (Exit, anyhow::Error)> {
    // The secret-hygiene test's way into the panic path: the message holds the whole config,
    // which must print every secret redacted. Test builds only (the `test-hooks` feature).
    #[cfg(feature = "test-hooks")]
    if std::env::var_os("UNDERSTORY_SYNC_TEST_PANIC").is_some() {
        panic!("UNDERSTORY_SYNC_TEST_PANIC is set; the configuration was {cfg:?}");
    }
    let (trigger, stop) = shutdown::channel();
    shutdown::on_signals(trigger).map_err(|e| (Exit::Internal, anyhow::Error::new(e)))?;
    with_stop(cfg, stop, None).await
}

/// Whether to draw the live progress line: only for a person at a terminal.
pub static LIVE_PROGRESS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// One sync, its summary and its metrics file; sharing `shared` with `run`'s webhook receiver.
pub async fn with_stop(
    cfg: &Config,
    stop: shutdown::Stop,
    shared: Option<sync::Shared>,
) -> Result<Exit, (Exit, anyhow::Error)> {
    understory_sync::owner::check(&cfg.database).map_err(|e| (Exit::Database, anyhow::Error::new(e)))?;
    let progress = std::sync::Arc::new(sync::Progress::default());
    let live = LIVE_PROGRESS.load(std::sync::atomic::Ordering::Relaxed);
    // A person at a terminal sees the live line; progress log lines are for the journal.
    let quiet;
    let cfg = if live {
        let mut c = cfg.clone();
        c.sync.progress_interval = None;
        quiet = c;
        &quiet
    } else {
        cfg
    };
    let painter = live.then(|| {
        let progress = std::sync::Arc::clone(&progress);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                // Redraws one line in place; a log line printed meanwhile simply pushes it down.
                eprint!("\r\x1b[2K{}", progress.render());
            }
        })
    });
    let result = sync::run_sharing(cfg, stop, progress, shared).await;
    if let Some(painter) = painter {
        painter.abort();
        eprint!("\r\x1b[2K");
    }
    let report = result.map_err(|e| (exit_for_failure(e.failure()), anyhow::Error::new(e)))?;
    summarise(&report);
    if let Some(e) = &report.snapshot_error {
        crate::logging::error_line(e);
    }
    if let Some(path) = &cfg.metrics_textfile {
        let text = understory_sync::metrics::render(&report, chrono::Utc::now(), &cfg.metrics_account);
        if let Err(e) = understory_sync::metrics::write(path, &text) {
            tracing::warn!(path = %path.display(), error = %e, "could not write the metrics textfile");
        }
    }
    Ok(match exit_for(&report) {
        Exit::Ok if report.snapshot_error.is_some() => Exit::Database,
        exit => exit,
    })
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
    // A stream stopped by SIGTERM/SIGINT is no failure: it logged a warning, the run row says
    // `interrupted`, and `run` goes on to exit 0.
    for s in &report.streams {
        if let Some(e) = &s.error
            && s.failure != Some(understory_sync::sync::Failure::Stopped)
        {
            crate::logging::error_line(e);
        }
    }
}
