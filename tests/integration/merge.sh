#!/usr/bin/env bash
# 最多跑一次: the seed's handrail request reported by a household liaison head's visit
# (综治 grid, with coordinates) and then by a 12345 call (which knows only the community)
# becomes one case with two contacts; reports that are not the same problem open cases of
# their own: another category, another community, too far away, a case already resolved.
# After a dispatch restart a new report still finds its case (position reloaded).
# Reports that join cases opened in an earlier batch, each case named by no other record of
# its batch, are stored set-based (og.store_moved), as og.store_event stores a merge.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"

test_begin "merge"
test_createdb
# Counts of calls per function (pg_stat_user_functions), for the daemons' sessions.
sql "$TEST_DB" "ALTER DATABASE $TEST_DB SET track_functions = 'pl'"
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
		"$st" "$NOW" "$CASE" "$st" "$(og_checking_unit "$TEST_DB" "$CASE")"
done >"$TEST_DIR/close.jsonl"
printf '{"id":"eval-1","source":"12345","type":"evaluation","time":"%s","evaluation":{"case_id":"%s","result":"RESULT_UNSATISFIED"}}\n' \
	"$NOW" "$CASE" >>"$TEST_DIR/close.jsonl"
# visit-3's case was filed twice, in effect: void it, so the reopened case is the only
# open case of this problem.
printf '{"id":"void-3","source":"zongzhi","type":"status","time":"%s","status":{"case_id":"%s","status":"STATUS_VOIDED","unit":"%s"}}\n' \
	"$NOW" "$(case_of visit-3)" "$(og_checking_unit "$TEST_DB" "$(case_of visit-3)")" \
	>>"$TEST_DIR/close.jsonl"
