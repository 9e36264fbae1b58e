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
# every later record of its batch, and retires the epoch so that the database refuses the
# later batches): before, the status was stored, leaving the live case assigned by a
# meeting the record does not have.
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
ACCEPTED='onegrid_dispatch_decisions_total{outcome="accepted"}'
accepted() { og_metric "$PORT" "$ACCEPTED"; }
og_poll 30 og_metric_at_least "$PORT" "$ACCEPTED" 2 ||
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
assert_ge "archive counted the second unstored" 1 "$(og_metric "$APORT" onegrid_archive_unstored_records_total)"
assert_eq "and counted only the batches it committed" "$(sql "$TEST_DB" "SELECT count(*) FROM og.batch")" \
	"$(og_metric "$APORT" onegrid_archive_batches_total)"
assert_match "dispatch exited to reload its state" \
	'archive did not store "zongzhi/ro-second".*exiting so that a restart reloads committed state' \
	"$(cat "$TEST_DIR/dispatch.log")"
"$ONEGRID_BIN/onegridctl" audit verify --db "dbname=$TEST_DB" >"$TEST_DIR/verify.txt" 2>&1 ||
	fail "audit verify failed: $(cat "$TEST_DIR/verify.txt")"
pass "the record verifies"

# 2. What dispatch decided after a left-out record. B: a demand shelved into the demand
# list (需求清单), stored. Then, with archive held: A's report (its contact refused by the
# database), A accepted and shelved, a joint meeting assigning A and B to the district's
# centre, and B accepted by the centre, which only the meeting allows. Twice: archive
# waiting (1 s) for batches of 5 (B's acceptance is in the left-out record's batch: left
# out with it), then taking batches of 1 (A's status, the meeting and B's acceptance each
# come in a batch after it, of an epoch archive has retired by then).
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
state() { sql "$TEST_DB" "SELECT state || '|' || coalesce(unit_code, '-') || '|' || (deadline_at IS NOT NULL) FROM og.case WHERE case_id = '$1'"; }
# shelved_b T LAT: B, a demand at LAT shelved into the demand list, stored; sets B, UNIT
# (its unit), GC (its district's centre) and A (the case number dispatch gives next in
# B's district: it numbers a district's cases in turn).
shelved_b() {
	local t=$1 lat=$2
	demand "lo-b-$t" "$lat" '' >"$TEST_DIR/b1-$t.jsonl"
	publish "b1-$t"
	B=$(grep -o '"case_id":"[^"]*"' "$TEST_DIR/b1-$t.out" | cut -d'"' -f4)
	UNIT=$(sql "$TEST_DB" "SELECT unit_code FROM og.case WHERE case_id = '$B'")
	{
		status "lo-b-acc-$t" "$B" STATUS_ACCEPTED "$UNIT"
		status "lo-b-shelve-$t" "$B" STATUS_SHELVED "$UNIT"
	} >"$TEST_DIR/b2-$t.jsonl"
	publish "b2-$t"
	assert_eq "[$t] B is stored, a case of its own, shelved into the demand list" "0|1|shelved|$UNIT|false" \
		"$rc|$(sql "$TEST_DB" "SELECT count(*) FROM og.case_report WHERE case_id = '$B'")|$(state "$B")"
	GC=$(sql "$TEST_DB" "SELECT s.unit_code FROM og.supervisor s JOIN og.case c ON s.area_code = c.district_code WHERE c.case_id = '$B'")
	A=$(sql "$TEST_DB" "SELECT split_part('$B', '-', 1) || '-' || lpad((max(split_part(case_id, '-', 2)::bigint) + 1)::text, 8, '0')
	                    FROM og.case WHERE case_id LIKE split_part('$B', '-', 1) || '-%'")
}
# lo_events T LAT: A's report (its contact refused by the database), A accepted and shelved,
# and a joint meeting assigning A and B to GC, in lo-T.jsonl; B accepted by GC, which only
# the meeting allows, in gc-T.jsonl.
lo_events() {
	local t=$1 lat=$2
	{
		demand "lo-a-$t" "$(awk -v l="$lat" 'BEGIN { printf "%.4f", l - 0.02 }')" '"contact":{"name":"REFUSE-ME","phone":"13800000001"},'
		status "lo-a-acc-$t" "$A" STATUS_ACCEPTED "$UNIT"
		status "lo-a-shelve-$t" "$A" STATUS_SHELVED "$UNIT"
		printf '{"id":"lo-meeting-%s","source":"dangjian","type":"decision","time":"%s","decision":{"case_ids":["%s","%s"],"action":"ACTION_ASSIGN","unit":"%s","minutes_ref":"联席会纪要 2026-12 第1期"}}\n' \
			"$t" "$NOW" "$B" "$A" "$GC"
	} >"$TEST_DIR/lo-$t.jsonl"
	status "lo-b-gc-$t" "$B" STATUS_ACCEPTED "$GC" >"$TEST_DIR/gc-$t.jsonl"
}
after_left_out() { # after_left_out BATCH_MAX BATCH_WAIT_MS T LAT: event ids end in -T; B at LAT, A 2 km south
	local batch_max=$1 batch_wait=$2 t=$3 lat=$4 A0 E0 pub
	og_stop archive "$TEST_DIR"
	sed -i -e "s/^batch_max = [0-9]*$/batch_max = $batch_max/" \
		-e "s/^batch_wait_ms = [0-9]*$/batch_wait_ms = $batch_wait/" "$TEST_DIR/onegrid.conf"
	[[ $(grep -c -e "^batch_max = $batch_max$" -e "^batch_wait_ms = $batch_wait$" "$TEST_DIR/onegrid.conf") == 2 ]] ||
		fail "set archive's batch_max and batch_wait_ms"
	og_start archive "$TEST_DIR"
	APID=$(<"$TEST_DIR/archive.pid")
	LOG_AT=$(stat -c %s "$TEST_DIR/archive.log")
	shelved_b "$t" "$lat"
	lo_events "$t" "$lat"
	cat "$TEST_DIR/gc-$t.jsonl" >>"$TEST_DIR/lo-$t.jsonl"
	A0=$(accepted)
	E0=$(sql "$TEST_DB" "SELECT epoch FROM og.dispatch_epoch WHERE shard = '6502'")
	kill -STOP "$APID"
	publish "lo-$t" &
	pub=$!
	on_exit "kill $pub 2>/dev/null || true"
	og_poll 30 og_metric_at_least "$PORT" "$ACCEPTED" $((A0 + 5)) ||
		fail "[$t] dispatch did not decide all five from memory (accepted: $(accepted), $A0 before)"
	pass "[$t] dispatch decided all five from memory while archive was held (A is $A)"
	kill -CONT "$APID"
	og_restart_while dispatch "$TEST_DIR" "$pub"
	wait "$pub" || rc=$?
	assert_match "[$t] every event is answered" "published 5 events: .* unanswered 0" "$(head -1 "$TEST_DIR/lo-$t.txt")"
	assert_match "[$t] A's report is refused for its own content" "\"id\":\"lo-a-$t\".*\"reason\":\"REASON_STORAGE_REFUSED\"" \
		"$(grep "\"id\":\"lo-a-$t\"" "$TEST_DIR/lo-$t.out")"
	assert_eq "[$t] B is still shelved with its own unit and no clock: nothing decided after A's record is stored" \
		"shelved|$UNIT|false" "$(state "$B")"
	assert_eq "[$t] the record has nothing of the meeting, of the centre's acceptance, or of A" "0|0" \
		"$(sql "$TEST_DB" "SELECT (SELECT count(*) FROM og.ledger WHERE source_event_id IN ('lo-meeting-$t', 'lo-b-gc-$t', 'lo-a-acc-$t', 'lo-a-shelve-$t')
		                   AND kind <> 'rejection') || '|' || (SELECT count(*) FROM og.case WHERE case_id = '$A')")"
	assert_match "[$t] archive left out the record naming A, and what came after it" \
		"record \"[^\"]*lo-a-acc-$t\" names a case or report the database does not have; not storing it, nor what dispatch decided after it" \
		"$(tail -c +$((LOG_AT + 1)) "$TEST_DIR/archive.log")"
	assert_ge "[$t] and retired the epoch: the restarted dispatch's is two on" $((E0 + 2)) \
		"$(sql "$TEST_DB" "SELECT epoch FROM og.dispatch_epoch WHERE shard = '6502'")"
}
after_left_out 5 1000 w 45.6100
after_left_out 1 5 x 45.6500
assert_match "[x] the later batches of the retired epoch were refused as stale" \
	'dropping records of shard "6502" epoch [0-9]+: current epoch is [0-9]+' "$(tail -c +$((LOG_AT + 1)) "$TEST_DIR/archive.log")"
