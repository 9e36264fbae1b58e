#!/usr/bin/env bash
# archive stores the events of a batch that each open a case set-based: one og.store_opened
# call per batch (one statement per table), not one og.store_event per event; the feed's
# rows for those cases come from the statement triggers of og.case (migration 022). What
# is stored is what og.store_event stores: every event key, two ledger rows per event
# numbered one after the other, the case, its report and its feed rows, a projection the
# ledger rebuilds, chains that verify; and a key stored already is answered as
# og.store_event answers it. Opening events beyond the bytes one call takes (16 MiB) are
# stored one by one in the same batch. (One record the database refuses in such a batch:
# storage_refused.sh.)
# The status updates that each move a case no other record of their batch names go the
# same way, one og.store_moved call per batch: the cases move as og.store_event moves them
# (state, the auditor's facts, feed rows, a projection the ledger rebuilds), and two
# updates of one case in one batch are stored one by one, in order.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"

test_begin "set_storage"
test_createdb
N=300
# Counts of calls per function (pg_stat_user_functions), for the daemons' sessions.
sql "$TEST_DB" "ALTER DATABASE $TEST_DB SET track_functions = 'pl'"
og_write_config "$TEST_DIR" "$TEST_DB"
sed -i 's/^batch_wait_ms = .*$/batch_wait_ms = 200/' "$TEST_DIR/onegrid.conf"
# Room for the largest report validation lets through (below).
sed -i 's/^max_event_bytes = .*$/max_event_bytes = 131072/' "$TEST_DIR/onegrid.conf"
og_start_all "$TEST_DIR"
og_gen_reports "$TEST_DB" "$N" ss >"$TEST_DIR/e.jsonl"
key_scans() { sql "$TEST_DB" "SELECT seq_scan FROM pg_stat_user_tables WHERE schemaname = 'og' AND relname = 'event_key'"; }
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 60 \
	--results "$TEST_DIR/r.out" "$TEST_DIR/e.jsonl" >"$TEST_DIR/p.txt" 2>&1 ||
	fail "publish: $(tail -n 3 "$TEST_DIR/p.txt")"
assert_eq "every report stored, each with its case" "$N" "$(grep -c '"outcome":"stored","case_id":"[0-9]' "$TEST_DIR/r.out")"

# Statistics reach the shared counters within a second of a session going idle.
calls() { sql "$TEST_DB" "SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions WHERE schemaname = 'og' AND funcname = '$1'"; }
for ((i = 0; i < 300; i++)); do
	(($(calls store_opened) > 0)) && break
	sql "$TEST_DB" "SELECT pg_sleep(0.1)" >/dev/null
done
opened_calls=$(calls store_opened)
batches=$(sql "$TEST_DB" "SELECT count(*) FROM og.batch")
assert_ge "og.store_opened stored them" 1 "$opened_calls"
(( opened_calls <= batches )) || fail "more og.store_opened calls ($opened_calls) than batches ($batches)"
pass "at most one og.store_opened call per batch ($opened_calls calls, $batches batches, $N events)"
assert_eq "and not one og.store_event per event" 0 "$(calls store_event)"
assert_eq "the feed trigger ran once per statement, not per case" 1 \
	"$(sql "$TEST_DB" "SELECT (coalesce(sum(calls), 0) <= $opened_calls)::int FROM pg_stat_user_functions
	                   WHERE schemaname = 'og' AND funcname = 'feed_case_change'")"

assert_eq "one event key, two ledger rows, one case and one report per event" "$N|$((2 * N))|$N|$N" \
	"$(sql "$TEST_DB" "SELECT (SELECT count(*) FROM og.event_key), (SELECT count(*) FROM og.ledger),
	                          (SELECT count(*) FROM og.case),
	                          (SELECT count(*) FROM og.case_report WHERE joined = 'opened')")"
