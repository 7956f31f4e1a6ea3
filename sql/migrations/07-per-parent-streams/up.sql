-- understory-sync schema, version 7: per-parent lists are streams of their own.
--
-- An order's line items, transactions and refunds (and, from now on, a booking's tickets or an
-- experience's ticket variants) are each a stream with a `sync_state` row. A per-parent stream
-- without that row is newly enabled, and its first run stages every stored parent once so their
-- lists are fetched. Databases that already synced orders hold their lists already: mark them.
INSERT OR IGNORE INTO sync_state (stream, last_completed_at, updated_at)
SELECT child.name, s.last_completed_at, s.updated_at
FROM sync_state AS s,
     (SELECT 'order_line_items' AS name
      UNION ALL SELECT 'order_transactions'
      UNION ALL SELECT 'order_refunds') AS child
WHERE s.stream = 'orders';
