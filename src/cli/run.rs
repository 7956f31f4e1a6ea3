//! `run`: stay running and sync at each fire time of the config's cron `schedule`; with
//! `[webhooks]`, also serve the receiver and apply its deliveries between the syncs.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use understory_sync::auth::token_vault::{Key, KeyFrom};
use understory_sync::config::{Config, Webhooks};
use understory_sync::pace::Pace;
use understory_sync::shutdown::{self, Stop};
use understory_sync::store::Store;
use understory_sync::webhooks::receiver::Receiver;
use understory_sync::webhooks::secrets::Secrets;

use super::exit::Exit;

type Failed = (Exit, anyhow::Error);

/// How often the webhook gauges are written beside the metrics textfile.
const WEBHOOK_METRICS_EVERY: Duration = Duration::from_secs(15);

/// `run`: the cron loop. A clean stop (SIGTERM/SIGINT) exits 0; the sync it interrupted is
/// recorded as interrupted and the next run resumes it. With `[webhooks]`, the receiver and the
/// applier run beside it at the same pace; should either fail (the database cannot be written,
/// say) the whole process exits with that error, so the unit restarts it and the operator
/// hears of it, rather than syncing on while the fast path is silently gone.
pub async fn scheduled(cfg: Config) -> Result<Exit, Failed> {
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
    let webhooks = match cfg.webhooks.clone() {
        Some(hooks) => Some(start_webhooks(&cfg, &hooks, stop.clone()).await?),
        None => None,
    };
    let shared = webhooks.as_ref().map(|w| understory_sync::sync::Shared {
        pace: w.pace.clone(),
        receiving: true,
    });
    let cfg = Arc::new(cfg);
    let job_stop = stop.clone();
    let syncs = understory_sync::schedule::run_loop(
        &schedule,
        stop,
        move || {
            let cfg = Arc::clone(&cfg);
            let stop = job_stop.clone();
            let shared = shared.clone();
            async move {
                match super::sync::with_stop(&cfg, stop, shared).await {
                    Err((Exit::Interrupted, _)) => tracing::info!("the sync was stopped"),
                    Err((exit, e)) => tracing::error!(exit_code = exit as u8, "sync failed: {e:#}"),
                    Ok(_) => {}
                }
            }
        },
        |_| {},
    );
    match webhooks {
        None => syncs.await,
        Some(w) => {
            // Both webhook tasks end on a stop (`Ok`), or early with the error of either, which
            // ends `run` with it. On a stop, everything is waited for: the sync finishes its
            // page, and the receiver records its clean stop.
            let webhooks = futures::future::try_join(async { joined(w.receiver.await) }, async {
                joined(w.applier.await)
            });
            tokio::pin!(syncs, webhooks);
            tokio::select! {
                () = &mut syncs => {
                    webhooks.await?;
                }
                r = &mut webhooks => {
                    r?;
                    syncs.await;
                }
            }
        }
    }
    tracing::info!("stopped");
    Ok(Exit::Ok)
}

/// A webhook task's end: its own error, or the panic that ended it.
fn joined(r: Result<Result<(), Failed>, tokio::task::JoinError>) -> Result<(), Failed> {
    r.unwrap_or_else(|e| Err((Exit::Internal, anyhow::Error::new(e))))
}

/// The receiver and the applier, running.
struct Running {
    pace: Pace,
    /// Each ends when `stop` fires (`Ok`), or with the error that ended it.
    receiver: tokio::task::JoinHandle<Result<(), Failed>>,
    applier: tokio::task::JoinHandle<Result<(), Failed>>,
}

