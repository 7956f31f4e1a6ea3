//! Why a stream or a run failed, and the coarse kind of failure an exit code is chosen by.

use serde::Serialize;

use crate::{api, auth, store};

/// Why a stream (or the run) failed, and so which exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] store::Error),
    /// `cause` rather than `source`: the message already holds it, and a `source` would print
    /// it twice in the one-line error.
    #[error("{stream}: {cause}")]
    Api { stream: &'static str, cause: api::Error },
    #[error(
        "{stream}: the API sent an item this job cannot read ({detail}); nothing from that page was stored"
    )]
    Malformed { stream: &'static str, detail: String },
    /// The key was refused at the token endpoint.
    #[error("{0}")]
    Auth(auth::Error),
    /// The run's first token could not be fetched, retries included (a key the endpoint
    /// refuses is `Auth`).
    #[error("{0}")]
    Token(api::Error),
    /// A list walk was handed a cursor the pass had already followed (`walk::Looping`), or
    /// fresh cursors over pages mostly made of items the pass's last pages already listed
    /// (`RecentPages`).
    #[error(
        "{stream}: the API is handing out pages this pass already read (a `next` cursor already followed, fresh cursors over items already listed, or a first load's page older than what it already crawled past); stopped instead of asking for ever (the next run tries the pass again; report it to Understory if it repeats)"
    )]
    Looping { stream: &'static str },
    /// The HTTP client could not be built (its TLS roots, or the configured proxy).
    #[error("cannot start the sync: {0}")]
    Client(String),
    /// A task of the run panicked or was cancelled: a bug, said as such.
    #[error("{what} failed: {detail}")]
    Task { what: &'static str, detail: String },
    /// A parent kept in `staging` is no longer the JSON it was stored as.
    #[error(
        "{stream}: a parent kept in `staging` is not JSON any more ({detail}); the database was changed by something else"
    )]
    Staged { stream: &'static str, detail: String },
    /// The run is stopping (SIGTERM/SIGINT): `stream` (or, before any stream started, the
    /// run) asks for nothing more.
    #[error(
        "{}asked to stop before its next request; the next run resumes from the checkpoint",
        stream.map_or_else(|| "the run was ".to_owned(), |s| format!("{s}: "))
    )]
    Stopped { stream: Option<&'static str> },
    #[error(transparent)]
    Lock(#[from] crate::lock::Error),
}

/// The coarse kind of a failure, for exit codes and `sync_runs.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    Auth,
    Api,
    /// The API's pages loop: the same cursor or the same items again, for ever.
    Looping,
    Store,
    Stopped,
    Internal,
    LockBusy,
}

impl Error {
    pub fn failure(&self) -> Failure {
        match self {
            Self::Store(_) => Failure::Store,
            Self::Auth(_) => Failure::Auth,
            Self::Api { cause, .. } | Self::Token(cause) => match cause.root() {
                api::Error::Auth(a) if !a.is_transient() => Failure::Auth,
                api::Error::Unauthorized { .. } => Failure::Auth,
                api::Error::Stopped { .. } => Failure::Stopped,
                api::Error::Looping { .. } => Failure::Looping,
                _ => Failure::Api,
            },
            Self::Stopped { .. } => Failure::Stopped,
            Self::Malformed { .. } => Failure::Api,
            Self::Looping { .. } => Failure::Looping,
            Self::Client(_) | Self::Task { .. } => Failure::Internal,
            Self::Staged { .. } => Failure::Store,
            Self::Lock(crate::lock::Error::Busy { .. }) => Failure::LockBusy,
            Self::Lock(_) => Failure::Store,
        }
    }
}
