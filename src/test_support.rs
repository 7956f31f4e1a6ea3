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
//! its module too.

/// From `api`.
pub mod api {
    pub use crate::api::paging::MAX_CURSOR_BYTES;
}

/// From `config`.
pub mod config {
    pub use crate::config::raw::{RawStreams, RawWebhooks};
    pub use crate::config::types::MAX_DURATION_SECS;
}

/// From `counts`.
pub mod counts {
    pub use crate::counts::Counts;
}

/// From `dictionary`.
pub mod dictionary {
    pub use crate::dictionary::{Entry, Kind, entries};
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
    pub use crate::store::commit::{Children, Commit, Prune, Quarantined, Staged};
    pub use crate::store::inbox::{Outcome, Received};
    pub use crate::store::open::open;
    pub use crate::store::status::RunRow;
}

/// From `streams`.
pub mod streams {
    pub use crate::streams::stream::{At, Stream};

    /// The stream called `name`, if there is one.
    pub fn by_name(name: &str) -> Option<&'static Stream> {
        crate::streams::by_name(name)
    }
}

/// From `sync`.
pub mod sync {
    use crate::config::Config;
    use crate::shutdown::Stop;
    use crate::sync::RunReport;
    use crate::sync::error::Error;

    pub use crate::sync::report::StreamReport;

    /// Runs one sync of every enabled stream, as `understory-sync sync` does, without its
    /// progress display.
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