assert_eq "each decision's ledger row follows its event's, in the batch's order" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.ledger e JOIN og.ledger d
	                     ON d.source_system = e.source_system AND d.source_event_id = e.source_event_id
	                    AND d.kind = 'decision'
	                  WHERE e.kind = 'event' AND (d.ledger_id <> e.ledger_id + 1 OR d.batch_id <> e.batch_id)")"
assert_eq "the event keys name the event rows and the cases" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key k
	                   LEFT JOIN og.ledger l ON l.ledger_id = k.ledger_id AND l.kind = 'event'
	                  WHERE l.ledger_id IS NULL OR l.case_id IS DISTINCT FROM k.case_id
	                     OR NOT EXISTS (SELECT 1 FROM og.case c WHERE c.case_id = k.case_id)")"
assert_eq "a case's last ledger row is its event's, its report is the event" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.case c JOIN og.event_key k USING (case_id)
	                   JOIN og.case_report r ON r.case_id = c.case_id
	                  WHERE c.last_ledger_id <> k.ledger_id OR r.source_event_id <> k.source_event_id
	                     OR r.ledger_id <> k.ledger_id + 1 OR c.title NOT LIKE '测试事件 %'")"
assert_eq "one 'assigned' feed row per case given to a unit, numbered" \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.case WHERE unit_code IS NOT NULL")" \
	"$(sql "$TEST_DB" "SELECT count(DISTINCT case_id) FROM og.assignment a
	                  WHERE kind = 'assigned' AND EXISTS (SELECT 1 FROM og.case c
	                        WHERE c.case_id = a.case_id AND c.unit_code = a.unit_code
	                          AND c.last_ledger_id = a.ledger_id)")"
# consistent WHEN: the feed's numbers have no gap, the ledger rebuilds the same
# projection, the chains verify.
consistent() {
	assert_eq "the feed's numbers have no gap ($1)" "$(sql "$TEST_DB" "SELECT count(*) FROM og.assignment")" \
		"$(sql "$TEST_DB" "SELECT max(seq) FROM og.assignment")"
	assert_eq "the ledger rebuilds the same projection ($1)" 0 \
		"$(sql "$TEST_DB" "SELECT count(*) FROM audit.projection_differences")"
	"$ONEGRID_BIN/onegridctl" audit verify --db "dbname=$TEST_DB" >"$TEST_DIR/verify.out" 2>&1 ||
		fail "audit verify ($1): $(tail -n 3 "$TEST_DIR/verify.out")"
	pass "the chains verify ($1): $(tail -n 1 "$TEST_DIR/verify.out")"
}
consistent "the reports stored"

# A coordinate of 0 is a coordinate (only 0, 0 is refused): the JSON of the ledger leaves
# a 0 out, and the case and its report keep 0, not NULL, as the projection rebuilt from the
# ledger does.
og_gen_reports "$TEST_DB" 2 zero | python3 -c '
import json, sys
for n, line in enumerate(sys.stdin):
    e = json.loads(line)
    e["location"] = {"latitude": 0, "longitude": 85.06} if n == 0 else {"latitude": 45.65, "longitude": 0}
    print(json.dumps(e, ensure_ascii=False))
' >"$TEST_DIR/zero.jsonl"
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 60 \
	--results "$TEST_DIR/zero.out" "$TEST_DIR/zero.jsonl" >"$TEST_DIR/zero.txt" 2>&1 ||
	fail "publish: $(tail -n 3 "$TEST_DIR/zero.txt")"
assert_eq "a latitude or a longitude of 0 stays 0, in the case and in its report" "0 85.06 0 85.06|45.65 0 45.65 0" \
	"$(sql "$TEST_DB" "SELECT string_agg(concat_ws(' ', c.latitude, c.longitude, r.latitude, r.longitude), '|' ORDER BY c.source_event_id)
	                  FROM og.case c JOIN og.case_report r USING (case_id) WHERE c.source_event_id LIKE 'zero-%'")"
assert_eq "and so does the projection rebuilt from the ledger" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM audit.projection_differences")"

