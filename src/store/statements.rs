//! The SQL the job runs, loaded from `sql/statements/*.sql` at compile time.
//!
//! Each file holds the statements of one table, each under a `-- name: X` line, so SQL stays in
//! `sql/` where it can be read and reviewed as SQL.

use std::collections::HashMap;
use std::sync::LazyLock;

const FILES: [(&str, &str); 15] = [
    ("bookings", include_str!("../../sql/statements/bookings.sql")),
    ("orders", include_str!("../../sql/statements/orders.sql")),
    (
        "order_line_items",
        include_str!("../../sql/statements/order_line_items.sql"),
    ),
    (
        "order_transactions",
        include_str!("../../sql/statements/order_transactions.sql"),
    ),
    (
        "order_refunds",
        include_str!("../../sql/statements/order_refunds.sql"),
    ),
    (
        "marketing_consents",
        include_str!("../../sql/statements/marketing_consents.sql"),
    ),
    ("events", include_str!("../../sql/statements/events.sql")),
    (
        "experiences",
        include_str!("../../sql/statements/experiences.sql"),
    ),
    ("sync_state", include_str!("../../sql/statements/sync_state.sql")),
    ("sync_runs", include_str!("../../sql/statements/sync_runs.sql")),
    ("summary", include_str!("../../sql/statements/summary.sql")),
    ("pace_state", include_str!("../../sql/statements/pace_state.sql")),
    ("quarantine", include_str!("../../sql/statements/quarantine.sql")),
    ("staging", include_str!("../../sql/statements/staging.sql")),
    ("scan_seen", include_str!("../../sql/statements/scan_seen.sql")),
];

static STATEMENTS: LazyLock<HashMap<(&'static str, String), String>> = LazyLock::new(|| {
    let mut map = HashMap::new();
    for (file, text) in FILES {
        let mut name: Option<String> = None;
        let mut body = String::new();
        let mut flush = |name: &Option<String>, body: &mut String| {
            if let Some(n) = name {
                map.insert((file, n.clone()), std::mem::take(body).trim().to_owned());
            }
            body.clear();
        };
        for line in text.lines() {
            if let Some(n) = line.strip_prefix("-- name:") {
                flush(&name, &mut body);
                name = Some(n.trim().to_owned());
            } else if !line.trim_start().starts_with("--") {
                body.push_str(line);
                body.push('\n');
            }
        }
        flush(&name, &mut body);
    }
    map
});

/// The statement `name` of `file`. Every name used in the code is covered by a unit test, so a
/// missing one fails the build's tests rather than a run.
pub fn get(file: &str, name: &str) -> &'static str {
    STATEMENTS
        .get(&(file_key(file), name.to_owned()))
        .map_or("SELECT RAISE(ABORT, 'missing statement')", String::as_str)
}

fn file_key(file: &str) -> &'static str {
    FILES.iter().find(|(f, _)| *f == file).map_or("", |(f, _)| f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_the_code_uses_exists() {
        for t in crate::store::Table::ALL.map(crate::store::Table::name) {
            for n in ["lookup", "upsert"] {
                assert!(STATEMENTS.contains_key(&(file_key(t), n.to_owned())), "{t}.{n}");
            }
        }
        for (t, n) in [
            ("order_line_items", "prune"),
            ("order_transactions", "prune"),
            ("order_refunds", "prune"),
            ("marketing_consents", "removal_candidates"),
            ("marketing_consents", "confirm_removed"),
            ("marketing_consents", "missed"),
            ("marketing_consents", "missed_twice"),
            ("marketing_consents", "seen_again"),
            ("events", "removal_candidates"),
            ("events", "confirm_removed"),
            ("experiences", "removal_candidates"),
            ("experiences", "confirm_removed"),
            ("scan_seen", "reset"),
            ("scan_seen", "add"),
            ("sync_state", "load"),
            ("sync_state", "save"),
            ("sync_runs", "start"),
            ("sync_runs", "finish"),
            ("sync_runs", "abandon"),
            ("summary", "counts"),
            ("sync_runs", "last_success"),
            ("sync_runs", "recent"),
            ("sync_state", "all"),
            ("pace_state", "load"),
            ("pace_state", "save"),
            ("quarantine", "exists"),
            ("quarantine", "upsert"),
            ("quarantine", "release"),
            ("quarantine", "release_children"),
            ("quarantine", "sweep"),
            ("quarantine", "ids"),
            ("quarantine", "count"),
            ("quarantine", "by_stream"),
            ("staging", "stage"),
            ("staging", "next"),
            ("staging", "done"),
            ("staging", "drop"),
            ("staging", "count"),
        ] {
            assert!(STATEMENTS.contains_key(&(file_key(t), n.to_owned())), "{t}.{n}");
        }
    }
}
