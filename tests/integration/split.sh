#!/usr/bin/env bash
# 拆分: a report merged into a case (最多跑一次) that turns out to be another problem is
# split off by an operator's event. It becomes a case of its own with its own facts (the
# 12345 call's community, title, channel, time), routed on a new clock; the old case
# keeps one contact less; the reporter's contact follows the report. The split is in the
# ledger and in the auditor's views, the projection still rebuilds from the ledger, and
# it works after dispatch restarts (merged reports are reloaded from og.case_report).
# Splitting the report that opened the case, a report of another case, or one split
# already is refused with a reason, and the refusal is recorded.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"

test_begin "split"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
sed -i 's/^merge_window_hours = 0$/merge_window_hours = 72\nmerge_distance_m = 150/' "$TEST_DIR/onegrid.conf"
og_start_all "$TEST_DIR"
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
read -r ZZ QY < <(sql "$TEST_DB" "SELECT x.source_grid_id, left(x.area_code, 12) FROM og.grid_crosswalk x
                                   JOIN og.area a ON a.code = left(x.area_code, 12)
                                   WHERE x.source_system = 'zongzhi' AND a.name = '沁苑社区' LIMIT 1" | tr '|' ' ')
RX=$(sql "$TEST_DB" "SELECT source_grid_id FROM og.grid_crosswalk WHERE source_system = '12345' AND area_code = '$QY' ORDER BY 1 LIMIT 1")
report() { # report ID SOURCE SUBJECT CHANNEL TITLE [LAT LON]
	local loc=
	[[ -n ${6:-} ]] && loc=",\"location\":{\"latitude\":$6,\"longitude\":$7}"
	printf '{"id":"%s","source":"%s","type":"report","time":"%s","subject":"%s"%s,"report":{"category":"facility.handrail","title":"%s","channel":"%s","contact":{"name":"居民%s","phone":"139 0000 0000"}}}\n' \
		"$1" "$2" "$NOW" "$3" "$loc" "$5" "$4" "$1"
}
split() { # split ID CASE SOURCE EVENT
	printf '{"id":"%s","source":"zongzhi","type":"split","time":"%s","split":{"case_id":"%s","report_source":"%s","report_event_id":"%s","note":"核实后不是同一处扶手"}}\n' \
		"$1" "$NOW" "$2" "$3" "$4"
}
publish() {
	"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --results "$TEST_DIR/$1.out" \
		"$TEST_DIR/$1.jsonl" >"$TEST_DIR/$1.txt" 2>&1 || true
}
answer() { grep -h "\"id\":\"$1\"" "$TEST_DIR"/*.out | tail -1; }
case_of() { answer "$1" | grep -o '"case_id":"[^"]*"' | cut -d'"' -f4; }
auditor() { "$PG_BIN/psql" -XAtq -d "$TEST_DB" -U onegrid_audit -c "$1"; }

{
	report visit-1 zongzhi "$ZZ" CHANNEL_DOOR_VISIT "单元门前需要扶手" 45.5960 84.8800
	report call-1 12345 "$RX" CHANNEL_HOTLINE "另一栋楼的扶手坏了"
	report near-1 zongzhi "$ZZ" CHANNEL_GRID_PATROL "扶手" 45.5963 84.8802
} >"$TEST_DIR/day1.jsonl"
publish day1
CASE=$(case_of visit-1)
assert_eq "the call and the patrol joined the liaison's case" "$CASE $CASE" "$(case_of call-1) $(case_of near-1)"
assert_eq "three contacts" 3 "$(sql "$TEST_DB" "SELECT contacts FROM og.case WHERE case_id = '$CASE'")"

# Restarted: dispatch must reload the merged reports to split one.
og_stop dispatch "$TEST_DIR"
og_start dispatch "$TEST_DIR"
split split-1 "$CASE" 12345 call-1 >"$TEST_DIR/split1.jsonl"
publish split1
NEW=$(case_of split-1)
assert_match "the split is stored and names a new case" '"outcome":"stored"' "$(answer split-1)"
[[ -n $NEW && $NEW != "$CASE" ]] || fail "the split must open a new case, got \"$NEW\""
pass "the call is a case of its own: $NEW"
assert_eq "the old case has one contact less" 2 "$(sql "$TEST_DB" "SELECT contacts FROM og.case WHERE case_id = '$CASE'")"
assert_eq "the new case has the call's own facts" \
	"12345|call-1|$QY|另一栋楼的扶手坏了|CHANNEL_HOTLINE|1|dispatched|t" \
	"$(sql "$TEST_DB" "SELECT source_system, source_event_id, area_code, title, channel, contacts, state,
	                          occurred_at = '$NOW'::timestamptz
	                   FROM og.case WHERE case_id = '$NEW'")"
assert_eq "routed on a new clock from the split" "t|t" \
	"$(sql "$TEST_DB" "SELECT unit_code IS NOT NULL, deadline_at > opened_at FROM og.case WHERE case_id = '$NEW'")"
assert_eq "the reporter's contact follows the report" "$NEW" \
	"$(sql "$TEST_DB" "SELECT case_id FROM og.reporter_contact WHERE source_system = '12345' AND source_event_id = 'call-1'")"
assert_eq "the auditor sees the split (拆分记录)" "$CASE|$NEW|12345|call-1|2|zongzhi|核实后不是同一处扶手" \
	"$(auditor "SELECT from_case_id, to_case_id, report_source, report_event_id, contacts_after, split_by, reason
	            FROM audit.\"拆分记录\"")"
assert_eq "the merge record says where the call went" "call-1 $NEW|near-1 -" \
	"$(auditor "SELECT string_agg(source_event_id || ' ' || coalesce(split_to, '-'), '|' ORDER BY ledger_id)
	            FROM audit.merged_reports WHERE case_id = '$CASE'")"
assert_eq "every report's case and how it joined (关联诉求)" \
	"12345 call-1 $NEW split|zongzhi near-1 $CASE merged|zongzhi visit-1 $CASE opened" \
	"$(auditor "SELECT string_agg(source_system || ' ' || source_event_id || ' ' || case_id || ' ' || joined, '|'
	                              ORDER BY source_event_id) FROM audit.\"关联诉求\"")"

# The same split again is a duplicate naming the new case; other splits are refused.
{
	split split-1 "$CASE" 12345 call-1
	split split-2 "$CASE" 12345 call-1
	split split-3 "$CASE" zongzhi visit-1
	split split-4 "$NEW" zongzhi near-1
	split split-5 "${CASE%-*}-99999999" zongzhi near-1
} >"$TEST_DIR/again.jsonl"
publish again
assert_match "a resent split is a duplicate naming the new case" "\"outcome\":\"duplicate\",\"case_id\":\"$NEW\"" \
	"$(grep '"id":"split-1"' "$TEST_DIR/again.out")"
assert_match "split twice: refused" 'REASON_INVALID_FIELD.*did not join case' "$(answer split-2)"
assert_match "the report that opened the case: refused" 'REASON_INVALID_FIELD.*did not join case' "$(answer split-3)"
assert_match "a report named with the wrong case: refused" 'REASON_INVALID_FIELD' "$(answer split-4)"
assert_match "an unknown case: refused" 'REASON_UNKNOWN_CASE' "$(answer split-5)"
assert_eq "each refusal is recorded with its reason" \
	"split-2 REASON_INVALID_FIELD|split-3 REASON_INVALID_FIELD|split-4 REASON_INVALID_FIELD|split-5 REASON_UNKNOWN_CASE" \
	"$(sql "$TEST_DB" "SELECT string_agg(source_event_id || ' ' || reason, '|' ORDER BY source_event_id)
	                   FROM og.rejection WHERE source_event_id LIKE 'split-%'")"

# The patrol's report too, after another restart; then the old case is back to one.
og_stop dispatch "$TEST_DIR"
og_start dispatch "$TEST_DIR"
split split-6 "$CASE" zongzhi near-1 >"$TEST_DIR/split6.jsonl"
publish split6
NEAR=$(case_of split-6)
assert_eq "after another restart the patrol's report splits off too" "1|1|45.5963" \
	"$(sql "$TEST_DB" "SELECT (SELECT contacts FROM og.case WHERE case_id = '$CASE'),
	                          contacts, latitude FROM og.case WHERE case_id = '$NEAR'")"
# Split cases are open cases like any other: a later report of the same problem joins one
# of the three (the call's case has no position, so distance does not rule it out).
report near-2 zongzhi "$ZZ" CHANNEL_GRID_PATROL "扶手" 45.5963 84.8802 >"$TEST_DIR/day2.jsonl"
publish day2
assert_match "a later report merges into one of the open cases" "\"case_id\":\"($CASE|$NEW|$NEAR)\"" "$(answer near-2)"
assert_eq "and opens none" 3 "$(sql "$TEST_DB" "SELECT count(*) FROM og.case")"

rc=0
out=$("$ONEGRID_BIN/onegridctl" rebuild-cases --db "dbname=$TEST_DB" 2>&1) || rc=$?
assert_eq "the projection rebuilds from the ledger (split cases included)" "0" "$rc"
rc=0
out=$("$ONEGRID_BIN/onegridctl" audit verify --db "dbname=$TEST_DB user=onegrid_audit" 2>&1) || rc=$?
assert_eq "the record verifies: $out" 0 "$rc"

# Each case's reports (og.case_report, the auditor's 关联诉求) are a projection of the
# ledger too: a row changed or removed by the database's owner is named by the projection
# check, and --apply puts back what the ledger says.
og_stop_all "$TEST_DIR"
rows() { sql "$TEST_DB" "SELECT * FROM og.case_report ORDER BY source_system, source_event_id" | paste -sd'|'; }
before=$(rows)
sql "$TEST_DB" "UPDATE og.case_report SET case_id = '$CASE', joined = 'merged' WHERE source_event_id = 'call-1';
                DELETE FROM og.case_report WHERE source_event_id = 'visit-1'" >/dev/null
assert_eq "the auditor sees the changed and the removed report" "ledger 12345/call-1 split|ledger zongzhi/visit-1 opened|live 12345/call-1 merged" \
	"$("$PG_BIN/psql" -XAtq -d "$TEST_DB" -U onegrid_audit -c "SELECT side || ' ' || source_system || '/' || source_event_id || ' ' || joined
	     FROM audit.report_projection_differences ORDER BY side, source_event_id" | paste -sd'|')"
rc=0
out=$("$ONEGRID_BIN/onegridctl" rebuild-cases --db "dbname=$TEST_DB" 2>&1) || rc=$?
assert_eq "rebuild-cases finds the reports differ" 1 "$rc"
assert_match "and names them" "live   report 12345/call-1 case=$CASE joined=merged.*rebuild-cases: 3 rows differ between og.case_report and the ledger" \
	"$(echo "$out" | paste -sd' ')"
rc=0
out=$("$ONEGRID_BIN/onegridctl" rebuild-cases --db "dbname=$TEST_DB" --apply 2>&1) || rc=$?
assert_eq "--apply rebuilds them: $out" 0 "$rc"
assert_eq "as they were" "$before" "$(rows)"