# Status updates from each case's unit (its source system: og.unit_source), one per case
# and round: every case accepted; then the odd ones resolved, the even ones returned (退回:
# dispatch routes them on, and the feed says so).
# statuses FILE ID-PREFIX 'SQL STATUS EXPRESSION' [CONDITION]: one update per case (of the
# first reports, by default).
statuses() {
	sql "$TEST_DB" "SELECT format('{\"id\":\"%s-%s\",\"source\":\"%s\",\"type\":\"status\",\"time\":\"%s\",\"status\":{\"case_id\":\"%s\",\"status\":\"%s\",\"unit\":\"%s\",\"note\":\"测试\"}}',
	                         '$2', c.source_event_id, og.unit_source(c.unit_code),
	                         to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
	                         c.case_id, $3, c.unit_code)
	                  FROM og.case c WHERE ${4:-c.source_event_id LIKE 'ss-%'} ORDER BY c.case_id" >"$1"
}
moved_publish() { # moved_publish FILE: every update stored
	[[ -s $1 ]] || fail "no updates in $1"
	"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 60 \
		--results "$1.out" "$1" >"$1.txt" 2>&1 || fail "publish $1: $(tail -n 3 "$1.txt")"
	assert_eq "every update of $(basename "$1") stored" "$(wc -l <"$1")" "$(grep -c '"outcome":"stored"' "$1.out")"
}
M=$(sql "$TEST_DB" "SELECT count(*) FROM og.case WHERE og.unit_source(unit_code) IS NOT NULL AND source_event_id LIKE 'ss-%'")
assert_eq "every case's unit has a source system" "$N" "$M"
batches_before=$(sql "$TEST_DB" "SELECT count(*) FROM og.batch")
statuses "$TEST_DIR/acc.jsonl" acc "'STATUS_ACCEPTED'"
moved_publish "$TEST_DIR/acc.jsonl"
statuses "$TEST_DIR/res.jsonl" res "CASE WHEN right(c.source_event_id, 1)::int % 2 = 1 THEN 'STATUS_RESOLVED' ELSE 'STATUS_RETURNED' END"
moved_publish "$TEST_DIR/res.jsonl"
# Every batch since holds updates only, each of a case no other update of its batch names.
batches=$(($(sql "$TEST_DB" "SELECT count(*) FROM og.batch") - batches_before))
for ((i = 0; i < 300; i++)); do
	(($(calls store_moved) >= batches)) && break
	sql "$TEST_DB" "SELECT pg_sleep(0.1)" >/dev/null
done
moved_calls=$(calls store_moved)
# (A call is counted even when its transaction is rolled back: a batch tried again after a
# fault of the database's would count twice.)
assert_ge "an og.store_moved call in every batch of updates ($batches batches, $((2 * N)) updates)" "$batches" "$moved_calls"
assert_eq "and still no og.store_event" 0 "$(calls store_event)"
assert_eq "the feed trigger ran once per statement, not per case" 1 \
	"$(sql "$TEST_DB" "SELECT (coalesce(sum(calls), 0) <= $(calls store_opened) + $moved_calls)::int FROM pg_stat_user_functions
	                   WHERE schemaname = 'og' AND funcname = 'feed_case_change'")"
assert_eq "the odd cases resolved, their fact and their last ledger row the update's" "$((N / 2))" \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.case c JOIN og.event_key k
	                     ON k.source_event_id = 'res-' || c.source_event_id AND k.ledger_id = c.last_ledger_id
	                  WHERE c.state = 'resolved' AND c.first_resolved_at IS NOT NULL AND c.stage = 'checking'")"
assert_eq "the even cases returned: the fact, and a 'withdrawn' feed row for the unit" "$((N / 2))" \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.case c
	                  WHERE c.returned AND right(c.source_event_id, 1)::int % 2 = 0
	                    AND EXISTS (SELECT 1 FROM og.assignment a JOIN og.ledger l ON l.ledger_id = a.ledger_id
	                                 WHERE a.case_id = c.case_id AND a.kind = 'withdrawn'
	                                   AND l.source_event_id = 'res-' || c.source_event_id)")"
