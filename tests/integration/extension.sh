#!/usr/bin/env bash
# 延期: a unit asks for more time before its deadline; while the request is pending the
# clock is paused — the case does not escalate, across dispatch restarts — and a
# supervising unit (street or district; never the requesting unit,
# even where it is also the community's supervisor) approves or refuses it. Approved: the
# clock resumes with the working time it had left, plus the working days granted.
# Refused: it resumes as it was. Undecided for extension_decision_days working days: it
# lapses, and the clock resumes as of then. A request after the deadline is refused. Dispatch's
# clock is set with faketime (times below are UTC; 02:00 UTC is 10:00 in China) and runs on
# from there, so each decision comes a few seconds after the hour, more on a loaded
# machine. The working time left is carried to the second and a working-day limit ends at
# the close of the day it runs out in: were a clock resumed at a later time of day than it
# was paused, those seconds could carry it past a day's close and give it a whole day more.
# So clocks resume at 09:30, half an hour before they were paused, whatever the load.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/faults.sh"
source "$(dirname "$0")/../lib/events.sh"

test_begin "extension"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
# The supervisors have 1 working day to decide (the default) in E's story, first, then 10:
# the requests of A and B are decided before that. At the end, with 1, one lapses undecided.
IPORT=$(og_free_tcp_port)
sed -i -e 's/^\[dispatch\]$/[dispatch]\nescalation_scan_ms = 100/' \
	-e "s/^\\[intake\\]\$/[intake]\\nmetrics_listen = 127.0.0.1:$IPORT/" "$TEST_DIR/onegrid.conf"
grep -q "^metrics_listen = 127.0.0.1:$IPORT$" "$TEST_DIR/onegrid.conf" || fail "intake's metrics_listen in $TEST_DIR/onegrid.conf"
dispatch_at() { # dispatch_at "YYYY-MM-DD HH:MM:SS" (UTC): restarted, ready, clock running from there
	og_restart_at dispatch "$TEST_DIR" "$1"
}
og_start_all "$TEST_DIR"
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
read -r GRID AREA < <(sql "$TEST_DB" "SELECT x.source_grid_id, x.area_code FROM og.grid_crosswalk x
                                      JOIN og.area a ON a.code = x.area_code
                                      WHERE x.source_system = 'zongzhi' AND a.level = 'grid' ORDER BY 1 LIMIT 1" | tr '|' ' ')
STREET_SUP=$(sql "$TEST_DB" "SELECT unit_code FROM og.supervisor WHERE area_code = left('$AREA', 9)")
DISTRICT_SUP=$(sql "$TEST_DB" "SELECT unit_code FROM og.supervisor WHERE area_code = left('$AREA', 6)")
COMMUNITY_SUP=$(sql "$TEST_DB" "SELECT unit_code FROM og.supervisor WHERE area_code = left('$AREA', 12)")
[[ -n $STREET_SUP && -n $DISTRICT_SUP && -n $COMMUNITY_SUP ]] || fail "the sample registers no supervisors for $AREA"
echo 0 >"$TEST_DIR/n"
send() { # send UNIT CASE STATUS [DAYS]: publishes one status update, prints the answer
	# Its id is ext-N, N counted in a file (send is called in $( )); two sends at once (in the
	# background) name theirs in SEND_ID instead, or they could take the same N.
	local days='' n=${SEND_ID:-}
	[[ -n ${4:-} ]] && days=",\"extension_working_days\":$4"
	if [[ -z $n ]]; then
		n=$(($(cat "$TEST_DIR/n") + 1))
		echo "$n" >"$TEST_DIR/n"
	fi
	printf '{"id":"ext-%s","source":"zongzhi","type":"status","time":"%s","status":{"case_id":"%s","status":"%s","unit":"%s","note":"等待配件到货"%s}}\n' \
		"$n" "$NOW" "$2" "$3" "$1" "$days" >"$TEST_DIR/s$n.jsonl"
	og_publish_named "$TEST_DIR" "s$n" || true
	cat "$TEST_DIR/s$n.out"
}
open_repair() { # open_repair ID: a routine repair reported now on dispatch's clock; prints its case
	printf '{"id":"%s","source":"zongzhi","type":"report","time":"%s","subject":"%s","report":{"category":"demand.repair","title":"楼道灯不亮","channel":"CHANNEL_GRID_PATROL"}}\n' \
		"$1" "$NOW" "$GRID" >"$TEST_DIR/$1.jsonl"
	og_publish_named "$TEST_DIR" "$1" || fail "publish $1: $(cat "$TEST_DIR/$1.txt")"
	og_case_of "$TEST_DIR" "$1"
}
deadline() { sql "$TEST_DB" "SELECT deadline_at FROM og.case WHERE case_id = '$1'"; }
ended_to() { # ended_to CASE: the units told its request ended (extension_ended), a row each
	sql "$TEST_DB" "SELECT coalesce(string_agg(unit_code, ' ' ORDER BY unit_code, seq), '') || ' '
	                  FROM og.assignment WHERE case_id = '$1' AND kind = 'extension_ended'"
}
levels() { sql "$TEST_DB" "SELECT count(*) FROM audit.escalations WHERE case_id = '$1'"; }

feed_kinds() { # feed_kinds CASE: its feed rows to the units other than the holder, in order
	sql "$TEST_DB" "SELECT string_agg(kind, ' ' ORDER BY seq) FROM (SELECT DISTINCT ON (kind, ledger_id) kind, seq
	                  FROM og.assignment WHERE case_id = '$1' AND unit_code <> '$HOLDER'
	                   AND kind LIKE 'extension%' ORDER BY kind, ledger_id, seq) k"
}

