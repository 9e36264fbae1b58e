#!/usr/bin/env bash
# Two archive sessions committing batches for the same district at the same time must not
# fork its hash chain: the second waits for the head the first leaves and links onto it.
# Driven at the SQL level with the functions archive calls, the first session holding its
# transaction open while the second tries to add its link.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"

test_begin "chain_concurrency"
test_createdb
sql "$TEST_DB" "INSERT INTO og.dispatch_epoch VALUES ('cc', 1, 'test', now())"
# One batch of one event for district 650204, as archive sends it (writer's rights only).
batch() { # batch NAME SECONDS-TO-HOLD
	cat <<-SQL
		BEGIN;
		SELECT og.begin_batch('cc', 1, '$1');
		SELECT og.store_event('zongzhi', 'cc-$1', 'report', '650204', '{"id": "cc-$1"}', '\x01',
		       '{"kind": "KIND_OPEN_CASE"}', '\x02', false, NULL);
		SELECT og.end_batch();
		SELECT pg_sleep($2);
		COMMIT;
	SQL
}
batch a 2 | "$PG_BIN/psql" -XAtq -v ON_ERROR_STOP=1 -d "$TEST_DB" -U onegrid_archive >"$TEST_DIR/a.out" 2>&1 &
a=$!
# Session a has its batch's links and sleeps before committing.
a_sleeps() {
	[[ $(sql "$TEST_DB" "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
	                      AND state = 'active' AND query LIKE 'SELECT pg_sleep(%'") == 1 ]]
}
for ((i = 0; i < 300; i++)); do
	a_sleeps && break
	sleep 0.05
done
a_sleeps || fail "session a began its batch"
t0=$(date +%s%N)
batch b 0 | "$PG_BIN/psql" -XAtq -v ON_ERROR_STOP=1 -d "$TEST_DB" -U onegrid_archive >"$TEST_DIR/b.out" 2>&1
t1=$(date +%s%N)
wait "$a"
assert_ge "the second session waited for the first to commit (ms)" 1000 $(((t1 - t0) / 1000000))
assert_eq "two links, one after the other" "1 a|2 b" \
	"$(sql "$TEST_DB" "SELECT string_agg(c.seq || ' ' || b.archive, '|' ORDER BY c.seq)
	                   FROM og.chain c JOIN og.batch b USING (batch_id) WHERE c.district_code = '650204'")"
assert_eq "the second links onto the first's hash" t \
	"$(sql "$TEST_DB" "SELECT (SELECT prev_hash FROM og.chain WHERE seq = 2 AND district_code = '650204')
	                        = (SELECT hash FROM og.chain WHERE seq = 1 AND district_code = '650204')")"
rc=0
"$ONEGRID_BIN/onegridctl" audit verify --db "dbname=$TEST_DB user=onegrid_audit" >"$TEST_DIR/v.out" || rc=$?
assert_eq "the chain verifies" 0 "$rc"
