#!/usr/bin/env bash
# An event the publisher sent once is answered "stored", even when it had to be resent
# after the batch holding it committed and the answer was lost on the way back.
#
# Archive's inserts are held by an operator's lock while dispatch forwards the events; then
# 1. dispatch is frozen (SIGSTOP), the lock released, archive commits and answers a frozen
#    dispatch, which is killed and restarted: intake resends every unanswered event to the
#    new dispatch, which finds them committed (the same receipt);
# 2. intake is killed instead and restarted: the publisher (libonegrid) resends every
#    unanswered event to the new intake, a new receipt but the same Submit.tag.
# Before the fixes these were answered "duplicate" though the publisher sent each once.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"

test_begin "true_answers"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
og_start_all "$TEST_DIR"
og_gen_reports "$TEST_DB" 200 ta >"$TEST_DIR/e.jsonl"

# A session that holds a SHARE lock on the event keys (reads go on, inserts wait) until
# the test writes COMMIT to it.
mkfifo "$TEST_DIR/locker.fifo"
"$PG_BIN/psql" -XAtq -d "$TEST_DB" <"$TEST_DIR/locker.fifo" >"$TEST_DIR/locker.out" 2>&1 &
locker=$!
exec 3>"$TEST_DIR/locker.fifo"
on_exit "exec 3>&- 2>/dev/null || true; kill $locker 2>/dev/null || true"
echo "BEGIN; LOCK TABLE og.event_key IN SHARE MODE; SELECT 'locked';" >&3
for ((i = 0; i < 300; i++)); do
	grep -q locked "$TEST_DIR/locker.out" 2>/dev/null && break
	sleep 0.1
done
assert_match "the event keys are locked" locked "$(cat "$TEST_DIR/locker.out")"

"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 120 \
	--results "$TEST_DIR/r.out" "$TEST_DIR/e.jsonl" >"$TEST_DIR/p.txt" 2>&1 &
pub=$!
on_exit "kill $pub 2>/dev/null || true"

waiting="SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'onegrid-archive'
           AND wait_event_type = 'Lock'"
for ((i = 0; i < 600; i++)); do
	[[ $(sql "$TEST_DB" "$waiting") == 1 ]] && break
	sleep 0.1
done
assert_eq "archive waits on the lock with a batch" 1 "$(sql "$TEST_DB" "$waiting")"

kill -STOP "$(<"$TEST_DIR/dispatch.pid")"
echo "COMMIT;" >&3
exec 3>&-
# archive commits what it holds and answers a dispatch that cannot read the answers.
idle="SELECT count(*) FROM pg_stat_activity
      WHERE datname = current_database() AND application_name = 'onegrid-archive'
        AND state = 'idle'"
for ((i = 0; i < 600; i++)); do
	[[ $(sql "$TEST_DB" "$idle") == 1 && $(sql "$TEST_DB" "SELECT count(*) FROM og.event_key") -gt 0 ]] && break
	sleep 0.1
done
committed=$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key")
assert_ge "events committed while dispatch was frozen" 1 "$committed"
echo "# $committed events committed while dispatch was frozen"

og_kill dispatch "$TEST_DIR"
og_start dispatch "$TEST_DIR"
rc=0
wait "$pub" || rc=$?
assert_eq "publish: every event answered, none rejected" 0 "$rc"
assert_match "every event sent once is answered stored, none duplicate" \
	"published 200 events: stored 200, duplicate 0, rejected 0, unanswered 0" "$(head -1 "$TEST_DIR/p.txt")"
assert_eq "each stored once" 200 "$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key")"

# 2. The same with intake killed: the answers die with it, the publisher resends.
og_gen_reports "$TEST_DB" 200 tb >"$TEST_DIR/e2.jsonl"
echo "BEGIN; LOCK TABLE og.event_key IN SHARE MODE; SELECT 'locked again';" >"$TEST_DIR/lock2.sql"
mkfifo "$TEST_DIR/locker2.fifo"
"$PG_BIN/psql" -XAtq -d "$TEST_DB" <"$TEST_DIR/locker2.fifo" >"$TEST_DIR/locker2.out" 2>&1 &
locker2=$!
exec 4>"$TEST_DIR/locker2.fifo"
on_exit "exec 4>&- 2>/dev/null || true; kill $locker2 2>/dev/null || true"
cat "$TEST_DIR/lock2.sql" >&4
for ((i = 0; i < 300; i++)); do
	grep -q "locked again" "$TEST_DIR/locker2.out" 2>/dev/null && break
	sleep 0.1
done
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 120 \
	"$TEST_DIR/e2.jsonl" >"$TEST_DIR/p3.txt" 2>&1 &
pub=$!
for ((i = 0; i < 600; i++)); do
	[[ $(sql "$TEST_DB" "$waiting") == 1 ]] && break
	sleep 0.1
done
assert_eq "archive waits on the lock again" 1 "$(sql "$TEST_DB" "$waiting")"
# Counted while archive's commit waits: once the lock goes, that commit may end before a
# count taken afterwards (it did, under load), and no later one would follow it.
before=$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key")
og_kill intake "$TEST_DIR"
echo "COMMIT;" >&4
exec 4>&-
for ((i = 0; i < 600; i++)); do
	[[ $(sql "$TEST_DB" "$idle") == 1 && $(sql "$TEST_DB" "SELECT count(*) FROM og.event_key") -gt $before ]] && break
	sleep 0.1
done
assert_ge "events committed while intake was dead" $((before + 1)) "$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key")"
og_start intake "$TEST_DIR"
rc=0
wait "$pub" || rc=$?
assert_match "resent by the publisher to the new intake, each is answered stored" \
	"published 200 events: stored 200, duplicate 0, rejected 0, unanswered 0" "$(head -1 "$TEST_DIR/p3.txt")"
assert_eq "each stored once" 400 "$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key")"

# Sent again, by the publisher this time: now they are duplicates, and say so.
rc=0
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 60 \
	"$TEST_DIR/e.jsonl" >"$TEST_DIR/p2.txt" 2>&1 || rc=$?
assert_match "a second publication of the same events is answered duplicate" \
	"published 200 events: stored 0, duplicate 200, rejected 0, unanswered 0" "$(head -1 "$TEST_DIR/p2.txt")"