# E: Mon 2026-11-09 10:00 in China a repair, and at once its unit's request; undecided, it
# lapses at the close of Tue 10th. Dispatch is away then; the unit asks again on Wed 11th
# 09:30, received by intake, which holds it until dispatch is back. Decided before dispatch
# scans (intake names what it holds), the one decision records the lapse and the new
# request: the units asked hear that the first lapsed, then that the second waits (before,
# only that one lapsed: the trigger took a pause that had moved for no new request).
# F, the same, but its unit returns it instead (退回) after the lapse: the case goes to
# another unit, on a clock of its own.
dispatch_at "2026-11-09 02:00:00"
E=$(open_repair repair-e)
F=$(open_repair repair-f)
HOLDER=$(sql "$TEST_DB" "SELECT unit_code FROM og.case WHERE case_id = '$E'")
assert_match "E's first request is stored" '"outcome":"stored"' "$(send "$HOLDER" "$E" STATUS_EXTENSION_REQUESTED 2)"
assert_match "F's request is stored" '"outcome":"stored"' "$(send "$HOLDER" "$F" STATUS_EXTENSION_REQUESTED 2)"
og_stop dispatch "$TEST_DIR"
before=$(og_metric "$IPORT" onegrid_intake_received_total)
SEND_ID=e2 send "$HOLDER" "$E" STATUS_EXTENSION_REQUESTED 3 >"$TEST_DIR/e2.txt" &
e2=$!
SEND_ID=f2 send "$HOLDER" "$F" STATUS_RETURNED >"$TEST_DIR/f2.txt" &
f2=$!
og_poll 30 og_metric_at_least "$IPORT" onegrid_intake_received_total $((before + 2)) ||
	fail "intake receives E's second request and F's return"
dispatch_at "2026-11-11 01:30:00"
wait "$e2" "$f2"
assert_match "F's return, after its request lapsed, is stored" '"outcome":"stored"' "$(cat "$TEST_DIR/f2.txt")"
F_UNIT=$(sql "$TEST_DB" "SELECT unit_code FROM og.case WHERE case_id = '$F'")
[[ -n $F_UNIT && $F_UNIT != "$HOLDER" ]] || fail "F is re-routed to another unit (got \"$F_UNIT\")"
assert_eq "the units asked to decide F's request hear that it lapsed; the unit that asked does not (before: the new holder was left out, the requester told)" \
	"$(printf '%s\n' "$COMMUNITY_SUP" "$STREET_SUP" "$DISTRICT_SUP" | grep -vx "$HOLDER" | sort | tr '\n' ' ')" \
	"$(sql "$TEST_DB" "SELECT string_agg(unit_code, ' ' ORDER BY unit_code) || ' ' FROM og.assignment
	                   WHERE case_id = '$F' AND kind = 'extension_lapsed'")"
