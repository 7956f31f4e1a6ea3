//! What docs/schema.md (and docs/analysts.md's table list) say about the values the job stores agrees
//! with a database synced with every stream on: `sync_state`'s stream names, the separator inside
//! a legacy consent's key, and which parents wait in `staging`. An analyst types these values
//! into queries, so a wrong one returns nothing without an error.

use std::collections::BTreeSet;
use std::path::Path;

use understory_sync::streams::ALL;
use understory_sync::streams::Stream;
use understory_sync::sync::RunStatus;

use crate::support::*;

fn read(file: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap()
}

/// The text of docs/schema.md's section `## \`name\` (table|view)`, up to the next section.
fn section<'a>(doc: &'a str, name: &str) -> &'a str {
    let head = format!("## `{name}` (");
    let start = doc
        .find(&head)
        .unwrap_or_else(|| panic!("docs/schema.md has no section for `{name}`"));
    let rest = &doc[start + head.len()..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

/// The cells of a markdown table row, with `\|` (a pipe inside a cell) unescaped.
fn cells(row: &str) -> Vec<String> {
    let row = row.trim().trim_start_matches('|').trim_end_matches('|');
    let mut out = vec![String::new()];
    let mut chars = row.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => out.last_mut().unwrap().push(chars.next().unwrap()),
            '|' => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    out.into_iter().map(|c| c.trim().to_owned()).collect()
}

/// The `meaning` cell of `column`'s row in a section's table.
fn meaning(section: &str, column: &str) -> String {
    let start = format!("| `{column}` |");
    let row = section
        .lines()
        .find(|l| l.starts_with(&start))
        .unwrap_or_else(|| panic!("no row for `{column}` in:\n{section}"));
    cells(row)[1].clone()
}

/// Identifiers (`[a-z_]+`) in `text`, in order.
fn names(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_lowercase() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The stream names `sync_state.stream` is documented to hold: the list after "one of:".
fn documented_sync_state_streams(doc: &str) -> BTreeSet<String> {
    let cell = meaning(section(doc, "sync_state"), "stream");
    let (_, list) = cell
        .split_once("one of:")
        .unwrap_or_else(|| panic!("sync_state.stream lists its values after `one of:`: {cell}"));
    names(list).into_iter().collect()
}

/// The separator a text documents with `char(N)`, and the SQL expression (a code span holding
/// `'legacy:'`) that builds a legacy key.
fn documented_separator(text: &str) -> (char, Option<String>) {
    let at = text
        .find("char(")
        .unwrap_or_else(|| panic!("the separator is written as `char(N)`: {text}"));
    let n: u32 = text[at + 5..]
        .split(')')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|e| panic!("char(N) with a number: {e}: {text}"));
    let expr = text
        .split('`')
        .skip(1)
        .step_by(2)
        .find(|span| span.starts_with("'legacy:'"))
        .map(str::to_owned);
    (char::from_u32(n).unwrap(), expr)
}

/// Every parent stream some per-parent stream is fetched per item of.
fn parents() -> BTreeSet<&'static str> {
    ALL.iter()
        .filter_map(|s| s.parent())
        .map(|p: &Stream| p.name)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_stream_names_separator_and_staged_parents_are_what_the_database_holds() {
    let doc = read("docs/schema.md");
    let sb = start(small()).await;
    let (_dir, db) = temp_db();
    let mut raw = raw_config(&sb, &db);
    for s in ALL {
        raw.streams.set(s.name, true);
    }
    let run = sync(&config(raw)).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    let c = open(&db);

    // (a) sync_state.stream: the documented list is exactly the library's streams, and every
    // stream that ran has its row.
    let documented = documented_sync_state_streams(&doc);
    let library: BTreeSet<String> = ALL.iter().map(|s| s.name.to_owned()).collect();
    let stored: BTreeSet<String> = c
        .prepare("SELECT DISTINCT stream FROM sync_state")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let undocumented: Vec<_> = stored
        .union(&library)
        .filter(|s| !documented.contains(*s))
        .collect();
    assert!(
        undocumented.is_empty(),
        "docs/schema.md's sync_state.stream does not list {undocumented:?}"
    );
    let unknown: Vec<_> = documented.difference(&library).collect();
    assert!(
        unknown.is_empty(),
        "docs/schema.md's sync_state.stream lists {unknown:?}, which are not streams"
    );
    assert_eq!(
        stored, library,
        "one sync_state row per stream, per-parent ones included"
    );

    // (b) A legacy consent's key: the separator byte in a stored key is the documented one, and
    // the documented SQL expression rebuilds every stored key.
    let (key, company): (String, String) = c
        .query_row(
            "SELECT consent_key, company_id FROM marketing_consents WHERE id IS NULL LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("the sandbox sends legacy consents, without an id");
    let stored_sep = key
        .strip_prefix(&format!("legacy:{company}"))
        .and_then(|rest| rest.chars().next())
        .unwrap_or_else(|| panic!("a legacy key starts with `legacy:` and its company: {key:?}"));
    let in_marketing_consents = meaning(section(&doc, "marketing_consents"), "consent_key");
    let in_active_view = meaning(section(&doc, "marketing_consents_active"), "consent_key");
    let guide = read("docs/analysts.md");
    let in_guide = guide
        .lines()
        .find(|l| l.starts_with("| `marketing_consents` |"))
        .expect("docs/analysts.md's table list has marketing_consents");
    for (place, text) in [
        (
            "docs/schema.md's marketing_consents.consent_key",
            in_marketing_consents.as_str(),
        ),
        (
            "docs/schema.md's marketing_consents_active.consent_key",
            in_active_view.as_str(),
        ),
        ("docs/analysts.md's marketing_consents row", in_guide),
    ] {
        let (sep, _) = documented_separator(text);
        assert_eq!(
            sep, stored_sep,
            "{place} documents the separator U+{:04X}; the stored key {key:?} has U+{:04X}",
            sep as u32, stored_sep as u32
        );
    }
    let (_, expr) = documented_separator(&in_marketing_consents);
    let expr = expr.expect("docs/schema.md gives the SQL that builds a legacy key");
    let (legacy, rebuilt): (i64, i64) = c
        .query_row(
            &format!("SELECT COUNT(*), SUM(consent_key = ({expr})) FROM marketing_consents WHERE id IS NULL"),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap_or_else(|e| panic!("the documented `{expr}` runs: {e}"));
    assert!(legacy > 0);
    assert_eq!(
        rebuilt, legacy,
        "the documented `{expr}` rebuilds every legacy key"
    );

    // (c) staging: its `stream` column lists exactly the parents of per-parent streams, and the
    // text above its table names each.
    let staging = section(&doc, "staging");
    let cell = meaning(staging, "stream");
    let listed: BTreeSet<String> = cell.split('`').skip(1).step_by(2).map(str::to_owned).collect();
    let parents: BTreeSet<String> = parents().into_iter().map(str::to_owned).collect();
    assert!(parents.len() >= 3, "{parents:?}");
    assert_eq!(
        listed, parents,
        "docs/schema.md's staging.stream lists the parents of per-parent streams"
    );
    let prose = &staging[..staging.find("| column |").unwrap()];
    let words: BTreeSet<String> = names(prose).into_iter().collect();
    for p in &parents {
        assert!(
            words.contains(p),
            "docs/schema.md's staging section says what it holds without naming {p}"
        );
    }
}

#[test]
fn the_dictionary_starts_with_the_views_and_sets_the_jobs_own_tables_apart() {
    use understory_sync::test_support::dictionary::{self, Kind};
    let doc = read("docs/schema.md");
    let entries = dictionary::entries();
    // Views, then the streams' tables, then the job's own, in the file's order.
    let data: BTreeSet<&str> = understory_sync::streams::tables().into_iter().collect();
    let rank = |e: &dictionary::Entry| match e.kind {
        Kind::View => 0,
        Kind::Table if data.contains(e.name.as_str()) => 1,
        Kind::Table => 2,
    };
    let ranks: Vec<(u8, &str)> = entries.iter().map(|e| (rank(e), e.name.as_str())).collect();
    assert!(
        ranks.is_sorted_by_key(|(r, _)| *r),
        "views first, then the data tables, then the job's own: {ranks:?}"
    );
    let own = doc
        .find("\n# The job's own tables\n")
        .expect("a part headed `# The job's own tables`");
    let start = doc
        .find("\n## Where to start\n")
        .expect("a `Where to start` part");
    let intro = &doc[start..doc.find("\n## `").unwrap()];
    for e in &entries {
        // The reader marks a table as the job's by the part it is in.
        assert_eq!(
            e.own,
            rank(e) == 2,
            "`{}` is in the job's own part exactly when no stream fills it",
            e.name
        );
        match rank(e) {
            0 => assert!(
                intro.contains(&format!("[`{0}`](#{0}-view)", e.name)),
                "`Where to start` links the view `{}`",
                e.name
            ),
            2 => assert!(
                doc[own..].contains(&format!("* `{}`", e.name)),
                "the job's own tables' part says what `{}` is for",
                e.name
            ),
            _ => {}
        }
    }
}

#[test]
fn every_query_in_the_dictionary_runs_on_the_schema() {
    let doc = read("docs/schema.md");
    let (_dir, db) = temp_db();
    drop(understory_sync::test_support::store::open(&db).unwrap());
    let c = open(&db);
    let mut ran = 0;
    for block in doc.split("```sql\n").skip(1) {
        let block = block.split("```").next().unwrap();
        for statement in block.split(';').map(str::trim).filter(|s| {
            s.lines()
                .any(|l| !l.trim_start().starts_with("--") && !l.trim().is_empty())
        }) {
            c.prepare(statement)
                .unwrap_or_else(|e| panic!("docs/schema.md: {statement}: {e}"));
            ran += 1;
        }
    }
    assert!(ran >= 6, "queries found: {ran}");
}
