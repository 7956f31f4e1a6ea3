//! The internals the integration tests and benchmarks reach: not a supported API.
//!
//! The library's public items are the ones the binary uses (see the crate's documentation).
//! The tests in `tests/` and the benchmarks in `benches/` are separate crates, so they see only
//! what is public; what they need beyond that is named here, one module per library module, and
//! nowhere else. This module exists only with the `test-support` feature, which the package's
//! dev-dependency on itself turns on for `cargo test` and `cargo bench`; `cargo build` and the
//! release binary leave it out. Nothing here is stable: it changes whenever a test needs it to.
//!
//! An item of a crate-private module is declared `pub` there and re-exported here. A function or
//! constant of a public module is wrapped here instead: declared `pub`, it would be exported from
//! its module too. A method of a public type that only tests call is `pub(crate)` on the type and
//! reached through an extension trait here (`StoreExt`, `PaceExt`, `RawStreamsExt`), so a test calls it as a
//! method once it imports the trait. Types that a public item's signature holds are public at
//! their own module's path (`store::Error`, `sync::StreamReport`), not here.

/// From `api`.
pub mod api {
    pub use crate::api::paging::MAX_CURSOR_BYTES;
}

/// From `config`.
pub mod config {
    pub use crate::config::types::MAX_DURATION_SECS;

    /// `RawStreams`' constructor that only tests use.
    pub trait RawStreamsExt {
        /// Exactly the streams `names`, every other one off.
        fn only(names: &[&str]) -> Self;
    }

    impl RawStreamsExt for crate::config::RawStreams {
        fn only(names: &[&str]) -> Self {
            Self(
                crate::streams::ALL
                    .iter()
                    .map(|s| (s.name.to_owned(), names.contains(&s.name)))
                    .collect(),
            )
        }
    }
}

/// From `dictionary`.
pub mod dictionary {
    pub use crate::dictionary::{Column, Entry, Kind, entries};
}

/// From `memory`.
pub mod memory {
    pub use crate::memory::Held;
}

/// From `lock`.
pub mod lock {
    use std::path::Path;

    /// Takes the lock of `database`, as a run does, and holds it for as long as the value lives.
    pub fn acquire(database: &Path) -> Result<impl std::fmt::Debug + use<>, crate::lock::Error> {
        crate::lock::acquire(database)
    }
}

/// From `store`.
pub mod store {
    pub use crate::store::checkpoint::Checkpoint;
    pub use crate::store::commit::{Children, Commit, Committed, Prune, Quarantined, Removals, Staged};
    pub use crate::store::deferred::Restored;
    pub use crate::store::inbox::{Delivered, Outcome, Received, Waiting};
    pub use crate::store::open::open;
    pub use crate::store::upsert::Row;

    use crate::store::{Error, Store};
    use crate::time::Timestamp;

    /// `Store`'s methods that the job calls from inside the crate and the tests call directly:
    /// each forwards to the method of the same name.
    pub trait StoreExt {
        /// Commits pages with their checkpoints in one transaction (the writer's group commit).
        fn commit_group(&self, commits: &[Commit], now: Timestamp) -> Result<Vec<Committed>, Error>;
        /// Sets `table`'s secondary indexes aside, as a first load does.
        fn defer_indexes(&self, table: &str, keyless: bool, now: Timestamp) -> Result<usize, Error>;
        /// Builds the indexes `defer_indexes` set aside.
        fn restore_indexes(&self, table: &str) -> Result<Restored, Error>;
        /// Records a webhook delivery in the inbox; `false` for a duplicate.
        fn receive(&self, r: &Received<'_>, now: Timestamp) -> Result<bool, Error>;
        /// Records the receiver as up or down.
        fn receiving(&self, up: bool, now: Timestamp) -> Result<(), Error>;
        /// The deliveries waiting for the applier, oldest first.
        fn waiting(&self, limit: usize) -> Result<Vec<Waiting>, Error>;
        /// Marks a delivery applied.
        fn applied(
            &self,
            seq: i64,
            outcome: Outcome,
            lag_ms: Option<i64>,
            now: Timestamp,
        ) -> Result<(), Error>;
        /// Records a failed try of a delivery, or gives it up.
        fn apply_failed(&self, seq: i64, error: &str, give_up: bool, now: Timestamp) -> Result<(), Error>;
        /// Deletes applied deliveries older than `before`.
        fn prune_inbox(&self, before: Timestamp) -> Result<usize, Error>;
        /// Stages every stored parent for a per-parent stream turned on later.
        fn backfill(&self, parent: &str, child: &str, now: Timestamp) -> Result<Option<u64>, Error>;
    }