# (Here the new unit's 5 working days end the same day as the resumed clock would have:
# test_decide's test_lapse_deadline_before_the_step has them differ.)
assert_eq "the auditor sees F's lapse with the deadline it left, from the return's decision (延期记录)" "t|t|t" \
	"$(sql "$TEST_DB" "SELECT x.deadline_after > x.deadline_before, x.paused_at IS NULL,
	                          x.deadline_after = (l.detail ->> 'lapse_deadline')::timestamptz
	                     FROM audit.extensions x JOIN og.ledger l ON l.ledger_id = x.ledger_id
	                    WHERE x.case_id = '$F' AND x.step = 'EXTENSION_LAPSED'")"
assert_match "E's second request, after the first lapsed, is stored" '"outcome":"stored"' "$(cat "$TEST_DIR/e2.txt")"
assert_eq "one decision records the lapse and pauses the clock again" "1|paused" \
	"$(sql "$TEST_DB" "SELECT (SELECT count(*) FROM og.ledger WHERE case_id = '$E' AND kind = 'decision'
	                           AND detail ? 'extension_lapsed' AND detail ? 'paused_at'), clock
	                     FROM og.case WHERE case_id = '$E'")"
assert_eq "the units asked hear of the request, its lapse, then of the new one" \
	"extension_requested extension_lapsed extension_requested" "$(feed_kinds "$E")"
assert_eq "the auditor sees the lapse that decision recorded (延期记录), before the new request" \
	"STATUS_EXTENSION_REQUESTED|EXTENSION_LAPSED|STATUS_EXTENSION_REQUESTED" \
	"$("$PG_BIN/psql" -XAtq -d "$TEST_DB" -U onegrid_audit -c \
		"SELECT string_agg(step, '|' ORDER BY ledger_id, step <> 'EXTENSION_LAPSED') FROM audit.extensions
		  WHERE case_id = '$E'")"
# The lapse's row: the deadline the lapse left (the pause used working time: later than
# before it) and no pause, the clock ran again; the new request's row starts from that
# deadline and pauses it. Before, the lapse's row showed the new request's pause, and the
# request's row the deadline before the lapse.
assert_eq "the lapse's row shows the deadline it left, the new request's row starts there" \
	"t|t|t|t|t|t" \
	"$(sql "$TEST_DB" "SELECT x.paused_at IS NULL, x.deadline_after > x.deadline_before,
	                          x.deadline_after = c.deadline_at, r.deadline_before = x.deadline_after,
	                          r.deadline_after = x.deadline_after, r.paused_at = c.paused_at
	                     FROM audit.extensions x
	                     JOIN audit.extensions r ON r.ledger_id = x.ledger_id
	                                            AND r.step = 'STATUS_EXTENSION_REQUESTED'
	                     JOIN og.case c ON c.case_id = x.case_id
	                    WHERE x.case_id = '$E' AND x.step = 'EXTENSION_LAPSED'")"

# Mon 2026-11-16 10:00 in China: two routine repairs, due in 5 working days (Mon 23rd 17:00).
sed -i 's/^escalation_scan_ms = 100$/escalation_scan_ms = 100\nextension_decision_days = 10/' "$TEST_DIR/onegrid.conf"
dispatch_at "2026-11-16 02:00:00"
for id in repair-a repair-b; do
	printf '{"id":"%s","source":"zongzhi","type":"report","time":"%s","subject":"%s","report":{"category":"demand.repair","title":"楼道灯不亮","channel":"CHANNEL_GRID_PATROL"}}\n' \
		"$id" "$NOW" "$GRID"
done >"$TEST_DIR/reports.jsonl"
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --results "$TEST_DIR/r.out" \
	"$TEST_DIR/reports.jsonl" >/dev/null
A=$(grep '"id":"repair-a"' "$TEST_DIR/r.out" | grep -o '[0-9]\{6\}-[0-9]\{8\}')
B=$(grep '"id":"repair-b"' "$TEST_DIR/r.out" | grep -o '[0-9]\{6\}-[0-9]\{8\}')
HOLDER=$(sql "$TEST_DB" "SELECT unit_code FROM og.case WHERE case_id = '$A'")
assert_eq "due at the close of the 5th working day" "2026-11-23 09:00:00+00" "$(deadline "$A")"

