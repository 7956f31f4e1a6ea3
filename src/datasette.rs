//! Datasette metadata for the database, built from what the repository already says about it:
//! the data dictionary (`docs/schema.md`) describes every table, view and column; the example
//! queries (`sql/queries/`) become canned queries titled with the question each answers; the
//! dashboard (`contrib/datasette/dashboard.json`, its SQL in `sql/dashboard/`) goes to the
//! `datasette-dashboards` plugin. Nothing is written twice, so nothing drifts: a column the
//! migrations create without a line in the dictionary fails the build of the metadata, naming it.

use std::collections::BTreeMap;

use include_dir::{Dir, include_dir};
use serde::Serialize;
use serde::ser::Serializer;
use serde_json::{Value, json};

use crate::dictionary::{self, Entry, Kind};
use crate::store::schema::{self, Relation};

/// The example queries, one question per file, its first line a comment asking it.
static QUERIES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/sql/queries");

/// The dashboard's queries, named by its charts' and filters' `query_file`.
static DASHBOARD_SQL: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/sql/dashboard");

/// The dashboard: `datasette-dashboards`' own configuration, except that charts and filters name
/// a file of `sql/dashboard/` in `query_file` where the plugin wants the SQL in `query`.
const DASHBOARD: &str = include_str!("../contrib/datasette/dashboard.json");

/// Columns Datasette offers as facets: the status of things, and currencies (by their unit).
fn is_facet(column: &dictionary::Column) -> bool {
    column.name == "status" || column.name.ends_with("_status") || column.unit == "ISO 4217"
}

/// A table's default order: its newest rows first, by the first of these it has.
const NEWEST_FIRST: [&str; 5] = ["updated_at", "created_at", "started_at", "day", "received_at"];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the data dictionary (docs/schema.md) has no section for `{0}`")]
    NoSection(String),
    #[error("the data dictionary (docs/schema.md) does not describe column `{relation}.{column}`")]
    Undescribed { relation: String, column: String },
    #[error("the dashboard (contrib/datasette/dashboard.json): {0}")]
    Dashboard(String),
    #[error("the schema: {0}")]
    Schema(#[from] crate::store::Error),
}

/// The metadata for serving this version's database as Datasette's `database` (the file's name
/// without its extension, as Datasette names it).
pub fn metadata(database: &str) -> Result<Metadata, Error> {
    build(
        database,
        &dictionary::entries(),
        &schema::latest()?,
        &queries(),
        DASHBOARD,
    )
}

/// An example query: its file's stem, its question, what else its leading comment says, its SQL.
#[derive(Debug, Clone)]
pub(crate) struct Query {
    pub(crate) name: String,
    pub(crate) title: String,
    pub(crate) description: String,
    pub(crate) sql: String,
}

/// Datasette's metadata document. Typed rather than a JSON value so that each table's columns
/// keep the schema's order, which is the order Datasette lists their descriptions in.
#[derive(Debug, Serialize)]
pub struct Metadata {
    title: &'static str,
    description: &'static str,
    databases: BTreeMap<String, Database>,
    plugins: Plugins,
}

#[derive(Debug, Serialize)]
struct Database {
    tables: BTreeMap<String, Table>,
    queries: BTreeMap<String, Canned>,
}

#[derive(Debug, Serialize)]
struct Table {
    description: String,
    columns: InOrder,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    facets: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sort_desc: Option<&'static str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    hidden: bool,
}

/// A JSON object whose keys stay in the order given.
#[derive(Debug)]
struct InOrder(Vec<(String, String)>);

