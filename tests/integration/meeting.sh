#!/usr/bin/env bash
# The seed's way with demands the community cannot meet on the spot: units shelve them
# into the demand list (需求清单, clock stopped), a joint meeting (联席会) assigns some to a
# unit on a new clock and closes others, in one decision event, all or nothing. Also an
# approved extension (延期) moving a deadline by working days, and a report the community
# handled on the spot (社区自办), closed as it opens.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"

test_begin "meeting"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
og_start_all "$TEST_DIR"
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
read -r GRID AREA < <(sql "$TEST_DB" "SELECT x.source_grid_id, x.area_code FROM og.grid_crosswalk x
                                      JOIN og.area a ON a.code = x.area_code
                                      WHERE x.source_system = 'zongzhi' AND a.level = 'grid' ORDER BY 1 LIMIT 1" | tr '|' ' ')
n=0
send() { # send JSON...: publishes one batch of events; results in $TEST_DIR/N.out, status in rc
	n=$((n + 1))
	printf '%s\n' "$@" >"$TEST_DIR/$n.jsonl"
	rc=0
	"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" \
		--results "$TEST_DIR/$n.out" "$TEST_DIR/$n.jsonl" >/dev/null 2>&1 || rc=$?
}
report() { echo "{\"id\":\"$1\",\"source\":\"zongzhi\",\"type\":\"report\",\"time\":\"$NOW\",\"subject\":\"$GRID\",\"report\":{\"category\":\"${2:-demand.elderly_care}\",\"title\":\"老人需要助餐服务\",\"channel\":\"CHANNEL_WALK_IN\"${3:-}}}"; }
status() { echo "{\"id\":\"$1\",\"source\":\"zongzhi\",\"type\":\"status\",\"time\":\"$NOW\",\"status\":{\"case_id\":\"$2\",\"status\":\"$3\",\"unit\":\"$(og_status_unit "$TEST_DB" "$2" "$3" "$UNIT")\"${4:-}}}"; }
decision() { echo "{\"id\":\"$1\",\"source\":\"dangjian\",\"type\":\"decision\",\"time\":\"$NOW\",\"decision\":{\"case_ids\":[$2],\"action\":\"$3\"${4:-},\"minutes_ref\":\"联席会纪要 2026-11 第3期\"}}"; }
case_of() { grep -h "\"id\":\"$1\"" "$TEST_DIR"/*.out | grep -o '"case_id":"[^"]*"' | head -1 | cut -d'"' -f4; }
state() { sql "$TEST_DB" "SELECT state || '|' || coalesce(unit_code, '-') || '|' || (deadline_at IS NOT NULL)
                          FROM og.case WHERE case_id = '$1'"; }

send "$(report d1)" "$(report d2)" "$(report d3)"
D1=$(case_of d1) D2=$(case_of d2) D3=$(case_of d3)
UNIT=$(sql "$TEST_DB" "SELECT unit_code FROM og.case WHERE case_id = '$D1'")
send "$(status a1 "$D1" STATUS_ACCEPTED)" "$(status a2 "$D2" STATUS_ACCEPTED)" \
	"$(status s1 "$D1" STATUS_SHELVED ',"note":"需要物业和街道共同出资"')" \
	"$(status s2 "$D2" STATUS_SHELVED ',"note":"超出社区能力"')"
assert_eq "shelving is stored" 0 "$rc"
assert_eq "a shelved case has no clock running" "shelved|$UNIT|false" "$(state "$D1")"
assert_eq "the demand list, as the auditor sees it" "$D1 需要物业和街道共同出资|$D2 超出社区能力" \
	"$("$PG_BIN/psql" -XAtq -d "$TEST_DB" -U onegrid_audit -c \
		"SELECT string_agg(case_id || ' ' || note, '|' ORDER BY case_id) FROM audit.\"需求清单\"")"

# A decision naming a case that is not in the demand list changes nothing.
send "$(decision m0 "\"$D1\",\"$D3\"" ACTION_CLOSE)"
assert_eq "a decision on a case not shelved: refused" 3 "$rc"
assert_match "and says which" "REASON_INVALID_TRANSITION.*$D3 is dispatched, not in the demand list" "$(cat "$TEST_DIR/$n.out")"
assert_eq "all or nothing: D1 still shelved" "shelved|$UNIT|false" "$(state "$D1")"

GC=$(sql "$TEST_DB" "SELECT unit_code FROM og.supervisor WHERE area_code = '${AREA:0:6}'")
send "$(decision m1 "\"$D1\"" ACTION_ASSIGN ",\"unit\":\"$GC\"")" "$(decision m2 "\"$D2\"" ACTION_CLOSE)"
assert_eq "the meeting's decisions are stored" 0 "$rc"
assert_eq "D1 assigned to the district's centre, on a new clock" "dispatched|$GC|true" "$(state "$D1")"
assert_eq "D2 closed at the meeting (no clock)" "closed|$UNIT|false" "$(state "$D2")"
# One event, several cases.
send "$(status a3 "$D3" STATUS_ACCEPTED)" "$(status s3 "$D3" STATUS_SHELVED)"
send "$(report d4)" "$(report d5)"
D4=$(case_of d4) D5=$(case_of d5)
send "$(status a4 "$D4" STATUS_ACCEPTED)" "$(status s4 "$D4" STATUS_SHELVED)" \
	"$(status a5 "$D5" STATUS_ACCEPTED)" "$(status s5 "$D5" STATUS_SHELVED)"
send "$(decision m3 "\"$D3\",\"$D4\",\"$D5\"" ACTION_CLOSE)"
assert_eq "one decision closing three cases: stored" 0 "$rc"
assert_eq "all three closed" "closed closed closed" \
	"$(sql "$TEST_DB" "SELECT string_agg(state, ' ') FROM og.case WHERE case_id IN ('$D3', '$D4', '$D5')")"
assert_eq "one event, three decisions in the ledger" "1|3" \
	"$(sql "$TEST_DB" "SELECT count(*) FILTER (WHERE kind = 'event'), count(*) FILTER (WHERE kind = 'decision')
	                   FROM og.ledger WHERE source_event_id = 'm3'")"
send "$(decision m3 "\"$D3\",\"$D4\",\"$D5\"" ACTION_CLOSE)"
assert_match "sent again: a duplicate, nothing stored twice" '"outcome":"duplicate"' "$(cat "$TEST_DIR/$n.out")"
assert_eq "still three decisions" 3 "$(sql "$TEST_DB" "SELECT count(*) FROM og.ledger WHERE source_event_id = 'm3' AND kind = 'decision'")"

# Other submissions of a joint meeting's key, stored as archive stores a record with
# further decisions (og.store_event, then og.store_decision), each in a batch rolled back,
# with m3's event and first decision as their content (the view m):
# 1. another publisher's copy of m3, whose further decision names D1, a case m3 never
#    decided on: og.store_event answers 'duplicate', and the further decision must store
#    nothing either, nor move D1;
# 2. the same within one batch: one publisher's copy of a new key m9 stored, another's
#    answered 'duplicate' after it; the second copy's decision on D1 stores nothing.
# (dispatch answers such a copy from the record and never decides it; the database holds
# to it whatever comes.)
d1_before=$(sql "$TEST_DB" "SELECT state || ' ' || last_ledger_id FROM og.case WHERE case_id = '$D1'")
out=$(sql "$TEST_DB" <<SQL
CREATE TEMP VIEW m AS
  SELECT e.source_system, e.event_type, e.district_code, e.detail AS ed, e.body AS eb, d.detail AS dd, d.body AS db
    FROM og.ledger e, (SELECT * FROM og.ledger WHERE kind = 'decision' AND source_event_id = 'm3'
                        ORDER BY ledger_id LIMIT 1) d
   WHERE e.kind = 'event' AND e.source_event_id = 'm3';
BEGIN;
SELECT og.begin_batch(shard, epoch, 'meeting-copy') FROM og.dispatch_epoch LIMIT 1 \gset
SELECT s.outcome FROM m, og.store_event(m.source_system, 'm3', m.event_type, m.district_code,
                                        jsonb_set(m.ed, '{publisher}', '"someone-else"'), m.eb,
                                        m.dd, m.db, false, NULL) s;
SELECT og.store_decision(m.source_system, 'm3', m.event_type, m.district_code,
                         jsonb_set(m.dd, '{case_id}', '"$D1"'), m.db) FROM m;
SELECT state || ' ' || last_ledger_id FROM og.case WHERE case_id = '$D1';
SELECT count(*) FROM og.ledger WHERE source_event_id = 'm3' AND kind = 'decision';
ROLLBACK;
BEGIN;
SELECT og.begin_batch(shard, epoch, 'meeting-copy') FROM og.dispatch_epoch LIMIT 1 \gset
SELECT s.outcome FROM m, og.store_event(m.source_system, 'm9', m.event_type, m.district_code, m.ed, m.eb,
                                        m.dd, m.db, false, NULL) s;
SELECT s.outcome FROM m, og.store_event(m.source_system, 'm9', m.event_type, m.district_code,
                                        jsonb_set(m.ed, '{publisher}', '"someone-else"'), m.eb,
                                        m.dd, m.db, false, NULL) s;
SELECT og.store_decision(m.source_system, 'm9', m.event_type, m.district_code,
                         jsonb_set(m.dd, '{case_id}', '"$D1"'), m.db) FROM m;
SELECT state || ' ' || last_ledger_id FROM og.case WHERE case_id = '$D1';
ROLLBACK;
SQL
)
assert_eq "a copy of m3 from another submission: 'duplicate', its decision on D1 too; D1 unmoved, no decision added" \
	"$(printf 'duplicate\nduplicate\n%s\n3' "$d1_before")" "$(sed -n 1,4p <<<"$out")"
assert_eq "two copies of a new key in one batch: the second 'duplicate', its decision on D1 too; D1 unmoved" \
	"$(printf 'stored\nduplicate\nduplicate\n%s' "$d1_before")" "$(sed -n 5,8p <<<"$out")"

# 延期: five working days more.
send "$(report d6)"
D6=$(case_of d6)
before=$(sql "$TEST_DB" "SELECT deadline_at FROM og.case WHERE case_id = '$D6'")
send "$(status e1 "$D6" STATUS_EXTENDED ',"extension_working_days":5')"
assert_eq "an approved extension moves the deadline by five working days" t \
	"$(sql "$TEST_DB" "SELECT deadline_at > '$before'::timestamptz + interval '6 days'
	                          AND deadline_at <= '$before'::timestamptz + interval '14 days'
	                   FROM og.case WHERE case_id = '$D6'")"
send "$(status e2 "$D6" STATUS_EXTENDED)"
assert_match "an extension without its days: refused" "REASON_INVALID_FIELD.*extension_working_days" "$(cat "$TEST_DIR/$n.out")"

# 社区自办: handled on the spot.
send "$(report spot demand.elderly_care ',"handled_on_spot":true')"
assert_eq "handled on the spot: closed as it opens, by the community's unit" \
	"closed|$(sql "$TEST_DB" "SELECT unit_code FROM og.supervisor WHERE area_code = '${AREA:0:12}'")|true" \
	"$(state "$(case_of spot)")"
send "$(report spot2 hazard.gas ',"handled_on_spot":true')"
assert_match "a gas leak cannot be handled on the spot by the community" \
	"REASON_INVALID_FIELD.*handled at district level" "$(cat "$TEST_DIR/$n.out")"

assert_eq "the record verifies" 0 \
	"$("$ONEGRID_BIN/onegridctl" audit verify --db "dbname=$TEST_DB user=onegrid_audit" >/dev/null; echo $?)"
assert_eq "the projection rebuilds from the ledger" 0 \
	"$("$ONEGRID_BIN/onegridctl" rebuild-cases --db "dbname=$TEST_DB" >/dev/null; echo $?)"