# Tue 10:00: the unit asks for 3 more working days; the clock pauses.
dispatch_at "2026-11-17 02:00:00"
assert_match "the request is stored" '"outcome":"stored"' "$(send "$HOLDER" "$A" STATUS_EXTENSION_REQUESTED 3)"
assert_eq "the clock is paused (案件时钟)" "paused|2026-11-23 09:00:00+00" \
	"$("$PG_BIN/psql" -XAtq -d "$TEST_DB" -U onegrid_audit -c \
		"SELECT colour, deadline_at FROM audit.\"案件时钟\" WHERE case_id = '$A'")"
assert_eq "the units that may decide hear of it in their feed, the requester does not" \
	"$(printf '%s\n' "$COMMUNITY_SUP" "$STREET_SUP" "$DISTRICT_SUP" | grep -vx "$HOLDER" | sort | tr '\n' ' ')" \
	"$(sql "$TEST_DB" "SELECT string_agg(unit_code, ' ' ORDER BY unit_code) || ' ' FROM og.assignment
	                   WHERE case_id = '$A' AND kind = 'extension_requested'")"
assert_match "a second request while one is pending: refused" 'REASON_INVALID_TRANSITION.*already pending' \
	"$(send "$HOLDER" "$A" STATUS_EXTENSION_REQUESTED 1)"
# In the sample the community's 两委 both holds repair cases and supervises the community.
assert_eq "the holder also supervises the community" "$COMMUNITY_SUP" "$HOLDER"
assert_match "the requesting unit cannot approve its own request even so" \
	'REASON_INVALID_TRANSITION.*supervising unit' "$(send "$HOLDER" "$A" STATUS_EXTENDED 3)"

# Wed 25th 09:30, two days past the deadline, dispatch restarted: B, ignored, escalates
# (its scan runs every 100 ms: wait for it); A, paused, does not (the same scan saw it).
dispatch_at "2026-11-25 01:30:00"
escalated() { (($(levels "$B") >= 1)); }
og_poll 60 escalated || true
assert_ge "the ignored case escalates" 1 "$(levels "$B")"
assert_eq "the paused case does not" 0 "$(levels "$A")"
assert_match "a request after the deadline: refused" 'REASON_INVALID_TRANSITION.*deadline had passed when it was received' \
	"$(send "$HOLDER" "$B" STATUS_EXTENSION_REQUESTED 2)"

# The street office approves 2 days: the 39 working hours left when paused (Tue 10:00 to
# Mon 17:00) run from Wed 09:30 to Tue Dec 1 16:30, so the limit ends at the close of Tue
# Dec 1; plus 2 working days: Thu Dec 3 17:00.
assert_match "the street office approves" '"outcome":"stored"' "$(send "$STREET_SUP" "$A" STATUS_EXTENDED 2)"
assert_eq "the new deadline" "2026-12-03 09:00:00+00" "$(deadline "$A")"
ASKED=$(printf '%s\n' "$COMMUNITY_SUP" "$STREET_SUP" "$DISTRICT_SUP" | grep -vx "$HOLDER" | sort | tr '\n' ' ')
assert_eq "the units that were asked hear that it is decided (before: only a lapse was told)" \
	"$ASKED" "$(ended_to "$A")"
assert_eq "the holder keeps the case, the clock runs" "$HOLDER||" \
	"$(sql "$TEST_DB" "SELECT unit_code, paused_at, extension_days FROM og.case WHERE case_id = '$A'")"
# Nothing to wait for here: a case that is not overdue does not escalate. The second gives
# the 100 ms scan a few chances to get that wrong; load can only make the check weaker.
sleep 1
assert_eq "and it is not overdue now" 0 "$(levels "$A")"

# Thu 26th 10:00 another request; Mon 30th 09:30 the district refuses it: the 47 working
# hours left run from Mon 09:30 to Mon Dec 7 16:30, the close of Mon Dec 7.
dispatch_at "2026-11-26 02:00:00"
send "$HOLDER" "$A" STATUS_EXTENSION_REQUESTED 5 >/dev/null
# An operator about to replace the street's supervisor while A's request waits for it is
# warned: the replaced unit's work list would keep the request (docs/integrating.md).
OTHER_ST=$(sql "$TEST_DB" "SELECT unit_code FROM og.supervisor WHERE length(area_code) = 9
                           AND unit_code <> '$STREET_SUP' ORDER BY 1 LIMIT 1")
mkdir -p "$TEST_DIR/reg"
sql "$TEST_DB" "COPY (SELECT area_code, CASE WHEN area_code = left('$AREA', 9) THEN '$OTHER_ST' ELSE unit_code END
                      AS unit_code FROM og.supervisor ORDER BY 1) TO STDOUT (FORMAT csv, HEADER)" \
	>"$TEST_DIR/reg/supervisors.csv"
