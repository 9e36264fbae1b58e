-- og.pending_rows(case): the current transaction's rows of og.assignment_pending for case
-- `case`, found by the index on xact whatever the table's statistics say;
-- og.pending_exists(), og.pending_taken() likewise. The only ways the feed's functions
-- read og.assignment_pending (og.feed_case_change, og.extension_asked,
-- og.assignment_number).
--
-- Why by the index, always: every row leaves the table in the transaction that added it,
-- so vacuum finds the table empty and truncates it, and ANALYZE records it empty. A plan
-- made then (archive's session keeps its plans until the next ANALYZE) scans the whole
-- table, which grows by the dead rows of every batch until the next vacuum, about a
-- minute later: each batch's scans read all of them. Measured with pgbench, a transaction
-- adding 66 rows, looking them up and deleting them: 1.2 ms at first, 8 ms some 4,900
-- transactions later (4,800 pages at 6,000), against 0.45 ms throughout by the index; in
-- tests/bench/throughput at half load, about 10 µs of the backend's CPU an event (perf).
-- enable_seqscan off is set for these one-table statements only: on a whole function it
-- also priced the scan of og.assignment_counter, which has no other path, above
-- jit_above_cost, and each commit compiled it (58 ms).

-- Its first definition gave the case a default (NULL: every case), which CREATE OR REPLACE
-- cannot take away: made again.
DROP FUNCTION IF EXISTS og.pending_rows(text);

CREATE FUNCTION og.pending_rows(p_case_id text) RETURNS SETOF og.assignment_pending
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, og, pg_temp
SET enable_seqscan = off AS $$
BEGIN
  RETURN QUERY SELECT * FROM og.assignment_pending p
                WHERE p.xact = pg_current_xact_id() AND p.case_id = p_case_id;
END $$;

REVOKE ALL ON FUNCTION og.pending_rows(text) FROM PUBLIC;
