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
sql "$TEST_DB" "VACUUM (ANALYZE) og.assignment_pending"
assert_eq "og.assignment_pending is analyzed empty" "0|0" \
	"$(sql "$TEST_DB" "SELECT relpages, reltuples FROM pg_class WHERE oid = 'og.assignment_pending'::regclass")"

# scans: og.assignment_pending's sequential and index scans so far ("SEQ IDX").
scans() {
	sql "$TEST_DB" "SELECT seq_scan || ' ' || coalesce(idx_scan, 0) FROM pg_stat_user_tables
	                 WHERE relid = 'og.assignment_pending'::regclass"
}
read -r seq0 idx0 < <(scans)
# One report a batch (a window of one): each batch adds its case's feed rows, looks up
# the transaction's pending rows for them and, at commit, takes them.
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --window 1 \
	"$TEST_DIR/rest.jsonl" >/dev/null || fail "publish the other reports"
assert_eq "every report opened a case" "$N" "$(sql "$TEST_DB" "SELECT count(*) FROM og.case")"
# A backend reports its scans when it goes idle, at most once a second (or 10 s later).
idx_done() {
	local idx
	read -r _ idx < <(scans)
	((idx - idx0 >= 2 * (N - 1)))
}
og_poll 60 idx_done || fail "og.assignment_pending was not read by its index for each batch: $(scans) (before: $seq0 $idx0)"
read -r seq1 idx1 < <(scans)
pass "og.assignment_pending read by its index: $((idx1 - idx0)) index scans for $((N - 1)) batches"
assert_eq "and never by a sequential scan" 0 "$((seq1 - seq0))"
assert_eq "every case has its feed row, numbered at commit, none left pending" "0|0" \
	"$(sql "$TEST_DB" "SELECT count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM og.assignment a
	                                                           WHERE a.case_id = c.case_id
	                                                             AND a.kind = 'assigned')),
	                          (SELECT count(*) FROM og.assignment_pending)
	                     FROM og.case c")"
