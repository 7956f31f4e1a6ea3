-- Statements for `sync_state`, the per-stream checkpoint.

-- name: load
SELECT high_water_mark, cursor, cursor_saved_at, pass_kind, pass_started_at, pass_candidate,
       pass_from, pass_progress, pass_pages, pass_rows
FROM sync_state WHERE stream = :stream;

-- name: save
-- Written in the same transaction as the page it describes.
INSERT INTO sync_state (
    stream, high_water_mark, cursor, cursor_saved_at, pass_kind, pass_started_at,
    pass_candidate, pass_from, pass_progress, pass_pages, pass_rows, last_completed_at, updated_at
) VALUES (
    :stream, :high_water_mark, :cursor, :cursor_saved_at, :pass_kind, :pass_started_at,
    :pass_candidate, :pass_from, :pass_progress, :pass_pages, :pass_rows, :last_completed_at, :now
)
ON CONFLICT (stream) DO UPDATE SET
    high_water_mark = excluded.high_water_mark,
    cursor = excluded.cursor,
    cursor_saved_at = excluded.cursor_saved_at,
    pass_kind = excluded.pass_kind,
    pass_started_at = excluded.pass_started_at,
    pass_candidate = excluded.pass_candidate,
    pass_from = excluded.pass_from,
    pass_progress = excluded.pass_progress,
    pass_pages = excluded.pass_pages,
    pass_rows = excluded.pass_rows,
    last_completed_at = COALESCE(excluded.last_completed_at, sync_state.last_completed_at),
    updated_at = excluded.updated_at;

-- name: all
SELECT stream, high_water_mark, cursor IS NOT NULL, cursor_saved_at, pass_kind, pass_pages,
       last_completed_at
FROM sync_state ORDER BY stream;

-- name: exists
SELECT 1 FROM sync_state WHERE stream = :stream;
