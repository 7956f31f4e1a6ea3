-- understory-sync schema, version 5: the list walk never waits on sub-resources.
--
-- An order page is committed here, with the stream's checkpoint, as soon as it arrives, so the
-- walk can use its short-lived `next` cursor at once. A separate worker fetches each staged
-- order's line items, transactions and refunds and moves the order with its children into their
-- tables in one transaction, so analysts never see an order without its line items. Rows wait
-- here across a crash or a stop; the next run's worker takes them first.
CREATE TABLE staging (
    stream     TEXT NOT NULL,  -- the parent stream, e.g. orders
    item_key   TEXT NOT NULL,  -- the parent's id
    raw_json   TEXT NOT NULL,  -- the parent as listed, stored with its children once they arrive
    staged_at  TEXT NOT NULL,
    PRIMARY KEY (stream, item_key)
);
