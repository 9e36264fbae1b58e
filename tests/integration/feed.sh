#!/usr/bin/env bash
# Outbound assignments: a handling unit's system reads its assignments from a sequence
# number on, follows new ones as they are committed, and after being offline catches up
# without missing any. A return shows as "withdrawn" for one unit and "assigned" for the
# next. The subscriber role sees the feed and nothing else, and of the feed only the units
# an operator granted it; the auditor sees every unit's rows. A unit also hears when its
# case is finished, reopened or given a new deadline, and a supervisor when its supervision
# ends (tested on og.case directly, as the owner, in a transaction rolled back).
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"

test_begin "feed"
test_createdb
# Logins are cluster-wide and may be left from an earlier run; their units are not (per
# database). The first two start outside onegrid_feed: og.feed_grant puts them in.
sql "$TEST_DB" <<'EOF'
DO $$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['unit_system', 'unit_other', 'feed_nobody'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('CREATE ROLE %I LOGIN', r);
    END IF;
    IF r <> 'feed_nobody' AND pg_has_role(r, 'onegrid_feed', 'MEMBER') THEN
      EXECUTE format('REVOKE onegrid_feed FROM %I', r);
    END IF;
  END LOOP;
  IF NOT pg_has_role('feed_nobody', 'onegrid_feed', 'MEMBER') THEN
    GRANT onegrid_feed TO feed_nobody;
  END IF;
END $$;
EOF
og_write_config "$TEST_DIR" "$TEST_DB"
og_start_all "$TEST_DIR"
FEED="dbname=$TEST_DB user=unit_system"
OTHER="dbname=$TEST_DB user=unit_other"
# as LOGIN SQL: runs SQL as a login role, errors and notices included in the output.
as() { "$PG_BIN/psql" -XAtq -v ON_ERROR_STOP=1 -d "$TEST_DB" -U "$1" -c "$2" 2>&1 || true; }
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
read -r GRID _ < <(sql "$TEST_DB" "SELECT x.source_grid_id, x.area_code FROM og.grid_crosswalk x
                                      JOIN og.area a ON a.code = x.area_code
                                      WHERE x.source_system = 'zongzhi' AND a.level = 'grid' ORDER BY 1 LIMIT 1" | tr '|' ' ')
report() {
	printf '{"id":"%s","source":"zongzhi","type":"report","time":"%s","subject":"%s","report":{"category":"facility.handrail","title":"扶手","channel":"CHANNEL_DOOR_VISIT"}}\n' \
		"$1" "$NOW" "$GRID" >"$TEST_DIR/$1.jsonl"
	"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" \
		--results "$TEST_DIR/$1.out" "$TEST_DIR/$1.jsonl" >/dev/null
}
report f-1
report f-2
UNIT=$(sql "$TEST_DB" "SELECT unit_code FROM og.case LIMIT 1")

assert_eq "an operator grants the login its unit" t \
	"$(sql "$TEST_DB" "SELECT og.feed_grant('unit_system', '$UNIT')")"
assert_eq "which makes it a member of onegrid_feed" t \
	"$(sql "$TEST_DB" "SELECT pg_has_role('unit_system', 'onegrid_feed', 'MEMBER')")"
assert_eq "granting it again changes nothing" f "$(sql "$TEST_DB" "SELECT og.feed_grant('unit_system', '$UNIT')")"
assert_match "an unknown unit is refused" '"NO-SUCH-UNIT" is not a registered handling unit' \
	"$(sql "$TEST_DB" "SELECT og.feed_grant('unit_system', 'NO-SUCH-UNIT')" 2>&1 || true)"
assert_match "only the owner may grant: not archive's role" "permission denied for function feed_grant" \
	"$(as onegrid_archive "SELECT og.feed_grant('onegrid_archive', '$UNIT')")"

out=$("$ONEGRID_BIN/onegridctl" feed --db "$FEED" --unit "$UNIT")
assert_eq "two assignments so far" 2 "$(grep -c '"kind" : "assigned"' <<<"$out")"
assert_eq "a line's keys are feed.assignments' columns, in order" \
	"$(sql "$TEST_DB" "SELECT string_agg(column_name, ' ' ORDER BY ordinal_position) FROM information_schema.columns
	                   WHERE table_schema = 'feed' AND table_name = 'assignments'")" \
	"$(head -1 <<<"$out" | grep -o '"[a-z_]*" :' | tr -d '": ' | tr '\n' ' ' | sed 's/ $//')"
# integrating.md's examples show the same keys (review: they named category and area,
# and an integrator's parser read nulls).
assert_eq "integrating.md's feed lines have the same keys" \
	"$(head -1 <<<"$out" | grep -o '"[a-z_]*" :' | tr -d '": ' | sort -u | tr '\n' ' ')" \
	"$(grep '^{"seq" : ' "$ONEGRID_REPO/docs/integrating.md" | grep -o '"[a-z_]*" :' | tr -d '": ' | sort -u | tr '\n' ' ')"
LAST=$(tail -1 <<<"$out" | grep -o '"seq" : [0-9]*' | grep -o '[0-9]*$')

"$ONEGRID_BIN/onegridctl" feed --db "$FEED" --unit "$UNIT" --after "$LAST" --follow >"$TEST_DIR/follow.out" &
follower=$!
on_exit "kill $follower 2>/dev/null || true"
sleep 0.5
report f-3
for _ in $(seq 50); do grep -q . "$TEST_DIR/follow.out" && break; sleep 0.1; done
assert_match "the follower hears of the new case at once" '"case_id" : "[0-9-]+", "state" : "dispatched"' \
	"$(cat "$TEST_DIR/follow.out")"
kill "$follower"
wait "$follower" 2>/dev/null || true
SEEN=$(tail -1 "$TEST_DIR/follow.out" | grep -o '"seq" : [0-9]*' | grep -o '[0-9]*$')

# A follower whose connection is lost (the server restarted, the network broke; here its
# backend is ended) says so, connects again and goes on after the last row it printed: a
# case filed meanwhile is printed once (it used to exit 1).
"$ONEGRID_BIN/onegridctl" feed --db "$FEED" --unit "$UNIT" --after "$SEEN" --follow \
	>"$TEST_DIR/follow2.out" 2>"$TEST_DIR/follow2.err" &
follower=$!
on_exit "kill $follower 2>/dev/null || true"
# Once it listens and has read (idle after its first query): not while it starts.
feed_sessions="SELECT count(*) FROM pg_stat_activity WHERE application_name = 'onegridctl feed'
               AND datname = current_database() AND state = 'idle' AND query LIKE 'SELECT seq%'"
for _ in $(seq 300); do [[ $(sql "$TEST_DB" "$feed_sessions") == 1 ]] && break; sleep 0.1; done
assert_eq "the follower ended" t "$(sql "$TEST_DB" "SELECT bool_and(pg_terminate_backend(pid)) FROM pg_stat_activity
                                                  WHERE application_name = 'onegridctl feed' AND datname = current_database()")"
report f-3b
for _ in $(seq 300); do grep -q . "$TEST_DIR/follow2.out" && break; sleep 0.1; done
assert_match "says it lost its connection and connected again" \
	"onegridctl feed: the connection was lost \(.*\); connecting again onegridctl feed: connected again" \
	"$(tr '\n' ' ' <"$TEST_DIR/follow2.err")"
assert_eq "and prints the case filed meanwhile, once" "1 $(grep -o '"case_id":"[^"]*"' "$TEST_DIR/f-3b.out" | cut -d'"' -f4)" \
	"$(wc -l <"$TEST_DIR/follow2.out") $(grep -o '"case_id" : "[^"]*"' "$TEST_DIR/follow2.out" | cut -d'"' -f4)"
kill "$follower"
rc=0
wait "$follower" 2>/dev/null || rc=$?
assert_eq "and exits 0 when interrupted" 0 "$rc"
SEEN=$(tail -1 "$TEST_DIR/follow2.out" | grep -o '"seq" : [0-9]*' | grep -o '[0-9]*$')

# Offline: two more cases, then one is returned by the unit.
report f-4
report f-5
C5=$(grep -o '"case_id":"[^"]*"' "$TEST_DIR/f-5.out" | cut -d'"' -f4)
printf '{"id":"ret-1","source":"zongzhi","type":"status","time":"%s","status":{"case_id":"%s","status":"STATUS_RETURNED","unit":"%s","note":"不属于本单位职责"}}\n' \
	"$NOW" "$C5" "$UNIT" >"$TEST_DIR/ret.jsonl"
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" "$TEST_DIR/ret.jsonl" >/dev/null
out=$("$ONEGRID_BIN/onegridctl" feed --db "$FEED" --unit "$UNIT" --after "$SEEN")
assert_eq "catching up after being offline: f-4, f-5 assigned, f-5 withdrawn" "assigned assigned withdrawn" \
	"$(grep -o '"kind" : "[a-z]*"' <<<"$out" | cut -d'"' -f4 | tr '\n' ' ' | sed 's/ $//')"
# A position that is not a number is refused, not read as 0 (the whole feed again) or
# as the digits before the typo.
for bad in abc 1x 99999999999999999999 -1; do
	rc=0
	out=$("$ONEGRID_BIN/onegridctl" feed --db "$FEED" --unit "$UNIT" --after "$bad" 2>&1) || rc=$?
	assert_eq "--after $bad: refused (2), nothing printed ($out)" "2 1" "$rc $(wc -l <<<"$out")"
	assert_match "--after $bad: says why" "onegridctl feed: --after: \"$bad\" is not an integer in 0\.\." "$out"
done
rc=0
out=$("$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --window abc "$TEST_DIR/ret.jsonl" 2>&1) || rc=$?
assert_eq "publish --window abc: refused (2) ($out)" 2 "$rc"
assert_match "and says why" 'onegridctl publish: --window: "abc" is not an integer in 1\.\.' "$out"
NEW_UNIT=$(sql "$TEST_DB" "SELECT unit_code FROM og.case WHERE case_id = '$C5'")
sql "$TEST_DB" "SELECT og.feed_grant('unit_other', '$NEW_UNIT')" >/dev/null
assert_match "the unit it went to has it in its feed" "\"case_id\" : \"$C5\"" \
	"$("$ONEGRID_BIN/onegridctl" feed --db "$OTHER" --unit "$NEW_UNIT")"
assert_eq "sequence numbers only grow" "" \
	"$("$ONEGRID_BIN/onegridctl" feed --db "$FEED" --unit "$UNIT" | grep -o '"seq" : [0-9]*' | grep -o '[0-9]*$' | sort -n -c 2>&1)"
assert_match "the subscriber role reads nothing else" "permission denied" \
	"$("$PG_BIN/psql" -XAtq -d "$TEST_DB" -U unit_system -c "SELECT 1 FROM og.case LIMIT 1" 2>&1 || true)"

# Per unit: the other unit's login sees its own unit's rows and none of UNIT's.
assert_eq "a login granted another unit reads none of the first unit's rows" 0 \
	"$(as unit_other "SELECT count(*) FROM feed.assignments WHERE unit_code = '$UNIT'")"
assert_eq "it reads its own unit's rows only" "$NEW_UNIT" \
	"$(as unit_other "SELECT string_agg(DISTINCT unit_code, ' ') FROM feed.assignments")"
assert_eq "its units, as feed.my_units lists them" "$NEW_UNIT" \
	"$(as unit_other "SELECT string_agg(unit_code, ' ') FROM feed.my_units")"
rc=0
out=$("$ONEGRID_BIN/onegridctl" feed --db "$OTHER" --unit "$UNIT" 2>&1) || rc=$?
assert_eq "onegridctl feed for a unit not granted: exit 1" 1 "$rc"
assert_match "with a clear error" "^onegridctl feed: login \"unit_other\" may not read the feed of unit \"$UNIT\"" "$out"
# security_barrier: a cheap function of the reader's own in WHERE would otherwise run
# before the view's filter and see every row. A feed login may not make one (migration
# 027: no temporary objects, nothing in schema public); one an operator granted
# TEMPORARY may, and still sees only its units' rows.
peek="CREATE FUNCTION pg_temp.peek(text) RETURNS boolean LANGUAGE plpgsql COST 0.0001
      AS \$\$ BEGIN RAISE NOTICE 'peek %', \$1; RETURN true; END \$\$;
      SELECT count(*) FROM feed.assignments WHERE pg_temp.peek(unit_code)"
assert_match "a feed login makes no function of its own" "permission denied to create temporary tables" \
	"$(as unit_other "$peek")"
sql "$TEST_DB" "GRANT TEMPORARY ON DATABASE $TEST_DB TO unit_other" >/dev/null
out=$(as unit_other "$peek")
assert_ge "a function of its own in WHERE sees its unit's rows" 1 "$(grep -c "peek $NEW_UNIT" <<<"$out" || true)"
assert_eq "and no other unit's row" 0 "$(grep -c "peek $UNIT" <<<"$out" || true)"
assert_eq "a feed login with no unit granted reads no row" 0 "$(as feed_nobody "SELECT count(*) FROM feed.assignments")"
# Nor does it count other units' cases with EXPLAIN ANALYZE: a leakproof condition on a
# case's column (= on text) went down to a scan of every case, whose row count the plan
# prints, before the view's filter (review: "actual rows=1" for the right title, 0 for a
# wrong one). The case's columns are read only for rows the filter let through.
TITLE=$(sql "$TEST_DB" "SELECT title FROM og.case WHERE case_id = '$C5'")
plan=$(as feed_nobody "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
                       SELECT 1 FROM feed.assignments WHERE case_id = '$C5' AND title = '$TITLE'")
assert_match "EXPLAIN ANALYZE of a feed login ran" "feed.assignments|assignment" "$plan"
assert_eq "and shows no case of another unit's counted" "" "$(grep -E " on (og\.)?\"?case\"?[ )].*actual rows=[1-9]" <<<"$plan" || true)"
rc=0
out=$("$ONEGRID_BIN/onegridctl" feed --db "dbname=$TEST_DB user=feed_nobody" --unit "$UNIT" 2>&1) || rc=$?
assert_eq "and onegridctl feed refuses it: exit 1, naming the login" "1 login \"feed_nobody\"" \
	"$rc $(grep -o 'login "[a-z_]*"' <<<"$out")"
assert_eq "the auditor reads every unit's rows" "$(sql "$TEST_DB" "SELECT count(*) FROM og.assignment")" \
	"$(as onegrid_audit "SELECT count(*) FROM feed.assignments")"
assert_eq "onegridctl feed works for the auditor too" \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.assignment WHERE unit_code = '$NEW_UNIT'")" \
	"$("$ONEGRID_BIN/onegridctl" feed --db "dbname=$TEST_DB user=onegrid_audit" --unit "$NEW_UNIT" | wc -l)"
rc=0
out=$("$ONEGRID_BIN/onegridctl" feed --db "dbname=$TEST_DB user=onegrid_audit" --unit NOPE-1 2>&1) || rc=$?
assert_eq "for a unit that is not registered the auditor is told so (not that it may not read it)" \
	"1 onegridctl feed: no handling unit \"NOPE-1\" is registered" "$rc $(cut -d'(' -f1 <<<"$out" | sed 's/ *$//')"
assert_eq "revoking the unit" t "$(sql "$TEST_DB" "SELECT og.feed_revoke('unit_other', '$NEW_UNIT')")"
assert_eq "after which the login reads no row" 0 "$(as unit_other "SELECT count(*) FROM feed.assignments")"
rc=0
"$ONEGRID_BIN/onegridctl" feed --db "$OTHER" --unit "$NEW_UNIT" >/dev/null 2>&1 || rc=$?
assert_eq "and onegridctl feed now refuses that unit: exit 1" 1 "$rc"
assert_eq "revoking it again: nothing to revoke" f "$(sql "$TEST_DB" "SELECT og.feed_revoke('unit_other', '$NEW_UNIT')")"

# What else a unit hears of its cases. Each step is published alone, then UNIT's rows
# since the step began are read as the unit's login.
n=0
send() { # send JSON...: publishes one batch; rc is onegridctl publish's exit status
	n=$((n + 1))
	printf '%s\n' "$@" >"$TEST_DIR/step$n.jsonl"
	rc=0
	"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" \
		--results "$TEST_DIR/step$n.out" "$TEST_DIR/step$n.jsonl" >/dev/null 2>&1 || rc=$?
}
status() { echo "{\"id\":\"$1\",\"source\":\"zongzhi\",\"type\":\"status\",\"time\":\"$NOW\",\"status\":{\"case_id\":\"$2\",\"status\":\"$3\",\"unit\":\"$(og_status_unit "$TEST_DB" "$2" "$3" "$UNIT")\"${4:-}}}"; }
case_of() { grep -o '"case_id":"[^"]*"' "$TEST_DIR/$1.out" | cut -d'"' -f4; }
mark() { MARK=$(sql "$TEST_DB" "SELECT coalesce(max(seq), 0) FROM og.assignment"); }
# Every row added since mark, of any unit, as UNIT:kind:state words.
added() { sql "$TEST_DB" "SELECT coalesce(string_agg(replace(unit_code, '$UNIT', 'UNIT') || ':' || kind || ':' || state, ' '
                          ORDER BY seq), '') FROM og.assignment WHERE seq > $MARK"; }
# The kinds the unit's login reads since mark.
heard() { "$ONEGRID_BIN/onegridctl" feed --db "$FEED" --unit "$UNIT" --after "$MARK" |
	grep -o '"kind" : "[a-z_]*"' | cut -d'"' -f4 | tr '\n' ' ' | sed 's/ $//'; }
C1=$(case_of f-1) C2=$(case_of f-2) C3=$(case_of f-3) C4=$(case_of f-4)

mark
send "$(status w1 "$C1" STATUS_ACCEPTED)" "$(status w2 "$C1" STATUS_IN_PROGRESS)" \
	"$(status w3 "$C1" STATUS_RESOLVED)" "$(status w4 "$C1" STATUS_CHECKED_OK)"
assert_eq "accepted, in progress, resolved, checked: stored" 0 "$rc"
assert_eq "the unit's own progress adds no row" "" "$(added)"
send "$(status w5 "$C1" STATUS_CLOSED)"
assert_eq "closing: one row, finished" "UNIT:finished:closed" "$(added)"
assert_eq "which the unit's login reads" finished "$(heard)"

mark
send "{\"id\":\"ev-1\",\"source\":\"12345\",\"type\":\"evaluation\",\"time\":\"$NOW\",\"evaluation\":{\"case_id\":\"$C1\",\"result\":\"RESULT_UNSATISFIED\"}}"
assert_eq "the evaluation is stored" 0 "$rc"
assert_eq "不满意 reopens the case: one row, reopened" "UNIT:reopened:dispatched" "$(added)"
assert_eq "with the rework's new deadline" t \
	"$(sql "$TEST_DB" "SELECT a.deadline_at = c.deadline_at AND a.deadline_at > now() FROM og.assignment a
	                   JOIN og.case c USING (case_id) WHERE a.seq > $MARK")"
assert_eq "which the unit's login reads" reopened "$(heard)"

# The centre fails its check (返工): the unit is told to work on it again. (When the holder
# sent its own checks it knew; the centre's decision reaches it only through the feed.)
send "$(status w6 "$C1" STATUS_ACCEPTED)" "$(status w7 "$C1" STATUS_RESOLVED)"
mark
send "$(status w8 "$C1" STATUS_CHECK_FAILED)"
assert_eq "a failed check: one row, reopened, in progress" "UNIT:reopened:in_progress" "$(added)"
assert_eq "which the unit's login reads too" reopened "$(heard)"

mark
send "$(status x1 "$C2" STATUS_EXTENDED ',"extension_working_days":1')"
assert_eq "延期 is stored" 0 "$rc"
assert_eq "an extension: one row, deadline_changed" "UNIT:deadline_changed:dispatched" "$(added)"
assert_eq "with the new deadline" t \
	"$(sql "$TEST_DB" "SELECT a.deadline_at = c.deadline_at FROM og.assignment a JOIN og.case c USING (case_id)
	                   WHERE a.seq > $MARK")"
assert_eq "which the unit's login reads" deadline_changed "$(heard)"

mark
send "$(status v1 "$C3" STATUS_VOIDED)"
assert_eq "voiding is stored" 0 "$rc"
assert_eq "voiding: one row, finished" "UNIT:finished:voided" "$(added)"

# A clock stopped by shelving, and started again when a joint meeting gives the case back.
mark
send "$(status s1 "$C4" STATUS_ACCEPTED)" "$(status s2 "$C4" STATUS_SHELVED)"
assert_eq "accepted and shelved: stored" 0 "$rc"
assert_eq "shelving: the deadline is gone" "UNIT:deadline_changed:shelved" "$(added)"
mark
send "{\"id\":\"lxh-1\",\"source\":\"dangjian\",\"type\":\"decision\",\"time\":\"$NOW\",\"decision\":{\"case_ids\":[\"$C4\"],\"action\":\"ACTION_ASSIGN\",\"unit\":\"$UNIT\",\"minutes_ref\":\"联席会纪要\"}}"
assert_eq "the joint meeting's decision is stored" 0 "$rc"
assert_eq "given back to the same unit by a joint meeting: a new deadline" "UNIT:deadline_changed:dispatched" "$(added)"

# On og.case itself as the owner, rolled back: nothing of it stays. A merge and a resolved
# case's deadline moving (no clock runs then) add nothing; a failed check tells the unit
# (reopened: 返工). Then
# supervision (escalation needs a clock days ahead; see escalation.sh): set, moved up a
# level, the case closed, reopened, supervised again and the supervisor cleared. Each
# change of state comes with dispatch's conclusions (stage, clock), as the write path
# sets them: the feed reads those.
# Two units other than UNIT (the trigger does not care whether they supervise that area).
read -r S1 S2 < <(sql "$TEST_DB" "SELECT string_agg(code, ' ' ORDER BY code) FROM
                                  (SELECT code FROM og.handling_unit WHERE code <> '$UNIT' ORDER BY code LIMIT 2) u")
mark
assert_eq "a supervisor hears when its supervision ends, once" \
	"UNIT:reopened S1:supervise S1:supervision_ended S2:supervise UNIT:finished S2:supervision_ended UNIT:reopened S1:supervise S1:supervision_ended" \
	"$(sql "$TEST_DB" <<EOF
BEGIN;
SET LOCAL ROLE onegrid_owner;
UPDATE og.case SET contacts = contacts + 1 WHERE case_id = '$C2';
UPDATE og.case SET state = 'resolved', stage = 'checking', clock = 'none' WHERE case_id = '$C2';
UPDATE og.case SET deadline_at = deadline_at + interval '1 hour' WHERE case_id = '$C2';
UPDATE og.case SET state = 'in_progress', stage = 'handling', clock = 'running' WHERE case_id = '$C2';
UPDATE og.case SET supervisor_unit = '$S1', escalation_level = 1 WHERE case_id = '$C2';
UPDATE og.case SET supervisor_unit = '$S2', escalation_level = 2 WHERE case_id = '$C2';
UPDATE og.case SET state = 'closed', stage = 'final', clock = 'none', closed_at = now() WHERE case_id = '$C2';
UPDATE og.case SET state = 'dispatched', stage = 'handling', clock = 'running', closed_at = NULL,
                   supervisor_unit = NULL, escalation_level = 0,
                   deadline_at = deadline_at + interval '1 day' WHERE case_id = '$C2';
UPDATE og.case SET supervisor_unit = '$S1', escalation_level = 1 WHERE case_id = '$C2';
UPDATE og.case SET supervisor_unit = NULL, escalation_level = 0 WHERE case_id = '$C2';
-- The rows get their numbers at commit (013); this numbers them now, as COMMIT would.
SET CONSTRAINTS ALL IMMEDIATE;
SELECT string_agg(CASE unit_code WHEN '$UNIT' THEN 'UNIT' WHEN '$S1' THEN 'S1' WHEN '$S2' THEN 'S2' END
                  || ':' || kind, ' ' ORDER BY seq)
  FROM og.assignment WHERE seq > $MARK;
ROLLBACK;
EOF
)"
assert_eq "no decision gave a unit two rows of one kind" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM (SELECT 1 FROM og.assignment GROUP BY ledger_id, case_id, unit_code, kind
	                   HAVING count(*) > 1) d")"

before=$(sql "$TEST_DB" "SELECT count(*) FROM og.assignment")
rc=0
out=$("$ONEGRID_BIN/onegridctl" rebuild-cases --db "dbname=$TEST_DB" --apply 2>&1) || rc=$?
assert_eq "rebuild-cases --apply succeeds" 0 "$rc"
assert_match "and the rebuilt projection equals the ledger" "0 rows differ between og.case and the ledger after rebuilding" "$out"
assert_eq "rebuilding the projection adds nothing to the feed" "$before" \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.assignment")"
