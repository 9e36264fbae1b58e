#!/usr/bin/env bash
# A case through the workflow by status updates, refusals of steps the case's state does
# not allow, and a dispatch restart in the middle: the new dispatch takes a new epoch,
# reloads the committed cases and goes on numbering where the old one stopped.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"

test_begin "lifecycle_restart"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
og_start_all "$TEST_DIR"
EP="ipc://$TEST_DIR/intake.sock"
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# publish NAME: publishes $TEST_DIR/NAME.jsonl; results in NAME.out, status in $rc.
publish() {
	rc=0
	"$ONEGRID_BIN/onegridctl" publish --endpoint "$EP" --results "$TEST_DIR/$1.out" \
		"$TEST_DIR/$1.jsonl" >"$TEST_DIR/$1.txt" || rc=$?
}
status() { # status ID CASE STATUS UNIT
	printf '{"id":"%s","source":"%s","type":"status","time":"%s","status":{"case_id":"%s","status":"%s","unit":"%s"}}\n' \
		"$1" "$(src=$(og_unit_source "$TEST_DB" "$4") && echo "${src:-zongzhi}")" "$NOW" "$2" "$3" "$4"
}
field() { grep -o "\"$2\":\"[^\"]*\"" "$TEST_DIR/$1.out" | head -1 | cut -d'"' -f4; }

og_gen_reports "$TEST_DB" 3 lc >"$TEST_DIR/open.jsonl"
publish open
assert_eq "three reports stored" 0 "$rc"
CASE=$(field open case_id)
UNIT=$(sql "$TEST_DB" "SELECT unit_code FROM og.case WHERE case_id = '$CASE'")
CENTRE=$(og_checking_unit "$TEST_DB" "$CASE")
NEED_CHECK=$(sql "$TEST_DB" "SELECT check_required FROM og.case JOIN og.category ON code = category_code
                             WHERE case_id = '$CASE'")
assert_match "the case is routed" '.+' "$UNIT"

{
	status st-1 "$CASE" STATUS_ACCEPTED "$UNIT"
	status st-2 "$CASE" STATUS_IN_PROGRESS "$UNIT"
} >"$TEST_DIR/steps1.jsonl"
publish steps1
assert_eq "accepted, in progress: stored" 0 "$rc"
assert_eq "case is in progress" in_progress "$(sql "$TEST_DB" "SELECT state FROM og.case WHERE case_id = '$CASE'")"

# Restart dispatch between steps: memory must come back from PostgreSQL.
E0=$(sql "$TEST_DB" "SELECT epoch FROM og.dispatch_epoch WHERE shard = '6502'")
og_stop dispatch "$TEST_DIR"
og_start dispatch "$TEST_DIR"
E1=$(sql "$TEST_DB" "SELECT epoch FROM og.dispatch_epoch WHERE shard = '6502'")
assert_ge "the restarted dispatch took a newer epoch" "$((E0 + 1))" "$E1"
assert_match "it reloaded the three cases" "epoch $E1: .* 3 cases" "$(cat "$TEST_DIR/dispatch.log")"

{
	status st-3 "$CASE" STATUS_CLOSED "$CENTRE"           # not yet: resolved first
	status st-4 "$CASE" STATUS_RESOLVED other-unit        # not the holding unit
	status st-5 "$CASE" STATUS_RESOLVED "$UNIT"
	status st-6 650299-99999999 STATUS_ACCEPTED "$UNIT"    # no such case
} >"$TEST_DIR/steps2.jsonl"
publish steps2
assert_eq "some refused: exit 3" 3 "$rc"
assert_match "closing an in-progress case: INVALID_TRANSITION" \
	'"id":"st-3".*"reason":"REASON_INVALID_TRANSITION"' "$(grep st-3 "$TEST_DIR/steps2.out")"
assert_match "unknown unit: UNKNOWN_UNIT" '"reason":"REASON_UNKNOWN_UNIT"' "$(grep st-4 "$TEST_DIR/steps2.out")"
assert_match "resolved: stored" '"outcome":"stored"' "$(grep st-5 "$TEST_DIR/steps2.out")"
assert_match "unknown case: UNKNOWN_CASE" '"reason":"REASON_UNKNOWN_CASE"' "$(grep st-6 "$TEST_DIR/steps2.out")"

if [[ $NEED_CHECK == t ]]; then
	status st-7 "$CASE" STATUS_CHECKED_OK "$CENTRE" >"$TEST_DIR/steps3.jsonl"
fi
status st-8 "$CASE" STATUS_CLOSED "$CENTRE" >>"$TEST_DIR/steps3.jsonl"
printf '{"id":"ev-1","source":"12345","type":"evaluation","time":"%s","evaluation":{"case_id":"%s","result":"RESULT_UNSATISFIED"}}\n' \
	"$NOW" "$CASE" >>"$TEST_DIR/steps3.jsonl"
publish steps3
assert_eq "check, close, evaluation: stored" 0 "$rc"
assert_eq "an unsatisfied evaluation reopens the case for its unit" "dispatched|$UNIT|" \
	"$(sql "$TEST_DB" "SELECT state, unit_code, closed_at FROM og.case WHERE case_id = '$CASE'")"
assert_eq "every stored step has an event and a decision in the ledger" \
	"$(sql "$TEST_DB" "SELECT 2 * count(*) FROM og.event_key WHERE case_id = '$CASE'")" \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.ledger WHERE case_id = '$CASE'")"
assert_eq "decisions record each previous state" \
	"dispatched>accepted accepted>in_progress in_progress>resolved" \
	"$(sql "$TEST_DB" "SELECT string_agg((detail->>'previous_state') || '>' || (detail->>'state'), ' '
	                   ORDER BY ledger_id) FROM og.ledger
	                   WHERE case_id = '$CASE' AND kind = 'decision' AND event_type = 'status'
	                   AND detail->>'state' IN ('accepted', 'in_progress', 'resolved')")"

# Numbering goes on after the restart: no case id reused.
og_gen_reports "$TEST_DB" 3 lc2 >"$TEST_DIR/more.jsonl"
publish more
assert_eq "three more reports stored" 0 "$rc"
assert_eq "six distinct cases" 6 "$(sql "$TEST_DB" "SELECT count(DISTINCT case_id) FROM og.case")"
assert_eq "refusals recorded" 3 "$(sql "$TEST_DB" "SELECT count(*) FROM og.rejection")"