"$ONEGRID_BIN/onegridctl" registry import --db "dbname=$TEST_DB" --dry-run "$TEST_DIR/reg/supervisors.csv" \
	>"$TEST_DIR/reg.out" 2>"$TEST_DIR/reg.err" || fail "registry import --dry-run: $(cat "$TEST_DIR/reg.err")"
assert_match "the operator replacing the street's supervisor is warned of A's pending request" \
	"warning: case $A waits for a decision on an extension request, and .*supervisors.csv changes the supervisor of area ${AREA:0:9} from $STREET_SUP to $OTHER_ST" \
	"$(cat "$TEST_DIR/reg.err")"
assert_match "and only warned: the dry run checks the change" "dry run: 1 change checked" "$(cat "$TEST_DIR/reg.out")"

# D: Fri 27th 10:00 a repair; Sat 28th 10:00 its unit asks, Sun 29th 10:00 the district
# refuses. The pause used no working time: the deadline stays as it was, and the holder
# hears that its clock runs again all the same (before: no row, the deadline unchanged).
dispatch_at "2026-11-27 02:00:00"
D=$(open_repair repair-d)
DUE_D=$(deadline "$D")
dispatch_at "2026-11-28 02:00:00"
assert_match "D's request on a Saturday is stored" '"outcome":"stored"' "$(send "$HOLDER" "$D" STATUS_EXTENSION_REQUESTED 2)"
dispatch_at "2026-11-29 02:00:00"
assert_match "the district refuses it on the Sunday" '"outcome":"stored"' "$(send "$DISTRICT_SUP" "$D" STATUS_EXTENSION_REFUSED)"
assert_eq "D's clock runs again, due as before" "running|$DUE_D" \
	"$(sql "$TEST_DB" "SELECT clock, deadline_at FROM og.case WHERE case_id = '$D'")"
assert_eq "the holder hears that its clock runs again" "1|$DUE_D" \
	"$(sql "$TEST_DB" "SELECT count(*), max(deadline_at) FROM og.assignment WHERE case_id = '$D'
	                   AND unit_code = '$HOLDER' AND kind = 'deadline_changed'")"
assert_eq "the units asked hear that D's request is decided" "$ASKED" "$(ended_to "$D")"
# The unit asks again on the Sunday, then goes on working (accepted) on the Monday: its own
# step ends the request, and the units asked hear so.
assert_match "D's second request is stored" '"outcome":"stored"' "$(send "$HOLDER" "$D" STATUS_EXTENSION_REQUESTED 1)"
dispatch_at "2026-11-30 01:00:00"
assert_match "its unit accepts D, ending the request" '"outcome":"stored"' "$(send "$HOLDER" "$D" STATUS_ACCEPTED)"
assert_eq "D's clock runs again" "running" "$(sql "$TEST_DB" "SELECT clock FROM og.case WHERE case_id = '$D'")"
assert_eq "the units asked hear that the request the unit's own step ended is no longer theirs" \
	"$(for u in $ASKED; do printf '%s %s ' "$u" "$u"; done)" "$(ended_to "$D")"
assert_match "a refusal of it now: nothing is pending" 'REASON_INVALID_TRANSITION.*no extension request is pending' \
	"$(send "$DISTRICT_SUP" "$D" STATUS_EXTENSION_REFUSED)"
dispatch_at "2026-11-30 01:30:00"
# Before the district decides A, the operator makes that change all the same (the street
# office was merged, say). The units told of the request are the ones to hear that it
# ended (migration 031): the replaced street office too, whose work list holds it, and not
# the new one, which never heard it requested (before: the other way round).
sql "$TEST_DB" "COPY (SELECT area_code, unit_code FROM og.supervisor ORDER BY 1) TO STDOUT (FORMAT csv, HEADER)" \
	>"$TEST_DIR/supervisors-before.csv"
