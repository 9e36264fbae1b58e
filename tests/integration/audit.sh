#!/usr/bin/env bash
# The record as evidence: the hash chain verifies as the auditor role and names the first
# broken link after each kind of tampering by a superuser; the auditor reads the audit
# views and nothing else; the case projection can be rebuilt from the ledger; erasing a
# reporter's contact leaves the record intact; and the KPIs match values computed by hand
# on a fixed set of cases, filed and handled by a dispatch whose clock is set with
# faketime so that "on time" and "late" do not depend on when the test runs.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"

test_begin "audit"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
EP="ipc://$TEST_DIR/intake.sock"
AUDITOR="dbname=$TEST_DB user=onegrid_audit"
CTL=$ONEGRID_BIN/onegridctl
# dispatch at a fixed wall-clock time (UTC).
dispatch_at() { og_restart_at dispatch "$TEST_DIR" "$1"; }
publish() { # publish NAME: $TEST_DIR/NAME.jsonl; status in $rc
	rc=0
	"$CTL" publish --endpoint "$EP" --results "$TEST_DIR/$1.out" "$TEST_DIR/$1.jsonl" \
		>"$TEST_DIR/$1.txt" 2>&1 || rc=$?
}
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ev() { # ev ID TYPE PAYLOAD-JSON [SUBJECT]
	printf '{"id":"%s","source":"zongzhi","type":"%s","time":"%s","subject":"%s","%s":%s}\n' \
		"$1" "$2" "$NOW" "${4:-$GRID}" "$2" "$3"
}
status() { # status ID CASE-EVENT STATUS: from the holding unit, or the centre (og_status_unit)
	local c
	c=$(case_of "$2")
	ev "$1" status "{\"case_id\":\"$c\",\"status\":\"$3\",\"unit\":\"$(og_status_unit "$TEST_DB" "$c" "$3" "$UNIT")\"}"
}
case_of() { grep -h "\"id\":\"$1\"" "$TEST_DIR"/*.out | grep -o '"case_id":"[^"]*"' | head -1 | cut -d'"' -f4; }

og_start_all "$TEST_DIR"
GRID=$(sql "$TEST_DB" "SELECT source_grid_id FROM og.grid_crosswalk x JOIN og.area a ON a.code = x.area_code
                       WHERE x.source_system = 'zongzhi' AND a.level = 'grid' ORDER BY 1 LIMIT 1")

# Four handrail requests (5 working days each), filed on Monday 2026-11-16 at 10:00 UTC.
dispatch_at "2026-11-16 10:00:00"
for c in A B C D; do
	ev "$c" report '{"category":"facility.handrail","title":"单元门前安装扶手","channel":"CHANNEL_DOOR_VISIT","contact":{"name":"吴启河","phone":"13899001234"}}'
done >"$TEST_DIR/open.jsonl"
publish open
assert_eq "four cases filed" 0 "$rc"
UNIT=$(sql "$TEST_DB" "SELECT unit_code FROM og.case WHERE case_id = '$(case_of A)'")
COMMUNITY=$(sql "$TEST_DB" "SELECT left(area_code, 12) FROM og.case WHERE case_id = '$(case_of A)'")
{
	status a1 A STATUS_ACCEPTED
	status a2 A STATUS_RESOLVED
	status a3 A STATUS_CHECKED_OK
	status a4 A STATUS_CLOSED
	ev a5 evaluation "{\"case_id\":\"$(case_of A)\",\"result\":\"RESULT_SATISFIED\"}"
	status c1 C STATUS_RETURNED
} >"$TEST_DIR/day1.jsonl"
publish day1
assert_eq "A handled, closed and evaluated the same day; C returned" 0 "$rc"

# B is resolved nine days later: after its deadline. D is never handled.
dispatch_at "2026-11-25 10:00:00"
{
	status b1 B STATUS_ACCEPTED
	status b2 B STATUS_RESOLVED
} >"$TEST_DIR/day10.jsonl"
publish day10
assert_eq "B resolved late" 0 "$rc"

kpi() { sql "$TEST_DB" "SELECT $1 FROM audit.kpi WHERE level = '$2' AND code = '$3'"; }
cols="filed, on_time_handling_rate, overdue_open, closure_rate, on_time_closure_rate, rework_rate,
      accurate_dispatch_rate, return_rate, satisfaction_rate, contacts_per_case"
# By hand: filed 4 (A B C D); resolved A (on time) and B (late): 0.5; open and past the
# deadline C (returned) and D: 2; closed A: 0.25, on time 0.25; no rework: 0; returned C:
# accurate dispatch 0.75, return rate 0.25; evaluated A, satisfied: 1; 1 contact each.
want="4|0.5000|2|0.2500|0.2500|0.0000|0.7500|0.2500|1.0000|1.00"
for level in district street community; do
	case $level in
	district) code=${COMMUNITY:0:6} ;; street) code=${COMMUNITY:0:9} ;; community) code=$COMMUNITY ;;
	esac
	assert_eq "KPIs by $level ($code) match the hand-computed values" "2026-11-01|$want" \
		"$(sql "$TEST_DB" "SELECT month, $cols FROM audit.kpi WHERE level = '$level' AND code = '$code'" | tr -d ' ')"
done
# C was returned and re-routed to the district's grid centre: the community's unit keeps
# A, B and D: filed 3; resolved A (on time), B (late): 0.5; overdue D: 1; closed A: 1/3;
# no returns among its cases: accurate dispatch 1, return rate 0; satisfied 1.
assert_eq "KPIs by unit ($UNIT): its three cases" "2026-11-01|3|0.5000|1|0.3333|0.3333|0.0000|1.0000|0.0000|1.0000|1.00" \
	"$(sql "$TEST_DB" "SELECT month, $cols FROM audit.kpi WHERE level = 'unit' AND code = '$UNIT'" | tr -d ' ')"
assert_eq "the returned case went to the district's grid centre, on a new clock" "GC-${COMMUNITY:0:6}|dispatched" \
	"$(sql "$TEST_DB" "SELECT unit_code, state FROM og.case WHERE case_id = '$(case_of C)'")"
assert_eq "the return is on record (退回记录)" "$UNIT GC-${COMMUNITY:0:6}" \
	"$("$PG_BIN/psql" -XAtq -d "$TEST_DB" -U onegrid_audit -c \
		"SELECT returned_by || ' ' || rerouted_to FROM audit.\"退回记录\" WHERE case_id = '$(case_of C)'")"
assert_eq "mean handling time: (0 h for A + 216 h for B) / 2" t \
	"$(kpi "mean_handling_hours BETWEEN 107.9 AND 108.1" community "$COMMUNITY")"
assert_eq "overdue cases: C and D, as the auditor sees them" "$(case_of C) $(case_of D)" \
	"$("$PG_BIN/psql" -XAtq -d "$TEST_DB" -U onegrid_audit -c \
		"SELECT string_agg(case_id, ' ' ORDER BY case_id) FROM audit.\"超期未处置案件\"")"
assert_eq "A's timeline: opened, accepted, resolved, checked, closed, evaluated" \
	"dispatched accepted resolved checked closed evaluated" \
	"$("$PG_BIN/psql" -XAtq -d "$TEST_DB" -U onegrid_audit -c \
		"SELECT string_agg(state, ' ' ORDER BY ledger_id) FROM audit.case_timeline
		 WHERE case_id = '$(case_of A)' AND kind = 'decision'")"

# The auditor reads the audit views and nothing else.
as_auditor() { "$PG_BIN/psql" -XAtq -v ON_ERROR_STOP=1 -d "$TEST_DB" -U onegrid_audit -c "$1" 2>&1 || true; }
assert_match "auditor cannot read the raw ledger" "permission denied" "$(as_auditor "SELECT 1 FROM og.ledger LIMIT 1")"
assert_match "auditor cannot read contacts" "permission denied" "$(as_auditor "SELECT 1 FROM og.reporter_contact LIMIT 1")"
assert_match "auditor cannot write through a view" "permission denied" \
	"$(as_auditor "DELETE FROM audit.ledger")"
# Categories and units by name, as the auditor labels cases and KPIs.
assert_eq "the auditor names a case's category and unit (audit.categories, audit.units)" \
	"$(sql "$TEST_DB" "SELECT k.name || '|' || k.time_limit || ' ' || k.time_unit || '|' || u.name
	                   FROM og.case c JOIN og.category k ON k.code = c.category_code
	                   JOIN og.handling_unit u ON u.code = c.unit_code WHERE c.case_id = '$(case_of A)'")" \
	"$(as_auditor "SELECT k.name || '|' || k.time_limit || ' ' || k.time_unit || '|' || u.name
	               FROM audit.cases c JOIN audit.categories k ON k.code = c.category_code
	               JOIN audit.units u ON u.code = c.unit_code WHERE c.case_id = '$(case_of A)'")"
assert_eq "every category and unit of the registry" \
	"$(sql "$TEST_DB" "SELECT (SELECT count(*) FROM og.category) || '|' || (SELECT count(*) FROM og.handling_unit)")" \
	"$(as_auditor "SELECT (SELECT count(*) FROM audit.categories) || '|' || (SELECT count(*) FROM audit.units)")"
assert_eq "no audit view has a contact column" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'audit'
	                   AND column_name IN ('phone', 'contact', 'reporter')")"
assert_eq "the reporter's name and phone appear nowhere the auditor reads" "0|0" \
	"$(as_auditor "SELECT (SELECT count(*) FROM audit.ledger WHERE detail::text ~ '吴启河|13899001234'
	                       OR encode(body, 'escape') ~ '13899001234'),
	                      (SELECT count(*) FROM audit.cases WHERE title ~ '吴启河')")"

# The ledger refuses change even from its owner; the chain verifies as the auditor.
assert_match "even the owner cannot UPDATE the ledger" "append-only: UPDATE refused" \
	"$(sql "$TEST_DB" "SET ROLE onegrid_owner; UPDATE og.ledger SET kind = kind" 2>&1 || true)"
rc=0
out=$("$CTL" audit verify --db "$AUDITOR") || rc=$?
assert_eq "audit verify passes as the auditor" 0 "$rc"
assert_match "and says so (this archive has no signing key)" "audit verify: passed: [0-9]+ links \\(0 signed\\), [0-9]+ ledger rows" "$out"
assert_match "audit heads prints the district's head, unsigned" "^${COMMUNITY:0:6} [0-9]+ [0-9a-f]{64} [0-9]+ 2 - -$" \
	"$("$CTL" audit heads --db "$AUDITOR" | grep "^${COMMUNITY:0:6} ")"
assert_eq "rebuild-cases: the projection equals the ledger" 0 \
	"$("$CTL" audit verify --db "$AUDITOR" >/dev/null; "$CTL" rebuild-cases --db "dbname=$TEST_DB" >/dev/null; echo $?)"

# Erasing a reporter's contact keeps the case and the record intact.
assert_eq "contact erased" t "$(sql "$TEST_DB" "SELECT og.erase_contact('zongzhi', 'A')")"
assert_eq "no name or phone left for A" "|" \
	"$(sql "$TEST_DB" "SELECT name, phone FROM og.reporter_contact WHERE source_event_id = 'A'")"
assert_eq "the chain still verifies" 0 "$("$CTL" audit verify --db "$AUDITOR" >/dev/null; echo $?)"

# Tampering, each on its own copy of the database (daemons stopped: copies need that).
og_stop_all "$TEST_DIR"
tamper() { # tamper NAME SQL: copies the database, runs SQL as superuser, runs verify
	local db=${TEST_DB}_$1
	sql postgres "CREATE DATABASE $db TEMPLATE $TEST_DB" >/dev/null
	on_exit "$PG_BIN/dropdb --if-exists $db"
	sql "$db" "SET session_replication_role = replica; $2" >/dev/null
	rc=0
	out=$("$CTL" audit verify --db "dbname=$db user=onegrid_audit") || rc=$?
}
ROW=$(sql "$TEST_DB" "SELECT ledger_id FROM og.ledger WHERE source_event_id = 'a3' AND kind = 'event'")
tamper byte "UPDATE og.ledger SET body = overlay(body PLACING '\\x58'::bytea FROM 3 FOR 1) WHERE ledger_id = $ROW"
assert_eq "a changed byte: verify fails" 1 "$rc"
assert_match "and names the link and the rows" "BROKEN at link [0-9]+ \\(batch [0-9]+\\): recorded [0-9]+ ledger rows, ids [0-9]+\\.\\.[0-9]+" "$out"
tamper delete "DELETE FROM og.ledger WHERE ledger_id = $ROW"
assert_eq "a deleted row: verify fails" 1 "$rc"
assert_match "and counts what is missing" "recorded ([0-9]+) ledger rows.*found" "$out"
tamper reorder "UPDATE og.ledger l SET detail = o.detail FROM og.ledger o
                WHERE l.ledger_id = $ROW AND o.ledger_id = $ROW + 2"
assert_eq "rows reordered (contents swapped): verify fails" 1 "$rc"
tamper forge "INSERT INTO og.ledger SELECT ledger_id + 100000, recorded_at, batch_id + 100000, district_code,
              kind, case_id, source_system, source_event_id || '-forged', event_type, detail, body
              FROM og.ledger WHERE ledger_id = $ROW"
assert_eq "a row added outside any batch: verify fails" 1 "$rc"
assert_match "and names it" "BROKEN: 1 ledger rows \\(ids [0-9]+\\.\\.[0-9]+\\) belong to no link" "$out"
tamper truncate "DELETE FROM og.chain WHERE seq = (SELECT max(seq) FROM og.chain)"
assert_eq "the last link removed: verify fails" 1 "$rc"
assert_match "the head no longer matches" "the head \\(link [0-9]+\\) is not the last link|belong to no link" "$out"
