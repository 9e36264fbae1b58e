#!/usr/bin/env bash
# 督办: a gas hazard (2 hours to handle) that nobody handles escalates to the community at
# its deadline, to the street two hours later and to the district two hours after that,
# once per level, however often dispatch restarts; a handled case stops escalating. The
# clock is dispatch's, set with faketime, so the test does not wait for hours. A returned
# case's clock colour measures its new time limit from when that clock started.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"

test_begin "escalation"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
sed -i 's/^\[dispatch\]$/[dispatch]\nescalation_scan_ms = 100/' "$TEST_DIR/onegrid.conf"
dispatch_at() { # dispatch_at "YYYY-MM-DD HH:MM:SS" (UTC), then let it scan
	og_restart_at dispatch "$TEST_DIR" "$1"
	sleep 1.5
}
levels() { sql "$TEST_DB" "SELECT string_agg(level || ':' || coalesce(supervisor_unit, '-'), ' ' ORDER BY level)
                           FROM audit.escalations WHERE case_id = '$1'"; }
# levels_reach CASE EXPECTED: waits (30 s at most) until CASE's escalations are EXPECTED,
# then prints them: an escalation is stored a moment after dispatch's scan decides it.
levels_reach() {
	local i
	for ((i = 0; i < 300; i++)); do
		[[ $(levels "$1") == "$2" ]] && break
		sleep 0.1
	done
	levels "$1"
}
og_start_all "$TEST_DIR"
GRID=$(sql "$TEST_DB" "SELECT source_grid_id FROM og.grid_crosswalk x JOIN og.area a ON a.code = x.area_code
                       WHERE x.source_system = 'iot' AND a.level = 'grid' ORDER BY 1 LIMIT 1")
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
alert() { # alert ID [SEVERITY]
	printf '{"id":"%s","source":"iot","type":"sensor_alert","time":"%s","subject":"%s","sensor_alert":{"category":"hazard.gas","sensor_id":"GAS-%s","title":"燃气浓度超限","urgency":"URGENCY_IMMEDIATE","severity":"%s","certainty":"CERTAINTY_OBSERVED","reading":"CH4 2.3 %%LEL"}}\n' \
		"$1" "$NOW" "$GRID" "$1" "${2:-SEVERITY_SEVERE}"
}

dispatch_at "2026-11-16 10:00:00"
{ alert gas-1; alert gas-2; } >"$TEST_DIR/alerts.jsonl"
# CAP severity sets the limit where the catalogue says so (sample: extreme 1 h, minor 24 h).
{ alert gas-x SEVERITY_EXTREME; alert gas-m SEVERITY_MINOR; } >"$TEST_DIR/severity.jsonl"
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --results "$TEST_DIR/a.out" \
	"$TEST_DIR/alerts.jsonl" >/dev/null
CASE1=$(grep -o '"id":"gas-1".*"case_id":"[^"]*"' "$TEST_DIR/a.out" | grep -o '[0-9]\{6\}-[0-9]*')
CASE2=$(grep -o '"id":"gas-2".*"case_id":"[^"]*"' "$TEST_DIR/a.out" | grep -o '[0-9]\{6\}-[0-9]*')
AREA=$(sql "$TEST_DB" "SELECT area_code FROM og.case WHERE case_id = '$CASE1'")
UNIT=$(sql "$TEST_DB" "SELECT unit_code FROM og.case WHERE case_id = '$CASE2'")
assert_eq "due two hours after filing" "2026-11-16 12:00:00+00" \
	"$(sql "$TEST_DB" "SELECT date_trunc('minute', deadline_at) FROM og.case WHERE case_id = '$CASE1'")"
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --results "$TEST_DIR/s.out" \
	"$TEST_DIR/severity.jsonl" >/dev/null
assert_eq "an extreme leak is due in one hour, a minor one in 24" \
	"gas-m 2026-11-17 10:00:00+00|gas-x 2026-11-16 11:00:00+00" \
	"$(sql "$TEST_DB" "SELECT string_agg(source_event_id || ' ' || date_trunc('minute', deadline_at), '|'
	                   ORDER BY source_event_id) FROM og.case WHERE source_event_id IN ('gas-x', 'gas-m')")"

dispatch_at "2026-11-16 11:00:00"
assert_eq "before the deadline: no escalation" "" "$(levels "$CASE1")"

# Case 2 is handled in time: accepted and resolved at 11:00.
printf '%s\n' \
	"{\"id\":\"st-1\",\"source\":\"zongzhi\",\"type\":\"status\",\"time\":\"$NOW\",\"status\":{\"case_id\":\"$CASE2\",\"status\":\"STATUS_ACCEPTED\",\"unit\":\"$UNIT\"}}" \
	"{\"id\":\"st-2\",\"source\":\"zongzhi\",\"type\":\"status\",\"time\":\"$NOW\",\"status\":{\"case_id\":\"$CASE2\",\"status\":\"STATUS_RESOLVED\",\"unit\":\"$UNIT\"}}" \
	>"$TEST_DIR/handle.jsonl"
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" "$TEST_DIR/handle.jsonl" >/dev/null

dispatch_at "2026-11-16 12:30:00"
assert_eq "past the deadline: escalated to the community's 两委" "1:CU-${AREA:0:12}" "$(levels_reach "$CASE1" "1:CU-${AREA:0:12}")"
dispatch_at "2026-11-16 12:45:00"
assert_eq "a restart does not escalate twice" "1:CU-${AREA:0:12}" "$(levels_reach "$CASE1" "1:CU-${AREA:0:12}")"
dispatch_at "2026-11-16 14:10:00"
assert_eq "two hours on: the street office" "1:CU-${AREA:0:12} 2:ST-${AREA:0:9}" "$(levels_reach "$CASE1" "1:CU-${AREA:0:12} 2:ST-${AREA:0:9}")"
dispatch_at "2026-11-16 20:00:00"
assert_eq "then the district's grid centre, once per level" \
	"1:CU-${AREA:0:12} 2:ST-${AREA:0:9} 3:GC-${AREA:0:6}" \
	"$(levels_reach "$CASE1" "1:CU-${AREA:0:12} 2:ST-${AREA:0:9} 3:GC-${AREA:0:6}")"
assert_eq "the case shows its level and supervisor" "3|GC-${AREA:0:6}|dispatched" \
	"$(sql "$TEST_DB" "SELECT escalation_level, supervisor_unit, state FROM og.case WHERE case_id = '$CASE1'")"
assert_eq "the handled case never escalated" "" "$(levels "$CASE2")"
assert_eq "restarted dispatches knew the levels reached (no level attempted twice)" 3 \
	"$(grep -c "case $CASE1 is overdue; escalated" "$TEST_DIR/dispatch.log")"
assert_eq "its clock is red, as the auditor sees it" red \
	"$("$PG_BIN/psql" -XAtq -d "$TEST_DB" -U onegrid_audit -c "SELECT colour FROM audit.\"案件时钟\" WHERE case_id = '$CASE1'")"
assert_eq "escalations are ledger events of their own, one each" 3 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key WHERE source_system = 'onegrid' AND case_id = '$CASE1'")"
# Supervision starts over with a new clock: the unit returns the case (退回), it is
# re-routed on a new 2-hour clock, and when that passes too it escalates again from level
# 1. (Its escalation ids were "esc-<case>-<level>": the second level 1 was a duplicate of
# the first and never stored; at archive it even hit og.stored_outcome, not callable by
# og.store_event's owner, and held archive's batch for ever.)
HOLDER=$(sql "$TEST_DB" "SELECT unit_code FROM og.case WHERE case_id = '$CASE1'")
SRC=$(sql "$TEST_DB" "SELECT og.unit_source('$HOLDER')")
printf '{"id":"ret-1","source":"%s","type":"status","time":"%s","status":{"case_id":"%s","status":"STATUS_RETURNED","unit":"%s","note":"不属于本单位职责"}}\n' \
	"$SRC" "$NOW" "$CASE1" "$HOLDER" >"$TEST_DIR/return.jsonl"
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --results "$TEST_DIR/ret.out" \
	"$TEST_DIR/return.jsonl" >/dev/null
assert_eq "returned and re-routed: supervision starts over" "0|dispatched" \
	"$(sql "$TEST_DB" "SELECT escalation_level, state FROM og.case WHERE case_id = '$CASE1'")"
dispatch_at "2026-11-16 23:00:00"
assert_eq "its new clock passed too: escalated again from the community" \
	"1:CU-${AREA:0:12} 1:CU-${AREA:0:12} 2:ST-${AREA:0:9} 3:GC-${AREA:0:6}" \
	"$(levels_reach "$CASE1" "1:CU-${AREA:0:12} 1:CU-${AREA:0:12} 2:ST-${AREA:0:9} 3:GC-${AREA:0:6}")"
assert_eq "four escalations on record" 4 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key WHERE source_system = 'onegrid' AND case_id = '$CASE1'")"
# Its new holder returns it too, and nobody is left to take it: it waits, returned, on the
# clock it had, and its supervision runs on with it. (It started over at level 0 under the
# same deadline: the next scan's level 1 was a duplicate of the one already stored, never
# stored itself, and the record stayed at level 0 while dispatch logged level after level.)
HOLDER=$(sql "$TEST_DB" "SELECT unit_code FROM og.case WHERE case_id = '$CASE1'")
printf '{"id":"ret-2","source":"%s","type":"status","time":"%s","status":{"case_id":"%s","status":"STATUS_RETURNED","unit":"%s","note":"不属于本单位职责"}}\n' \
	"$(sql "$TEST_DB" "SELECT og.unit_source('$HOLDER')")" "$NOW" "$CASE1" "$HOLDER" >"$TEST_DIR/return2.jsonl"
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" "$TEST_DIR/return2.jsonl" >/dev/null
assert_eq "returned by every unit: nobody holds it, its supervision stays" "returned|-|1|CU-${AREA:0:12}" \
	"$(sql "$TEST_DB" "SELECT state, coalesce(unit_code, '-'), escalation_level, supervisor_unit FROM og.case WHERE case_id = '$CASE1'")"
dispatch_at "2026-11-17 00:30:00"
assert_eq "and it escalates on to the street, stored" \
	"1:CU-${AREA:0:12} 1:CU-${AREA:0:12} 2:ST-${AREA:0:9} 2:ST-${AREA:0:9} 3:GC-${AREA:0:6}|2" \
	"$(levels_reach "$CASE1" "1:CU-${AREA:0:12} 1:CU-${AREA:0:12} 2:ST-${AREA:0:9} 2:ST-${AREA:0:9} 3:GC-${AREA:0:6}")|$(sql "$TEST_DB" "SELECT escalation_level FROM og.case WHERE case_id = '$CASE1'")"
assert_eq "dispatch never found the record behind its memory" 0 \
	"$(grep -c 'already, from an earlier decision' "$TEST_DIR/dispatch.log" || true)"
# The clock's colours (案件时钟) measure the time limit from when the clock started, not
# from the filing: a gas alert filed 30 hours ago and returned 10 minutes ago runs on a new
# 2-hour clock, 10 minutes of 120 used: green. Measured from its filing (before 025) it was
# yellow the moment it was re-routed. The auditor's view reads the database's clock, so
# these times are today's.
dispatch_at "$(date -u -d '-30 hours' '+%Y-%m-%d %H:%M:%S')"
alert gas-3 >"$TEST_DIR/gas3.jsonl"
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --results "$TEST_DIR/g3.out" \
	"$TEST_DIR/gas3.jsonl" >/dev/null
CASE3=$(grep -o '"case_id":"[0-9]\{6\}-[0-9]*' "$TEST_DIR/g3.out" | grep -o '[0-9]\{6\}-[0-9]*')
HOLDER3=$(sql "$TEST_DB" "SELECT unit_code FROM og.case WHERE case_id = '$CASE3'")
dispatch_at "$(date -u -d '-10 minutes' '+%Y-%m-%d %H:%M:%S')"
printf '{"id":"ret-3","source":"%s","type":"status","time":"%s","status":{"case_id":"%s","status":"STATUS_RETURNED","unit":"%s","note":"不属于本单位职责"}}\n' \
	"$(sql "$TEST_DB" "SELECT og.unit_source('$HOLDER3')")" "$NOW" "$CASE3" "$HOLDER3" >"$TEST_DIR/return3.jsonl"
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" "$TEST_DIR/return3.jsonl" >/dev/null
assert_eq "re-routed on a new clock, started minutes ago, a day after the filing" "dispatched|t|t" \
	"$(sql "$TEST_DB" "SELECT state, clock_started_at > now() - interval '1 hour',
	                          clock_started_at > opened_at + interval '1 day' FROM og.case WHERE case_id = '$CASE3'")"
assert_eq "its clock is green: 10 minutes of its 2 hours used" green \
	"$("$PG_BIN/psql" -XAtq -d "$TEST_DB" -U onegrid_audit -c "SELECT colour FROM audit.\"案件时钟\" WHERE case_id = '$CASE3'")"

assert_eq "the record verifies" 0 \
	"$("$ONEGRID_BIN/onegridctl" audit verify --db "dbname=$TEST_DB user=onegrid_audit" >/dev/null; echo $?)"
assert_eq "the projection rebuilds from the ledger" 0 \
	"$("$ONEGRID_BIN/onegridctl" rebuild-cases --db "dbname=$TEST_DB" >/dev/null; echo $?)"