assert_eq "each update's decision follows its event in the ledger" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.ledger e JOIN og.ledger d
	                     ON d.source_system = e.source_system AND d.source_event_id = e.source_event_id
	                    AND d.kind = 'decision'
	                  WHERE e.kind = 'event' AND e.event_type = 'status'
	                    AND (d.ledger_id <> e.ledger_id + 1 OR d.batch_id <> e.batch_id)")"
consistent "the updates stored"

# A key stored already, given again in a call: answered as og.store_event answers it
# ('stored' for the same submission, 'duplicate' for another), nothing stored again; a new
# key in the same call is stored.
read -r SHARD EPOCH < <(sql "$TEST_DB" "SELECT shard, epoch FROM og.dispatch_epoch LIMIT 1" | tr '|' ' ')
# in_batch <<SQL: the SQL on stdin run in a batch of its own, rolled back, with e and d the
# ledger rows of the stored event ss-000001.
in_batch() {
	{
		printf '%s\n' "BEGIN;" "SELECT og.begin_batch('$SHARD', $EPOCH, 'set_storage') \\gset" \
			"WITH e AS (SELECT * FROM og.ledger WHERE kind = 'event' AND source_event_id = 'ss-000001')," \
			"     d AS (SELECT * FROM og.ledger WHERE kind = 'decision' AND source_event_id = 'ss-000001')"
		cat
		echo "ROLLBACK;"
	} | sql "$TEST_DB"
}
out=$(in_batch <<'SQL'
SELECT r.i || ':' || r.outcome || ':' || (r.case_id IS NOT NULL)
  FROM e, d,
       og.store_opened(ARRAY[e.source_system, e.source_system, e.source_system],
                       ARRAY[e.source_event_id, e.source_event_id || '-other', 'ss-new'],
                       ARRAY['report', 'report', 'report'],
                       ARRAY[e.district_code, e.district_code, e.district_code],
                       ARRAY[e.detail, jsonb_set(e.detail, '{publisher}', '"someone-else"'), e.detail],
                       ARRAY[e.body, e.body, e.body],
                       ARRAY[d.detail, jsonb_set(d.detail, '{case_id}', '"NEW-CASE-0"'),
                             jsonb_set(d.detail, '{case_id}', '"NEW-CASE-1"')],
                       ARRAY[d.body, d.body, d.body], ARRAY[NULL, NULL, NULL]::jsonb[]) r
 ORDER BY r.i;
SQL
)
assert_eq "og.store_opened: a resend of the stored submission is 'stored', new keys are stored now" \
	"$(printf '1:stored:true\n2:stored:true\n3:stored:true')" "$out"
out=$(in_batch <<'SQL'
SELECT r.i || ':' || r.outcome || ':' || r.case_id
  FROM e, d,
       og.store_opened(ARRAY[e.source_system], ARRAY[e.source_event_id], ARRAY['report'],
                       ARRAY[e.district_code],
                       ARRAY[jsonb_set(e.detail, '{publisher}', '"someone-else"')],
                       ARRAY[e.body], ARRAY[jsonb_set(d.detail, '{case_id}', '"NEW-CASE-2"')],
                       ARRAY[d.body], ARRAY[NULL]::jsonb[]) r;
SELECT count(*) FROM og.case WHERE case_id = 'NEW-CASE-2';
SQL
)
first_case=$(sql "$TEST_DB" "SELECT case_id FROM og.event_key WHERE source_event_id = 'ss-000001'")
assert_eq "another submission of a stored key: 'duplicate', with the stored case, no new case" \
	"$(printf '1:duplicate:%s\n0' "$first_case")" "$out"

