#!/usr/bin/env bash
# An event that waits because dispatch could not read its (closed) case from the database
# keeps its room on the way to archive: the escalation scan, which goes on meanwhile, does
# not take it. Before the fix the scan sent escalations into that room; once the database
# was back the waiting event found none ("could not queue a decision for archive") and
# dispatch exited to reload its state: a restart after every such fault, and on a busy
# dispatch after a single escalation.
#
# window = 3 on the link to archive, archive frozen (its answers would free room), three
# gas cases falling due while an evaluation of a closed case waits for og.case to be
# readable again (SELECT revoked from dispatch's role).
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"
source "$(dirname "$0")/../lib/faults.sh"

test_begin "fetch_fault_room"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
# intake resends an unanswered event every resend_ms, and each copy waits in dispatch's
# inbox and keeps room too: one copy here, so that escalations have room beside it.
sed -i -e 's/^\[dispatch\]$/[dispatch]\nescalation_scan_ms = 200\nwindow = 3/' \
	-e 's/^\[intake\]$/[intake]\nresend_ms = 600000/' "$TEST_DIR/onegrid.conf"
if ! grep -q '^window = 3$' "$TEST_DIR/onegrid.conf" || ! grep -q '^resend_ms = 600000$' "$TEST_DIR/onegrid.conf"; then
	fail "set dispatch's window and intake's resend_ms in $TEST_DIR/onegrid.conf"
fi
og_start_all "$TEST_DIR"
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
# dispatch's day: yesterday, whatever today is (gas falls due in two hours, not working
# hours, so the weekday does not matter).
DAY=$(date -u -d '1 day ago' +%F)
og_restart_at dispatch "$TEST_DIR" "$DAY 10:00:00"

GRID=$(sql "$TEST_DB" "SELECT source_grid_id FROM og.grid_crosswalk x JOIN og.area a ON a.code = x.area_code
                       WHERE x.source_system = 'iot' AND a.level = 'grid' ORDER BY 1 LIMIT 1")
ZZ=$(sql "$TEST_DB" "SELECT source_grid_id FROM og.grid_crosswalk WHERE source_system = 'zongzhi' ORDER BY 1 LIMIT 1")
alert() { og_gas_alert "$1" "$NOW" "$GRID"; }
publish() { rc=0; og_publish_named "$TEST_DIR" "$1" || rc=$?; } # publish NAME: its exit status in $rc
case_of() { og_case_of "$TEST_DIR" "$1"; }
{
	printf '{"id":"rep-x","source":"zongzhi","type":"report","time":"%s","subject":"%s","report":{"category":"facility.handrail","title":"扶手松动","channel":"CHANNEL_GRID_PATROL"}}\n' "$NOW" "$ZZ"
	alert g1
	alert g2
	alert g3
} >"$TEST_DIR/open.jsonl"
publish open
assert_eq "a report and three gas alerts stored" 0 "$rc"
X=$(case_of rep-x)
og_close_events "$TEST_DB" "$X" "$NOW" x >"$TEST_DIR/close.jsonl"
publish close
assert_eq "the report's case closed" "0|closed" "$rc|$(sql "$TEST_DB" "SELECT state FROM og.case WHERE case_id = '$X'")"
assert_eq "the gas cases are open, none escalated" "3|0" \
	"$(sql "$TEST_DB" "SELECT count(*), sum(escalation_level) FROM og.case WHERE category_code = 'hazard.gas'")"

# dispatch 20 s before the gas cases fall due (12:00 on its clock), time enough for the
# evaluation to be waiting first on a busy machine; the closed case is not in its memory.
og_restart_at dispatch "$TEST_DIR" "$DAY 11:59:40"
DPID=$(<"$TEST_DIR/dispatch.pid")
LOG_AT=$(stat -c %s "$TEST_DIR/dispatch.log")
since() { tail -c +"$((LOG_AT + 1))" "$TEST_DIR/dispatch.log"; }
APID=$(<"$TEST_DIR/archive.pid")
kill -STOP "$APID"
on_exit "kill -CONT $APID 2>/dev/null || true"
sql "$TEST_DB" "REVOKE SELECT ON og.case FROM onegrid_reader"
on_exit "$PG_BIN/psql -XAtq -d $TEST_DB -c 'GRANT SELECT ON og.case TO onegrid_reader' >/dev/null 2>&1 || true"
# Behind it, a joint meeting's decision waits too (refused once decided: no such case). A
# scan looked for a status update's case id in every waiting event, and read a meeting
# decision's count of cases as one: dispatch crashed (review).
{
	printf '{"id":"ev-x","source":"12345","type":"evaluation","time":"%s","evaluation":{"case_id":"%s","result":"RESULT_SATISFIED"}}\n' \
		"$NOW" "$X"
	printf '{"id":"meet-x","source":"dangjian","type":"decision","time":"%s","decision":{"case_ids":["650204-99999999"],"action":"ACTION_CLOSE","minutes_ref":"联席会纪要"}}\n' \
		"$NOW"
} >"$TEST_DIR/ev.jsonl"
publish ev &
pub=$!
on_exit "kill $pub 2>/dev/null || true"
og_poll 30 bash -c "tail -c +$((LOG_AT + 1)) '$TEST_DIR/dispatch.log' | grep -q 'database unavailable, holding'" ||
	fail "dispatch holds the evaluation while it cannot read the case: $(since | tail -n 5)"
pass "dispatch holds the evaluation while it cannot read the case"
# The gas cases fall due while the evaluation waits: as many escalate as the window has
# room for beside it (3 - 1); the third waits for a later scan.
og_poll 60 bash -c "tail -c +$((LOG_AT + 1)) '$TEST_DIR/dispatch.log' | grep -q '督办: case'" ||
	fail "the gas cases escalate while the evaluation waits: $(since | tail -n 5)"
pass "the gas cases escalated while the evaluation waits"

# The case readable again while archive is still frozen (its answers would free room):
# dispatch decides the evaluation into the room it kept.
sql "$TEST_DB" "GRANT SELECT ON og.case TO onegrid_reader"
og_poll 30 bash -c "tail -c +$((LOG_AT + 1)) '$TEST_DIR/dispatch.log' | grep -q -e 'database available again' -e 'could not queue'" ||
	fail "dispatch reads the case again: $(since | tail -n 5)"
kill -CONT "$APID"
# The publisher has its answer, or dispatch is gone (before the fix it exited, and nothing
# here starts it again).
og_poll 60 bash -c "! kill -0 $pub 2>/dev/null || ! kill -0 $DPID 2>/dev/null" || true
kill "$pub" 2>/dev/null || true
wait "$pub" || true
assert_eq "the evaluation is answered stored" 1 "$(grep -c '"outcome":"stored"' "$TEST_DIR/ev.out" || true)"
assert_eq "the case is evaluated" evaluated "$(sql "$TEST_DB" "SELECT state FROM og.case WHERE case_id = '$X'")"
gas_escalated="SELECT count(*) FROM og.case WHERE category_code = 'hazard.gas' AND escalation_level >= 1"
og_poll 30 bash -c "[[ \$('$PG_BIN/psql' -XAtq -d '$TEST_DB' -c \"$gas_escalated\") == 3 ]]" || true
assert_eq "each gas case escalated" 3 "$(sql "$TEST_DB" "$gas_escalated")"
assert_eq "dispatch did not exit to reload its state" "" "$(since | grep 'could not queue a decision' || true)"
assert_eq "the same dispatch runs" "$DPID" "$(kill -0 "$DPID" 2>/dev/null && echo "$DPID")"
