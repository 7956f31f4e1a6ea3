//! Forgiving reads against the sandbox's variant shapes: unknown fields at every level, nulls
//! inside nested objects, `discounts[]`, references without `type`, `next: null`, base64 cursors,
//! and items missing what the job needs — which go to quarantine while their pages are stored.

use understory_sandbox::SandboxConfig;
use understory_sync::sync::RunStatus;

use crate::support::*;

fn variants() -> SandboxConfig {
    let mut sc = small();
    sc.data.bookings = 600;
    sc.data.consents = 300;
    sc.data.variants = true;
    sc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_variant_is_read_and_no_stream_stalls_behind_a_bad_item() {
    let sb = start(variants()).await;
    let truth = sb.truth();
    assert!(
        [
            "bookings",
            "orders",
            "marketing_consents",
            "order_transactions",
            "events"
        ]
        .iter()
        .all(|s| truth.broken.iter().any(|(b, _)| b == s)),
        "the sandbox sends unreadable items in every kind: {:?}",
        truth.broken.iter().map(|(s, _)| s).collect::<Vec<_>>()
    );
    let (_dir, db) = temp_db();
    let mut raw = raw_config(&sb, &db);
    raw.api.page_size = 25;
    // The list without a sort or filter, read under the variant shapes too.
    raw.streams.set("webhook_subscriptions", true);
    let cfg = config(raw);
    let run = sync(&cfg).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(run.quarantined as usize, truth.broken.len(), "{run:?}");
    assert_eq!(
        run.streams.iter().map(|s| s.counts.quarantined).sum::<u64>() as usize,
        truth.broken.len()
    );
    assert_converged(&db, &sb);

    let c = open(&db);
    let one = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
    // Typed columns where the shape was recognised, NULL where not, raw_json always.
    assert!(one("SELECT COUNT(*) FROM orders WHERE origin_type IS NULL AND origin_id IS NOT NULL") > 0);
    assert_eq!(
        one(
            "SELECT COUNT(*) FROM orders WHERE json_extract(raw_json, '$.origin.type') IS NOT NULL AND origin_type IS NULL"
        ),
        0
    );
    let from_list = one(
        "SELECT COUNT(*) FROM order_line_items WHERE json_extract(raw_json, '$.discounts[0].amount.value') = discount_minor AND discount_code = 'WELCOME10'",
    );
    let from_object = one(
        "SELECT COUNT(*) FROM order_line_items WHERE json_extract(raw_json, '$.discount.amount.value') = discount_minor",
    );
    assert!(from_list > 0 && from_object > 0, "{from_list} {from_object}");
    assert!(
        one(
            "SELECT COUNT(*) FROM bookings WHERE customer_phone IS NULL AND json_type(raw_json, '$.customer.phone') = 'null'"
        ) > 0
    );
    assert!(
        one(
            "SELECT COUNT(*) FROM bookings WHERE customer_address_line1 IS NULL AND json_type(raw_json, '$.customer.address.address_lines') = 'null'"
        ) > 0
    );
    assert!(
        one(
            "SELECT COUNT(*) FROM marketing_consents WHERE references_json IS NOT NULL AND json_extract(references_json, '$[0].type') IS NULL"
        ) > 0
    );
    assert!(
        one("SELECT COUNT(*) FROM bookings WHERE json_extract(raw_json, '$.x_added_later') IS NOT NULL") > 0
    );
    assert!(one("SELECT COUNT(*) FROM order_transactions WHERE status = 'SETTLED_LATER'") > 0);
    let errors = one(
        "SELECT COUNT(*) FROM quarantine WHERE error LIKE '%updated_at%' OR error LIKE '%created_at%' OR error LIKE '%email%' OR error LIKE '%`id` is missing%'",
    );
    assert_eq!(
        errors as usize,
        truth.broken.len(),
        "each quarantined item says why"
    );

    // A child item without an id is kept under its parent, once, and its siblings are stored.
    let children_without_id = truth
        .broken
        .iter()
        .filter(|(s, _)| s == "order_transactions")
        .count();
    assert_eq!(
        one(
            "SELECT COUNT(*) FROM quarantine WHERE stream = 'order_transactions' AND parent_id IS NOT NULL AND item_id IS NULL"
        ) as usize,
        children_without_id
    );
    assert_eq!(
        one("SELECT COUNT(*) FROM order_transactions") as usize,
        truth.rows("order_transactions").len()
    );

    // Runs go on: mutations mend some items and break others, and each run converges.
    for _ in 0..3 {
        sb.mutate(1);
        let run = sync(&cfg).await;
        assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
        assert_converged(&db, &sb);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantined_item_is_fetched_again_by_id_and_leaves_once_it_reads() {
    let sb = start(small()).await;
    let (_dir, db) = temp_db();
    let cfg = config(raw_config(&sb, &db));
    sync(&cfg).await;
    // As an older version of the job would have left it: a booking and an order it could not
    // read, in quarantine and missing from their tables; and one the API no longer has.
    let c = open(&db);
    let (booking, order): (String, String) = c
        .query_row(
            "SELECT (SELECT id FROM bookings ORDER BY created_at LIMIT 1), (SELECT id FROM orders ORDER BY created_at LIMIT 1)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    c.execute_batch(&format!(
        "DELETE FROM bookings WHERE id = '{booking}';
         DELETE FROM orders WHERE id = '{order}';
         INSERT INTO quarantine VALUES ('bookings', '{booking}', '{booking}', NULL, 'old', '{{}}', 'x', 'x', NULL);
         INSERT INTO quarantine VALUES ('orders', '{order}', '{order}', NULL, 'old', '{{}}', 'x', 'x', NULL);
         INSERT INTO quarantine VALUES ('bookings', 'gone', 'gone', NULL, 'old', '{{}}', 'x', 'x', NULL);"
    ))
    .unwrap();
    drop(c);
    let run = sync(&cfg).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(run.quarantined, 0, "{run:?}");
    assert_converged(&db, &sb);
}
