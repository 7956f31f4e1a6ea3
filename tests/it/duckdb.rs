//! docs/analysts.md's DuckDB recipe, run as an analyst would: `duckdb` from PyPI with its SQLite
//! extension from the pinned `duckdb-ext-sqlite` wheel (no download), a synced database attached
//! read-only, every `sql/queries/*.sql` answered with the rows SQLite gives, every view read with
//! SQLite's rows, and the Parquet export read back whole. The recipe's lines are taken from
//! docs/analysts.md itself, so the guide cannot drift from what runs here.

use std::cmp::Ordering;
use std::path::Path;
use std::process::Command;

use rusqlite::Connection;
use rusqlite::types::Value;
use serde_json::Value as Json;

use crate::support::*;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Appended to the recipe: writes what DuckDB answered to `answers.json`.
const ANSWERS: &str = include_str!("data/duckdb_answers.py");

/// Whether python3 imports `duckdb` and `duckdb_ext` (the wheel's extension folder). Outside CI a
/// machine without them skips and says so; CI installs them (.ci/run), so there a missing one
/// fails.
fn have_duckdb() -> bool {
    let skip = |why: String| {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{why}: CI installs the recipe's pinned duckdb and duckdb-ext-sqlite (.ci/run)"
        );
        eprintln!("skipped: {why} (pip install the recipe's DuckDB line)");
        false
    };
    match Command::new("python3")
        .args(["-c", "import duckdb, duckdb_ext"])
        .output()
    {
        Ok(out) if out.status.success() => true,
        Ok(out) => {
            let err = String::from_utf8_lossy(&out.stderr);
            let last = err.lines().last().unwrap_or_default();
            skip(format!("python3 cannot import duckdb and duckdb_ext ({last})"))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => skip("python3 is not on PATH".to_owned()),
        Err(e) => panic!("python3 could not be started: {e}"),
    }
}

/// docs/analysts.md's DuckDB recipe: the pins of its `pip install` line, its Python lines, and the
/// SELECT and file of its Parquet export.
struct Recipe {
    pins: Vec<(String, String)>,
    python: String,
    export: String,
    parquet: String,
}

fn recipe() -> Recipe {
    let guide = std::fs::read_to_string(Path::new(REPO).join("docs/analysts.md")).unwrap();
    let section = guide
        .split("\n## DuckDB\n")
        .nth(1)
        .expect("docs/analysts.md has a DuckDB section")
        .split("\n## ")
        .next()
        .unwrap();
    let pip = section
        .lines()
        .find(|l| l.starts_with("pip install ") && l.contains("duckdb"))
        .expect("the DuckDB section has a `pip install` line for DuckDB");
    let pins = pip
        .split_whitespace()
        .skip(2)
        .map(|p| {
            let (name, version) = p
                .split_once("==")
                .unwrap_or_else(|| panic!("`{p}` in the recipe's pip line is pinned (name==version)"));
            (name.to_owned(), version.to_owned())
        })
        .collect::<Vec<_>>();
    assert!(
        pins.iter().any(|(n, _)| n == "duckdb") && pins.iter().any(|(n, _)| n == "duckdb-ext-sqlite"),
        "the pip line installs duckdb and duckdb-ext-sqlite: {pip}"
    );
    let python = section
        .split("```python\n")
        .nth(1)
        .expect("the DuckDB section has a ```python block")
        .split("```")
        .next()
        .unwrap()
        .to_owned();
    let (export, rest) = python
        .split("COPY (")
        .nth(1)
        .and_then(|c| c.split_once(") TO '"))
        .expect("the recipe exports with COPY (SELECT …) TO '…'");
    let (export, parquet) = (export.to_owned(), rest.split('\'').next().unwrap().to_owned());
    assert!(
        parquet.ends_with(".parquet"),
        "the export writes Parquet: {parquet}"
    );
    Recipe {
        pins,
        python,
        export,
        parquet,
    }
}

