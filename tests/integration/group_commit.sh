#!/usr/bin/env bash
# Group commit in archive: batch_wait_ms holds a record for others to join its batch only
# while the database is idle. A record that comes while a batch is committing has waited
# for that commit already: it goes into the next batch as soon as the commit ends, not
# batch_wait_ms later. The commit is made on a thread of its own, so archive takes (and
# makes ready) what comes meanwhile: its held_records gauge counts the third report while
# the first two commit; a commit that does not return still shows as a stall of the loop.
# Here batch_wait_ms is 10 s (the most allowed) and batch_max 2: two
# reports fill a batch at once, whose commit is held up by a lock another session takes
# on og.batch; a third report reaches archive meanwhile. Released, the first batch
# commits and the third is answered well before its 10 s would have run out (before this
# change it waited them out).
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"
source "$(dirname "$0")/../lib/faults.sh"

test_begin "group commit"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
read -r PORT APORT < <(og_free_tcp_ports 2)
sed -i -e 's/^batch_max = [0-9]*$/batch_max = 2/' -e 's/^batch_wait_ms = [0-9]*$/batch_wait_ms = 10000/' \
	-e "/^\[dispatch\]$/a metrics_listen = 127.0.0.1:$PORT" \
	-e "/^\[archive\]$/a metrics_listen = 127.0.0.1:$APORT\ndrain_ms = 1000" "$TEST_DIR/onegrid.conf"
[[ $(grep -c -e '^batch_max = 2$' -e '^batch_wait_ms = 10000$' "$TEST_DIR/onegrid.conf") == 2 ]] ||
	fail "set archive's batch_max and batch_wait_ms"
og_start_all "$TEST_DIR"
EP="ipc://$TEST_DIR/intake.sock"
og_gen_reports "$TEST_DB" 3 gc >"$TEST_DIR/all.jsonl"
head -2 "$TEST_DIR/all.jsonl" >"$TEST_DIR/first.jsonl"
tail -1 "$TEST_DIR/all.jsonl" >"$TEST_DIR/third.jsonl"
# sent N: dispatch has sent N records to archive.
sent() {
	curl -s "http://127.0.0.1:$PORT/metrics" |
		awk -v n="$1" '/^onegrid_link_sent_total\{.*peer="archive"/ { s += $2 } END { exit !(s >= n) }'
}

# The lock: a session holding og.batch, fed through a FIFO, so archive's next commit
# waits in og.begin_batch.
mkfifo "$TEST_DIR/lock.fifo"
"$PG_BIN/psql" -XAtq -v ON_ERROR_STOP=1 -d "$TEST_DB" -f "$TEST_DIR/lock.fifo" >"$TEST_DIR/lock.out" 2>&1 &
LOCKER=$!
exec 3>"$TEST_DIR/lock.fifo"
on_exit "exec 3>&- 2>/dev/null || true; kill $LOCKER 2>/dev/null || true"
echo "BEGIN; LOCK TABLE og.batch IN EXCLUSIVE MODE; SELECT 'locked';" >&3
og_poll 30 grep -q locked "$TEST_DIR/lock.out" || fail "the lock on og.batch was not taken"

"$ONEGRID_BIN/onegridctl" publish --endpoint "$EP" --results "$TEST_DIR/first.out" "$TEST_DIR/first.jsonl" \
	>/dev/null 2>&1 &
FIRST=$!
og_poll 30 og_backend_waiting "$TEST_DB" onegrid-archive ||
	fail "archive's commit of the first two never waited for the lock"
pass "the first two reports fill a batch at once, whose commit waits for the lock"
"$ONEGRID_BIN/onegridctl" publish --endpoint "$EP" --results "$TEST_DIR/third.out" "$TEST_DIR/third.jsonl" \
	>/dev/null 2>&1 &
THIRD=$!
og_poll 30 sent 3 || fail "dispatch did not send the third report to archive"
pass "the third report reaches archive while that batch commits"
# archive_gauge NAME MIN: archive's gauge NAME is at least MIN.
archive_gauge() {
	curl -s "http://127.0.0.1:$APORT/metrics" | awk -v g="$1" -v n="$2" '$1 == g { v = $2 } END { exit !(v >= n) }'
}
og_poll 30 archive_gauge onegrid_archive_held_records 3 ||
	fail "archive did not take the third report while the first two committed: held $(curl -s "http://127.0.0.1:$APORT/metrics" | grep '^onegrid_archive_held_records')"
pass "archive takes it meanwhile (held_records 3: two committing, one next)"
og_poll 30 archive_gauge onegrid_loop_stall_seconds 2 ||
	fail "a commit that does not return does not show as a stall of archive's loop"
pass "and the commit that does not return shows as a stall of archive's loop"

T0=$SECONDS
echo "COMMIT;" >&3
wait "$FIRST" || fail "the first two were not all answered: $(cat "$TEST_DIR/first.out")"
assert_eq "the first two are stored" 2 "$(grep -c '"outcome":"stored"' "$TEST_DIR/first.out")"
# Well before batch_wait_ms (10 s): the third waited for the first batch's commit, not for
# more reports to join it.
done_third() { ! kill -0 "$THIRD" 2>/dev/null; }
og_poll 7 done_third || fail "the third report was not answered within 7 s: it waited for its batch"
wait "$THIRD" || fail "the third was not answered: $(cat "$TEST_DIR/third.out")"
assert_eq "the third is stored, $((SECONDS - T0)) s after the lock was released" 1 \
	"$(grep -c '"outcome":"stored"' "$TEST_DIR/third.out")"
