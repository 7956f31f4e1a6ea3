//! What a run reports: per stream and in all, for the log, `sync_runs`, `status`, the metrics
//! file and the terminal's live progress line.

use crate::poison::Unpoisoned as _;
use serde::Serialize;

use super::error::Failure;
use crate::api::Stats;
use crate::counts::Counts;
use crate::streams::Stream;
use crate::time::Timestamp;

/// How one stream's part of a run went.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StreamReport {
    pub stream: &'static str,
    #[serde(flatten)]
    pub counts: Counts,
    pub(crate) duration_ms: u64,
    /// True when this run completed a pass (the high-water mark moved, removals were applied).
    pub(crate) pass_completed: bool,
    pub error: Option<String>,
    pub failure: Option<Failure>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Succeeded,
    Partial,
    Failed,
    Interrupted,
}

impl RunStatus {
    pub(crate) const ALL: [Self; 4] = [Self::Succeeded, Self::Partial, Self::Failed, Self::Interrupted];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Partial => "partial",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub run_id: i64,
    pub status: RunStatus,
    pub streams: Vec<StreamReport>,
    pub duration_ms: u64,
    /// When the last successful run ended (this one, if it succeeded), for the metrics file.
    pub(crate) last_success: Option<Timestamp>,
    /// The adaptive pace: where it ended, its peak, the 429s and the time paused.
    pub pace: crate::pace::Report,
    /// Items in quarantine when the run ended, over all streams.
    pub quarantined: u64,
    /// A third-party connection's stored refresh token, as of the run's last refresh.
    pub(crate) refresh_token: Option<crate::auth::token_vault::Info>,
    /// Why the configured snapshot could not be published after a successful run.
    pub snapshot_error: Option<String>,
    /// With a webhook receiver up: the rows this listing inserted or changed that a delivery
    /// should have brought (`store::Commit::watch`); `None` without one.
    pub webhook_missed: Option<u64>,
}

impl RunReport {
    /// The most telling failure of the run: auth beats the others, then the rest in order.
    pub fn failure(&self) -> Option<Failure> {
        let all: Vec<Failure> = self.streams.iter().filter_map(|s| s.failure).collect();
        [
            Failure::Auth,
            Failure::Store,
            Failure::Looping,
            Failure::Api,
            Failure::Internal,
            Failure::Stopped,
        ]
        .into_iter()
        .find(|f| all.contains(f))
    }
    /// Every stream's counters added up.
    pub fn total(&self) -> Counts {
        self.streams.iter().map(|s| s.counts).sum()
    }
}

/// Live counters of a run in progress, updated as pages land: the terminal's live line and the
/// progress log lines read them, and each stream's request counters live here so that the
/// run's row can show them while it runs.
#[derive(Debug, Default)]
pub struct Progress {
    streams: std::sync::Mutex<Vec<(&'static str, StreamProgress)>>,
    stats: std::sync::Mutex<Vec<(&'static str, std::sync::Arc<Stats>)>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StreamProgress {
    /// Pages and rows committed so far (requests are added by `snapshot`).
    pub(crate) counts: Counts,
    /// Parents the fan-out has written with their per-parent lists.
    pub(crate) fanned_out: u64,
    pub(crate) done: bool,
    pub(crate) failed: bool,
}

impl Progress {
    /// Lists the run's streams, in config order, so the display does not depend on which
    /// task starts first.
    pub(super) fn register(&self, enabled: &[&'static Stream]) {
        let mut streams = self.streams.locked();
        streams.extend(enabled.iter().map(|s| (s.name, StreamProgress::default())));
        let mut stats = self.stats.locked();
        stats.extend(enabled.iter().map(|s| (s.name, std::sync::Arc::default())));
    }

    /// The request counters of `stream` (registered or not).
    pub(super) fn stats(&self, stream: &'static str) -> std::sync::Arc<Stats> {
        let mut stats = self.stats.locked();
        match stats.iter().find(|(s, _)| *s == stream) {
            Some((_, st)) => std::sync::Arc::clone(st),
            None => {
                let st = std::sync::Arc::<Stats>::default();
                stats.push((stream, std::sync::Arc::clone(&st)));
                st
            }
        }
    }

    pub(super) fn update(&self, stream: &'static str, f: impl FnOnce(&mut StreamProgress)) {
        let mut streams = self.streams.locked();
        if let Some((_, p)) = streams.iter_mut().find(|(s, _)| *s == stream) {
            f(p);
        }
    }

    /// Each stream's counters and requests so far, in config order.
    pub(crate) fn snapshot(&self) -> Vec<(&'static str, StreamProgress)> {
        let streams = self.streams.locked().clone();
        streams
            .into_iter()
            .map(|(name, mut p)| {
                p.counts += self.stats(name).counts();
                (name, p)
            })
            .collect()
    }

    /// Requests, retries and 429s of every stream so far.
    pub(crate) fn requests(&self) -> Counts {
        let stats = self.stats.locked();
        stats.iter().map(|(_, s)| s.counts()).sum()
    }

    /// One line: `bookings 12 pages 1200 rows · orders done · …`.
    pub fn render(&self) -> String {
        let streams = self.streams.locked();
        streams
            .iter()
            .map(|(name, p)| {
                let state = if p.failed {
                    " failed"
                } else if p.done {
                    " done"
                } else {
                    ""
                };
                format!("{name} {} pages {} rows{state}", p.counts.pages, p.counts.rows())
            })
            .collect::<Vec<_>>()
            .join(" · ")
    }
}
