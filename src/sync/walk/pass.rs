//! A pass: one walk of a stream's list, and what the walk keeps of it between pages (its
//! checkpoint keeps the same as a `store::checkpoint::PassRow`).

use crate::store::Checkpoint;
use crate::store::checkpoint::PassRow;
use crate::streams::Mode;
use crate::time::Timestamp;

/// The kind of walk a pass is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PassKind {
    /// First run: everything, `sort=+created_at`, resumable with `from`.
    Bootstrap,
    /// Later runs: `sort=-updated_at` down to the high-water mark minus the overlap.
    Incremental,
    /// Lists without timestamps (consents) or without filters: all of it, every run.
    Scan,
}

impl PassKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Bootstrap => "bootstrap",
            Self::Incremental => "incremental",
            Self::Scan => "scan",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "bootstrap" => Some(Self::Bootstrap),
            "incremental" => Some(Self::Incremental),
            "scan" => Some(Self::Scan),
            _ => None,
        }
    }
}

/// A pass under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pass {
    pub(crate) kind: PassKind,
    pub(crate) started_at: Timestamp,
    /// The high-water mark to adopt when the pass completes.
    pub(crate) candidate: Option<Timestamp>,
    /// The `from` filter the current walk was started with (bootstrap).
    pub(crate) from: Option<Timestamp>,
    /// The newest `created_at` committed so far (bootstrap): where a restart resumes.
    pub(crate) progress: Option<Timestamp>,
    pub(crate) pages: i64,
    pub(crate) rows: i64,
}

impl Pass {
    /// The pass as its checkpoint keeps it.
    pub(crate) fn to_row(&self) -> PassRow {
        PassRow {
            kind: self.kind.as_str().to_owned(),
            started_at: self.started_at,
            candidate: self.candidate,
            from: self.from,
            progress: self.progress,
            pages: self.pages,
            rows: self.rows,
        }
    }

    /// The pass a checkpoint kept; `None` for a kind this version does not know (the walk
    /// then starts a new pass).
    pub(crate) fn from_row(row: PassRow) -> Option<Self> {
        Some(Self {
            kind: PassKind::parse(&row.kind)?,
            started_at: row.started_at,
            candidate: row.candidate,
            from: row.from,
            progress: row.progress,
            pages: row.pages,
            rows: row.rows,
        })
    }
}

/// Whether a stream in `mode` at `checkpoint` has not completed its first full load: its next
/// (or resumed) pass is a bootstrap.
pub(crate) fn first_load(mode: Mode, checkpoint: &Checkpoint) -> bool {
    mode == Mode::Incremental && checkpoint.high_water_mark.is_none()
}

pub(super) fn new_pass(mode: Mode, checkpoint: &Checkpoint, now: Timestamp) -> Pass {
    let kind = match mode {
        // A per-parent stream is never walked on its own (its parent's fan-out fetches it).
        Mode::Scan | Mode::PerParent(_) => PassKind::Scan,
        Mode::Incremental if first_load(mode, checkpoint) => PassKind::Bootstrap,
        Mode::Incremental => PassKind::Incremental,
    };
    Pass {
        kind,
        started_at: now,
        candidate: None,
        from: None,
        progress: None,
        pages: 0,
        rows: 0,
    }
}

/// Starts the pass's walk again from its first page: bootstrap from its progress, the others
/// from the top. The candidate is kept: the older it is, the safer.
pub(super) fn restart(pass: &mut Pass) {
    if pass.kind == PassKind::Bootstrap {
        pass.from = pass.progress;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_survives_its_row_and_an_unknown_kind_starts_anew() {
        let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        // The kinds' text is what files written by earlier versions hold: it must not change.
        for (kind, text) in [
            (PassKind::Bootstrap, "bootstrap"),
            (PassKind::Incremental, "incremental"),
            (PassKind::Scan, "scan"),
        ] {
            let pass = Pass {
                kind,
                started_at: at("2026-06-01T12:00:00Z"),
                candidate: Some(at("2026-05-01T00:00:00Z")),
                from: Some(at("2026-02-01T00:00:00Z")),
                progress: Some(at("2026-03-01T00:00:00Z")),
                pages: 7,
                rows: 700,
            };
            assert_eq!(pass.to_row().kind, text);
            assert_eq!(Pass::from_row(pass.to_row()), Some(pass));
        }
        let mut row = Pass::from_row(PassRow {
            kind: "scan".into(),
            started_at: at("2026-06-01T12:00:00Z"),
            candidate: None,
            from: None,
            progress: None,
            pages: 0,
            rows: 0,
        })
        .unwrap()
        .to_row();
        row.kind = "sideways".into();
        assert_eq!(Pass::from_row(row), None);
    }
}
