#!/usr/bin/env bash
# Storing a batch costs the same in a database with years of history as in a new one:
# no statement archive's batches run reads a table that keeps growing (one row per batch,
# event, case...) from end to end. Such a scan is invisible in a test database and grows
# with every batch in a real one: og.open_cases once found its batch's shard with
# `WHERE batch_id = currval(...)`, which no index can serve (currval() is volatile), so
# each batch that opened cases read every row of og.batch: 181 ms per batch at a million
# batches, and a district whose events trickle in makes a batch of nearly every event.
#
# Here og.batch starts with a history of $OG_HISTORY_BATCHES batches (300,000 by default;
# about a year of a district whose events trickle in, one batch per event), then reports
# (new cases), status updates of their cases, an event already stored and one refused are
# published through the real daemons. PostgreSQL's own counters (pg_stat_user_tables) then
# show how many rows were read from og.batch by sequential scans meanwhile: fewer than one
# pass over its history, whatever the number of batches.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"
source "$(dirname "$0")/../lib/faults.sh"

HISTORY=${OG_HISTORY_BATCHES:-300000}

test_begin "history_scans"
test_createdb

# The history: batches 1..HISTORY of shard 0, committed over the past year; the sequence
# goes on after them, as it would have.
sql "$TEST_DB" >/dev/null <<-EOF
	INSERT INTO og.batch (batch_id, shard, epoch, archive, committed_at)
	SELECT g, '0', 1, 'history', now() - interval '1 year' + g * interval '100 seconds'
	  FROM generate_series(1, $HISTORY) g;
	SELECT setval('og.batch_id_seq', $HISTORY);
	ANALYZE og.batch;
EOF
# Rows read from og.batch by sequential scans, and rows inserted into it, so far
# (pg_stat_user_tables; a session's counts arrive when it ends a transaction, or soon
# after).
batch_stats() {
	sql "$TEST_DB" "SELECT seq_tup_read || ' ' || n_tup_ins FROM pg_stat_user_tables
	                 WHERE relid = 'og.batch'::regclass"
}
inserted_all() { # inserted_all N: the counters show N rows inserted into og.batch
	local s
	s=$(batch_stats) && (($(cut -d' ' -f2 <<<"$s") >= $1))
}
og_poll 30 inserted_all "$HISTORY" || fail "the history's inserts never showed in pg_stat_user_tables"
read -r SEQ_BEFORE _ < <(batch_stats)

og_write_config "$TEST_DIR" "$TEST_DB"
og_start_all "$TEST_DIR"
publish() { # publish NAME: $TEST_DIR/NAME.jsonl, answers in NAME.out
	"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --window "${2:-100}" \
		--results "$TEST_DIR/$1.out" "$TEST_DIR/$1.jsonl" >"$TEST_DIR/$1.txt" 2>&1
}
outcomes() { grep -o '"outcome":"[a-z]*"' "$TEST_DIR/$1.out" | sort | uniq -c | awk '{ printf "%s%s=%s", s, $2, $1; s = " " }'; }

# Reports in several batches (a window of 20 unanswered events at most), then a status
# update of each new case from its unit's source system, the first report again and a
# status update of a case that does not exist.
og_gen_reports "$TEST_DB" 200 hist >"$TEST_DIR/reports.jsonl"
publish reports 20 || fail "publish the reports: $(tail -n 3 "$TEST_DIR/reports.txt")"
assert_eq "every report stored" '"outcome":"stored"=200' "$(outcomes reports)"
stamp=$(date -u +%Y-%m-%dT%H:%M:%SZ)
{
	sql "$TEST_DB" "SELECT format('{\"id\":\"acc-%s\",\"source\":\"%s\",\"type\":\"status\",\"time\":\"$stamp\",\"status\":{\"case_id\":\"%s\",\"status\":\"STATUS_ACCEPTED\",\"unit\":\"%s\"}}',
	                         c.source_event_id, og.unit_source(c.unit_code), c.case_id, c.unit_code)
	                  FROM og.case c WHERE og.unit_source(c.unit_code) IS NOT NULL ORDER BY c.case_id"
	head -n 1 "$TEST_DIR/reports.jsonl"
	printf '{"id":"acc-none","source":"zongzhi","type":"status","time":"%s","status":{"case_id":"650203-99999999","status":"STATUS_ACCEPTED","unit":"650203001"}}\n' "$stamp"
} >"$TEST_DIR/updates.jsonl"
UPDATES=$(($(wc -l <"$TEST_DIR/updates.jsonl") - 2))
((UPDATES > 0)) || fail "no case has a unit that a source system speaks for"
publish updates 20 || true # exit 3: one refused
assert_eq "the updates stored, the report a duplicate, the unknown case refused" \
	"\"outcome\":\"duplicate\"=1 \"outcome\":\"rejected\"=1 \"outcome\":\"stored\"=$UPDATES" "$(outcomes updates)"

# archive's session reports its counts when its transactions end; the last batch is in
# once og.batch's inserts match the sequence.
LAST=$(sql "$TEST_DB" "SELECT last_value FROM og.batch_id_seq")
BATCHES=$((LAST - HISTORY))
((BATCHES >= 4)) || fail "the events went in $BATCHES batches; the test wants several"
og_poll 30 inserted_all "$LAST" || fail "archive's batches never showed in pg_stat_user_tables: $(batch_stats)"
read -r SEQ_AFTER _ < <(batch_stats)
READ=$((SEQ_AFTER - SEQ_BEFORE))
echo "# $BATCHES batches on top of $HISTORY: $READ rows of og.batch read by sequential scans"
# (assert_ge WHAT MIN ACTUAL: fewer than HISTORY rows read.)
assert_ge "no batch read og.batch's history from end to end ($READ rows read in $BATCHES batches)" \
	"$READ" "$((HISTORY - 1))"