    impl StoreExt for Store {
        fn commit_group(&self, commits: &[Commit], now: Timestamp) -> Result<Vec<Committed>, Error> {
            Store::commit_group(self, commits, now)
        }
        fn defer_indexes(&self, table: &str, keyless: bool, now: Timestamp) -> Result<usize, Error> {
            Store::defer_indexes(self, table, keyless, now)
        }
        fn restore_indexes(&self, table: &str) -> Result<Restored, Error> {
            Store::restore_indexes(self, table)
        }
        fn receive(&self, r: &Received<'_>, now: Timestamp) -> Result<bool, Error> {
            Store::receive(self, r, now)
        }
        fn receiving(&self, up: bool, now: Timestamp) -> Result<(), Error> {
            Store::receiving(self, up, now)
        }
        fn waiting(&self, limit: usize) -> Result<Vec<Waiting>, Error> {
            Store::waiting(self, limit)
        }
        fn applied(
            &self,
            seq: i64,
            outcome: Outcome,
            lag_ms: Option<i64>,
            now: Timestamp,
        ) -> Result<(), Error> {
            Store::applied(self, seq, outcome, lag_ms, now)
        }
        fn apply_failed(&self, seq: i64, error: &str, give_up: bool, now: Timestamp) -> Result<(), Error> {
            Store::apply_failed(self, seq, error, give_up, now)
        }
        fn prune_inbox(&self, before: Timestamp) -> Result<usize, Error> {
            Store::prune_inbox(self, before)
        }
        fn backfill(&self, parent: &str, child: &str, now: Timestamp) -> Result<Option<u64>, Error> {
            Store::backfill(self, parent, child, now)
        }
    }
}

/// From `pace`.
pub mod pace {
    use std::future::Future;

    pub use crate::pace::permit::{Lane, Permit};
    use crate::pace::{Learned, Pace};

    /// `Pace`'s calls that the API client makes from inside the crate, for the pace benchmark,
    /// which drives the controller alone.
    pub trait PaceExt {
        /// Waits for the pace to let one request of `lane` go.
        fn admit(&self, lane: Lane) -> impl Future<Output = Permit> + Send;
        /// What the pace has learned of the budget so far.
        fn learned(&self) -> Learned;
    }

    impl PaceExt for Pace {
        fn admit(&self, lane: Lane) -> impl Future<Output = Permit> + Send {
            Pace::admit(self, lane)
        }
        fn learned(&self) -> Learned {
            Pace::learned(self)
        }
    }
}

/// From `streams`.
pub mod streams {
    pub use crate::streams::stream::{At, Item};

    /// The stream called `name`, if there is one.
    pub fn by_name(name: &str) -> Option<&'static crate::streams::Stream> {
        crate::streams::by_name(name)
    }
}

/// From `sync`.
pub mod sync {
    use crate::config::Config;
    use crate::shutdown::Stop;
    use crate::sync::{Error, RunReport};

    /// Runs one sync of every enabled stream through the library: what `understory-sync sync`
    /// runs, without the command's owner check, signal handling, progress display, summary or
    /// metrics file.
    pub async fn run(config: &Config, stop: Stop) -> Result<RunReport, Error> {
        crate::sync::run_sharing(config, stop, std::sync::Arc::default(), None).await
    }
}

/// From `webhooks`.
pub mod webhooks {
    use std::time::Duration;

    /// Connections the receiver serves at once.
    pub const MAX_CONNECTIONS: usize = crate::webhooks::receiver::MAX_CONNECTIONS;
    /// Headers, and then the whole body, must arrive within this.
    pub const READ_TIMEOUT: Duration = crate::webhooks::receiver::READ_TIMEOUT;
}
