#!/usr/bin/env bash
# A report merged into a case whose opening the database then refused is not refused for
# it: its reason would not be in the report. dispatch decided the second report (the same
# problem, 20 m away) against a case it held in memory while the first report's record was
# still in flight; archive finds that case missing (SQLSTATE OG002), stores nothing for the
# second report and answers dispatch "not stored"; dispatch exits to reload, and intake's
# resend is decided again against the committed state: it opens a case of its own.
# Then what dispatch decided after such a record: a joint meeting (联席会) naming both a
# case whose opening was refused and a live shelved case, and a status of the live case
# that only the meeting's assignment allows. None of it is stored (archive leaves out
# every later record of that dispatch epoch): before, the status was stored, leaving the
# live case assigned by a meeting the record does not have.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/faults.sh"
source "$(dirname "$0")/../lib/events.sh"

test_begin "refused_opening"
command -v curl >/dev/null || fail "curl not found"
test_createdb
og_refuse_contact_trigger "$TEST_DB"
og_write_config "$TEST_DIR" "$TEST_DB"
read -r PORT APORT < <(og_free_tcp_ports 2)
sed -i 's/^merge_window_hours = 0$/merge_window_hours = 72\nmerge_distance_m = 150/' "$TEST_DIR/onegrid.conf"
sed -i "/^\[dispatch\]/a metrics_listen = 127.0.0.1:$PORT" "$TEST_DIR/onegrid.conf"
sed -i "/^\[archive\]/a metrics_listen = 127.0.0.1:$APORT" "$TEST_DIR/onegrid.conf"
# Batches of 3: what follows a left-out record is left out both within its batch and in
# the batches after it.
sed -i 's/^batch_max = 1000$/batch_max = 3/' "$TEST_DIR/onegrid.conf"
grep -q '^batch_max = 3$' "$TEST_DIR/onegrid.conf" || fail "set archive's batch_max"
og_start_all "$TEST_DIR"
ZZ=$(sql "$TEST_DB" "SELECT x.source_grid_id FROM og.grid_crosswalk x JOIN og.area a ON a.code = left(x.area_code, 12)
                     WHERE x.source_system = 'zongzhi' AND a.name = '沁苑社区' ORDER BY 1 LIMIT 1")
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
report() { # report ID LAT CONTACT_JSON
	printf '{"id":"%s","source":"zongzhi","type":"report","time":"%s","subject":"%s","location":{"latitude":%s,"longitude":84.8800},"report":{"category":"facility.handrail","title":"单元门前需要扶手","description":"老人腿脚不便",%s"channel":"CHANNEL_GRID_PATROL"}}\n' \
		"$1" "$NOW" "$ZZ" "$2" "$3"
}
{
	report ro-first 45.5960 '"contact":{"name":"REFUSE-ME","phone":"13800000000"},'
	report ro-second 45.5962 ''
} >"$TEST_DIR/e.jsonl"

# archive is held until dispatch has decided both: the second joins the first's case in
# dispatch's memory before the first's record reaches the database.
APID=$(<"$TEST_DIR/archive.pid")
kill -STOP "$APID"
on_exit "kill -CONT $APID 2>/dev/null || true"
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 60 \
	--results "$TEST_DIR/r.out" "$TEST_DIR/e.jsonl" >"$TEST_DIR/p.txt" 2>&1 &
pub=$!
on_exit "kill $pub 2>/dev/null || true"
accepted() {
	curl -sS --max-time 5 "http://127.0.0.1:$PORT/metrics" |
		awk '$1 == "onegrid_dispatch_decisions_total{outcome=\"accepted\"}" { print $2 }'
}
both_decided() { [[ $(accepted) == 2 ]]; }
og_poll 30 both_decided ||
	fail "dispatch did not decide both reports (accepted: $(accepted))"
pass "dispatch decided both reports while archive was held"
kill -CONT "$APID"
og_restart_while dispatch "$TEST_DIR" "$pub"
rc=0
wait "$pub" || rc=$?
assert_eq "publish: one rejected, all answered" 3 "$rc"
assert_match "one stored, one rejected" \
	"published 2 events: stored 1, duplicate 0, rejected 1, unanswered 0" "$(head -1 "$TEST_DIR/p.txt")"
assert_match "the first is refused for its own content" \
	'"id":"ro-first".*"reason":"REASON_STORAGE_REFUSED"' "$(grep ro-first "$TEST_DIR/r.out")"
assert_match "the second is stored, with a case" '"id":"ro-second".*"outcome":"stored","case_id":"[^"]+"' \
	"$(grep ro-second "$TEST_DIR/r.out")"
assert_eq "only the first is recorded refused" "ro-first" \
	"$(sql "$TEST_DB" "SELECT string_agg(source_event_id, ',') FROM og.rejection")"
CASE=$(grep -o '"case_id":"[^"]*"' <(grep ro-second "$TEST_DIR/r.out") | cut -d'"' -f4)
assert_eq "the second report opened that case, the only one" "1|$CASE" \
	"$(sql "$TEST_DB" "SELECT count(*), max(case_id) FROM og.case")"
assert_eq "and is its only report" "ro-second|opened" \
	"$(sql "$TEST_DB" "SELECT string_agg(source_event_id || '|' || joined, ',') FROM og.case_report")"
assert_match "archive said why it stored nothing for the second" \
	'record "[^"]*ro-second[^"]*" names a case or report the database does not have' \
	"$(cat "$TEST_DIR/archive.log")"
read -r UNSTORED BATCHES < <(curl -sS --max-time 5 "http://127.0.0.1:$APORT/metrics" |
	awk '$1 == "onegrid_archive_unstored_records_total" { u = $2 } $1 == "onegrid_archive_batches_total" { b = $2 }
	     END { print u + 0, b + 0 }')
assert_ge "archive counted the second unstored" 1 "$UNSTORED"
assert_eq "and counted only the batches it committed" "$(sql "$TEST_DB" "SELECT count(*) FROM og.batch")" "$BATCHES"
assert_match "dispatch exited to reload its state" \
	'archive did not store "zongzhi/ro-second".*exiting so that a restart reloads committed state' \
	"$(cat "$TEST_DIR/dispatch.log")"
"$ONEGRID_BIN/onegridctl" audit verify --db "dbname=$TEST_DB" >"$TEST_DIR/verify.txt" 2>&1 ||
	fail "audit verify failed: $(cat "$TEST_DIR/verify.txt")"
pass "the record verifies"

# 2. What dispatch decided after a left-out record. B: a demand shelved into the demand
# list (需求清单), stored. Then, with archive held: A's report (its contact refused by the
# database), A accepted and shelved, a joint meeting assigning A and B to the district's
# centre, and B accepted by the centre, which only the meeting allows.
demand() { # demand ID LAT CONTACT_JSON
	printf '{"id":"%s","source":"zongzhi","type":"report","time":"%s","subject":"%s","location":{"latitude":%s,"longitude":84.8800},"report":{"category":"demand.elderly_care","title":"老人需要助餐服务",%s"channel":"CHANNEL_WALK_IN"}}\n' \
		"$1" "$NOW" "$ZZ" "$2" "$3"
}
status() { # status ID CASE STATUS UNIT
	printf '{"id":"%s","source":"zongzhi","type":"status","time":"%s","status":{"case_id":"%s","status":"%s","unit":"%s"}}\n' \
		"$1" "$NOW" "$2" "$3" "$4"
}
publish() { # publish NAME: its exit status in $rc
	rc=0
	"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 60 \
		--results "$TEST_DIR/$1.out" "$TEST_DIR/$1.jsonl" >"$TEST_DIR/$1.txt" 2>&1 || rc=$?
}
demand lo-b 45.6100 '' >"$TEST_DIR/b1.jsonl"
publish b1
B=$(grep -o '"case_id":"[^"]*"' "$TEST_DIR/b1.out" | cut -d'"' -f4)
UNIT=$(sql "$TEST_DB" "SELECT unit_code FROM og.case WHERE case_id = '$B'")
{
	status lo-b-acc "$B" STATUS_ACCEPTED "$UNIT"
	status lo-b-shelve "$B" STATUS_SHELVED "$UNIT"
} >"$TEST_DIR/b2.jsonl"
publish b2
state() { sql "$TEST_DB" "SELECT state || '|' || coalesce(unit_code, '-') || '|' || (deadline_at IS NOT NULL) FROM og.case WHERE case_id = '$1'"; }
assert_eq "B is stored, shelved into the demand list" "0|shelved|$UNIT|false" "$rc|$(state "$B")"
GC=$(sql "$TEST_DB" "SELECT s.unit_code FROM og.supervisor s JOIN og.case c ON s.area_code = c.district_code WHERE c.case_id = '$B'")
# A's case number is the next of B's district (dispatch numbers a district's cases in turn).
A=$(sql "$TEST_DB" "SELECT split_part('$B', '-', 1) || '-' || lpad((max(split_part(case_id, '-', 2)::bigint) + 1)::text, 8, '0')
                    FROM og.case WHERE case_id LIKE split_part('$B', '-', 1) || '-%'")
{
	demand lo-a 45.5900 '"contact":{"name":"REFUSE-ME","phone":"13800000001"},'
	status lo-a-acc "$A" STATUS_ACCEPTED "$UNIT"
	status lo-a-shelve "$A" STATUS_SHELVED "$UNIT"
	printf '{"id":"lo-meeting","source":"dangjian","type":"decision","time":"%s","decision":{"case_ids":["%s","%s"],"action":"ACTION_ASSIGN","unit":"%s","minutes_ref":"联席会纪要 2026-12 第1期"}}\n' \
		"$NOW" "$B" "$A" "$GC"
	status lo-b-gc "$B" STATUS_ACCEPTED "$GC"
} >"$TEST_DIR/lo.jsonl"
A0=$(accepted)
kill -STOP "$APID"
publish lo &
pub=$!
on_exit "kill $pub 2>/dev/null || true"
five_decided() { [[ $(accepted) == $((A0 + 5)) ]]; }
og_poll 30 five_decided || fail "dispatch did not decide all five from memory (accepted: $(accepted), $A0 before)"
pass "dispatch decided all five from memory while archive was held (A is $A)"
kill -CONT "$APID"
og_restart_while dispatch "$TEST_DIR" "$pub"
wait "$pub" || rc=$?
assert_match "every event is answered" "published 5 events: .* unanswered 0" "$(head -1 "$TEST_DIR/lo.txt")"
assert_match "A's report is refused for its own content" '"id":"lo-a".*"reason":"REASON_STORAGE_REFUSED"' \
	"$(grep '"id":"lo-a"' "$TEST_DIR/lo.out")"
assert_eq "B is still shelved with its own unit and no clock: nothing decided after A's record is stored" \
	"shelved|$UNIT|false" "$(state "$B")"
assert_eq "the record has nothing of the meeting nor of the centre's acceptance" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.ledger WHERE source_event_id IN ('lo-meeting', 'lo-b-gc', 'lo-a-acc', 'lo-a-shelve')
	                   AND kind <> 'rejection'")"
assert_eq "A does not exist" 0 "$(sql "$TEST_DB" "SELECT count(*) FROM og.case WHERE case_id = '$A'")"
assert_match "archive left out what was decided after the left-out record" \
	'not storing [0-9]+ records of shard "6502" epoch [0-9]+, decided after a record that was left out' \
	"$(cat "$TEST_DIR/archive.log")"
assert_match "dispatch reloaded again" 'archive did not store "zongzhi/lo-a-acc"' "$(cat "$TEST_DIR/dispatch.log")"
"$ONEGRID_BIN/onegridctl" audit verify --db "dbname=$TEST_DB" >"$TEST_DIR/verify.txt" 2>&1 ||
	fail "audit verify failed: $(cat "$TEST_DIR/verify.txt")"
pass "the record verifies"
