#!/usr/bin/env bash
# Next month's ledger partition is made ahead of time by an ordinary batch, so the first
# batch of a month need not take an ACCESS EXCLUSIVE lock on og.ledger, which waits for
# every reader of the ledger (an auditor's `audit verify`, pg_dump) and, while it waits,
# holds up every later reader. The batch that makes it ahead waits at most 50 ms for that
# lock: while a reader holds the ledger it gives up, unseen, and a later batch makes it (a
# session tries at most once a minute). Either way the batch's lock_timeout is what it was.
# (The month's own partition, when missing, is still made whatever the wait.)
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"
source "$(dirname "$0")/../lib/faults.sh"

test_begin "ledger_partition"
test_createdb
NEXT=$(sql "$TEST_DB" "SELECT 'ledger_' || to_char(date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month', 'YYYYMM')")
# The schema made partitions months ahead; next month's is taken away, as if those months
# had passed.
sql "$TEST_DB" "DROP TABLE og.$NEXT"
exists() { sql "$TEST_DB" "SELECT to_regclass('og.$NEXT') IS NOT NULL"; }
assert_eq "next month's partition ($NEXT) is missing" f "$(exists)"
og_write_config "$TEST_DIR" "$TEST_DB"
og_start_all "$TEST_DIR"
og_gen_reports "$TEST_DB" 2 lp >"$TEST_DIR/all.jsonl"
sed -n 1p "$TEST_DIR/all.jsonl" >"$TEST_DIR/r1.jsonl"
sed -n 2p "$TEST_DIR/all.jsonl" >"$TEST_DIR/r2.jsonl"
publish() { # publish NAME: its exit status in $rc
	rc=0
	"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 30 \
		--results "$TEST_DIR/$1.out" "$TEST_DIR/$1.jsonl" >"$TEST_DIR/$1.txt" 2>&1 || rc=$?
}

# A reader holds the ledger (ACCESS SHARE) for as long as this test wants.
OG_FAULTS_LOG=$TEST_DIR/reader.log og_lock_take "$TEST_DB" og_test_reader og.ledger 'ACCESS SHARE'
on_exit "og_lock_release $TEST_DB og_test_reader || true"
publish r1
assert_eq "with a reader on the ledger, a report is stored (archive's lock_timeout_ms is 20 s: it did not wait for the reader)" \
	"0|stored 1" "$rc|$(grep -o 'stored [0-9]*' "$TEST_DIR/r1.txt" | head -1)"
assert_eq "next month's partition is not made while the reader holds the ledger" f "$(exists)"
assert_eq "archive logged no fault" "" "$(grep 'database unavailable' "$TEST_DIR/archive.log" || true)"
# A batch's own lock_timeout after og.begin_batch, when it gave up making the partition
# (and, below, when it made it): rolled back, the batch is not stored.
EPOCH=$(sql "$TEST_DB" "SELECT epoch FROM og.dispatch_epoch")
SHARD=$(sql "$TEST_DB" "SELECT shard FROM og.dispatch_epoch")
begin_batch_wait() {
	sql "$TEST_DB" <<-SQL | tail -1
		BEGIN;
		SET LOCAL lock_timeout = '7s';
		SELECT og.begin_batch('$SHARD', $EPOCH, 'ledger_partition test') IS NOT NULL;
		SHOW lock_timeout;
		ROLLBACK;
	SQL
}
assert_eq "a batch that gave up keeps its lock_timeout" 7s "$(begin_batch_wait)"
assert_eq "and did not make the partition" f "$(exists)"

og_lock_release "$TEST_DB" og_test_reader
assert_eq "a batch that made it keeps its lock_timeout" 7s "$(begin_batch_wait)"
assert_eq "(and its partition went with its rollback)" f "$(exists)"
# archive's session tried less than a minute ago: a new one tries at once.
og_stop archive "$TEST_DIR"
og_start archive "$TEST_DIR"
publish r2
assert_eq "the reader gone, the next report is stored" "0|stored 1" "$rc|$(grep -o 'stored [0-9]*' "$TEST_DIR/r2.txt" | head -1)"
assert_eq "and its batch made next month's partition" t "$(exists)"
assert_eq "with the append-only TRUNCATE trigger" 1 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'og.$NEXT'::regclass AND tgname = 'append_only_truncate'")"
