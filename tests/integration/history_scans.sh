#!/usr/bin/env bash
# Storing a batch costs the same in a database with years of history as in a new one.
#
# 1. No statement of archive's batches reads og.batch (one row per batch ever stored) by a
#    sequential scan. og.open_cases once found its batch's shard with
#    `WHERE batch_id = currval(...)`, which no index can serve (currval() is volatile), so
#    each batch that opened cases read every row of og.batch: 181 ms per batch at a million
#    batches, and a district whose events trickle in makes a batch of nearly every event.
#    Such a scan is invisible in a test database with a few batches.
# 2. og.batch_outcomes, which og.store_opened and og.store_moved call for every batch, stays
#    inlined into their statements (plain SQL, no SECURITY DEFINER, no SET): PostgreSQL 15
#    parses and plans a SQL function it cannot inline at every call, which took 11.7 % of
#    archive's database session on batches of one or two events. So does og.decision_facts,
#    which og.open_cases and og.apply_cases call once per decision: as PL/pgSQL it cost
#    each decision a function call (2 to 3 µs, against 0.8 inlined). And og.district_records,
#    the pass over the batch's ledger rows og.end_batch makes its links of.
#
# Here og.batch starts with a history of $OG_HISTORY_BATCHES batches (300,000 by default;
# about a year of a district whose events trickle in, one batch per event), then reports
# (new cases), status updates of their cases, an event already stored and one refused are
# published through the real daemons. PostgreSQL's own counters then show how often
# og.batch was read by a sequential scan meanwhile (pg_stat_user_tables: never) and how
# often each function was called as a function rather than inlined (pg_stat_user_functions,
# track_functions = all: og.batch_outcomes, og.decision_facts and og.district_records never,
# og.store_opened and og.end_batch once per batch).
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"
source "$(dirname "$0")/../lib/faults.sh"

HISTORY=${OG_HISTORY_BATCHES:-300000}

test_begin "history_scans"
test_createdb

# The history: batches 1..HISTORY of shard 0, committed over the past year; the sequence
# goes on after them, as it would have. Calls of functions are counted for the daemons'
# sessions.
sql "$TEST_DB" >/dev/null <<-EOF
	INSERT INTO og.batch (batch_id, shard, epoch, archive, committed_at)
	SELECT g, '0', 1, 'history', now() - interval '1 year' + g * interval '100 seconds'
	  FROM generate_series(1, $HISTORY) g;
	SELECT setval('og.batch_id_seq', $HISTORY);
	ANALYZE og.batch;
	ALTER DATABASE $TEST_DB SET track_functions = 'all';
EOF
# og.batch's sequential scans and the rows inserted into it so far (pg_stat_user_tables).
# A session's counts reach them when it goes idle, at most once a second (else within
# about 10 s), or when it ends; inserts and scans of one transaction arrive together.
batch_stats() {
	sql "$TEST_DB" "SELECT seq_scan || ' ' || n_tup_ins FROM pg_stat_user_tables
	                 WHERE relid = 'og.batch'::regclass"
}
inserted_all() { # inserted_all N: the counters show N rows inserted into og.batch
	local s
	s=$(batch_stats) && [[ -n $s ]] && (($(cut -d' ' -f2 <<<"$s") >= $1))
}
og_poll 30 inserted_all "$HISTORY" ||
	fail "the history's inserts never showed in pg_stat_user_tables"
s=$(batch_stats) || fail "read pg_stat_user_tables"
read -r SCANS_BEFORE _ <<<"$s"

og_write_config "$TEST_DIR" "$TEST_DB"
og_start_all "$TEST_DIR"
publish() { # publish NAME [WINDOW]: $TEST_DIR/NAME.jsonl, answers in NAME.out; exit status in $rc
	rc=0
	"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" \
		--window "${2:-100}" --results "$TEST_DIR/$1.out" "$TEST_DIR/$1.jsonl" \
		>"$TEST_DIR/$1.txt" 2>&1 || rc=$?
}
outcomes() { # outcomes NAME: "outcome"=count ... of NAME.out
	grep -o '"outcome":"[a-z]*"' "$TEST_DIR/$1.out" | sort | uniq -c |
		awk '{ printf "%s%s=%s", s, $2, $1; s = " " }'
}

