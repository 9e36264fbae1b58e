#!/usr/bin/env bash
# The feed's pending rows are found by the index on xact, whatever the statistics say.
# Every row of og.assignment_pending leaves it in the transaction that added it, so vacuum
# finds the table empty and ANALYZE records it so; before, a plan made then (archive's
# session keeps it) scanned the whole table for each batch's lookups while the table grew
# by every batch's dead rows until the next vacuum (og.pending_rows.sql). Here the table
# is vacuumed and analyzed empty, as autovacuum leaves it, and reports are stored one a
# batch: og.assignment_pending is read by its index only, never by a sequential scan, and
# every case still has its feed row.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"
source "$(dirname "$0")/../lib/faults.sh"

test_begin "pending scans"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
og_start_all "$TEST_DIR"
N=40
og_gen_reports "$TEST_DB" "$N" ps >"$TEST_DIR/reports.jsonl"

# A first report, so that archive's session has run (and planned) the feed's statements
# before the table is analyzed empty: the ANALYZE makes it plan them again.
head -1 "$TEST_DIR/reports.jsonl" >"$TEST_DIR/first.jsonl"
tail -n +2 "$TEST_DIR/reports.jsonl" >"$TEST_DIR/rest.jsonl"
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" "$TEST_DIR/first.jsonl" \
	>/dev/null || fail "publish the first report"
# vacuumed_empty: VACUUM (ANALYZE) left the table with no page and no row (again while a
# snapshot still open in the database, an autovacuum's, keeps the first batch's dead rows).
vacuumed_empty() {
	sql "$TEST_DB" "VACUUM (ANALYZE) og.assignment_pending"
	[[ $(sql "$TEST_DB" "SELECT relpages, reltuples FROM pg_class
	                      WHERE oid = 'og.assignment_pending'::regclass") == "0|0" ]]
}
og_poll 30 vacuumed_empty || fail "og.assignment_pending was not vacuumed empty in 30 s"
pass "og.assignment_pending is vacuumed and analyzed empty (0 pages, 0 rows)"

# scans: og.assignment_pending's sequential and index scans so far ("SEQ IDX").
scans() {
	sql "$TEST_DB" "SELECT seq_scan || ' ' || coalesce(idx_scan, 0) FROM pg_stat_user_tables
	                 WHERE relid = 'og.assignment_pending'::regclass"
}
# A backend reports its counts when it goes idle, at most once a second (or 10 s later):
# all of them are in once the rows deleted from og.assignment_pending (each moved to
# og.assignment at its commit) are as many as og.assignment's.
flushed() {
	[[ $(sql "$TEST_DB" "SELECT n_tup_del = (SELECT count(*) FROM og.assignment)
	                      FROM pg_stat_user_tables
	                      WHERE relid = 'og.assignment_pending'::regclass") == t ]]
}
og_poll 60 flushed || fail "archive's counts for og.assignment_pending did not come in: $(scans)"
read -r seq0 idx0 < <(scans)
# One report a batch (a window of one): each batch adds its case's feed rows, looks up
# the transaction's pending rows for them and, at commit, takes them.
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --window 1 \
	"$TEST_DIR/rest.jsonl" >/dev/null || fail "publish the other reports"
assert_eq "every report opened a case" "$N" "$(sql "$TEST_DB" "SELECT count(*) FROM og.case")"
og_poll 60 flushed || fail "archive's counts for og.assignment_pending did not come in: $(scans)"
read -r seq1 idx1 < <(scans)
((idx1 - idx0 >= 2 * (N - 1))) ||
	fail "og.assignment_pending was not read by its index for each batch: $((idx1 - idx0)) index scans for $((N - 1)) batches"
pass "og.assignment_pending read by its index: $((idx1 - idx0)) index scans for $((N - 1)) batches"
assert_eq "and never by a sequential scan" 0 "$((seq1 - seq0))"
assert_eq "every case has its feed row, numbered at commit, none left pending" "0|0" \
	"$(sql "$TEST_DB" "SELECT count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM og.assignment a
	                                                           WHERE a.case_id = c.case_id
	                                                             AND a.kind = 'assigned')),
	                          (SELECT count(*) FROM og.assignment_pending)
	                     FROM og.case c")"