/// One value, as both engines can give it: numbers compare as numbers (an integer SQLite gives
/// may come back as DuckDB's DECIMAL or DOUBLE, and a float's last digits may differ), text as
/// text; anything else (a truth value, a blob, a list) matches nothing of the other engine's.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Cell {
    Null,
    Number(f64),
    Text(String),
    Other(String),
}

impl Cell {
    fn from_sqlite(v: Value) -> Cell {
        match v {
            Value::Null => Cell::Null,
            Value::Integer(i) => Cell::Number(i as f64),
            Value::Real(f) => Cell::Number(f),
            Value::Text(t) => Cell::Text(t),
            Value::Blob(b) => Cell::Other(format!("a blob of {} bytes", b.len())),
        }
    }

    fn from_duckdb(v: &Json) -> Cell {
        match v {
            Json::Null => Cell::Null,
            Json::Number(n) => Cell::Number(n.as_f64().unwrap()),
            Json::String(s) => Cell::Text(s.clone()),
            other => Cell::Other(other.to_string()),
        }
    }

    /// Equal, floats within a relative 1e-9 of each other.
    fn same(&self, other: &Cell) -> bool {
        match (self, other) {
            (Cell::Number(a), Cell::Number(b)) => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
            (a, b) => a == b,
        }
    }
}

struct Answer {
    columns: Vec<String>,
    rows: Vec<Vec<Cell>>,
}

fn sqlite_answer(c: &Connection, sql: &str) -> Answer {
    let mut stmt = c.prepare(sql).unwrap_or_else(|e| panic!("SQLite: {e}\n{sql}"));
    let columns: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
    let width = columns.len();
    let rows = stmt
        .query_map([], |r| {
            (0..width).map(|i| r.get(i).map(Cell::from_sqlite)).collect()
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("SQLite: {e}\n{sql}"));
    Answer { columns, rows }
}

fn duckdb_answer(v: &Json, what: &str) -> Answer {
    let columns = v["columns"]
        .as_array()
        .unwrap_or_else(|| panic!("DuckDB gave no answer for {what}"))
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let rows = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap().iter().map(Cell::from_duckdb).collect())
        .collect();
    Answer { columns, rows }
}

/// The view DuckDB cannot bind in its dialect (migration 22 says why), so runs in SQLite, reading
/// every column of it as text.
const READ_AS_TEXT: [&str; 1] = ["ticket_variant_add_ons"];

/// DuckDB's answer with the text it read from a column SQLite holds numbers in taken as the
/// numbers it spells (for `READ_AS_TEXT`).
fn numbers_read_as_text(sqlite: &Answer, mut duckdb: Answer) -> Answer {
    let numeric: Vec<bool> = (0..sqlite.columns.len())
        .map(|i| sqlite.rows.iter().any(|r| matches!(r[i], Cell::Number(_))))
        .collect();
    for row in &mut duckdb.rows {
        for (cell, numeric) in row.iter_mut().zip(&numeric) {
            if let (true, Cell::Text(t)) = (numeric, &cell)
                && let Ok(n) = t.parse::<f64>()
            {
                *cell = Cell::Number(n);
            }
        }
    }
    duckdb
}