assert_eq "in a batch of its own" "1" \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.ledger l WHERE l.kind = 'event' AND l.batch_id =
	                   (SELECT batch_id FROM og.ledger WHERE source_event_id = '$(grep -o '"id":"[^"]*"' "$TEST_DIR/third.jsonl" | cut -d'"' -f4)' LIMIT 1)")"

# A report that finds the database idle still waits for others, up to batch_wait_ms: a
# fourth alone is not answered within 3 s (it is after its 10 s).
og_gen_reports "$TEST_DB" 1 gc-idle >"$TEST_DIR/fourth.jsonl"
"$ONEGRID_BIN/onegridctl" publish --endpoint "$EP" --results "$TEST_DIR/fourth.out" "$TEST_DIR/fourth.jsonl" \
	>/dev/null 2>&1 &
FOURTH=$!
end=$((SECONDS + 3))
while ((SECONDS < end)); do
	kill -0 "$FOURTH" 2>/dev/null || fail "a report alone on an idle database was answered before batch_wait_ms"
	sleep 0.2
done
pass "a report alone on an idle database waits for others to join it"
wait "$FOURTH" || fail "the fourth was not answered: $(cat "$TEST_DIR/fourth.out")"
assert_eq "and is stored after batch_wait_ms" 1 "$(grep -c '"outcome":"stored"' "$TEST_DIR/fourth.out")"

# Full while a commit waits: archive holds at most 4 x batch_max records (8 here) and leaves
# the rest in its socket. It must not spin on that socket meanwhile (its poll would end at
# once, turn after turn): over 3 s it uses well under a second of CPU (a spin takes a
# core, half of one beside another busy process).
# locked_publish NAME N: takes the lock on og.batch again, then publishes N new reports
# (NAME.jsonl, results in NAME.out) in the background: PUB is the publisher.
locked_publish() {
	echo "BEGIN; LOCK TABLE og.batch IN EXCLUSIVE MODE; SELECT 'locked for $1';" >&3
	og_poll 30 grep -q "locked for $1" "$TEST_DIR/lock.out" || fail "the lock on og.batch was not taken for $1"
	og_gen_reports "$TEST_DB" "$2" "gc-$1" >"$TEST_DIR/$1.jsonl"
	"$ONEGRID_BIN/onegridctl" publish --endpoint "$EP" --results "$TEST_DIR/$1.out" "$TEST_DIR/$1.jsonl" \
		>/dev/null 2>&1 &
	PUB=$!
}
locked_publish full 20
FULL=$PUB
og_poll 30 archive_gauge onegrid_archive_held_records 8 || fail "archive did not fill up while its commit waited"
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$(cat "$TEST_DIR/archive.pid")/stat"; }
t0=$(cpu_ticks)
sleep 3
used=$(($(cpu_ticks) - t0))
((used < 50)) || fail "archive used $used CPU ticks in 3 s while full and waiting for its commit: it spins"
pass "full while its commit waits, archive does not spin ($used CPU ticks in 3 s)"
echo "COMMIT;" >&3
wait "$FULL" || fail "the 20 were not all answered: $(cat "$TEST_DIR/full.out")"
assert_eq "then all 20 are stored" 20 "$(grep -c '"outcome":"stored"' "$TEST_DIR/full.out")"

# Stopped while a commit waits: after drain_ms (1 s here) archive cancels that commit and
# exits, instead of waiting for the lock (as it did, until systemd's TimeoutStopSec killed
# it); dispatch resends the records to the next archive, which stores them.
locked_publish stop 2
STOPPED=$PUB
og_poll 30 og_backend_waiting "$TEST_DB" onegrid-archive || fail "archive's commit did not wait for the lock"
T0=$SECONDS
OG_STOP_TIMEOUT=8 og_stop archive "$TEST_DIR" ||
	fail "archive did not stop within 8 s of SIGTERM while its commit waited (drain_ms 1 s)"
pass "stopped while its commit waits, archive exits after drain_ms ($((SECONDS - T0)) s), the lock still held"
assert_match "saying it cancelled the commit" "cancelling the commit of 2 records" "$(cat "$TEST_DIR/archive.log")"
assert_match "and left its records to dispatch, with no error logged" \
	"the commit cancelled at stop returned .*its 2 records are left to dispatch to resend" "$(cat "$TEST_DIR/archive.log")"
[[ $(cat "$TEST_DIR/archive.log") != *"database unavailable"* ]] || fail "the cancel was logged as the database being unavailable"
assert_eq "nothing of it was stored" 0 "$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key WHERE source_event_id LIKE 'gc-stop%'")"
echo "COMMIT;" >&3
og_start archive "$TEST_DIR"
wait "$STOPPED" || fail "the two were not answered after archive restarted: $(cat "$TEST_DIR/stop.out")"
assert_eq "the next archive stores both (dispatch resent them)" 2 "$(grep -c '"outcome":"stored"' "$TEST_DIR/stop.out")"
