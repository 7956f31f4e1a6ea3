-- understory-sync schema, version 19: the pace remembers the highest rate the API answered
-- clean, so a learned ceiling that a burst of 429s drove down can be raised back to it.
ALTER TABLE pace_state ADD COLUMN proven REAL; -- requests per second; NULL until one is measured