# og.store_moved, likewise, with e and d the ledger rows of the stored update
# res-ss-000001: a resend is 'stored', another submission 'duplicate', nothing moved again;
# a case that does not exist stores nothing (SQLSTATE OG002: archive then stores the batch
# event by event).
moved_case=$(sql "$TEST_DB" "SELECT case_id FROM og.event_key WHERE source_event_id = 'res-ss-000001'")
moved_state=$(sql "$TEST_DB" "SELECT state || ' ' || last_ledger_id FROM og.case WHERE case_id = '$moved_case'")
cat >"$TEST_DIR/moved.sql" <<'SQL'
WITH e AS (SELECT * FROM og.ledger WHERE kind = 'event' AND source_event_id = 'res-ss-000001'),
     d AS (SELECT * FROM og.ledger WHERE kind = 'decision' AND source_event_id = 'res-ss-000001'),
     c AS (SELECT jsonb_set(d.detail, '{state}', '"accepted"') AS d FROM d)
SELECT r.i || ':' || r.outcome || ':' || (r.case_id = (SELECT case_id FROM e))
  FROM e, d, c,
       og.store_moved(ARRAY[e.source_system, e.source_system], ARRAY[e.source_event_id, e.source_event_id],
                      ARRAY['status', 'status'], ARRAY[e.district_code, e.district_code],
                      ARRAY[e.detail, jsonb_set(e.detail, '{publisher}', '"someone-else"')],
                      ARRAY[e.body, e.body], ARRAY[c.d, c.d], ARRAY[d.body, d.body],
                      ARRAY[NULL, NULL]::jsonb[]) r
 ORDER BY r.i;
SELECT state || ' ' || last_ledger_id FROM og.case WHERE case_id = (SELECT case_id FROM og.event_key WHERE source_event_id = 'res-ss-000001');
WITH e AS (SELECT * FROM og.ledger WHERE kind = 'event' AND source_event_id = 'res-ss-000001'),
     d AS (SELECT * FROM og.ledger WHERE kind = 'decision' AND source_event_id = 'res-ss-000001')
SELECT count(*)
  FROM e, d,
       og.store_moved(ARRAY[e.source_system, e.source_system], ARRAY['mv-new-1', 'mv-new-2'],
                      ARRAY['status', 'status'], ARRAY[e.district_code, e.district_code],
                      ARRAY[e.detail, e.detail], ARRAY[e.body, e.body],
                      ARRAY[jsonb_set(d.detail, '{state}', '"accepted"'),
                            jsonb_set(d.detail, '{case_id}', '"NO-SUCH-CASE"')],
                      ARRAY[d.body, d.body], ARRAY[NULL, NULL]::jsonb[]) r;
SQL
out=$({ printf '%s\n' '\set VERBOSITY verbose' "BEGIN;" "SELECT og.begin_batch('$SHARD', $EPOCH, 'set_storage') \\gset"
	cat "$TEST_DIR/moved.sql"; echo "ROLLBACK;"; } | "$PG_BIN/psql" -XAtq -d "$TEST_DB" 2>&1)
assert_match "og.store_moved: a resend is 'stored', another submission 'duplicate', the case unmoved" \
	"^1:stored:true
2:duplicate:true
$moved_state
" "$out"
assert_match "og.store_moved: a case that does not exist is SQLSTATE OG002 (archive leaves such a record out), and named" \
	'ERROR:  OG002: case "NO-SUCH-CASE" does not exist' "$out"

# A thousand opening reports as large as validation lets them be (a title of 128 and a
# description of 4,096 four-byte characters, 17 KB each) in one batch: more than one
# og.store_opened call takes (16 MiB). Those beyond go one by one, in the same batch.
# archive waits up to 10 s for a full batch here.
og_stop archive "$TEST_DIR"
sed -i 's/^batch_wait_ms = .*$/batch_wait_ms = 10000/' "$TEST_DIR/onegrid.conf"
og_start archive "$TEST_DIR"
before_opened=$(calls store_opened)
seq_scans=$(key_scans)
og_gen_reports "$TEST_DB" 1000 big | python3 -c '
import json, sys
for line in sys.stdin:
    e = json.loads(line)
    e["report"]["title"] = "\U00020000" * 128
    e["report"]["description"] = "\U00020000" * 4096
    print(json.dumps(e, ensure_ascii=False))
