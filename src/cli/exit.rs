//! Exit codes: each names a class of problem an operator acts on.

use std::process::ExitCode;

use understory_sync::sync::{Failure, RunReport, RunStatus};

/// Exit codes, documented in the README: each names a class of problem an operator acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    Ok = 0,
    /// A bug or an environment problem not covered below.
    Internal = 1,
    /// The config file, a key, or a flag is wrong.
    Config = 2,
    /// The token endpoint refused the key, or the API refused the token.
    Auth = 3,
    /// The API was unreachable or kept failing after retries, or sent unreadable data.
    Api = 4,
    /// Some streams synced, others failed.
    Partial = 5,
    /// Another instance holds the database's lock.
    LockBusy = 6,
    /// Stopped by SIGTERM/SIGINT; the next run resumes.
    Interrupted = 7,
    /// The database could not be written (disk full, permissions, corruption).
    Database = 8,
    /// The API's pages loop (a cursor handed back, or fresh cursors over items already read):
    /// asking on would store the same items for ever. Never a success, so the units alert.
    Looping = 9,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// The exit code of a failure that ended a run before it could finish.
pub fn exit_for_failure(f: Failure) -> Exit {
    match f {
        Failure::Auth => Exit::Auth,
        Failure::Store => Exit::Database,
        Failure::Api => Exit::Api,
        Failure::Looping => Exit::Looping,
        Failure::Stopped => Exit::Interrupted,
        Failure::Internal => Exit::Internal,
        Failure::LockBusy => Exit::LockBusy,
    }
}

/// The exit code of a finished run.
pub fn exit_for(report: &RunReport) -> Exit {
    match report.status {
        RunStatus::Succeeded => Exit::Ok,
        // A stop hides neither a loop: exit 7 is a success for the units, and the loop
        // would come back every run while another stream's long load is stopped.
        RunStatus::Interrupted => match report.failure() {
            Some(Failure::Looping) => Exit::Looping,
            _ => Exit::Interrupted,
        },
        RunStatus::Partial => match report.failure() {
            Some(Failure::Auth) => Exit::Auth,
            Some(Failure::Store) => Exit::Database,
            Some(Failure::Looping) => Exit::Looping,
            _ => Exit::Partial,
        },
        RunStatus::Failed => report.failure().map_or(Exit::Api, exit_for_failure),
    }
}