/// Asserts DuckDB gave SQLite's columns and rows; in SQLite's order when `ordered` (a query's
/// ORDER BY is part of its answer), else as the same rows in any order.
fn assert_same(what: &str, sqlite: Answer, duckdb: Answer, ordered: bool) {
    assert_eq!(duckdb.columns, sqlite.columns, "{what}: DuckDB's columns");
    assert!(
        !sqlite.rows.is_empty(),
        "{what}: SQLite returned no rows to compare"
    );
    assert_eq!(
        duckdb.rows.len(),
        sqlite.rows.len(),
        "{what}: DuckDB returned {} rows, SQLite {}",
        duckdb.rows.len(),
        sqlite.rows.len()
    );
    let (mut ours, mut theirs) = (sqlite.rows, duckdb.rows);
    if !ordered {
        let by = |a: &Vec<Cell>, b: &Vec<Cell>| a.partial_cmp(b).unwrap_or(Ordering::Equal);
        ours.sort_by(by);
        theirs.sort_by(by);
    }
    for (i, (s, d)) in ours.iter().zip(&theirs).enumerate() {
        assert!(
            s.len() == d.len() && s.iter().zip(d).all(|(a, b)| a.same(b)),
            "{what}: row {i} differs\n  SQLite: {s:?}\n  DuckDB: {d:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_duckdb_recipe_answers_every_example_query_as_sqlite_does() {
    let recipe = recipe();
    // CI installs exactly the recipe's pins.
    let ci = std::fs::read_to_string(Path::new(REPO).join(".ci/run")).unwrap();
    for (name, version) in &recipe.pins {
        assert!(
            ci.contains(&format!("{name}=={version}")),
            ".ci/run installs the recipe's {name}=={version}"
        );
    }
    if !have_duckdb() {
        return;
    }

    // The database under the name the recipe attaches, the queries where it looks for them.
    let dir = tempfile::tempdir().unwrap();
    assert!(
        recipe.python.contains("'understory.sqlite'"),
        "the recipe attaches understory.sqlite"
    );
    let db = dir.path().join("understory.sqlite");
    drop(crate::analysts::synced_for_the_example_queries(&db).await);
    let queries = Path::new(REPO).join("sql/queries");
    std::fs::create_dir_all(dir.path().join("sql/queries")).unwrap();
    let mut files: Vec<String> = std::fs::read_dir(&queries)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    files.sort();
    for f in &files {
        std::fs::copy(queries.join(f), dir.path().join("sql/queries").join(f)).unwrap();
    }
    let sqlite = open(&db);
    let views: Vec<String> = sqlite
        .prepare("SELECT name FROM sqlite_master WHERE type = 'view' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();

    let asked = serde_json::json!({
        "packages": recipe.pins.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        "views": views,
        "parquet": recipe.parquet,
    });
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!("{}\n{ANSWERS}", recipe.python))
        .arg(asked.to_string())
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docs/analysts.md's DuckDB recipe failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Json =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("answers.json")).unwrap()).unwrap();

    for (name, version) in &recipe.pins {
        assert_eq!(
            answers["versions"][name].as_str(),
            Some(version.as_str()),
            "python3 has another {name} than the recipe pins"
        );
    }
    let (loaded, wheel) = (
        answers["extension"].as_str().unwrap(),
        answers["wheel"].as_str().unwrap(),
    );
    assert!(
        loaded.starts_with(wheel),
        "DuckDB loaded its SQLite extension from {loaded}, not from the wheel's {wheel}"
    );

    // Every example query: DuckDB ran each one, with SQLite's answer.
    let ran: Vec<&String> = answers["queries"].as_object().unwrap().keys().collect();
    assert_eq!(ran, files.iter().collect::<Vec<_>>(), "the queries DuckDB ran");
    assert!(files.len() >= 11, "example queries: {files:?}");
    for f in &files {
        let sql = std::fs::read_to_string(queries.join(f)).unwrap();
        assert_same(
            f,
            sqlite_answer(&sqlite, &sql),
            duckdb_answer(&answers["queries"][f], f),
            true,
        );
    }
    // Every view, as DuckDB binds it again in its own dialect.
    assert!(views.len() >= 9, "views: {views:?}");
    for v in &views {
        let ours = sqlite_answer(&sqlite, &format!("SELECT * FROM \"{v}\""));
        let mut theirs = duckdb_answer(&answers["views"][v], v);
        if READ_AS_TEXT.contains(&v.as_str()) {
            theirs = numbers_read_as_text(&ours, theirs);
        }
        assert_same(&format!("view {v}"), ours, theirs, false);
    }
    // The Parquet export, read back: the rows its SELECT gives in SQLite.
    assert!(dir.path().join(&recipe.parquet).is_file());
    assert_same(
        &format!("{} read back", recipe.parquet),
        sqlite_answer(&sqlite, &recipe.export),
        duckdb_answer(&answers["parquet"], &recipe.parquet),
        false,
    );
}