' >"$TEST_DIR/big.jsonl"
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 120 --window 1000 \
	--results "$TEST_DIR/big.out" "$TEST_DIR/big.jsonl" >"$TEST_DIR/big.txt" 2>&1 ||
	fail "publish of the large reports: $(tail -n 3 "$TEST_DIR/big.txt")"
assert_eq "every large report stored, each with its case" 1000 "$(grep -c '"outcome":"stored","case_id":"[0-9]' "$TEST_DIR/big.out")"
assert_eq "whole" 1000 "$(sql "$TEST_DB" "SELECT count(*) FROM og.case WHERE title LIKE '𠀀%' AND length(title) = 128")"
for ((i = 0; i < 300; i++)); do
	(($(calls store_event) > 0)) && break
	sql "$TEST_DB" "SELECT pg_sleep(0.1)" >/dev/null
done
assert_ge "og.store_opened took most of them" $((before_opened + 1)) "$(calls store_opened)"
assert_ge "og.store_event those beyond its bytes" 1 "$(calls store_event)"
# Storing reads the event keys by their primary key only: dispatch's look-up of an inbox's
# committed events was once a hash join over a sequential scan of every key stored (156
# scans while these 1,000 were stored). With 300 keys stored before, a look-up by the key
# is the cheaper plan whatever the statistics say (with a page or two of keys, a scan
# would be, and rightly).
assert_eq "no sequential scan of og.event_key while storing inboxes of hundreds" "$seq_scans" "$(key_scans)"
assert_eq "the ledger still rebuilds the same projection" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM audit.projection_differences")"

# Two updates of one case in one batch (archive still waits 10 s for a full one): both go
# one by one, in order, not to og.store_moved (which cannot order them, and would refuse
# the call: the batch stored again event by event, at twice the work).
PAIR=$(sql "$TEST_DB" "SELECT case_id FROM og.case WHERE title LIKE '𠀀%' ORDER BY case_id LIMIT 1")
before_event=$(calls store_event)
before_moved=$(calls store_moved)
# og.store_moved refusing the call is seen in the server's log only: the batch is then
# stored event by event, as the order needs, and its failed call is not counted.
pglog=$(test_pglog) || fail "the server's log cannot be read"
refused() { grep -c "@$TEST_DB ERROR:  case .* does not exist, or is named twice in one call" "$pglog" || true; }
before_refused=$(refused)
statuses "$TEST_DIR/pair.jsonl" pa "'STATUS_ACCEPTED'" "c.case_id = '$PAIR'"
statuses "$TEST_DIR/pair2.jsonl" pi "'STATUS_IN_PROGRESS'" "c.case_id = '$PAIR'"
cat "$TEST_DIR/pair2.jsonl" >>"$TEST_DIR/pair.jsonl"
moved_publish "$TEST_DIR/pair.jsonl"
assert_eq "both in one batch, the case in progress, its last ledger row the second update's" "1|in_progress" \
	"$(sql "$TEST_DB" "SELECT count(DISTINCT l.batch_id) || '|' || c.state FROM og.case c, og.ledger l
	                  WHERE c.case_id = '$PAIR' AND l.case_id = c.case_id AND l.event_type = 'status'
	                    AND c.last_ledger_id = (SELECT ledger_id FROM og.event_key WHERE source_event_id LIKE 'pi-%')
	                  GROUP BY c.state")"
for ((i = 0; i < 300; i++)); do
	(($(calls store_event) >= before_event + 2)) && break
	sql "$TEST_DB" "SELECT pg_sleep(0.1)" >/dev/null
done
assert_eq "stored by og.store_event, one by one" "$((before_event + 2))|$before_moved" "$(calls store_event)|$(calls store_moved)"
assert_eq "og.store_moved was not given them (its refusal is not in the server's log)" "$before_refused" "$(refused)"
