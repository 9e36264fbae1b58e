#!/usr/bin/env bash
# dispatch's conclusions on a case (migration 023): each decision carries what the case
# waits for (stage: handling, checking, final) and its clock (running, paused, none), as
# daemons/dispatch/lifecycle.c concludes them; og.case keeps them as columns, and the
# auditor's views (audit.case_facts' open and overdue, audit.overdue_cases, audit.kpi,
# audit.case_clocks) and the assignment feed read those columns instead of deriving them
# from the state again. A case walked through its whole lifecycle has, after each step,
# the conclusions dispatch drew, in og.case and in its decision in the ledger; the views
# follow the columns; a decision of a dispatch older than 023, which does not carry them,
# is stored and rebuilt with the conclusions of its day (og.case_stage, og.case_clock).
# Dispatch's clock is set with faketime to March 2021, so every deadline is long past.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"

test_begin "case conclusions"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
EP="ipc://$TEST_DIR/intake.sock"
CTL=$ONEGRID_BIN/onegridctl
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
N=0
# step ID CASE-NAME PAYLOAD-JSON: publishes one event, which must be stored.
step() {
	N=$((N + 1))
	printf '{"id":"%s","source":"zongzhi","type":"%s","time":"%s",%s}\n' "$1" "$2" "$NOW" "$3" >"$TEST_DIR/e$N.jsonl"
	"$CTL" publish --endpoint "$EP" --results "$TEST_DIR/e$N.out" "$TEST_DIR/e$N.jsonl" >"$TEST_DIR/e$N.txt" 2>&1 ||
		fail "publish $1: $(cat "$TEST_DIR/e$N.txt" "$TEST_DIR/e$N.out")"
	grep -q '"outcome":"stored"' "$TEST_DIR/e$N.out" || fail "$1 not stored: $(cat "$TEST_DIR/e$N.out")"
}
report() { step "$1" report "\"subject\":\"$GRID\",\"report\":{\"category\":\"demand.repair\",\"title\":\"楼道灯不亮\",\"channel\":\"CHANNEL_GRID_PATROL\"}"; }
status() { # status ID CASE STATUS [UNIT [EXTRA-JSON]]
	step "$1" status "\"status\":{\"case_id\":\"$2\",\"status\":\"$3\",\"unit\":\"${4:-$(og_status_unit "$TEST_DB" "$2" "$3" "$HOLDER")}\"${5:-}}"
}
case_of() { grep -h "\"id\":\"$1\"" "$TEST_DIR"/e*.out | grep -o '"case_id":"[^"]*"' | head -1 | cut -d'"' -f4; }
as_auditor() { "$PG_BIN/psql" -XAtq -v ON_ERROR_STOP=1 -d "$TEST_DB" -U onegrid_audit -c "$1"; }
# The conclusions in og.case, then those of the case's last decision in the ledger.
concluded() {
	sql "$TEST_DB" "SELECT c.stage || '|' || c.clock || ' ' || (l.detail ->> 'stage') || '|' || (l.detail ->> 'clock')
	                  FROM og.case c
	                  JOIN og.ledger l ON l.case_id = c.case_id AND l.kind = 'decision'
	                 WHERE c.case_id = '$1' ORDER BY l.ledger_id DESC LIMIT 1"
}
expect() { # expect WHAT CASE STAGE CLOCK
	assert_eq "$1: $3, clock $4 (og.case, and the decision)" "$3|$4 $3|$4" "$(concluded "$2")"
}

