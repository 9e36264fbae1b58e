#!/usr/bin/env bash
# 最多跑一次: the seed's handrail request reported by a household liaison head's visit
# (综治 grid, with coordinates) and then by a 12345 call (which knows only the community)
# becomes one case with two contacts; reports that are not the same problem open cases of
# their own: another category, another community, too far away, a case already resolved.
# After a dispatch restart a new report still finds its case (position reloaded).
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"

test_begin "merge"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
sed -i 's/^merge_window_hours = 0$/merge_window_hours = 72\nmerge_distance_m = 150/' "$TEST_DIR/onegrid.conf"
og_start_all "$TEST_DIR"
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
# 沁苑社区 and a neighbouring community, each with a zongzhi grid and a 12345 community id.
read -r ZZ QY < <(sql "$TEST_DB" "SELECT x.source_grid_id, left(x.area_code, 12) FROM og.grid_crosswalk x
                                   JOIN og.area a ON a.code = left(x.area_code, 12)
                                   WHERE x.source_system = 'zongzhi' AND a.name = '沁苑社区' LIMIT 1" | tr '|' ' ')
RX=$(sql "$TEST_DB" "SELECT source_grid_id FROM og.grid_crosswalk WHERE source_system = '12345' AND area_code = '$QY' ORDER BY 1 LIMIT 1")
ZZ_OTHER=$(sql "$TEST_DB" "SELECT source_grid_id FROM og.grid_crosswalk WHERE source_system = 'zongzhi'
                           AND left(area_code, 12) <> '$QY' ORDER BY 1 LIMIT 1")
report() { # report ID SOURCE SUBJECT CATEGORY CHANNEL [LAT LON]; $WHEN overrides the time
	local loc=
	[[ -n ${6:-} ]] && loc=",\"location\":{\"latitude\":$6,\"longitude\":$7}"
	printf '{"id":"%s","source":"%s","type":"report","time":"%s","subject":"%s"%s,"report":{"category":"%s","title":"单元门前需要扶手","description":"老人腿脚不便","channel":"%s"}}\n' \
		"$1" "$2" "${WHEN:-$NOW}" "$3" "$loc" "$4" "$5"
}
publish() {
	"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --results "$TEST_DIR/$1.out" \
		"$TEST_DIR/$1.jsonl" >"$TEST_DIR/$1.txt" 2>&1
}
case_of() { grep -h "\"id\":\"$1\"" "$TEST_DIR"/*.out | grep -o '"case_id":"[^"]*"' | cut -d'"' -f4; }

{
	report visit-1 zongzhi "$ZZ" facility.handrail CHANNEL_DOOR_VISIT 45.5960 84.8800
	report call-1 12345 "$RX" facility.handrail CHANNEL_HOTLINE
	report near-1 zongzhi "$ZZ" facility.handrail CHANNEL_GRID_PATROL 45.5965 84.8805
	report other-cat zongzhi "$ZZ" facility.streetlight CHANNEL_GRID_PATROL 45.5960 84.8800
	report other-com zongzhi "$ZZ_OTHER" facility.handrail CHANNEL_GRID_PATROL
	report far-1 zongzhi "$ZZ" facility.handrail CHANNEL_GRID_PATROL 45.6100 84.9000
	# The window compares when the reports say it happened: 71 h apart joins, 73 h not.
	WHEN=$(date -u -d '-71 hours' +%Y-%m-%dT%H:%M:%SZ) report early-in 12345 "$RX" facility.handrail CHANNEL_HOTLINE
} >"$TEST_DIR/day1.jsonl"
WHEN=$(date -u -d '-73 hours' +%Y-%m-%dT%H:%M:%SZ) report early-out 12345 "$RX" facility.handrail CHANNEL_HOTLINE \
	>>"$TEST_DIR/day1.jsonl"
publish day1
CASE=$(case_of visit-1)
assert_eq "the 12345 call joins the liaison's case" "$CASE" "$(case_of call-1)"
assert_eq "a patrol 70 m away joins it too" "$CASE" "$(case_of near-1)"
assert_eq "all four answered with that case" 4 "$(grep -c "\"case_id\":\"$CASE\".*\|\"outcome\":\"stored\",\"case_id\":\"$CASE\"" "$TEST_DIR/day1.out")"
assert_eq "a report 71 hours earlier joins" "$CASE" "$(case_of early-in)"
[[ $(case_of early-out) != "$CASE" ]] || fail "a report 73 hours earlier must not join"
pass "a report 73 hours earlier does not"
assert_eq "the case counts four contacts" 4 "$(sql "$TEST_DB" "SELECT contacts FROM og.case WHERE case_id = '$CASE'")"
for r in other-cat other-com far-1; do
	[[ $(case_of $r) != "$CASE" && -n $(case_of $r) ]] || fail "$r should have its own case"
done
pass "another category, another community, 2 km away: cases of their own"
assert_eq "five cases for eight reports" 5 "$(sql "$TEST_DB" "SELECT count(*) FROM og.case")"
assert_eq "the merges are recorded, as the auditor sees them" "12345 call-1 2|zongzhi near-1 3|12345 early-in 4" \
	"$("$PG_BIN/psql" -XAtq -d "$TEST_DB" -U onegrid_audit -c \
		"SELECT string_agg(source_system || ' ' || source_event_id || ' ' || contacts_after, '|' ORDER BY ledger_id)
		 FROM audit.\"合并记录\" WHERE case_id = '$CASE'")"

# After a restart the case (and its position) is reloaded: a new nearby report still joins.
og_stop dispatch "$TEST_DIR"
og_start dispatch "$TEST_DIR"
report visit-2 zongzhi "$ZZ" facility.handrail CHANNEL_DOOR_VISIT 45.5961 84.8801 >"$TEST_DIR/day2.jsonl"
report far-2 zongzhi "$ZZ" facility.handrail CHANNEL_DOOR_VISIT 45.6100 84.9000 >>"$TEST_DIR/day2.jsonl"
publish day2
assert_eq "after a restart a report nearby still joins" "$CASE" "$(case_of visit-2)"
assert_eq "and one far away joins the far case" "$(case_of far-1)" "$(case_of far-2)"

# A resolved case takes no more reports.
UNIT=$(sql "$TEST_DB" "SELECT unit_code FROM og.case WHERE case_id = '$CASE'")
for s in STATUS_ACCEPTED STATUS_RESOLVED; do
	printf '{"id":"st-%s","source":"zongzhi","type":"status","time":"%s","status":{"case_id":"%s","status":"%s","unit":"%s"}}\n' \
		"$s" "$NOW" "$CASE" "$s" "$UNIT"
done >"$TEST_DIR/handle.jsonl"
publish handle
report visit-3 zongzhi "$ZZ" facility.handrail CHANNEL_DOOR_VISIT 45.5960 84.8800 >"$TEST_DIR/day3.jsonl"
publish day3
[[ $(case_of visit-3) != "$CASE" ]] || fail "a report after the case was resolved must open a new case"
pass "once resolved, the case takes no more reports"
# Closed, then reopened by an unsatisfied evaluation: open again, it takes reports again.
for st in STATUS_CHECKED_OK STATUS_CLOSED; do
	printf '{"id":"st-%s","source":"zongzhi","type":"status","time":"%s","status":{"case_id":"%s","status":"%s","unit":"%s"}}\n' \
		"$st" "$NOW" "$CASE" "$st" "$UNIT"
done >"$TEST_DIR/close.jsonl"
printf '{"id":"eval-1","source":"12345","type":"evaluation","time":"%s","evaluation":{"case_id":"%s","result":"RESULT_UNSATISFIED"}}\n' \
	"$NOW" "$CASE" >>"$TEST_DIR/close.jsonl"
# visit-3's case was filed twice, in effect: void it, so the reopened case is the only
# open case of this problem.
printf '{"id":"void-3","source":"zongzhi","type":"status","time":"%s","status":{"case_id":"%s","status":"STATUS_VOIDED","unit":"%s"}}\n' \
	"$NOW" "$(case_of visit-3)" "$(sql "$TEST_DB" "SELECT unit_code FROM og.case WHERE case_id = '$(case_of visit-3)'")" \
	>>"$TEST_DIR/close.jsonl"
publish close
assert_eq "reopened" dispatched "$(sql "$TEST_DB" "SELECT state FROM og.case WHERE case_id = '$CASE'")"
report visit-4 zongzhi "$ZZ" facility.handrail CHANNEL_DOOR_VISIT 45.5960 84.8800 >"$TEST_DIR/day4.jsonl"
publish day4
assert_eq "a reopened case takes reports again, without a restart" "$CASE" "$(case_of visit-4)"
assert_eq "the record verifies" 0 \
	"$("$ONEGRID_BIN/onegridctl" audit verify --db "dbname=$TEST_DB user=onegrid_audit" >/dev/null; echo $?)"
assert_eq "the projection rebuilds from the ledger" 0 \
	"$("$ONEGRID_BIN/onegridctl" rebuild-cases --db "dbname=$TEST_DB" >/dev/null; echo $?)"