impl Serialize for InOrder {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

#[derive(Debug, Serialize)]
struct Canned {
    title: String,
    sql: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    description: String,
}

#[derive(Debug, Serialize)]
struct Plugins {
    #[serde(rename = "datasette-dashboards")]
    dashboards: Value,
}

/// The shipped example queries, by name.
pub(crate) fn queries() -> Vec<Query> {
    let mut out: Vec<Query> = sql_files(&QUERIES)
        .map(|(name, sql)| {
            let comments: Vec<&str> = sql.lines().map_while(|l| l.strip_prefix("-- ")).collect();
            // The title is the question; what follows it on the line, and the lines after, say
            // more.
            let first = comments.first().copied().unwrap_or(name);
            let (title, rest) = match first.split_once("? ") {
                Some((question, rest)) => (format!("{question}?"), Some(rest)),
                None => (first.to_owned(), None),
            };
            let more: Vec<&str> = rest.into_iter().chain(comments.iter().skip(1).copied()).collect();
            Query {
                name: name.to_owned(),
                title,
                description: more.join(" "),
                sql: sql.trim().trim_end_matches(';').to_owned(),
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn sql_files(dir: &'static Dir<'static>) -> impl Iterator<Item = (&'static str, &'static str)> {
    dir.files().filter_map(|f| {
        let path = f.path();
        if path.extension()? != "sql" {
            return None;
        }
        Some((path.file_stem()?.to_str()?, f.contents_utf8()?))
    })
}

/// The metadata from its parts; `schema` is what the migrations create, which the dictionary
/// must describe column by column.
pub(crate) fn build(
    database: &str,
    dictionary: &[Entry],
    schema: &[Relation],
    queries: &[Query],
    dashboard: &str,
) -> Result<Metadata, Error> {
    let mut tables = BTreeMap::new();
    for relation in schema {
        let entry = dictionary
            .iter()
            .find(|e| e.name == relation.name)
            .ok_or_else(|| Error::NoSection(relation.name.clone()))?;
        tables.insert(relation.name.clone(), table(entry, relation)?);
    }
    let queries = queries
        .iter()
        .map(|q| {
            let canned = Canned {
                title: q.title.clone(),
                sql: q.sql.clone(),
                description: q.description.clone(),
            };
            (q.name.clone(), canned)
        })
        .collect();
    Ok(Metadata {
        title: "Understory, synced by understory-sync",
        description: "Start with the views (bookings_enriched, orders_with_totals, daily_revenue, …), the canned queries below them, or the Dashboards in the menu. Each column says what it means, its unit and the API field it comes from. The job's own tables are hidden: they are bookkeeping, not data.",
        databases: BTreeMap::from([(database.to_owned(), Database { tables, queries })]),
        plugins: Plugins {
            dashboards: dashboards(database, dashboard)?,
        },
    })
}

/// One table's or view's metadata.
fn table(entry: &Entry, relation: &Relation) -> Result<Table, Error> {
    let mut columns = Vec::new();
    for name in &relation.columns {
        let column = entry.column(name).ok_or_else(|| Error::Undescribed {
            relation: relation.name.clone(),
            column: name.clone(),
        })?;
        columns.push((name.clone(), describe(column)));
    }
    // Views have no rowid: Datasette pages them by offset, which is fine, and sorts any column.
    debug_assert_eq!(entry.kind == Kind::View, relation.is_view);
    Ok(Table {
        description: entry.summary.clone(),
        columns: InOrder(columns),
        facets: entry
            .columns
            .iter()
            .filter(|c| relation.columns.contains(&c.name) && is_facet(c))
            .map(|c| c.name.clone())
            .collect(),
        sort_desc: NEWEST_FIRST
            .into_iter()
            .find(|c| relation.columns.iter().any(|r| r == c)),
        hidden: entry.own,
    })
}

/// A column's description: what it means, its unit, and the API field it comes from.
fn describe(column: &dictionary::Column) -> String {
    let from = match column.api_field.as_str() {
        "" | "—" => String::new(),
        field => format!("; from {field}"),
    };
    format!("{} ({}{from})", column.meaning, column.unit)
}

/// The dashboards with each `query_file` replaced by the file's SQL and `db` set to `database`.
fn dashboards(database: &str, text: &str) -> Result<Value, Error> {
    let bad = |why: String| Error::Dashboard(why);
    let mut all: BTreeMap<String, Value> = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let sql: BTreeMap<&str, &str> = sql_files(&DASHBOARD_SQL).collect();
    for (slug, dashboard) in &mut all {
        for part in ["charts", "filters"] {
            let Some(items) = dashboard.get_mut(part).and_then(Value::as_object_mut) else {
                continue;
            };
            for (name, item) in items.iter_mut() {
                let Some(file) = item.get("query_file").and_then(Value::as_str) else {
                    continue;
                };
                let stem = file.trim_end_matches(".sql");
                let query = sql.get(stem).ok_or_else(|| {
                    bad(format!(
                        "{slug}.{part}.{name} names {file}, which sql/dashboard/ does not have"
                    ))
                })?;
                let item = item.as_object_mut().expect("an item with a key is an object");
                item.remove("query_file");
                item.insert("db".into(), json!(database));
                item.insert("query".into(), json!(query.trim().trim_end_matches(';')));
            }
        }
    }
    Ok(json!(all))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped(schema: &[Relation]) -> Result<Value, Error> {
        build(
            "understory",
            &dictionary::entries(),
            schema,
            &queries(),
            DASHBOARD,
        )
        .map(|m| serde_json::to_value(m).unwrap())
    }

    #[test]
    fn columns_keep_the_schema_order() {
        let schema = schema::latest().unwrap();
        let meta = build("u", &dictionary::entries(), &schema, &[], DASHBOARD).unwrap();
        let text = serde_json::to_string(&meta).unwrap();
        let text = &text[text.find("\"bookings\":{").unwrap()..];
        let bookings = schema.iter().find(|r| r.name == "bookings").unwrap();
        let at: Vec<usize> = bookings
            .columns
            .iter()
            .map(|c| text.find(&format!("\"{c}\":\"")).unwrap())
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{:?}", bookings.columns);
    }

    #[test]
    fn every_table_view_and_column_of_the_schema_is_described() {
        let schema = schema::latest().unwrap();
        let meta = shipped(&schema).unwrap();
        let tables = &meta["databases"]["understory"]["tables"];
        for relation in &schema {
            let t = &tables[relation.name.as_str()];
            assert!(
                t["description"].as_str().is_some_and(|d| !d.is_empty()),
                "{}",
                relation.name
            );
            for column in &relation.columns {
                assert!(
                    t["columns"][column.as_str()]
                        .as_str()
                        .is_some_and(|d| d.len() > 5),
                    "{}.{column}",
                    relation.name
                );
            }
        }
        assert_eq!(tables["bookings"]["facets"], json!(["status"]));
        assert_eq!(tables["bookings"]["sort_desc"], json!("updated_at"));
        assert_eq!(
            tables["orders_with_totals"]["facets"],
            json!(["status", "payment_status", "currency"])
        );
        assert!(tables["bookings_enriched"]["hidden"].is_null());
    }

    #[test]
    fn a_column_added_without_a_description_fails_naming_it() {
        let mut schema = schema::latest().unwrap();
        let bookings = schema.iter_mut().find(|r| r.name == "bookings").unwrap();
        bookings.columns.push("loyalty_tier".into());
        let err = shipped(&schema).unwrap_err().to_string();
        assert!(err.contains("`bookings.loyalty_tier`"), "{err}");
        schema.push(Relation {
            name: "gift_cards".into(),
            is_view: false,
            columns: vec!["id".into()],
        });
        schema.retain(|r| r.name != "bookings");
        let err = shipped(&schema).unwrap_err().to_string();
        assert!(err.contains("no section for `gift_cards`"), "{err}");
    }

    #[test]
    fn example_queries_are_canned_with_their_question_as_title() {
        let meta = shipped(&schema::latest().unwrap()).unwrap();
        let canned = meta["databases"]["understory"]["queries"].as_object().unwrap();
        assert_eq!(canned.len(), queries().len());
        assert!(canned.len() >= 10);
        for (name, q) in canned {
            let title = q["title"].as_str().unwrap();
            assert!(title.ends_with('?'), "{name}: {title}");
            assert!(!q["sql"].as_str().unwrap().trim_end().ends_with(';'), "{name}");
        }
    }

    #[test]
    fn every_dashboard_query_file_is_used_and_resolved() {
        let meta = shipped(&schema::latest().unwrap()).unwrap();
        let text = meta["plugins"]["datasette-dashboards"].to_string();
        assert!(!text.contains("query_file"), "every query_file replaced");
        let named: std::collections::BTreeSet<String> = DASHBOARD
            .split("\"query_file\": \"")
            .skip(1)
            .filter_map(|rest| rest.split_once(".sql\""))
            .map(|(stem, _)| stem.to_owned())
            .collect();
        let files: std::collections::BTreeSet<String> =
            sql_files(&DASHBOARD_SQL).map(|(n, _)| n.to_owned()).collect();
        assert_eq!(named, files, "every sql/dashboard/ file is on the dashboard");
        let charts = meta["plugins"]["datasette-dashboards"]["understory"]["charts"]
            .as_object()
            .unwrap();
        for (slug, chart) in charts {
            assert_eq!(chart["db"], json!("understory"), "{slug}");
        }
        let broken = DASHBOARD.replace("no_show_rate.sql", "no_such.sql");
        let err = build(
            "u",
            &dictionary::entries(),
            &schema::latest().unwrap(),
            &[],
            &broken,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("no_such.sql"), "{err}");
    }
}
