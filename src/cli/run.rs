//! `run`: stay running and sync at each fire time of the config's cron `schedule`.

use understory_sync::config::Config;
use understory_sync::shutdown;

use super::exit::Exit;

/// `run`: the cron loop. A clean stop (SIGTERM/SIGINT) exits 0; the sync it interrupted is
/// recorded as interrupted and the next run resumes it.
pub async fn scheduled(cfg: Config) -> Result<Exit, (Exit, anyhow::Error)> {
    let schedule = cfg.schedule.clone().ok_or_else(|| {
        (
            Exit::Config,
            anyhow::anyhow!(
                "config key `schedule`: missing: `run` needs a cron expression, e.g. \"*/15 * * * *\""
            ),
        )
    })?;
    let (trigger, stop) = shutdown::channel();
    shutdown::on_signals(trigger).map_err(|e| (Exit::Internal, anyhow::Error::new(e)))?;
    let cfg = std::sync::Arc::new(cfg);
    let job_stop = stop.clone();
    understory_sync::schedule::run_loop(
        &schedule,
        stop,
        move || {
            let cfg = std::sync::Arc::clone(&cfg);
            let stop = job_stop.clone();
            async move {
                match super::sync::with_stop(&cfg, stop).await {
                    Err((Exit::Interrupted, _)) => tracing::info!("the sync was stopped"),
                    Err((exit, e)) => tracing::error!(exit_code = exit as u8, "sync failed: {e:#}"),
                    Ok(_) => {}
                }
            }
        },
        |_| {},
    )
    .await;
    tracing::info!("stopped");
    Ok(Exit::Ok)
}
