//! Every typed column against the API's own item: for each table and column, the value the
//! column must hold is computed from `raw_json` with SQLite's JSON functions — independently of
//! the job's Rust reader — on a sandbox sending every variant shape. (`raw_json` itself is
//! compared with the sandbox's ground truth by `assert_converged`.)

use std::collections::BTreeSet;

use understory_sync::sync::RunStatus;

use crate::support::*;

/// RFC 3339 in the API → the store's fixed-width UTC text with milliseconds.
fn ts(path: &str) -> String {
    format!("strftime('%Y-%m-%dT%H:%M:%fZ', json_extract(raw_json, '{path}'))")
}

fn at(path: &str) -> String {
    format!("json_extract(raw_json, '{path}')")
}

fn money(prefix: &str, path: &str) -> Vec<(String, String)> {
    ["value", "currency", "exponent"]
        .iter()
        .zip(["minor", "currency", "exponent"])
        .map(|(field, suffix)| (format!("{prefix}_{suffix}"), at(&format!("{path}.{field}"))))
        .collect()
}

fn customer(path: &str) -> Vec<(String, String)> {
    let c = |col: &str, field: &str| (format!("customer_{col}"), at(&format!("{path}.{field}")));
    vec![
        c("type", "customer_type"),
        (
            "customer_name".into(),
            format!(
                "COALESCE({}, {})",
                at(&format!("{path}.full_name")),
                at(&format!("{path}.name"))
            ),
        ),
        c("company_name", "company_name"),
        c("vat_number", "vat_number"),
        c("email", "email"),
        c("phone", "phone"),
        c("address_line1", "address.address_lines[0]"),
        c("address_line2", "address.address_lines[1]"),
        c("city", "address.city"),
        c("zip_code", "address.zip_code"),
        c("region", "address.region"),
        c("country", "address.country"),
    ]
}

/// What each table's typed columns must hold: `data/columns.toml`, one section per stream.
struct Expected {
    /// (table, column, SQL over `raw_json`).
    columns: Vec<(String, String, String)>,
    /// (table, column) the sandbox never fills.
    always_null: Vec<(String, String)>,
}

fn expectations() -> Expected {
    let data: toml::Table = include_str!("data/columns.toml").parse().expect("columns.toml");
    let mut out = Expected {
        columns: Vec::new(),
        always_null: Vec::new(),
    };
    for (table, section) in &data {
        let section = section.as_table().expect("a section per table");
        for (key, value) in section {
            if key == "always_null" {
                for col in value.as_array().expect("always_null is a list") {
                    out.always_null
                        .push((table.clone(), col.as_str().unwrap().to_owned()));
                }
                continue;
            }
            let spec = value.as_str().expect("a column's expectation is a string");
            let cols = match spec.split_once(' ') {
                Some(("ts", path)) => vec![(key.clone(), ts(path))],
                Some(("money", path)) => money(key, path),
                Some(("customer", path)) => customer(path),
                Some(("sql", expr)) => vec![(key.clone(), expr.to_owned())],
                _ if spec.starts_with('$') => vec![(key.clone(), at(spec))],
                _ => panic!("{table}.{key}: cannot read '{spec}'"),
            };
            out.columns
                .extend(cols.into_iter().map(|(c, e)| (table.clone(), c, e)));
        }
    }
    out
}

/// Columns the job writes itself, or that tie a row to its position.
const BOOKKEEPING: [&str; 7] = [
    "raw_json",
    "first_synced_at",
    "last_changed_at",
    "removed_at",
    "missed_scans",
    "consent_key",
    "position",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_typed_column_holds_what_the_api_sent() {
    let mut sc = small();
    sc.data.bookings = 400;
    sc.data.variants = true;
    let sb = start(sc).await;
    let (_dir, db) = temp_db();
    let cfg = config(crate::account::with_optional(raw_config(&sb, &db)));
    assert_eq!(sync(&cfg).await.status, RunStatus::Succeeded);
    sb.mutate(2); // refunds, status changes, check-ins, changed answers
    assert_eq!(sync(&cfg).await.status, RunStatus::Succeeded);
    assert_converged(&db, &sb);

    let c = open(&db);
    let expected = expectations();
    // Every column of every data table is either checked here, bookkeeping or its parent's id.
    for stream in understory_sync::streams::ALL {
        let table = stream.name;
        let parent = stream.parent().map(|p| parent_column(p.name));
        let cols: BTreeSet<String> = column_names(&c, table)
            .into_iter()
            .filter(|n: &String| !BOOKKEEPING.contains(&n.as_str()))
            .filter(|n: &String| Some(n) != parent.as_ref())
            .collect();
        let checked: BTreeSet<String> = expected
            .columns
            .iter()
            .filter(|(t, _, _)| *t == table)
            .map(|(_, c, _)| c.clone())
            .collect();
        assert_eq!(
            cols, checked,
            "{table}: columns without a check, or checks without a column"
        );
    }
    for (table, col, expr) in &expected.columns {
        let wrong: i64 = c
            .query_row(
                &format!("SELECT COUNT(*) FROM {table} WHERE {col} IS NOT ({expr})"),
                [],
                |r| r.get(0),
            )
            .unwrap_or_else(|e| panic!("{table}.{col}: {e}"));
        let example: Option<String> = c
            .query_row(
                &format!(
                    "SELECT quote({col}) || ' vs ' || quote({expr}) FROM {table} WHERE {col} IS NOT ({expr}) LIMIT 1"
                ),
                [],
                |r| r.get(0),
            )
            .ok();
        assert_eq!(
            wrong, 0,
            "{table}.{col} differs from the API's item, e.g. {example:?}"
        );
        let filled: i64 = c
            .query_row(
                &format!("SELECT COUNT(*) FROM {table} WHERE {col} IS NOT NULL"),
                [],
                |r| r.get(0),
            )
            .unwrap();
        if !expected.always_null.contains(&(table.clone(), col.clone())) {
            assert!(
                filled > 0,
                "{table}.{col} is NULL in every row: the check proves nothing"
            );
        }
    }
}