publish close
assert_eq "reopened" dispatched "$(sql "$TEST_DB" "SELECT state FROM og.case WHERE case_id = '$CASE'")"
report visit-4 zongzhi "$ZZ" facility.handrail CHANNEL_DOOR_VISIT 45.5960 84.8800 >"$TEST_DIR/day4.jsonl"
publish day4
assert_eq "a reopened case takes reports again, without a restart" "$CASE" "$(case_of visit-4)"
# One report in each community that both the zongzhi grids and the 12345 hotline know,
# then, once those cases are stored, a 12345 call about the same problem in each, at the
# same spot and with a severity: every call joins its community's case, each case named by
# no other record of the batch, so archive stores the calls set-based, with og.store_moved,
# not one og.store_event each.
calls() {
	sql "$TEST_DB" "SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions
	                 WHERE schemaname = 'og' AND funcname = '$1'"
}
# A backend's function statistics reach the shared counters, all of them, when it exits
# (while it runs, up to 10 s after it last did): archive stopped, once its session is gone
# the counts are exact.
archive_counted() {
	local i
	og_stop archive "$TEST_DIR"
	for ((i = 0; i < 300; i++)); do
		(($(sql "$TEST_DB" "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND usename = 'onegrid_archive'") == 0)) &&
			return
		sql "$TEST_DB" "SELECT pg_sleep(0.1)" >/dev/null
	done
	fail "archive's database session did not end"
}
mapfile -t COMS < <(sql "$TEST_DB" "SELECT DISTINCT ON (left(z.area_code, 12)) z.source_grid_id || ' ' || r.source_grid_id
                                      FROM og.grid_crosswalk z
                                      JOIN og.grid_crosswalk r ON r.source_system = '12345'
                                                              AND r.area_code = left(z.area_code, 12)
                                     WHERE z.source_system = 'zongzhi'
                                     ORDER BY left(z.area_code, 12), 1")
K=${#COMS[@]}
assert_ge "communities both grids know" 10 "$K"
: >"$TEST_DIR/garbage.jsonl"
: >"$TEST_DIR/calls.jsonl"
for ((i = 0; i < K; i++)); do
	read -r zz rx <<<"${COMS[i]}"
	lat=$(printf '45.%04d' $((5000 + 10 * i)))
	report "gb-$i" zongzhi "$zz" environment.garbage CHANNEL_GRID_PATROL "$lat" 84.8800 >>"$TEST_DIR/garbage.jsonl"
	report "gc-$i" 12345 "$rx" environment.garbage CHANNEL_HOTLINE "$lat" 84.8801 |
		sed 's/"report":{/"report":{"severity":"SEVERITY_MODERATE",/' >>"$TEST_DIR/calls.jsonl"
done
publish garbage || fail "publish garbage: $(tail -n 3 "$TEST_DIR/garbage.txt")"
assert_eq "a case opened for each community's report" "$K" \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.case_report WHERE joined = 'opened' AND source_event_id LIKE 'gb-%'")"
archive_counted
before_event=$(calls store_event)
before_moved=$(calls store_moved)
og_start archive "$TEST_DIR"
publish calls || fail "publish calls: $(tail -n 3 "$TEST_DIR/calls.txt")"
for ((i = 0; i < K; i++)); do
	[[ -n $(case_of "gb-$i") && $(case_of "gc-$i") == "$(case_of "gb-$i")" ]] ||
		fail "call gc-$i should join the case of gb-$i ($(case_of "gb-$i")), not \"$(case_of "gc-$i")\""
done
pass "each of the $K calls joins its community's case"
archive_counted
assert_ge "og.store_moved stored the calls" $((before_moved + 1)) "$(calls store_moved)"
assert_eq "not og.store_event, one by one" "$before_event" "$(calls store_event)"
og_start archive "$TEST_DIR"
assert_eq "each case counts two contacts, and the call its merged report: filed where the call placed it, when and where it happened, its severity" \
	"$K" "$(sql "$TEST_DB" "SELECT count(*) FROM og.case c
	                         JOIN og.case_report r ON r.case_id = c.case_id AND r.joined = 'merged'
	                         JOIN og.ledger d ON d.ledger_id = r.ledger_id AND d.kind = 'decision'
	                          AND d.source_event_id = r.source_event_id
	                         JOIN og.ledger e ON e.kind = 'event' AND e.source_event_id = r.source_event_id
	                        WHERE r.source_event_id LIKE 'gc-%' AND c.contacts = 2
	                          AND EXISTS (SELECT 1 FROM og.grid_crosswalk x WHERE x.source_system = '12345'
	                                         AND x.area_code = r.area_code)
	                          AND r.area_code = d.detail ->> 'report_area'
	                          AND r.occurred_at = '$NOW' AND r.severity = 3
	                          AND r.latitude = (e.detail #>> '{location,latitude}')::float8
	                          AND r.longitude = 84.8801")"
# What og.store_event writes for the same merge (a copy of gc-0's event and decision under
# another event id, in a batch rolled back): the same report row, and the case as the
# decision leaves it. (The decision carries absolute values, so applying it again leaves
# the case as it was; the projection check below rebuilds every case from the ledger.)
read -r SHARD EPOCH < <(sql "$TEST_DB" "SELECT shard, epoch FROM og.dispatch_epoch LIMIT 1" | tr '|' ' ')
same=$({ printf '%s\n' "BEGIN;" "SELECT og.begin_batch('$SHARD', $EPOCH, 'merge') \\gset"
	cat <<'SQL'
CREATE TEMP TABLE before AS
  SELECT r.joined, r.area_code, r.occurred_at, r.latitude, r.longitude, r.severity,
         (to_jsonb(c) - 'last_ledger_id' - 'updated_at') AS c
    FROM og.case_report r JOIN og.case c ON c.case_id = r.case_id
   WHERE r.source_event_id = 'gc-0';
SELECT s.outcome
  FROM og.ledger e, og.ledger d,
       og.store_event(e.source_system, 'gc-0-again', e.event_type, e.district_code, e.detail, e.body,
                      d.detail, d.body, false, NULL) s
 WHERE e.kind = 'event' AND e.source_event_id = 'gc-0' AND d.kind = 'decision'
   AND d.source_event_id = 'gc-0';
SELECT count(*) FROM before b, og.case_report r JOIN og.case c ON c.case_id = r.case_id
 WHERE r.source_event_id = 'gc-0-again' AND r.joined = b.joined AND r.area_code = b.area_code
   AND r.occurred_at = b.occurred_at AND r.latitude IS NOT DISTINCT FROM b.latitude
   AND r.longitude IS NOT DISTINCT FROM b.longitude AND r.severity IS NOT DISTINCT FROM b.severity
   AND (to_jsonb(c) - 'last_ledger_id' - 'updated_at') = b.c;
ROLLBACK;
SQL
} | "$PG_BIN/psql" -XAtq -v ON_ERROR_STOP=1 -d "$TEST_DB" 2>&1)
assert_eq "og.store_event would have written the same report row and case" "stored
1" "$same"

assert_eq "the record verifies" 0 \
	"$("$ONEGRID_BIN/onegridctl" audit verify --db "dbname=$TEST_DB user=onegrid_audit" >/dev/null; echo $?)"
assert_eq "the projection rebuilds from the ledger" 0 \
	"$("$ONEGRID_BIN/onegridctl" rebuild-cases --db "dbname=$TEST_DB" >/dev/null; echo $?)"
