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

fn customer() -> Vec<(String, String)> {
    let c = |col: &str, path: &str| (format!("customer_{col}"), at(&format!("$.customer.{path}")));
    vec![
        c("type", "customer_type"),
        (
            "customer_name".into(),
            format!(
                "COALESCE({}, {})",
                at("$.customer.full_name"),
                at("$.customer.name")
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

/// (table, column, what it must hold) for every typed column.
fn expectations() -> Vec<(&'static str, String, String)> {
    let mut out: Vec<(&'static str, String, String)> = Vec::new();
    let mut add = |table: &'static str, cols: Vec<(String, String)>| {
        out.extend(cols.into_iter().map(|(c, e)| (table, c, e)));
    };
    let plain = |names: &[&str]| -> Vec<(String, String)> {
        names
            .iter()
            .map(|n| ((*n).to_owned(), at(&format!("$.{n}"))))
            .collect()
    };
    let mut bookings = plain(&[
        "id",
        "status",
        "company_id",
        "experience_id",
        "event_id",
        "locale",
        "source",
        "internal_note",
    ]);
    bookings.extend([
        ("created_at".into(), ts("$.created_at")),
        ("updated_at".into(), ts("$.updated_at")),
        ("metadata_json".into(), at("$.metadata")),
    ]);
    bookings.extend(customer());
    add("bookings", bookings);

    let mut orders = plain(&["id", "number", "status", "payment_status"]);
    orders.extend([
        ("created_at".into(), ts("$.created_at")),
        ("updated_at".into(), ts("$.updated_at")),
        ("origin_type".into(), at("$.origin.type")),
        ("origin_id".into(), at("$.origin.id")),
        ("metadata_json".into(), at("$.metadata")),
    ]);
    orders.extend(customer());
    orders.extend(money("discount", "$.totals.discount"));
    orders.extend(money("vat_amount", "$.totals.vat_amount"));
    orders.extend(money("amount", "$.totals.amount"));
    add("orders", orders);

    let mut lines = plain(&["quantity", "product_type", "product_id"]);
    lines.extend([
        ("details_type".into(), at("$.details.type")),
        ("experience_id".into(), at("$.details.experience_id")),
        ("ticket_id".into(), at("$.details.ticket_id")),
        ("gift_card_id".into(), at("$.details.gift_card_id")),
        (
            "discount_code".into(),
            format!(
                "COALESCE({}, {})",
                at("$.discount.code"),
                at("$.discounts[0].code")
            ),
        ),
    ]);
    lines.extend(money("unit_price", "$.unit_price"));
    lines.extend(money("unit_vat_amount", "$.unit_vat_amount"));
    // The sandbox's discounts[] hold one entry, so the sum is that entry.
    for (col, field) in [
        ("discount_minor", "value"),
        ("discount_currency", "currency"),
        ("discount_exponent", "exponent"),
    ] {
        lines.push((
            col.into(),
            format!(
                "COALESCE({}, {})",
                at(&format!("$.discount.amount.{field}")),
                at(&format!("$.discounts[0].amount.{field}"))
            ),
        ));
    }
    add("order_line_items", lines);

    let mut tx = plain(&["id", "status", "provider"]);
    tx.extend([
        ("created_at".into(), ts("$.created_at")),
        ("details_type".into(), at("$.details.type")),
        ("gift_card_id".into(), at("$.details.gift_card_id")),
    ]);
    tx.extend(money("amount", "$.amount"));
    add("order_transactions", tx);

    let mut refunds = plain(&["id", "status", "transaction_id"]);
    refunds.push(("created_at".into(), ts("$.created_at")));
    refunds.extend(money("amount", "$.amount"));
    add("order_refunds", refunds);

    let mut consents = plain(&["id", "company_id", "full_name", "email", "source"]);
    consents.push(("references_json".into(), at("$.references")));
    add("marketing_consents", consents);

    let mut events = plain(&["id", "state", "visibility", "experience_id"]);
    events.extend([
        ("capacity_total".into(), at("$.capacity.total")),
        ("capacity_reserved".into(), at("$.capacity.reserved")),
        (
            "session_count".into(),
            "json_array_length(raw_json, '$.sessions')".into(),
        ),
        ("first_session_start".into(), at("$.sessions[0].start_time")),
        ("first_session_end".into(), at("$.sessions[0].end_time")),
        ("timezone".into(), at("$.sessions[0].timezone")),
        ("location_id".into(), at("$.sessions[0].location_id")),
        ("sessions_json".into(), at("$.sessions")),
        ("created_at".into(), ts("$.created_at")),
        ("updated_at".into(), ts("$.updated_at")),
        ("metadata_json".into(), at("$.metadata")),
    ]);
    add("events", events);

    let mut experiences = plain(&["id", "type", "state", "name", "description"]);
    experiences.extend([
        ("created_at".into(), ts("$.created_at")),
        ("updated_at".into(), ts("$.updated_at")),
        ("tag_ids_json".into(), at("$.tag_ids")),
        ("media_json".into(), at("$.media")),
        ("metadata_json".into(), at("$.metadata")),
    ]);
    add("experiences", experiences);

    let mut variants = plain(&["id", "name", "description"]);
    variants.push(("add_on_variants_json".into(), at("$.add_on_variants")));
    variants.extend(money("price", "$.price"));
    variants.extend(money("vat_amount", "$.vat_amount"));
    add("ticket_variants", variants);

    let mut requests = plain(&["id", "type", "required", "scope"]);
    requests.push((
        "question".into(),
        format!("COALESCE({}, {})", at("$.question"), at("$.label")),
    ));
    add("information_requests", requests);

    let mut tickets = plain(&["id", "status"]);
    tickets.extend([
        (
            "ticket_variant_id".into(),
            "COALESCE((SELECT json_extract(i.value, '$.type_id') FROM json_each(raw_json, '$.items') i \
             WHERE json_extract(i.value, '$.item_type') = 'VARIANT' ORDER BY i.key LIMIT 1), \
             json_extract(raw_json, '$.items[0].type_id'))"
                .into(),
        ),
        ("check_in_time".into(), ts("$.check_in.check_in_time")),
        ("checked_in_by".into(), at("$.check_in.checked_in_by")),
        ("check_in_method".into(), at("$.check_in.method")),
        ("items_json".into(), at("$.items")),
        ("urls_json".into(), at("$.urls")),
    ]);
    add("booking_tickets", tickets);

    // Answers have no published schema: text fields under either of the names seen.
    let text = |a: &str, b: &str| {
        format!(
            "COALESCE(CASE json_type(raw_json, '$.{a}') WHEN 'text' THEN json_extract(raw_json, '$.{a}') END, \
             CASE json_type(raw_json, '$.{b}') WHEN 'text' THEN json_extract(raw_json, '$.{b}') END)"
        )
    };
    add(
        "information_request_answers",
        vec![
            (
                "information_request_id".into(),
                text("information_request_id", "request_id"),
            ),
            ("question".into(), text("question", "label")),
            ("answer".into(), text("answer", "value")),
            ("ticket_id".into(), at("$.ticket_id")),
        ],
    );
    out
}

/// Columns naming the parent a per-parent stream's row was listed under (its URL path, not its
/// JSON); `assert_converged` checks them against the sandbox's truth.
const PARENT: [(&str, &str); 4] = [
    ("ticket_variants", "experience_id"),
    ("information_requests", "experience_id"),
    ("booking_tickets", "booking_id"),
    ("information_request_answers", "booking_id"),
];

/// Columns the job writes itself, or that tie a row to its parent or position.
const BOOKKEEPING: [&str; 8] = [
    "raw_json",
    "first_synced_at",
    "last_changed_at",
    "removed_at",
    "missed_scans",
    "consent_key",
    "order_id",
    "position",
];

/// Columns the sandbox never fills (its transactions carry no gift card, its events no metadata).
const ALWAYS_NULL_HERE: [(&str, &str); 3] = [
    ("order_transactions", "gift_card_id"),
    ("events", "metadata_json"),
    ("experiences", "metadata_json"),
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
    // Every column of every data table is either checked here or bookkeeping.
    for table in understory_sync::streams::tables() {
        let cols: BTreeSet<String> = c
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .filter(|n: &String| !BOOKKEEPING.contains(&n.as_str()))
            .filter(|n: &String| !PARENT.contains(&(table, n.as_str())))
            .collect();
        let checked: BTreeSet<String> = expected
            .iter()
            .filter(|(t, _, _)| *t == table)
            .map(|(_, c, _)| c.clone())
            .collect();
        assert_eq!(
            cols, checked,
            "{table}: columns without a check, or checks without a column"
        );
    }
    for (table, col, expr) in &expected {
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
        if !ALWAYS_NULL_HERE.contains(&(*table, col.as_str())) {
            assert!(
                filled > 0,
                "{table}.{col} is NULL in every row: the check proves nothing"
            );
        }
    }
}