# Reports in several batches (a window of 20 unanswered events at most), then a status
# update of each new case from its unit's source system, the first report again and a
# status update from a unit that does not exist (refused: REASON_UNKNOWN_UNIT).
og_gen_reports "$TEST_DB" 200 hist >"$TEST_DIR/reports.jsonl"
publish reports 20
assert_eq "the reports published: exit 0 ($(tail -n 1 "$TEST_DIR/reports.txt"))" 0 "$rc"
assert_eq "every report stored" '"outcome":"stored"=200' "$(outcomes reports)"
stamp=$(date -u +%Y-%m-%dT%H:%M:%SZ)
{
	sql "$TEST_DB" "SELECT format('{\"id\":\"acc-%s\",\"source\":\"%s\",\"type\":\"status\",'
	                              '\"time\":\"$stamp\",\"status\":{\"case_id\":\"%s\",'
	                              '\"status\":\"STATUS_ACCEPTED\",\"unit\":\"%s\"}}',
	                              c.source_event_id, og.unit_source(c.unit_code), c.case_id,
	                              c.unit_code)
	                  FROM og.case c WHERE og.unit_source(c.unit_code) IS NOT NULL
	                 ORDER BY c.case_id"
	head -n 1 "$TEST_DIR/reports.jsonl"
	printf '{"id":"acc-none","source":"zongzhi","type":"status","time":"%s",' "$stamp"
	printf '"status":{"case_id":"650203-99999999","status":"STATUS_ACCEPTED","unit":"650203001"}}\n'
} >"$TEST_DIR/updates.jsonl"
UPDATES=$(($(wc -l <"$TEST_DIR/updates.jsonl") - 2))
((UPDATES > 0)) || fail "no case has a unit that a source system speaks for"
publish updates 20
assert_eq "the updates published: exit 3, one refused ($(tail -n 1 "$TEST_DIR/updates.txt"))" \
	3 "$rc"
assert_eq "the updates stored, the report a duplicate, the unknown unit's refused" \
	"\"outcome\":\"duplicate\"=1 \"outcome\":\"rejected\"=1 \"outcome\":\"stored\"=$UPDATES" \
	"$(outcomes updates)"

# archive's session has reported its counts once og.batch's inserts match the sequence (a
# batch id is taken by the insert into og.batch).
LAST=$(sql "$TEST_DB" "SELECT last_value FROM og.batch_id_seq")
BATCHES=$((LAST - HISTORY))
((BATCHES >= 4)) || fail "the events took $BATCHES batch ids; the test wants several batches"
og_poll 30 inserted_all "$LAST" ||
	fail "archive's batches never showed in pg_stat_user_tables: $(batch_stats)"
s=$(batch_stats) || fail "read pg_stat_user_tables"
read -r SCANS_AFTER _ <<<"$s"
assert_eq "no sequential scan of og.batch's $HISTORY rows in $BATCHES batch ids" \
	0 "$((SCANS_AFTER - SCANS_BEFORE))"

# Functions called as functions (inlined ones are not counted), in the same reports.
calls() { # calls NAME: og.NAME's calls counted in pg_stat_user_functions
	sql "$TEST_DB" "SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions
	                 WHERE schemaname = 'og' AND funcname = '$1'"
}
OPENED=$(calls store_opened)
((OPENED > 0)) ||
	fail "og.store_opened shows no calls: track_functions did not reach archive's session"
assert_eq "og.batch_outcomes inlined: no call of it counted beside $OPENED of og.store_opened" \
	0 "$(calls batch_outcomes)"
assert_eq "og.decision_facts inlined: no call of it counted beside $OPENED of og.store_opened" \
	0 "$(calls decision_facts)"
ENDED=$(calls end_batch)
((ENDED > 0)) || fail "og.end_batch shows no calls in archive's session"
assert_eq "og.district_records inlined: no call of it counted beside $ENDED of og.end_batch" \
	0 "$(calls district_records)"
