#!/usr/bin/env bash
# The escalation scan passes over a case that a status update waiting in dispatch's inbox
# names. Here an extension request received before its case's deadline waits behind an
# event dispatch cannot decide yet (an evaluation of a closed case while og.case cannot be
# read): the case falls due meanwhile. Escalated by the scan, it would carry an escalation
# (督办) for a deadline its unit asked to move in time; the request, decided once the
# database is back, is judged as of when intake received it and pauses the clock.
#
# intake and dispatch run on one faked clock (yesterday, 11:59:40, 20 s of margin
# against 12:00), so the request's receipt and the deadline compare as on one machine. A
# second gas case, with no request, falls due beside it: the scan did run.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"
source "$(dirname "$0")/../lib/faults.sh"

test_begin "scan_waiting_request"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
sed -i -e 's/^\[dispatch\]$/[dispatch]\nescalation_scan_ms = 200/' \
	-e 's/^\[intake\]$/[intake]\nresend_ms = 600000/' "$TEST_DIR/onegrid.conf"
grep -q '^escalation_scan_ms = 200$' "$TEST_DIR/onegrid.conf" || fail "set escalation_scan_ms in $TEST_DIR/onegrid.conf"
og_start_all "$TEST_DIR"
# yesterday, whatever today is (gas falls due in two hours, not working hours, so the
# weekday does not matter)
DAY=$(date -u -d '1 day ago' +%F)
og_restart_at dispatch "$TEST_DIR" "$DAY 10:00:00"

GRID=$(sql "$TEST_DB" "SELECT source_grid_id FROM og.grid_crosswalk x JOIN og.area a ON a.code = x.area_code
                       WHERE x.source_system = 'iot' AND a.level = 'grid' ORDER BY 1 LIMIT 1")
ZZ=$(sql "$TEST_DB" "SELECT source_grid_id FROM og.grid_crosswalk WHERE source_system = 'zongzhi' ORDER BY 1 LIMIT 1")
T0="${DAY}T09:59:00Z"
publish() { rc=0; og_publish_named "$TEST_DIR" "$1" || rc=$?; } # publish NAME: its exit status in $rc
case_of() { og_case_of "$TEST_DIR" "$1"; }
{
	printf '{"id":"rep-x","source":"zongzhi","type":"report","time":"%s","subject":"%s","report":{"category":"facility.handrail","title":"扶手松动","channel":"CHANNEL_GRID_PATROL"}}\n' "$T0" "$ZZ"
	og_gas_alert g1 "$T0" "$GRID"
	og_gas_alert g2 "$T0" "$GRID"
} >"$TEST_DIR/open.jsonl"
publish open
assert_eq "a report and two gas alerts stored" 0 "$rc"
X=$(case_of rep-x)
G1=$(case_of g1)
G2=$(case_of g2)
[[ -n $X && -n $G1 && -n $G2 && $G1 != "$G2" ]] || fail "three cases: '$X' '$G1' '$G2'"
og_close_events "$TEST_DB" "$X" "$T0" x >"$TEST_DIR/close.jsonl"
publish close
assert_eq "the report's case closed" "0|closed" "$rc|$(sql "$TEST_DB" "SELECT state FROM og.case WHERE case_id = '$X'")"
DUE=$(sql "$TEST_DB" "SELECT deadline_at FROM og.case WHERE case_id = '$G2'")
assert_match "the gas case is due at 12:00 on dispatch's clock" "^$DAY 12:00:" "$DUE"
HOLDER=$(sql "$TEST_DB" "SELECT unit_code FROM og.case WHERE case_id = '$G2'")
HSRC=$(og_unit_source "$TEST_DB" "$HOLDER")
[[ -n $HOLDER && -n $HSRC ]] || fail "no source speaks for the gas case's unit '$HOLDER'"

# Both on one clock, 20 s before the deadline; the closed case is not in dispatch's memory.
og_restart_at intake "$TEST_DIR" "$DAY 11:59:40"
og_restart_at dispatch "$TEST_DIR" "$DAY 11:59:40"
LOG_AT=$(stat -c %s "$TEST_DIR/dispatch.log")
since() { tail -c +"$((LOG_AT + 1))" "$TEST_DIR/dispatch.log"; }
sql "$TEST_DB" "REVOKE SELECT ON og.case FROM onegrid_reader"
on_exit "$PG_BIN/psql -XAtq -d $TEST_DB -c 'GRANT SELECT ON og.case TO onegrid_reader' >/dev/null 2>&1 || true"
{
	printf '{"id":"ev-x","source":"12345","type":"evaluation","time":"%s","evaluation":{"case_id":"%s","result":"RESULT_SATISFIED"}}\n' \
		"$T0" "$X"
	printf '{"id":"ask-g2","source":"%s","type":"status","time":"%s","status":{"case_id":"%s","status":"STATUS_EXTENSION_REQUESTED","unit":"%s","extension_working_days":1,"note":"等待燃气公司抢修"}}\n' \
		"$HSRC" "$T0" "$G2" "$HOLDER"
} >"$TEST_DIR/ask.jsonl"
publish ask &
pub=$!
on_exit "kill $pub 2>/dev/null || true"
og_poll 30 bash -c "tail -c +$((LOG_AT + 1)) '$TEST_DIR/dispatch.log' | grep -q 'database unavailable, holding'" ||
	fail "dispatch holds the evaluation while it cannot read the case: $(since | tail -n 5)"
# The request must have been received before the deadline for this test to mean anything.
og_poll 30 bash -c "tail -c +$((LOG_AT + 1)) '$TEST_DIR/dispatch.log' | grep -q '督办: case $G1'" ||
	fail "the gas case without a request escalates while the request waits: $(since | tail -n 5)"
pass "the gas case without a request escalated while the request waits"
assert_eq "the case whose request waits is not escalated" "" "$(since | grep "督办: case $G2" || true)"

sql "$TEST_DB" "GRANT SELECT ON og.case TO onegrid_reader"
og_poll 60 bash -c "! kill -0 $pub 2>/dev/null" || true
kill "$pub" 2>/dev/null || true
wait "$pub" || true
assert_eq "the evaluation and the request are answered stored" 2 "$(grep -c '"outcome":"stored"' "$TEST_DIR/ask.out" || true)"
# Its clock paused as of when intake received it, before the deadline (on the old dispatch:
# escalated at the scan, then paused all the same, level 1 kept).
assert_eq "its clock is paused as of a receipt before the deadline, never escalated" "t|0" \
	"$(sql "$TEST_DB" "SELECT paused_at < deadline_at AND paused_at > '$DAY 11:59:30+00', escalation_level
	                   FROM og.case WHERE case_id = '$G2'")"
assert_eq "no escalation of it in the record" 0 "$(sql "$TEST_DB" "SELECT count(*) FROM audit.escalations WHERE case_id = '$G2'")"
assert_eq "the other is escalated in the record" 1 "$(sql "$TEST_DB" "SELECT count(*) FROM audit.escalations WHERE case_id = '$G1'")"