assert_match "dispatch said why archive answered with a newer epoch" \
	'archive answered with epoch [0-9]+, ours is [0-9]+: it retired our epoch' "$(cat "$TEST_DIR/dispatch.log")"
# 3. The epoch cannot be retired at once (a lock an operator holds on og.dispatch_epoch:
# archive's lock_timeout_ms ends the wait, a fault): the batch is tried again, with B's
# acceptance, decided meanwhile and come after the left-out records. It is left out with
# them; before, the retry stored it.
retire_fault() {
	local t=z lat=45.6900 A0 F0 pub1 pub2
	og_stop archive "$TEST_DIR"
	sed -i -e "s/^batch_max = [0-9]*$/batch_max = 5/" -e "s/^batch_wait_ms = [0-9]*$/batch_wait_ms = 5/" \
		-e 's/^\[archive\]$/[archive]\nlock_timeout_ms = 1000/' "$TEST_DIR/onegrid.conf"
	grep -q '^lock_timeout_ms = 1000$' "$TEST_DIR/onegrid.conf" || fail "set archive's lock_timeout_ms"
	og_start archive "$TEST_DIR"
	APID=$(<"$TEST_DIR/archive.pid")
	LOG_AT=$(stat -c %s "$TEST_DIR/archive.log")
	shelved_b "$t" "$lat"
	lo_events "$t" "$lat"
	og_lock_take "$TEST_DB" og_test_lock og.dispatch_epoch SHARE || fail "[$t] lock og.dispatch_epoch"
	on_exit "og_lock_release $TEST_DB og_test_lock || true"
	A0=$(accepted)
	kill -STOP "$APID"
	publish "lo-$t" &
	pub1=$!
	on_exit "kill $pub1 2>/dev/null || true"
	og_poll 30 og_metric_at_least "$PORT" "$ACCEPTED" $((A0 + 4)) || fail "[$t] dispatch did not decide all four (accepted: $(accepted), $A0 before)"
	kill -CONT "$APID"
	og_poll 60 bash -c "tail -c +$((LOG_AT + 1)) '$TEST_DIR/archive.log' | grep -q 'database unavailable, holding.*lock timeout'" ||
		fail "[$t] archive could not retire the epoch while the lock was held: $(tail -c +$((LOG_AT + 1)) "$TEST_DIR/archive.log" | tail -n 3)"
	pass "[$t] archive could not retire the epoch while the lock was held: a fault, the batch held"
	publish "gc-$t" &
	pub2=$!
	on_exit "kill $pub2 2>/dev/null || true"
	og_poll 30 og_metric_at_least "$APORT" onegrid_archive_held_records 5 || fail "[$t] B's acceptance reached archive behind the held batch"
	pass "[$t] B's acceptance, decided from the same memory, reached archive behind the held batch"
	# Two more failed tries: the second began after B's acceptance came, so the next one,
	# once the lock is gone, takes it along.
	F0=$(og_metric "$APORT" onegrid_database_faults_total)
	og_poll 60 og_metric_at_least "$APORT" onegrid_database_faults_total $((F0 + 2)) ||
		fail "[$t] archive kept trying (faults: $(og_metric "$APORT" onegrid_database_faults_total), $F0 before)"
	og_lock_release "$TEST_DB" og_test_lock
	og_restart_while dispatch "$TEST_DIR" "$pub1"
	wait "$pub1" || true
	og_restart_while dispatch "$TEST_DIR" "$pub2"
	wait "$pub2" || true
	assert_match "[$t] every event is answered" "unanswered 0" "$(head -1 "$TEST_DIR/lo-$t.txt") $(head -1 "$TEST_DIR/gc-$t.txt")"
	assert_eq "[$t] B is still shelved with its own unit and no clock: the retry stored nothing decided after A's record" \
		"shelved|$UNIT|false" "$(state "$B")"
	assert_eq "[$t] the record has nothing of the centre's acceptance" 0 \
		"$(sql "$TEST_DB" "SELECT count(*) FROM og.ledger WHERE source_event_id = 'lo-b-gc-$t' AND kind <> 'rejection'")"
}
retire_fault
"$ONEGRID_BIN/onegridctl" audit verify --db "dbname=$TEST_DB" >"$TEST_DIR/verify.txt" 2>&1 ||
	fail "audit verify failed: $(cat "$TEST_DIR/verify.txt")"
pass "the record verifies"