"$ONEGRID_BIN/onegridctl" registry import --db "dbname=$TEST_DB" "$TEST_DIR/reg/supervisors.csv" \
	>"$TEST_DIR/reg.out" 2>"$TEST_DIR/reg.err" || fail "registry import: $(cat "$TEST_DIR/reg.err")"
assert_eq "the street has another supervisor now" "$OTHER_ST" \
	"$(sql "$TEST_DB" "SELECT unit_code FROM og.supervisor WHERE area_code = left('$AREA', 9)")"
assert_match "the district refuses" '"outcome":"stored"' "$(send "$DISTRICT_SUP" "$A" STATUS_EXTENSION_REFUSED)"
assert_eq "the units told of the request hear it ended, the replaced street office too, not its successor" \
	"$ASKED" "$(sql "$TEST_DB" "SELECT string_agg(unit_code, ' ' ORDER BY unit_code) || ' ' FROM og.assignment
	                           WHERE case_id = '$A' AND kind = 'extension_ended'
	                             AND seq > (SELECT max(seq) FROM og.assignment WHERE case_id = '$A'
	                                          AND kind = 'extension_requested')")"
mkdir -p "$TEST_DIR/reg-back"
mv "$TEST_DIR/supervisors-before.csv" "$TEST_DIR/reg-back/supervisors.csv"
"$ONEGRID_BIN/onegridctl" registry import --db "dbname=$TEST_DB" "$TEST_DIR/reg-back/supervisors.csv" \
	>"$TEST_DIR/reg.out" 2>"$TEST_DIR/reg.err" || fail "registry import back: $(cat "$TEST_DIR/reg.err")"
assert_eq "the clock resumes as it was" "2026-12-07 09:00:00+00" "$(deadline "$A")"
assert_match "a refusal with nothing pending: refused" 'REASON_INVALID_TRANSITION.*no extension request is pending' \
	"$(send "$DISTRICT_SUP" "$A" STATUS_EXTENSION_REFUSED)"

assert_eq "the auditor sees every request and decision (延期记录)" \
	"STATUS_EXTENSION_REQUESTED $HOLDER 3 2026-11-23 09:00:00+00|STATUS_EXTENDED $STREET_SUP 2 2026-12-03 09:00:00+00|STATUS_EXTENSION_REQUESTED $HOLDER 5 2026-12-03 09:00:00+00|STATUS_EXTENSION_REFUSED $DISTRICT_SUP - 2026-12-07 09:00:00+00" \
	"$("$PG_BIN/psql" -XAtq -d "$TEST_DB" -U onegrid_audit -c \
		"SELECT string_agg(step || ' ' || unit || ' ' || coalesce(working_days::text, '-') || ' ' || deadline_after,
		                   '|' ORDER BY ledger_id) FROM audit.\"延期记录\" WHERE case_id = '$A'")"
# Undecided: Tue Dec 1 10:00 a new repair C, due Tue Dec 8 17:00; Wed Dec 2 10:00 its unit
# asks for 3 days, and no one answers. With the default (1 working day) the request lapses
# at Thu Dec 3 17:00; dispatch, restarted Fri Dec 4 09:30, records that. The 39 working
# hours left at the request run from Thu 17:00 (Fri 09:00) to Thu Dec 10 16:00: due at its
# close. Before, the clock stayed paused, and the case was never overdue.
sed -i '/^extension_decision_days = 10$/d' "$TEST_DIR/onegrid.conf"
dispatch_at "2026-12-01 02:00:00"
C=$(open_repair repair-c)
assert_eq "C is due at the close of the 5th working day" "2026-12-08 09:00:00+00" "$(deadline "$C")"
dispatch_at "2026-12-02 02:00:00"
assert_match "C's request is stored" '"outcome":"stored"' "$(send "$HOLDER" "$C" STATUS_EXTENSION_REQUESTED 3)"
dispatch_at "2026-12-04 01:30:00"
lapsed() { [[ $(sql "$TEST_DB" "SELECT clock FROM og.case WHERE case_id = '$C'") == running ]]; }
og_poll 60 lapsed || fail "the undecided request lapses: C's clock runs again"
assert_eq "the clock resumed as of the lapse" "2026-12-10 09:00:00+00||" \
	"$(sql "$TEST_DB" "SELECT deadline_at, paused_at, extension_days FROM og.case WHERE case_id = '$C'")"