og_start_all "$TEST_DIR"
read -r GRID AREA < <(sql "$TEST_DB" "SELECT x.source_grid_id, x.area_code FROM og.grid_crosswalk x
                                      JOIN og.area a ON a.code = x.area_code
                                      WHERE x.source_system = 'zongzhi' AND a.level = 'grid' ORDER BY 1 LIMIT 1" | tr '|' ' ')
STREET_SUP=$(sql "$TEST_DB" "SELECT unit_code FROM og.supervisor WHERE area_code = left('$AREA', 9)")
[[ -n $STREET_SUP ]] || fail "the sample registers no street supervisor for $AREA"

# Monday 2021-03-01, 10:00 in China: three repairs, due in 5 working days.
og_restart_at dispatch "$TEST_DIR" "2021-03-01 02:00:00"
report p
report r
report v
P=$(case_of p) R=$(case_of r) V=$(case_of v)
HOLDER=$(sql "$TEST_DB" "SELECT unit_code FROM og.case WHERE case_id = '$P'")
expect "filed and dispatched" "$P" handling running

# P: an extension asked for pauses the clock; granted, it runs again.
status p1 "$P" STATUS_EXTENSION_REQUESTED "$HOLDER" ',"extension_working_days":3'
expect "an extension requested" "$P" handling paused
assert_eq "a paused clock is not overdue (超期未处置案件), and 案件时钟 says paused" "|paused" \
	"$(as_auditor "SELECT (SELECT string_agg(case_id, ' ') FROM audit.\"超期未处置案件\" WHERE case_id = '$P'),
	                      (SELECT colour FROM audit.\"案件时钟\" WHERE case_id = '$P')")"
status p2 "$P" STATUS_EXTENDED "$STREET_SUP" ',"extension_working_days":3'
expect "the extension granted" "$P" handling running

# R: resolved, check failed (返工), resolved, checked, closed, evaluated 不满意 (reopened).
status r1 "$R" STATUS_ACCEPTED
expect "accepted" "$R" handling running
status r2 "$R" STATUS_RESOLVED
expect "resolved" "$R" checking none
status r3 "$R" STATUS_CHECK_FAILED
expect "its check failed" "$R" handling running
status r4 "$R" STATUS_RESOLVED
status r5 "$R" STATUS_CHECKED_OK
expect "checked" "$R" checking none
status r6 "$R" STATUS_CLOSED
expect "closed" "$R" final none
step r7 evaluation "\"evaluation\":{\"case_id\":\"$R\",\"result\":\"RESULT_UNSATISFIED\"}"
expect "evaluated 不满意: reopened for its unit" "$R" handling running
# V: voided.
status v1 "$V" STATUS_VOIDED
expect "voided" "$V" final none

assert_eq "the auditor reads them in audit.cases (案件)" "$P handling running|$R handling running|$V final none" \
	"$(as_auditor "SELECT string_agg(case_id || ' ' || stage || ' ' || clock, '|' ORDER BY case_id) FROM audit.\"案件\"")"
assert_eq "open (audit.case_facts) is stage handling" "$P true|$R true|$V false" \
	"$(as_auditor "SELECT string_agg(case_id || ' ' || open, '|' ORDER BY case_id) FROM audit.case_facts")"
assert_eq "overdue: the running clocks past their deadline" "$P $R" \
	"$(as_auditor "SELECT string_agg(case_id, ' ' ORDER BY case_id) FROM audit.overdue_cases")"

# The views read the columns, not the state: with other conclusions (set by hand as the
# owner, rolled back) they answer otherwise for the same states and deadlines.
assert_eq "a case concluded paused leaves the overdue list, the KPI's count and 案件时钟's red" \
	"$R|1|paused" "$(sql "$TEST_DB" <<EOF
BEGIN;
SET LOCAL ROLE onegrid_owner;
UPDATE og.case SET clock = 'paused' WHERE case_id = '$P';
SELECT (SELECT string_agg(case_id, ' ') FROM audit.overdue_cases),
       (SELECT sum(overdue_open) FROM audit.kpi WHERE level = 'district' AND code = '${AREA:0:6}'),
       (SELECT colour FROM audit.case_clocks WHERE case_id = '$P');
ROLLBACK;
EOF
)"
assert_eq "a case concluded checking is not open, nor in 案件时钟" "f|0" "$(sql "$TEST_DB" <<EOF
BEGIN;
SET LOCAL ROLE onegrid_owner;
UPDATE og.case SET stage = 'checking', clock = 'none' WHERE case_id = '$R';
SELECT (SELECT open FROM audit.case_facts WHERE case_id = '$R'),
       (SELECT count(*) FROM audit.case_clocks WHERE case_id = '$R');
