//! One copy of one delivery: POSTed, retried on the configured schedule until a 2xx answer or
//! the schedule's end, each attempt recorded in the log.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Inner;
use super::log::Attempt;
use super::signature;

/// What one copy carries: the same body and `webhook-id` on every attempt.
pub(super) struct Parcel {
    /// Its delivery's place in the log.
    pub slot: usize,
    pub copy: u32,
    pub webhook_id: String,
    pub url: String,
    pub key: Vec<u8>,
    pub body: String,
    /// Held back this long before the first attempt.
    pub delay: Duration,
}

/// Sends `p` until it is answered 2xx or the retry schedule runs out.
pub(super) async fn carry(inner: Arc<Inner>, p: Parcel) {
    if !p.delay.is_zero() {
        tokio::time::sleep(p.delay).await;
    }
    let mut waits = inner.config.retry_schedule_ms.clone().into_iter();
    loop {
        if inner.stopped.load(Ordering::Relaxed) {
            return;
        }
        let attempt = {
            let _permit = inner.in_flight.acquire().await;
            attempt(&inner, &p).await
        };
        let ok = attempt.succeeded();
        let next = if ok { None } else { waits.next() };
        inner.log.attempted(p.slot, attempt, !ok && next.is_none());
        match next {
            Some(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            None => return,
        }
    }
}

/// One POST, signed at the moment it is sent.
async fn attempt(inner: &Inner, p: &Parcel) -> Attempt {
    let at = SystemTime::now();
    let timestamp = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let sent = inner
        .client
        .post(&p.url)
        .header("content-type", "application/json")
        .header("webhook-id", &p.webhook_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header(
            "webhook-signature",
            signature::sign(&p.key, &p.webhook_id, timestamp, &p.body),
        )
        .body(p.body.clone())
        .send()
        .await;
    let (status, error) = match sent {
        // The answer's body is read and dropped, so the connection can be used again.
        Ok(resp) => {
            let status = resp.status().as_u16();
            let _ = resp.bytes().await;
            (Some(status), None)
        }
        Err(e) => (None, Some(error_text(&e))),
    };
    Attempt {
        copy: p.copy,
        at,
        status,
        error,
    }
}

/// The error and its causes, as one line.
fn error_text(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