assert_eq "the holder hears of its new deadline in its feed" 1 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.assignment WHERE case_id = '$C' AND unit_code = '$HOLDER'
	                   AND kind = 'deadline_changed' AND deadline_at = '2026-12-10 09:00:00+00'")"
assert_eq "a lapse is told as such, not as ended" " " "$(ended_to "$C")"
assert_eq "the units that were asked to decide hear that it lapsed" \
	"$(printf '%s\n' "$COMMUNITY_SUP" "$STREET_SUP" "$DISTRICT_SUP" | grep -vx "$HOLDER" | sort | tr '\n' ' ')" \
	"$(sql "$TEST_DB" "SELECT string_agg(unit_code, ' ' ORDER BY unit_code) || ' ' FROM og.assignment
	                   WHERE case_id = '$C' AND kind = 'extension_lapsed'")"
assert_match "a refusal after it: nothing is pending" 'REASON_INVALID_TRANSITION.*no extension request is pending' \
	"$(send "$DISTRICT_SUP" "$C" STATUS_EXTENSION_REFUSED)"
# Restarted again: the lapse is not recorded twice.
dispatch_at "2026-12-04 01:31:00"
assert_eq "the auditor sees the request and its lapse (延期记录), once" \
	"STATUS_EXTENSION_REQUESTED $HOLDER 3 2026-12-08 09:00:00+00|EXTENSION_LAPSED - - 2026-12-10 09:00:00+00" \
	"$("$PG_BIN/psql" -XAtq -d "$TEST_DB" -U onegrid_audit -c \
		"SELECT string_agg(step || ' ' || coalesce(unit, '-') || ' ' || coalesce(working_days::text, '-') || ' ' || deadline_after,
		                   '|' ORDER BY ledger_id) FROM audit.\"延期记录\" WHERE case_id = '$C'")"
# Past the resumed deadline it escalates like any case.
dispatch_at "2026-12-10 09:30:00"
escalated_c() { (($(levels "$C") >= 1)); }
og_poll 60 escalated_c || fail "C, overdue after its request lapsed, escalates"
pass "C, overdue after its request lapsed, escalates"

# G: a supervisor's refusal that intake received while the request was pending, but that
# dispatch decides only after its scan recorded the lapse: the clock runs as of the refusal's
# receipt. Mon Dec 14 10:00 a new repair G, due Mon Dec 21 17:00; at once its unit asks for
# 3 days. Tue Dec 15 09:30 the district refuses; intake (its clock set then) receives it
# while dispatch is away, and is frozen before dispatch is back. Dispatch, restarted Wed
# Dec 16 09:30, waits 30 s for an intake, scans without it, and records the lapse of Tue
# 17:00: the 47 working hours left at the request run from Wed 09:00 to Wed Dec 23 16:00.
# Dispatch restarted once more (it loads the pause the lapse ended with the case) and
# intake thawed, the refusal is decided: from Tue 09:30 they end Tue Dec 22 16:30. Before,
# the clock the lapse had resumed stayed: the unit was given a working day.
dispatch_at "2026-12-14 02:00:00"
G=$(open_repair repair-g)
assert_eq "G is due at the close of the 5th working day" "2026-12-21 09:00:00+00" "$(deadline "$G")"
assert_match "G's request is stored" '"outcome":"stored"' "$(send "$HOLDER" "$G" STATUS_EXTENSION_REQUESTED 3)"
og_stop dispatch "$TEST_DIR"
og_restart_at intake "$TEST_DIR" "2026-12-15 01:30:00"
before=$(og_metric "$IPORT" onegrid_intake_received_total)
SEND_ID=g2 send "$DISTRICT_SUP" "$G" STATUS_EXTENSION_REFUSED >"$TEST_DIR/g2.txt" &
g2=$!
og_poll 30 og_metric_at_least "$IPORT" onegrid_intake_received_total $((before + 1)) ||
	fail "intake receives the district's refusal of G's request"
