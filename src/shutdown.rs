//! Cooperative stop: SIGTERM/SIGINT flip a flag that the sync checks between pages and that cuts
//! retry sleeps short, so a page in flight commits or rolls back and nothing new starts.

use std::time::Duration;

use tokio::sync::watch;

/// The sending half: `stop()` asks every holder of a `Stop` to finish.
#[derive(Clone)]
pub struct Trigger(watch::Sender<bool>);

/// The receiving half, cheap to clone into every task.
#[derive(Clone)]
pub struct Stop(watch::Receiver<bool>);

pub fn channel() -> (Trigger, Stop) {
    let (tx, rx) = watch::channel(false);
    (Trigger(tx), Stop(rx))
}

impl Trigger {
    pub fn stop(&self) {
        let _ = self.0.send(true);
    }
}

impl Stop {
    /// A `Stop` that never fires, for one-off use in tests and tools.
    pub fn never() -> Self {
        let (tx, rx) = watch::channel(false);
        std::mem::forget(tx);
        Self(rx)
    }

    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once a stop was asked for.
    pub async fn stopped(&self) {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Sleeps `d`, or less if a stop is asked for meanwhile.
    pub async fn sleep(&self, d: Duration) {
        tokio::select! {
            () = tokio::time::sleep(d) => {}
            () = self.stopped() => {}
        }
    }
}

/// Flips `trigger` on the first SIGTERM or SIGINT.
pub fn on_signals(trigger: Trigger) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::warn!("SIGTERM: finishing the page in flight, then stopping"),
            _ = int.recv() => tracing::warn!("SIGINT: finishing the page in flight, then stopping"),
        }
        trigger.stop();
    });
    Ok(())
}
