//! Streams: one per Understory list the job copies, each described once, in its own file.
//!
//! A stream knows its endpoint and scope, how it is walked (incremental by `updated_at`, a full
//! scan, or per item of a parent stream), and how an item becomes a typed row. The row is a plain
//! `Serialize` struct whose fields are its table's columns; only `store` turns fields into SQL
//! parameters. The sync engine (`crate::sync`) does the walking; nothing here does I/O.
//!
//! Adding a stream: a file here with its `STREAM` and row, its `sql/statements/<name>.sql`, a
//! migration creating its table, its rows in `docs/schema.md`, and its name in the list below.

mod columns;
pub(crate) mod read;
mod redact;
pub(crate) mod stream;

pub use stream::Stream;
pub(crate) use stream::{At, Item, Mode, quarantined};

/// Declares the stream modules and lists them, in the order runs report them: the one place a
/// new stream is named.
macro_rules! streams {
    ($($stream:ident),* $(,)?) => {
        $(mod $stream;)*
        /// Every stream, parents before their children.
        pub static ALL: &[&Stream] = &[$(&$stream::STREAM),*];
    };
}

streams! {
    bookings,
    booking_tickets,
    information_request_answers,
    orders,
    order_line_items,
    order_transactions,
    order_refunds,
    marketing_consents,
    events,
    experiences,
    ticket_variants,
    information_requests,
    webhook_subscriptions,
}

/// The stream called `name`, if there is one.
pub(crate) fn by_name(name: &str) -> Option<&'static Stream> {
    ALL.iter().copied().find(|s| s.name == name)
}

/// The enabled stream whose webhook events include `event_type`, if any.
pub(crate) fn by_event(enabled: &[&'static Stream], event_type: &str) -> Option<&'static Stream> {
    enabled
        .iter()
        .copied()
        .find(|s| s.webhook.is_some_and(|w| w.types.contains(&event_type)))
}

/// Every table the streams write, each stream's before its children's.
pub fn tables() -> Vec<&'static str> {
    ALL.iter().map(|s| s.name).collect()
}