ROLLBACK;
EOF
)"
rc=0
sql "$TEST_DB" "UPDATE og.case SET stage = 'waiting' WHERE case_id = '$P'" >/dev/null 2>&1 || rc=$?
assert_eq "og.case refuses a stage that is not one" 1 "$rc"

# A dispatch older than 023 does not say: the storage functions conclude as it did. Two
# events stored by hand the way archive stores them, as copies of x's event and decision
# (a case as it opened) without the conclusions (new keys, new cases): one by
# og.store_event, one by og.store_opened.
report x
og_stop_all "$TEST_DIR"
legacy() { # legacy EVENT-ID CASE-ID: the arguments of og.store_event for that copy
	cat <<EOF
SELECT '$1', e.event_type, e.district_code, e.detail, e.body,
       d.detail - '{stage,clock}'::text[] || jsonb_build_object('case_id', '$2'), d.body
  FROM og.ledger e
  JOIN og.ledger d ON d.kind = 'decision' AND d.source_system = e.source_system
                  AND d.source_event_id = e.source_event_id
 WHERE e.kind = 'event' AND e.source_event_id = 'x'
EOF
}
L1=${AREA:0:6}-90000001
L2=${AREA:0:6}-90000002
out=$(sql "$TEST_DB" <<EOF
BEGIN;
SELECT og.begin_batch('6502', (SELECT epoch FROM og.dispatch_epoch WHERE shard = '6502'), 'case-conclusions');
SELECT s.outcome FROM ($(legacy legacy-1 "$L1")) a(id, type, district, ev, eb, dd, db),
       og.store_event('zongzhi', a.id, a.type, a.district, a.ev, a.eb, a.dd, a.db, true, NULL) s;
SELECT s.outcome FROM (SELECT array_agg(a.id), array_agg(a.type), array_agg(a.district), array_agg(a.ev),
                              array_agg(a.eb), array_agg(a.dd), array_agg(a.db)
                         FROM ($(legacy legacy-2 "$L2")) a(id, type, district, ev, eb, dd, db)) x(i, t, d, ev, eb, dd, db),
       og.store_opened(ARRAY['zongzhi'], x.i, x.t, x.d, x.ev, x.eb, x.dd, x.db, ARRAY[NULL::jsonb]) s;
SELECT count(*) FROM og.end_batch();
COMMIT;
EOF
)
assert_match "both stored" "^[0-9]+ stored stored [0-9]+$" "$(echo $out)"
assert_eq "their decisions in the ledger carry no conclusions" "0" \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.ledger WHERE case_id IN ('$L1', '$L2') AND kind = 'decision' AND (detail ? 'stage' OR detail ? 'clock')")"
assert_eq "og.store_event and og.store_opened concluded as that dispatch did" "$L1 handling running|$L2 handling running" \
	"$(sql "$TEST_DB" "SELECT string_agg(case_id || ' ' || stage || ' ' || clock, '|' ORDER BY case_id) FROM og.case WHERE case_id IN ('$L1', '$L2')")"

# The projection check rebuilds the conclusions from the ledger: dispatch's where its
# decisions carry them, those of their day where they do not; a changed one is found.
assert_eq "the projection, conclusions included, equals the ledger" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM audit.projection_differences")"
sql "$TEST_DB" "UPDATE og.case SET clock = 'paused' WHERE case_id IN ('$R', '$L1')" >/dev/null
assert_eq "a changed conclusion is a difference, on both sides, for either kind of decision" \
	"ledger $R running|ledger $L1 running|live $R paused|live $L1 paused" \
	"$(sql "$TEST_DB" "SELECT side || ' ' || case_id || ' ' || clock FROM audit.projection_differences ORDER BY side, case_id" | paste -sd'|')"
"$CTL" rebuild-cases --db "dbname=$TEST_DB" --apply >"$TEST_DIR/rebuild.txt" 2>&1 ||
	fail "rebuild-cases --apply: $(cat "$TEST_DIR/rebuild.txt")"
assert_eq "rebuild-cases --apply puts them back" "$R running|$L1 running" \
	"$(sql "$TEST_DB" "SELECT string_agg(case_id || ' ' || clock, '|' ORDER BY case_id) FROM og.case WHERE case_id IN ('$R', '$L1')")"
