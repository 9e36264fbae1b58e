#!/usr/bin/env bash
# dispatch holds only open cases (issue 11 item 5). A closed case leaves memory; the rare
# event that touches it reads it back from PostgreSQL and gets the answer a dispatch that
# held every case gave: an evaluation is stored, an unsatisfied one reopens the case (its
# unit takes it up again, a report merged into it can be split off), a status update, a
# meeting decision or a split on it is refused as an invalid transition, an unknown case as
# unknown. A database error while reading it back is a fault: the event is held and then
# decided, never refused. Closed cases cost dispatch no memory at start-up, and numbering
# goes on above the highest case number, closed ones included.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"
source "$(dirname "$0")/../lib/faults.sh"

test_begin "open_cases"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
sed -i 's/^merge_window_hours = 0$/merge_window_hours = 72\nmerge_distance_m = 150/' "$TEST_DIR/onegrid.conf"
og_start_all "$TEST_DIR"
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
FILL=${OG_OPEN_CASES_FILL:-30000} # closed cases written straight into og.case

# Three communities of one district: 沁苑社区 (where 12345 has a grid too) and two more.
read -r ZZ QY < <(sql "$TEST_DB" "SELECT x.source_grid_id, left(x.area_code, 12) FROM og.grid_crosswalk x
                                   JOIN og.area a ON a.code = left(x.area_code, 12)
                                   WHERE x.source_system = 'zongzhi' AND a.name = '沁苑社区'
                                   ORDER BY 1 LIMIT 1" | tr '|' ' ')
RX=$(sql "$TEST_DB" "SELECT source_grid_id FROM og.grid_crosswalk WHERE source_system = '12345' AND area_code = '$QY' ORDER BY 1 LIMIT 1")
DIST=${QY:0:6}
mapfile -t OTHER < <(sql "$TEST_DB" "SELECT DISTINCT ON (left(area_code, 12)) source_grid_id FROM og.grid_crosswalk
                                     WHERE source_system = 'zongzhi' AND left(area_code, 6) = '$DIST'
                                     AND left(area_code, 12) <> '$QY' ORDER BY left(area_code, 12), 1 LIMIT 2")
((${#OTHER[@]} == 2)) || fail "the sample registry has three communities with zongzhi grids in $DIST"

report() { # report ID SOURCE SUBJECT CATEGORY [LAT LON]
	local loc=
	[[ -n ${5:-} ]] && loc=",\"location\":{\"latitude\":$5,\"longitude\":$6}"
	printf '{"id":"%s","source":"%s","type":"report","time":"%s","subject":"%s"%s,"report":{"category":"%s","title":"扶手和路灯","channel":"CHANNEL_GRID_PATROL"}}\n' \
		"$1" "$2" "$NOW" "$3" "$loc" "$4"
}
unit_of() { sql "$TEST_DB" "SELECT coalesce(unit_code, '') FROM og.case WHERE case_id = '$1'"; }
status() { # status ID CASE STATUS: from the case's unit, or the centre (og_status_unit)
	local unit src
	unit=$(og_status_unit "$TEST_DB" "$2" "$3" "$(unit_of "$2")")
	src=$(og_unit_source "$TEST_DB" "$unit")
	printf '{"id":"%s","source":"%s","type":"status","time":"%s","status":{"case_id":"%s","status":"%s","unit":"%s"}}\n' \
		"$1" "${src:-zongzhi}" "$NOW" "$2" "$3" "$unit"
}
evaluation() { # evaluation ID CASE RESULT
	printf '{"id":"%s","source":"12345","type":"evaluation","time":"%s","evaluation":{"case_id":"%s","result":"%s"}}\n' \
		"$1" "$NOW" "$2" "$3"
}
meeting_close() { # meeting_close ID CASE
	printf '{"id":"%s","source":"dangjian","type":"decision","time":"%s","decision":{"case_ids":["%s"],"action":"ACTION_CLOSE","minutes_ref":"联席会纪要"}}\n' \
		"$1" "$NOW" "$2"
}
split() { # split ID CASE SOURCE EVENT
	printf '{"id":"%s","source":"zongzhi","type":"split","time":"%s","split":{"case_id":"%s","report_source":"%s","report_event_id":"%s"}}\n' \
		"$1" "$NOW" "$2" "$3" "$4"
}
publish() { # publish NAME: $TEST_DIR/NAME.jsonl; answers in NAME.out, exit status in $rc
	rc=0
	"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --results "$TEST_DIR/$1.out" \
		"$TEST_DIR/$1.jsonl" >"$TEST_DIR/$1.txt" 2>&1 || rc=$?
}
answer() { grep -h "\"id\":\"$1\"" "$TEST_DIR"/*.out | tail -1; }
case_of() { answer "$1" | grep -o '"case_id":"[^"]*"' | cut -d'"' -f4; }
state() { sql "$TEST_DB" "SELECT state FROM og.case WHERE case_id = '$1'"; }
close_case() { # close_case CASE: by its unit, with the field check where the category needs one
	local c=$1 check
	check=$(sql "$TEST_DB" "SELECT check_required FROM og.case JOIN og.category ON code = category_code
	                        WHERE case_id = '$c'")
	{
		status "$c-acc" "$c" STATUS_ACCEPTED
		status "$c-res" "$c" STATUS_RESOLVED
		[[ $check == t ]] && status "$c-chk" "$c" STATUS_CHECKED_OK
		status "$c-clo" "$c" STATUS_CLOSED
	} >"$TEST_DIR/close-$c.jsonl"
	publish "close-$c"
	[[ $rc == 0 && $(state "$c") == closed ]]
}
dispatch_rss() { # the peak of dispatch's resident set in kB: loading its state is done when it is ready
	local pid
	pid=$(<"$TEST_DIR/dispatch.pid")
	awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status"
}
log_since() { tail -c +"$(($1 + 1))" "$TEST_DIR/dispatch.log" || true; }

# Five cases in one district: A (with a 12345 call merged into it), B, C and D to close,
# E stays open.
{
	report visit-a zongzhi "$ZZ" facility.handrail 45.5960 84.8800
	report call-a 12345 "$RX" facility.handrail
	report rep-b zongzhi "$ZZ" facility.streetlight
	report rep-c zongzhi "${OTHER[0]}" facility.handrail
	report rep-d zongzhi "${OTHER[0]}" facility.streetlight
	report rep-e zongzhi "${OTHER[1]}" facility.handrail
} >"$TEST_DIR/open.jsonl"
publish open
assert_eq "six reports stored" 0 "$rc"
A=$(case_of visit-a) B=$(case_of rep-b) C=$(case_of rep-c) D=$(case_of rep-d) E=$(case_of rep-e)
assert_eq "the call joined A; five cases, each dispatched" "$A|5|dispatched" \
	"$(case_of call-a)|$(sql "$TEST_DB" "SELECT count(DISTINCT case_id) || '|' || string_agg(DISTINCT state, ',') FROM og.case")"
for c in "$A" "$B" "$C" "$D"; do
	close_case "$c" || fail "case $c closed by its unit (rc $rc: $(cat "$TEST_DIR/close-$c.out"))"
done
pass "A, B, C and D closed by their units"

# A restarted dispatch loads only E.
og_stop dispatch "$TEST_DIR"
og_start dispatch "$TEST_DIR"
assert_match "the restarted dispatch holds only the open case" \
	"epoch $(sql "$TEST_DB" "SELECT epoch FROM og.dispatch_epoch"): .* 1 cases open" "$(cat "$TEST_DIR/dispatch.log")"
RSS_FEW=$(dispatch_rss)

# Many closed cases, written straight into og.case, each with the report that opened it in
# og.case_report (no ledger, no feed: this test only looks at what dispatch loads),
# numbered above the others in A's district.
sql "$TEST_DB" >/dev/null <<-EOF
	SET session_replication_role = replica;
	INSERT INTO og.case
	SELECT (jsonb_populate_record(c, jsonb_build_object(
	          'case_id', '$DIST-' || lpad((500000 + g)::text, 8, '0'),
	          'source_event_id', 'fill-' || g, 'title', '楼道扶手松动, 已修复 ' || g))).*
	  FROM og.case c, generate_series(1, $FILL) g WHERE c.case_id = '$B';
	INSERT INTO og.case_report
	SELECT (jsonb_populate_record(r, jsonb_build_object(
	          'case_id', '$DIST-' || lpad((500000 + g)::text, 8, '0'),
	          'source_event_id', 'fill-' || g))).*
	  FROM og.case_report r, generate_series(1, $FILL) g
	 WHERE r.case_id = '$B' AND r.joined = 'opened';
	ANALYZE og.case, og.case_report;
EOF
# Nor does its start read them (migration 030's indexes): the rows PostgreSQL's sequential
# scans of og.case and og.case_report returned while it started, counted once its session
# is gone (a session's counts are flushed when it ends, before it leaves pg_stat_activity).
# Before, it read every case of the shard twice, and every report as the plan fell. Other
# sessions' counts may land in the window (a session that ended a transaction less than a
# second after its last flush keeps them up to 10 s), but they are of the few rows these
# tables held before the fill: a tenth of it is far above them, and far below one scan.
# (Here the merged reports are read through og.case_report's index of case_id, for the one
# open case; with many open, the planner read all of og.case_report, which 030's index of
# the merged reports spares. The bench shows that: tests/bench/volume.)
seq_read() {
	sql "$TEST_DB" "SELECT sum(seq_tup_read) FROM pg_stat_user_tables
	                WHERE relid IN ('og.case'::regclass, 'og.case_report'::regclass)"
}
dispatch_gone() { [[ -z $(og_backend_pids "$TEST_DB" onegrid-dispatch) ]]; }
og_stop dispatch "$TEST_DIR"
og_poll 30 dispatch_gone || fail "dispatch's session ended"
SEQ_BEFORE=$(seq_read)
og_start dispatch "$TEST_DIR"
assert_match "with $FILL more closed cases it still holds only the open one" \
	"epoch $(sql "$TEST_DB" "SELECT epoch FROM og.dispatch_epoch"): .* 1 cases open" \
	"$(cat "$TEST_DIR/dispatch.log")"
RSS_MANY=$(dispatch_rss)
og_stop dispatch "$TEST_DIR"
og_poll 30 dispatch_gone || fail "dispatch's session ended"
SEQ_READ=$(($(seq_read) - SEQ_BEFORE))
echo "# rows sequential scans of og.case and og.case_report returned while dispatch started: $SEQ_READ"
assert_le "dispatch's start read no closed case (at most $((FILL / 10)) rows by sequential scans; a scan reads $FILL)" \
	"$((FILL / 10))" "$SEQ_READ"
og_start dispatch "$TEST_DIR"
echo "# dispatch's peak resident set at start-up: $RSS_FEW kB with 4 closed cases, $RSS_MANY kB with $((FILL + 4))"
assert_le "closed cases cost dispatch no memory: $((RSS_MANY - RSS_FEW)) kB more for $FILL (at most 4 MiB)" \
	4096 "$((RSS_MANY - RSS_FEW))"
# Numbering goes on above the highest number, though no closed case is in memory.
report rep-new zongzhi "${OTHER[1]}" facility.streetlight >"$TEST_DIR/new.jsonl"
publish new
assert_eq "a new case is numbered after every closed one" "$DIST-$(printf %08d $((500000 + FILL + 1)))" "$(case_of rep-new)"

# Events on closed cases: read back from the database, answered as before.
{
	evaluation ev-b "$B" RESULT_SATISFIED
	evaluation ev-a "$A" RESULT_UNSATISFIED
	status st-c "$C" STATUS_ACCEPTED
	meeting_close mt-c "$C"
	split sp-c "$C" 12345 call-a
	evaluation ev-x "$DIST-99999999" RESULT_SATISFIED
} >"$TEST_DIR/closed.jsonl"
publish closed
assert_eq "some refused: exit 3" 3 "$rc"
assert_match "a satisfied evaluation of a closed case is stored" '"outcome":"stored"' "$(answer ev-b)"
assert_eq "B is evaluated, closed when its unit closed it" "evaluated|t" \
	"$(sql "$TEST_DB" "SELECT state, closed_at IS NOT NULL FROM og.case WHERE case_id = '$B'")"
assert_eq "the decision records the step from closed" "closed>evaluated" \
	"$(sql "$TEST_DB" "SELECT (detail->>'previous_state') || '>' || (detail->>'state') FROM og.ledger
	                   WHERE kind = 'decision' AND source_event_id = 'ev-b'")"
assert_match "an unsatisfied evaluation is stored" '"outcome":"stored"' "$(answer ev-a)"
assert_eq "A is reopened for its unit, on a new clock" "dispatched|$(unit_of "$A")|t|" \
	"$(sql "$TEST_DB" "SELECT state, unit_code, deadline_at > now(), closed_at FROM og.case WHERE case_id = '$A'")"
assert_match "a status update of a closed case: INVALID_TRANSITION, as before" \
	"REASON_INVALID_TRANSITION.*STATUS_ACCEPTED is not allowed when the case is closed" "$(answer st-c)"
assert_match "a meeting on a closed case: INVALID_TRANSITION, as before" \
	"REASON_INVALID_TRANSITION.*$C is closed, not in the demand list" "$(answer mt-c)"
assert_match "a split of a closed case: INVALID_TRANSITION, as before" \
	"REASON_INVALID_TRANSITION.*$C is closed" "$(answer sp-c)"
assert_match "an unknown case: UNKNOWN_CASE" '"reason":"REASON_UNKNOWN_CASE"' "$(answer ev-x)"

# The reopened case is open again: its unit takes it up, its merged call splits off.
{
	status st-a "$A" STATUS_ACCEPTED
	split sp-a "$A" 12345 call-a
	status st-b "$B" STATUS_ACCEPTED
} >"$TEST_DIR/reopened.jsonl"
publish reopened
assert_match "the reopened case's unit accepts it again" '"outcome":"stored"' "$(answer st-a)"
assert_eq "A is accepted" accepted "$(state "$A")"
assert_match "the call merged before A closed splits off" '"outcome":"stored"' "$(answer sp-a)"
SPLIT=$(case_of sp-a)
assert_eq "into a case of its own; A keeps one contact" "dispatched|1" \
	"$(sql "$TEST_DB" "SELECT (SELECT state FROM og.case WHERE case_id = '$SPLIT') || '|' || contacts
	                   FROM og.case WHERE case_id = '$A'")"
assert_match "an evaluated case takes no status update" \
	"REASON_INVALID_TRANSITION.*not allowed when the case is evaluated" "$(answer st-b)"

# A database error while D is read back: held, then decided; nothing refused for it.
PID=$(<"$TEST_DIR/dispatch.pid")
LOG_AT=$(stat -c %s "$TEST_DIR/dispatch.log")
sql "$TEST_DB" "REVOKE SELECT ON og.case FROM onegrid_reader"
on_exit "$PG_BIN/psql -XAtq -d $TEST_DB -c 'GRANT SELECT ON og.case TO onegrid_reader' >/dev/null 2>&1 || true"
evaluation ev-d "$D" RESULT_SATISFIED >"$TEST_DIR/fault.jsonl"
publish fault &
PUB=$!
held() { log_since "$LOG_AT" | grep -q 'database unavailable, holding .*permission denied for table case'; }
og_poll 30 held || fail "dispatch holds the evaluation while it cannot read case $D"
pass "dispatch holds the evaluation while it cannot read case $D"
sleep 3 # a few more attempts, each one failing
sql "$TEST_DB" "GRANT SELECT ON og.case TO onegrid_reader"
wait "$PUB" || true
assert_match "then it is stored" '"outcome":"stored"' "$(answer ev-d)"
assert_eq "D is evaluated" evaluated "$(state "$D")"
assert_eq "nothing refused for it" 0 "$(sql "$TEST_DB" "SELECT count(*) FROM og.rejection WHERE source_event_id = 'ev-d'")"
assert_match "dispatch says the database is back" "database available again" "$(log_since "$LOG_AT")"
assert_eq "the same dispatch all along" "$PID" "$(<"$TEST_DIR/dispatch.pid")"

rc=0
out=$("$ONEGRID_BIN/onegridctl" audit verify --db "dbname=$TEST_DB user=onegrid_audit" 2>&1) || rc=$?
assert_eq "the record verifies: $out" 0 "$rc"
