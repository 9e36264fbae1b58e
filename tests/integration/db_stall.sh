#!/usr/bin/env bash
# A lock an operator holds (here on og.case) that a daemon's statement waits for is a
# fault like an outage: the wait ends after lock_timeout_ms, the event waits and is
# retried, and the daemon's loop goes on, telling systemd's watchdog it is alive.
# 1. dispatch, while an evaluation needs its closed case read. Before, dispatch hung in
#    libpq for as long as the lock was held: no WATCHDOG=1 (systemd kills it after
#    WatchdogSec and the restarted one hangs loading its cases), nothing logged.
# 2. archive, while a new report's case is to be stored. Before, its commit did not return
#    while the lock was held: no WATCHDOG=1 (systemd kills it, again and again), nothing
#    logged. (Its COMMIT's wait for a synchronous standby is not a lock wait: never
#    cancelled, tests/integration/sync_commit_wait.sh.)
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"
source "$(dirname "$0")/../lib/faults.sh"

test_begin "db_stall"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
sed -i -e 's/^\[dispatch\]$/[dispatch]\nlock_timeout_ms = 1000/' \
	-e 's/^\[archive\]$/[archive]\nlock_timeout_ms = 1000/' "$TEST_DIR/onegrid.conf"
[[ $(grep -c '^lock_timeout_ms = 1000$' "$TEST_DIR/onegrid.conf") == 2 ]] ||
	fail "set lock_timeout_ms for dispatch and archive in the config"
og_start_all "$TEST_DIR"
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ZZ=$(sql "$TEST_DB" "SELECT source_grid_id FROM og.grid_crosswalk WHERE source_system = 'zongzhi' ORDER BY 1 LIMIT 1")
publish() { # publish NAME: its exit status in $rc
	rc=0
	"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 120 \
		--results "$TEST_DIR/$1.out" "$TEST_DIR/$1.jsonl" >"$TEST_DIR/$1.txt" 2>&1 || rc=$?
}
printf '{"id":"rep-x","source":"zongzhi","type":"report","time":"%s","subject":"%s","report":{"category":"facility.handrail","title":"扶手松动","channel":"CHANNEL_GRID_PATROL"}}\n' \
	"$NOW" "$ZZ" >"$TEST_DIR/open.jsonl"
publish open
assert_eq "the report is stored" 0 "$rc"
X=$(grep -o '"case_id":"[^"]*"' "$TEST_DIR/open.out" | cut -d'"' -f4)
og_close_events "$TEST_DB" "$X" "$NOW" x >"$TEST_DIR/close.jsonl"
publish close
assert_eq "the case closed (and left dispatch's memory)" "0|closed" \
	"$rc|$(sql "$TEST_DB" "SELECT state FROM og.case WHERE case_id = '$X'")"

# Each daemon again, under a watchdog of 0.5 s on a stand-in for systemd's socket.
"$ONEGRID_BIN/notifyrecv" "$TEST_DIR/notify" >"$TEST_DIR/notify.log" 2>&1 &
on_exit "kill $! 2>/dev/null || true"
og_poll 10 test -S "$TEST_DIR/notify" || fail "notifyrecv did not bind its socket"
pings() { grep -c "^$1 WATCHDOG=1$" "$TEST_DIR/notify.log" || true; }
on_exit "og_lock_release $TEST_DB og_test_lock || true"

# stalled NAME EVENTS WHAT: restarts daemon NAME under the watchdog, takes the lock on
# og.case and publishes EVENTS (one event, WHAT in the checks' words) in the background;
# checks that NAME's wait ends at its lock timeout, that it goes on telling the watchdog it
# is alive while the lock is held, and that the event waits; then releases the lock and
# waits for the publisher. Sets PID (the daemon's) and LOG_AT (its log's size before).
stalled() {
	local name=$1 events=$2 what=$3 p0 pub
	og_stop "$name" "$TEST_DIR"
	ONEGRID_WRAPPER="env NOTIFY_SOCKET=$TEST_DIR/notify WATCHDOG_USEC=500000" og_start "$name" "$TEST_DIR"
	PID=$(<"$TEST_DIR/$name.pid")
	og_poll 30 bash -c "(( \$(grep -c '^$PID WATCHDOG=1\$' '$TEST_DIR/notify.log' || true) >= 1 ))" ||
		fail "$name tells the watchdog it is alive"
	LOG_AT=$(stat -c %s "$TEST_DIR/$name.log")
	OG_FAULTS_LOG=$TEST_DIR/lock.log og_lock_take "$TEST_DB" og_test_lock og.case 'ACCESS EXCLUSIVE'
	publish "$events" &
	pub=$!
	on_exit "kill $pub 2>/dev/null || true"
	og_poll 30 bash -c "tail -c +$((LOG_AT + 1)) '$TEST_DIR/$name.log' | grep -q 'database unavailable, holding.*lock timeout'" ||
		fail "$name's wait ends at its lock timeout: $(since "$name" | tail -n 5)"
	pass "$name's wait for the lock ended at its lock timeout; $what waits"
	# While the lock is still held: the loop runs, so the watchdog hears from it again and again.
	p0=$(pings "$PID")
	og_poll 30 bash -c "(( \$(grep -c '^$PID WATCHDOG=1\$' '$TEST_DIR/notify.log' || true) >= $p0 + 4 ))" ||
		fail "$name kept telling the watchdog it is alive while the lock was held ($(pings "$PID") pings, $p0 before)"
	pass "$name kept telling the watchdog it is alive while the lock was held"
	assert_eq "the lock is still held" 1 \
		"$(sql "$TEST_DB" "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'og_test_lock'")"
	assert_eq "$what is not answered yet" running "$(kill -0 "$pub" 2>/dev/null && echo running)"
	og_lock_release "$TEST_DB" og_test_lock
	wait "$pub" || true
	assert_eq "once the lock is gone, $what is answered stored" 1 \
		"$(grep -c '"outcome":"stored"' "$TEST_DIR/$events.out" || true)"
	assert_match "$name said the database is back" "database available again" "$(since "$name")"
	assert_eq "the same $name runs" "$PID" "$(kill -0 "$PID" 2>/dev/null && echo "$PID")"
}
since() { tail -c +"$((LOG_AT + 1))" "$TEST_DIR/$1.log"; }

# 1. dispatch: an evaluation of the closed case, which it must read.
printf '{"id":"ev-x","source":"12345","type":"evaluation","time":"%s","evaluation":{"case_id":"%s","result":"RESULT_SATISFIED"}}\n' \
	"$NOW" "$X" >"$TEST_DIR/ev.jsonl"
stalled dispatch ev "the evaluation"
assert_eq "the case is evaluated" evaluated "$(sql "$TEST_DB" "SELECT state FROM og.case WHERE case_id = '$X'")"

# 2. archive: a new report, whose case it must store.
printf '{"id":"rep-y","source":"zongzhi","type":"report","time":"%s","subject":"%s","report":{"category":"facility.streetlight","title":"路灯不亮","channel":"CHANNEL_GRID_PATROL"}}\n' \
	"$NOW" "$ZZ" >"$TEST_DIR/rep.jsonl"
stalled archive rep "the report"
assert_eq "its case is stored once" 1 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.case_report WHERE source_event_id = 'rep-y'")"