/// Binds the receiver's socket and starts it and the applier (and, with a metrics textfile,
/// the webhook gauges beside it). A key that cannot be read or a socket that cannot be bound
/// fails `run` before anything starts.
async fn start_webhooks(cfg: &Config, hooks: &Webhooks, stop: Stop) -> Result<Running, Failed> {
    understory_sync::owner::check(&cfg.database).map_err(|e| (Exit::Database, anyhow::Error::new(e)))?;
    let key = Key::load(&hooks.key_file, KeyFrom::of(hooks.key_is_credential)).map_err(|e| {
        (
            Exit::Config,
            anyhow::Error::new(e).context(
                "webhooks.key_file: the key of the webhook secrets (`webhooks register` creates it)",
            ),
        )
    })?;
    let path = cfg.database.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&path))
        .await
        .map_err(|e| (Exit::Internal, anyhow::Error::new(e)))?
        .map_err(|e| (Exit::Database, anyhow::Error::new(e)))?;
    let store = Arc::new(store);
    let learned = store
        .load_pace()
        .map_err(|e| (Exit::Database, anyhow::Error::new(e)))?;
    let pace = Pace::new(understory_sync::api::pace_settings(cfg), learned);
    let listener = listener(hooks).await?;
    let arrived = Arc::new(Notify::new());
    let receiver = Receiver::new(
        Arc::clone(&store),
        hooks,
        cfg.streams.clone(),
        Secrets::new(hooks.secret_file.clone()),
        key,
        Arc::clone(&arrived),
    )
    .map_err(|e| (Exit::Config, anyhow::Error::new(e)))?;
    let secrets = receiver.secrets_loaded();
    if secrets == 0 {
        tracing::warn!(
            secrets_file = %hooks.secret_file.display(),
            "no webhook subscription is registered for this receiver yet: every delivery is refused until `understory-sync webhooks register` stores one"
        );
    }
    let local = listener
        .local_addr()
        .map_or_else(|_| hooks.listen.to_string(), |a| a.to_string());
    tracing::info!(listen = %local, path = %hooks.path, secrets, "webhook receiver listening");
    if let Some(textfile) = cfg.metrics_textfile.clone() {
        tokio::spawn(write_webhook_gauges(
            Arc::clone(&store),
            textfile,
            cfg.metrics_account.clone(),
            stop.clone(),
        ));
    }
    receiver
        .started()
        .await
        .map_err(|e| (Exit::Database, anyhow::Error::new(e)))?;
    let receiver = Arc::new(receiver);
    let receiver_stop = stop.clone();
    let receiver = tokio::spawn(async move {
        receiver.serve(listener, receiver_stop).await.map_err(|e| {
            (
                Exit::Database,
                anyhow::Error::new(e).context("the webhook receiver failed"),
            )
        })
    });
    let applier_cfg = cfg.clone();
    let applier_pace = pace.clone();
    let applier = tokio::spawn(async move {
        understory_sync::sync::apply_webhooks(&applier_cfg, stop, arrived, applier_pace)
            .await
            .map_err(|e| {
                let exit = super::exit::exit_for_failure(e.failure());
                (exit, anyhow::Error::new(e).context("the webhook applier failed"))
            })
    });
    Ok(Running {
        pace,
        receiver,
        applier,
    })
}

/// The receiver's socket: the one systemd passes (socket activation,
/// `systemd/understory-sync-run.socket`), which keeps accepting while `run` restarts, or else
/// `webhooks.listen`, bound here.
async fn listener(hooks: &Webhooks) -> Result<tokio::net::TcpListener, Failed> {
    let passed = listenfd::ListenFd::from_env().take_tcp_listener(0).map_err(|e| {
        (
            Exit::Config,
            anyhow::anyhow!("the socket systemd passed (LISTEN_FDS) is not a TCP listener: {e}; check the .socket unit's ListenStream="),
        )
    })?;
    if let Some(socket) = passed {
        let local = socket
            .local_addr()
            .map_err(|e| (Exit::Internal, anyhow::Error::new(e)))?;
        socket
            .set_nonblocking(true)
            .map_err(|e| (Exit::Internal, anyhow::Error::new(e)))?;
        tracing::info!(socket = %local, "webhook receiver: the socket systemd passed is used; webhooks.listen is not bound");
        return tokio::net::TcpListener::from_std(socket)
            .map_err(|e| (Exit::Internal, anyhow::Error::new(e)));
    }
    tokio::net::TcpListener::bind(hooks.listen).await.map_err(|e| {
        (
            Exit::Config,
            anyhow::anyhow!(
                "config key `webhooks.listen`: cannot listen on {}: {e}",
                hooks.listen
            ),
        )
    })
}

/// Rewrites the webhook gauges (`metrics::webhooks_textfile`) every few seconds until `stop`.
async fn write_webhook_gauges(store: Arc<Store>, textfile: std::path::PathBuf, account: String, stop: Stop) {
    let path = understory_sync::metrics::webhooks_textfile(&textfile);
    while !stop.is_stopped() {
        let s = Arc::clone(&store);
        if let Ok(Ok(health)) = tokio::task::spawn_blocking(move || s.webhook_health()).await {
            let text = understory_sync::metrics::render_webhooks(&health, chrono::Utc::now(), &account);
            if let Err(e) = understory_sync::metrics::write(&path, &text) {
                tracing::warn!(path = %path.display(), error = %e, "could not write the webhook metrics textfile");
            }
        }
        stop.sleep(WEBHOOK_METRICS_EVERY).await;
    }
}
