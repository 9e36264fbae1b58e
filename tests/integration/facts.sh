#!/usr/bin/env bash
# The facts the auditor's views read (migration 020): kept on og.case as each decision is
# stored, equal to what og.case_facts_rebuilt derives from the ledger, covered by the
# projection check and restored by rebuild-cases; a case whose clock is paused (an
# extension request pending) is not overdue in audit.overdue_cases nor in the KPI 超期未处置,
# as dispatch does not escalate it; audit.kpi's month is a date (the first day of the
# month of filing in China time) and a query for one district and month reaches og.case's
# index. Dispatch's clock is set with faketime to March 2021, so every deadline below is
# long past whenever the test runs.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"

test_begin "facts"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
EP="ipc://$TEST_DIR/intake.sock"
CTL=$ONEGRID_BIN/onegridctl
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
publish() { # publish NAME: $TEST_DIR/NAME.jsonl, every event answered stored
	"$CTL" publish --endpoint "$EP" --results "$TEST_DIR/$1.out" "$TEST_DIR/$1.jsonl" \
		>"$TEST_DIR/$1.txt" 2>&1 || fail "publish $1: $(cat "$TEST_DIR/$1.txt" "$TEST_DIR/$1.out")"
	assert_eq "$1: every event stored" "$(wc -l <"$TEST_DIR/$1.jsonl")" \
		"$(grep -c '"outcome":"stored"' "$TEST_DIR/$1.out")"
}
case_of() { grep -h "\"id\":\"$1\"" "$TEST_DIR"/*.out | grep -o '"case_id":"[^"]*"' | head -1 | cut -d'"' -f4; }
report() { # report ID
	printf '{"id":"%s","source":"zongzhi","type":"report","time":"%s","subject":"%s","report":{"category":"demand.repair","title":"楼道灯不亮","channel":"CHANNEL_GRID_PATROL"}}\n' \
		"$1" "$NOW" "$GRID"
}
status() { # status ID CASE STATUS [EXTRA-JSON]
	local c
	c=$(case_of "$2")
	printf '{"id":"%s","source":"zongzhi","type":"status","time":"%s","status":{"case_id":"%s","status":"%s","unit":"%s"%s}}\n' \
		"$1" "$NOW" "$c" "$3" "$(og_status_unit "$TEST_DB" "$c" "$3" "$HOLDER")" "${4:-}"
}
as_auditor() { "$PG_BIN/psql" -XAtq -v ON_ERROR_STOP=1 -d "$TEST_DB" -U onegrid_audit -c "$1"; }

# P's request stays pending for a month: here the supervisors have no limit to decide
# (extension.sh has a request that lapses).
sed -i 's/^\[dispatch\]$/[dispatch]\nextension_decision_days = 0/' "$TEST_DIR/onegrid.conf"
og_start_all "$TEST_DIR"
read -r GRID AREA < <(sql "$TEST_DB" "SELECT x.source_grid_id, x.area_code FROM og.grid_crosswalk x
                                      JOIN og.area a ON a.code = x.area_code
                                      WHERE x.source_system = 'zongzhi' AND a.level = 'grid' ORDER BY 1 LIMIT 1" | tr '|' ' ')
DISTRICT=${AREA:0:6}

# Monday 2021-03-01, 10:00 in China: four repairs, due in 5 working days.
og_restart_at dispatch "$TEST_DIR" "2021-03-01 02:00:00"
for id in P Q R S; do report "$id"; done >"$TEST_DIR/open.jsonl"
publish open
HOLDER=$(sql "$TEST_DB" "SELECT unit_code FROM og.case WHERE case_id = '$(case_of P)'")
# R: resolved, failed its check (返工), resolved again, closed, evaluated 基本满意.
# Q: returned by its unit (退回) and re-routed. P and S: left open.
{
	status r1 R STATUS_ACCEPTED
	status r2 R STATUS_RESOLVED
	status r3 R STATUS_CHECK_FAILED
	status r4 R STATUS_RESOLVED
	status r5 R STATUS_CHECKED_OK
	status r6 R STATUS_CLOSED
	printf '{"id":"r7","source":"zongzhi","type":"evaluation","time":"%s","evaluation":{"case_id":"%s","result":"RESULT_ACCEPTABLE"}}\n' \
		"$NOW" "$(case_of R)"
	status q1 Q STATUS_RETURNED ',"note":"不归本单位"'
} >"$TEST_DIR/day1.jsonl"
publish day1

# Tuesday: P's unit asks for 3 more working days: P's clock is paused, and stays so.
og_restart_at dispatch "$TEST_DIR" "2021-03-02 02:00:00"
status p1 P STATUS_EXTENSION_REQUESTED ',"extension_working_days":3' >"$TEST_DIR/day2.jsonl"
publish day2
assert_eq "P's clock is paused (案件时钟)" paused \
	"$(as_auditor "SELECT colour FROM audit.case_clocks WHERE case_id = '$(case_of P)'")"

# Wednesday 2021-03-31 at 16:30 UTC is Thursday 2021-04-01 00:30 in China: April's case.
og_restart_at dispatch "$TEST_DIR" "2021-03-31 16:30:00"
report T >"$TEST_DIR/april.jsonl"
publish april

# 超期未处置: Q and S (and April's T), not P, in the list and in the KPI.
assert_eq "audit.overdue_cases: Q, S, T; not P (paused)" \
	"$(printf '%s\n' "$(case_of Q)" "$(case_of S)" "$(case_of T)" | sort | paste -sd' ')" \
	"$(as_auditor "SELECT string_agg(case_id, ' ' ORDER BY case_id) FROM audit.\"超期未处置案件\"")"

# The facts, as the write path kept them.
facts() { as_auditor "SELECT first_resolved_at <= deadline_when_resolved, first_closed_at <= deadline_when_closed,
                             returned, reworks, coalesce(last_evaluation, '-'), open, paused_at IS NOT NULL, overdue
                        FROM audit.case_facts WHERE case_id = '$(case_of "$1")'"; }
assert_eq "R: resolved and closed on time, reworked once, evaluated, final" "t|t|f|1|RESULT_ACCEPTABLE|f|f|f" "$(facts R)"
assert_eq "Q: returned, open and overdue" "||t|0|-|t|f|t" "$(facts Q)"
assert_eq "S: open and overdue" "||f|0|-|t|f|t" "$(facts S)"
assert_eq "P: open, past its deadline, but its clock is paused: not overdue" "||f|0|-|t|t|f" "$(facts P)"
assert_eq "P's deadline is past" t \
	"$(sql "$TEST_DB" "SELECT deadline_at < now() FROM og.case WHERE case_id = '$(case_of P)'")"

# By hand, March: filed 4; resolved R (on time): 1; overdue Q, S: 2; closed R: 0.25, on
# time 0.25; R reworked: 1; returned Q: accurate dispatch 0.75, return rate 0.25;
# evaluated R, acceptable: 1; one contact each.
cols="month, filed, on_time_handling_rate, overdue_open, closure_rate, on_time_closure_rate, rework_rate,
      accurate_dispatch_rate, return_rate, satisfaction_rate, contacts_per_case"
assert_eq "KPIs for the district, by month (month a date, China time)" \
	"2021-03-01|4|1.0000|2|0.2500|0.2500|1.0000|0.7500|0.2500|1.0000|1.00 2021-04-01|1||1|0.0000|0.0000||1.0000|0.0000||1.00" \
	"$(as_auditor "SELECT $cols FROM audit.kpi WHERE level = 'district' AND code = '$DISTRICT' ORDER BY month" | paste -sd' ')"
assert_eq "month is a date: WHERE month >= '2021-04-01'" "date|1" \
	"$(as_auditor "SELECT pg_typeof(month), filed FROM audit.\"考核指标\"
	               WHERE level = 'district' AND code = '$DISTRICT' AND month >= '2021-04-01'")"

# The query for one district and month reaches og.case's index (seqscan off: at this size
# the planner would rightly read the table).
plan=$(sql "$TEST_DB" "SET enable_seqscan = off; EXPLAIN SELECT * FROM audit.kpi
                       WHERE level = 'district' AND code = '$DISTRICT' AND month = '2021-03-01'")
assert_match "EXPLAIN: the month and the district are the index's conditions" \
	"Index Cond: \\(\\(\\(date_trunc\\('month'.*\\)::date = '2021-03-01'::date\\) AND \\(district_code = '$DISTRICT'::text\\)\\)" "$plan"
assert_eq "EXPLAIN: the other levels are not read" 3 "$(grep -c "One-Time Filter: false" <<<"$plan")"
plan=$(sql "$TEST_DB" "SET enable_seqscan = off; EXPLAIN SELECT * FROM audit.kpi
                       WHERE level = 'community' AND code = '${AREA:0:12}' AND month = '2021-03-01'")
assert_match "EXPLAIN: a community's month: the month is the index's condition" \
	"Index Cond: \\(\\(date_trunc\\('month'.*\\)::date = '2021-03-01'::date\\)" "$plan"
assert_match "EXPLAIN: and the code filters the scan of og.case, below the aggregate" \
	"Filter: \\(\"left\"\\(area_code, 12\\) = '${AREA:0:12}'::text\\)" "$plan"
plan=$(sql "$TEST_DB" "SET enable_seqscan = off; EXPLAIN SELECT * FROM audit.overdue_cases")
assert_match "EXPLAIN: overdue cases come from their index" "Index (Only )?Scan using case_overdue|Bitmap Index Scan on case_overdue" "$plan"

# Every audit view answers, whatever is stored.
for v in $(sql "$TEST_DB" "SELECT table_name FROM information_schema.views WHERE table_schema = 'audit' ORDER BY 1"); do
	as_auditor "SELECT count(*) FROM audit.\"$v\"" >/dev/null 2>"$TEST_DIR/view.err" ||
		fail "audit.$v: $(cat "$TEST_DIR/view.err")"
done
pass "every audit view answers the auditor"

# The projection check covers the facts: rebuilt from the ledger they are the same; a
# changed fact is found, and rebuild-cases puts it back.
og_stop_all "$TEST_DIR"
assert_eq "the projection, facts included, equals the ledger" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM audit.projection_differences")"
sql "$TEST_DB" "UPDATE og.case SET reworks = 0, last_evaluation = NULL WHERE case_id = '$(case_of R)'" >/dev/null
assert_eq "a changed fact is a difference, on both sides" "ledger $(case_of R) 1|live $(case_of R) 0" \
	"$(sql "$TEST_DB" "SELECT side || ' ' || case_id || ' ' || reworks FROM audit.projection_differences ORDER BY side" | paste -sd'|')"
rc=0
"$CTL" rebuild-cases --db "dbname=$TEST_DB" >"$TEST_DIR/rebuild.txt" 2>&1 || rc=$?
assert_eq "rebuild-cases reports it" 1 "$rc"
"$CTL" rebuild-cases --db "dbname=$TEST_DB" --apply >"$TEST_DIR/rebuild.txt" 2>&1 ||
	fail "rebuild-cases --apply: $(cat "$TEST_DIR/rebuild.txt")"
assert_eq "rebuild-cases --apply puts it back" "t|t|f|1|RESULT_ACCEPTABLE|f|f|f" "$(facts R)"
assert_eq "and nothing differs" 0 "$(sql "$TEST_DB" "SELECT count(*) FROM audit.projection_differences")"
