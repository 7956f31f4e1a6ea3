-- understory-sync schema, version 20: the probe's schedule outlives the run, so short runs under
-- the timer probe above the learned ceiling as rarely as one long run would.
ALTER TABLE pace_state ADD COLUMN probe_wait_secs REAL; -- time without a 429 the next probe waits for; NULL: two minutes
ALTER TABLE pace_state ADD COLUMN clean_secs REAL; -- running time without a 429 when the run saved; NULL: none
