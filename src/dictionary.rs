//! The data dictionary, `docs/schema.md`, read as data: one entry per table and view, with a
//! line for each column (meaning, unit, API field). The Markdown file is the one place a column
//! is described; the Datasette metadata is built from it, and a test holds it equal to the
//! schema the migrations create.
//!
//! The file's shape, which this module relies on: a section per table or view headed
//! ``## `name` (table)`` or ``## `name` (view)``, its first paragraph saying what a row is, and
//! a table of rows ``| `column` | meaning | unit | API field |`` (a `|` inside a cell written
//! `\|`). A part headed `# The job's own tables` holds the tables the job keeps for itself.

/// `docs/schema.md`, embedded so the installed binary describes its own schema.
const TEXT: &str = include_str!("../docs/schema.md");

/// The heading of the part that holds the job's own bookkeeping tables.
const OWN_PART: &str = "# The job's own tables";

/// Whether a section describes a table or a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Table,
    View,
}

/// One table or view as the dictionary describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub kind: Kind,
    /// Kept by the job for itself (checkpoints, staging, pace): not data analysts query.
    pub own: bool,
    /// The section's first paragraph, as plain text.
    pub(crate) summary: String,
    pub columns: Vec<Column>,
}

/// One column's row of the dictionary, as plain text (Markdown's backticks removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub(crate) meaning: String,
    pub(crate) unit: String,
    pub(crate) api_field: String,
}

impl Entry {
    pub(crate) fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// The dictionary shipped with this version.
pub fn entries() -> Vec<Entry> {
    parse(TEXT)
}

/// The entries of a dictionary's Markdown text, in the file's order.
pub(crate) fn parse(text: &str) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    let mut own = false;
    // Inside a table's or view's section (any other heading ends it), and still reading its
    // first paragraph?
    let mut in_section = false;
    let mut in_summary = false;
    for line in text.lines() {
        if line.starts_with("# ") {
            own = line.starts_with(OWN_PART);
            (in_section, in_summary) = (false, false);
            continue;
        }
        if let Some(rest) = line.strip_prefix("## ") {
            (in_section, in_summary) = (false, false);
            if let Some((name, kind)) = section(rest) {
                out.push(Entry {
                    name,
                    kind,
                    own,
                    summary: String::new(),
                    columns: Vec::new(),
                });
                (in_section, in_summary) = (true, true);
            }
            continue;
        }
        let Some(entry) = out.last_mut().filter(|_| in_section) else {
            continue;
        };
        if let Some(row) = line.strip_prefix("| `") {
            in_summary = false;
            if let Some(column) = column_row(row) {
                entry.columns.push(column);
            }
        } else if in_summary {
            if line.trim().is_empty() {
                in_summary = entry.summary.is_empty();
            } else if !line.starts_with('|') {
                if !entry.summary.is_empty() {
                    entry.summary.push(' ');
                }
                entry.summary.push_str(&plain(line.trim()));
            }
        }
    }
    out
}

/// `` `name` (table) `` → the name and its kind; another heading → None.
fn section(heading: &str) -> Option<(String, Kind)> {
    let rest = heading.strip_prefix('`')?;
    let (name, rest) = rest.split_once('`')?;
    let kind = match rest.trim() {
        "(table)" => Kind::Table,
        "(view)" => Kind::View,
        _ => return None,
    };
    Some((name.to_owned(), kind))
}

/// A row after its leading `` | ` ``: `name` | meaning | unit | API field |.
fn column_row(row: &str) -> Option<Column> {
    let (name, rest) = row.split_once('`')?;
    let cells = cells(rest.trim_start().strip_prefix('|')?);
    let [meaning, unit, api_field] = <[String; 3]>::try_from(cells).ok()?;
    Some(Column {
        name: name.to_owned(),
        meaning,
        unit,
        api_field,
    })
}

/// The cells of a Markdown table row's remainder `a | b | c |`: split at the pipes not written
/// `\|`, each trimmed and made plain.
fn cells(rest: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cell = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cell.push('|');
                chars.next();
            }
            '|' => out.push(plain(std::mem::take(&mut cell).trim())),
            c => cell.push(c),
        }
    }
    if !cell.trim().is_empty() {
        out.push(plain(cell.trim()));
    }
    out
}

/// Markdown's inline code marks removed: the text as a reader sees it.
fn plain(markdown: &str) -> String {
    markdown.replace('`', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# Title\n\nIntro.\n\n## Fields without a column\n\ntext\n\n\
## `bookings` (table)\n\nOne row per booking\n(`GET /v1/bookings`).\n\n\
| column | meaning | unit | API field |\n|---|---|---|---|\n\
| `id` | booking id | text | id |\n\
| `key` | `a` \\|\\| `b` | text | a + b |\n\n\
# The job's own tables\n\n## `staging` (table)\n\nRows set aside.\n\n\
| column | meaning | unit | API field |\n|---|---|---|---|\n| `stream` | which | text | — |\n";

    #[test]
    fn sections_columns_and_parts_are_read() {
        let e = parse(SAMPLE);
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!(e[0].name, "bookings");
        assert_eq!(e[0].kind, Kind::Table);
        assert!(!e[0].own);
        assert_eq!(e[0].summary, "One row per booking (GET /v1/bookings).");
        assert_eq!(e[0].columns.len(), 2);
        assert_eq!(e[0].columns[1].meaning, "a || b");
        assert_eq!(e[0].columns[1].api_field, "a + b");
        assert!(e[1].own, "a table under the job's own part");
        let after = parse(&format!(
            "{SAMPLE}\n## Queries\n\n| `x` | a row of another table | text | — |\n"
        ));
        assert!(
            after[1].column("x").is_none(),
            "a row under another heading is no column"
        );
        assert_eq!(e[1].column("stream").unwrap().unit, "text");
    }

    #[test]
    fn the_shipped_dictionary_describes_every_column_of_the_schema() {
        let dict = entries();
        for relation in crate::store::schema::latest().unwrap() {
            let entry = dict
                .iter()
                .find(|e| e.name == relation.name)
                .unwrap_or_else(|| panic!("docs/schema.md has no section for {}", relation.name));
            assert_eq!(entry.kind == Kind::View, relation.is_view, "{}", relation.name);
            for column in &relation.columns {
                let c = entry
                    .column(column)
                    .unwrap_or_else(|| panic!("docs/schema.md: {}.{column}", relation.name));
                assert!(!c.meaning.is_empty(), "{}.{column} has a meaning", relation.name);
            }
            assert!(!entry.summary.is_empty(), "{} has a summary", relation.name);
        }
    }
}
