//! The SQL the job runs, loaded from `sql/statements/*.sql` at compile time: one file per table.
//!
//! Each file holds the statements of one table, each under a `-- name: X` line, so SQL stays in
//! `sql/` where it can be read and reviewed as SQL.

use std::collections::HashMap;
use std::sync::LazyLock;

use include_dir::{Dir, include_dir};

/// Every `sql/statements/*.sql`, embedded at compile time (`build.rs` reruns on `sql/` changes,
/// so a new file is picked up without a list to keep in step).
static FILES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/sql/statements");

static STATEMENTS: LazyLock<HashMap<(&'static str, String), String>> = LazyLock::new(|| {
    let mut map = HashMap::new();
    let files = FILES.files().filter_map(|f| {
        let stem = f.path().file_stem()?.to_str()?;
        Some((stem, f.contents_utf8()?))
    });
    for (file, text) in files {
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

/// The statement `name` of `file`. A name the code spells out is checked by `build.rs` (a
/// missing one fails the build); one built per stream is checked by this module's test.
pub(crate) fn get(file: &str, name: &str) -> &'static str {
    STATEMENTS
        .get(&(file_key(file), name.to_owned()))
        .map_or("SELECT RAISE(ABORT, 'missing statement')", String::as_str)
}

/// Whether `file` has a statement `name` (for what only some tables need).
pub(crate) fn has(file: &str, name: &str) -> bool {
    STATEMENTS.contains_key(&(file_key(file), name.to_owned()))
}

fn file_key(file: &str) -> &'static str {
    FILES
        .files()
        .filter_map(|f| f.path().file_stem()?.to_str())
        .find(|stem| *stem == file)
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_the_code_uses_exists() {
        for s in crate::streams::ALL {
            for n in ["insert", "update", "count"] {
                assert!(has(s.name, n), "{}.{n}", s.name);
            }
            if let Some(parent) = s.parent() {
                assert!(has(s.name, "prune"), "{}.prune", s.name);
                for n in ["stage_all", "lookup"] {
                    assert!(has(parent.name, n), "{}.{n}", parent.name);
                }
            }
        }
        // Statements named by literals are checked by `build.rs`: a missing one fails the build.
        // These are the names built per stream at run time.
        for t in ["marketing_consents", "events", "experiences"] {
            for n in ["removal_candidates", "confirm_removed"] {
                assert!(has(t, n), "{t}.{n}");
            }
        }
        for n in ["missed", "missed_twice", "seen_again"] {
            assert!(has("marketing_consents", n), "marketing_consents.{n}");
        }
    }
}