kill -STOP "$(cat "$TEST_DIR/intake.pid")"
on_exit "kill -CONT $(cat "$TEST_DIR/intake.pid") 2>/dev/null || true"
dispatch_at "2026-12-16 01:30:00"
lapsed_g() { [[ $(sql "$TEST_DB" "SELECT clock FROM og.case WHERE case_id = '$G'") == running ]]; }
og_poll 90 lapsed_g || fail "with no intake, dispatch scans and records the lapse of G's request"
assert_eq "the lapse resumed G's clock as of the lapse, and the case keeps the pause it ended" \
	"2026-12-23 09:00:00+00|2026-12-15 09:00:00+00|2026-12-14 02:00|2026-12-21 09:00:00+00" \
	"$(sql "$TEST_DB" "SELECT deadline_at, extension_lapsed_at, to_char(lapsed_paused_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'),
	                          lapsed_paused_deadline_at FROM og.case WHERE case_id = '$G'")"
# Restarted before intake is back: the refusal is decided by a dispatch that loaded the
# pause with the case.
dispatch_at "2026-12-16 01:35:00"
kill -CONT "$(cat "$TEST_DIR/intake.pid")"
wait "$g2"
assert_match "the refusal, received before the lapse, is stored" '"outcome":"stored"' "$(cat "$TEST_DIR/g2.txt")"
assert_eq "G's clock runs as of the refusal's receipt, not of the lapse" "2026-12-22 09:00:00+00|running" \
	"$(sql "$TEST_DB" "SELECT deadline_at, clock FROM og.case WHERE case_id = '$G'")"
assert_eq "the holder hears of the earlier deadline in its feed" 1 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.assignment WHERE case_id = '$G' AND unit_code = '$HOLDER'
	                   AND kind = 'deadline_changed' AND deadline_at = '2026-12-22 09:00:00+00'")"
assert_eq "the pause is used once: the case forgets it" "|" \
	"$(sql "$TEST_DB" "SELECT lapsed_paused_at, lapsed_paused_deadline_at FROM og.case WHERE case_id = '$G'")"

assert_eq "the projection rebuilds from the ledger" 0 \
	"$("$ONEGRID_BIN/onegridctl" rebuild-cases --db "dbname=$TEST_DB" >/dev/null; echo $?)"
assert_eq "the record verifies" 0 \
	"$("$ONEGRID_BIN/onegridctl" audit verify --db "dbname=$TEST_DB user=onegrid_audit" >/dev/null; echo $?)"

# og.extension_asked on its own, in a transaction rolled back (review): which request's
# units hear of an end. Case x1: request 1 told U-A and U-B, and ended; request 2 told no
# one (its only supervisor held the case): its end goes to no one, not to request 1's
# units. x2: a lapse and a new request in one decision (one ledger id, the lapse first):
# the new request's unit. x3: no extension row (asked before the feed told of requests):
# the supervisors registered now.
SUPS=$(sql "$TEST_DB" "SELECT string_agg(DISTINCT unit_code, ' ' ORDER BY unit_code) FROM og.supervisor
                       WHERE area_code IN (left('$AREA', 12), left('$AREA', 9), left('$AREA', 6))")
assert_eq "the end of a request goes to the units told of it, and only to them" "-|U-C|$SUPS" \
	"$(sql "$TEST_DB" <<-EOF
		BEGIN;
		INSERT INTO og.assignment (seq, unit_code, case_id, kind, state, ledger_id)
		SELECT m + n, u, c, k, 'dispatched', l
		  FROM (SELECT coalesce(max(seq), 0) AS m FROM og.assignment) s,
		       (VALUES (1, 'U-A', 'x1', 'extension_requested', 10), (2, 'U-B', 'x1', 'extension_requested', 10),
		               (3, 'U-A', 'x1', 'extension_ended', 12), (4, 'U-B', 'x1', 'extension_ended', 12),
		               (5, 'U-A', 'x2', 'extension_requested', 10), (6, 'U-A', 'x2', 'extension_lapsed', 20),
		               (7, 'U-C', 'x2', 'extension_requested', 20)) v(n, u, c, k, l);
		SELECT string_agg(coalesce((SELECT string_agg(u, ' ' ORDER BY u)
		                              FROM og.extension_asked(x.c, '$AREA') u), '-'), '|' ORDER BY x.c)
		  FROM (VALUES ('x1'), ('x2'), ('x3')) x(c);
		ROLLBACK;
	EOF
	)"
