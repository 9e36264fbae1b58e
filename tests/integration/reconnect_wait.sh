#!/usr/bin/env bash
# archive connects again after a database fault on its committing thread, not on its main
# loop: a reconnect whose set-up statements wait (here for a lock a migration would hold on
# public.onegrid_migration, with lock_timeout_ms = 0, which an operator may set) no longer
# stops the loop. While it waits, archive goes on taking records from dispatch; told to
# stop, it says so, cancels the wait once drain_ms is over and exits, leaving what it holds
# to dispatch to resend. Before, the reconnect ran on the main loop: nothing more was
# received, SIGTERM went unheard (no "stopping:") until the lock was released, and systemd
# would have killed it.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"
source "$(dirname "$0")/../lib/faults.sh"

test_begin "reconnect_wait"
command -v curl >/dev/null || fail "curl not found"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
PORT=$(og_free_tcp_port)
sed -i -e "/^\[archive\]/a metrics_listen = 127.0.0.1:$PORT" \
	-e 's/^\[archive\]$/[archive]\nlock_timeout_ms = 0\ndrain_ms = 2000/' "$TEST_DIR/onegrid.conf"
[[ $(grep -c '^lock_timeout_ms = 0$\|^drain_ms = 2000$' "$TEST_DIR/onegrid.conf") == 2 ]] ||
	fail "set archive's lock_timeout_ms and drain_ms in the config"
og_start_all "$TEST_DIR"
DPID=$(<"$TEST_DIR/dispatch.pid")
og_gen_reports "$TEST_DB" 3 rw >"$TEST_DIR/all.jsonl"
for i in 1 2 3; do sed -n "${i}p" "$TEST_DIR/all.jsonl" >"$TEST_DIR/e$i.jsonl"; done
publish() { # publish N [ARGS]: e$N.jsonl, answers in r$N.out
	"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 120 \
		--results "$TEST_DIR/r$1.out" "$TEST_DIR/e$1.jsonl" >"$TEST_DIR/p$1.txt" 2>&1
}
publish 1 || fail "publish the first report: $(tail -n 3 "$TEST_DIR/p1.txt")"
pass "the first report is stored"

HELD=onegrid_archive_held_records
on_exit "og_lock_release $TEST_DB og_test_lock || true"
OG_FAULTS_LOG=$TEST_DIR/lock.log og_lock_take "$TEST_DB" og_test_lock public.onegrid_migration 'ACCESS EXCLUSIVE' ||
	fail "take the lock on public.onegrid_migration"
# archive's session ends: its next commit fails, and it connects again.
og_backend_terminate "$TEST_DB" onegrid-archive >/dev/null
publish 2 &
pub2=$!
on_exit "kill $pub2 2>/dev/null || true"
og_poll 60 og_backend_waiting "$TEST_DB" onegrid-archive ||
	fail "archive's new session waits for the lock ($(tail -n 3 "$TEST_DIR/archive.log"))"
pass "archive's reconnect waits for the lock"
publish 3 &
pub3=$!
on_exit "kill $pub3 2>/dev/null || true"
og_poll 30 og_metric_at_least "$PORT" "$HELD" 2 ||
	fail "archive takes another record while its reconnect waits (held: $(og_metric "$PORT" "$HELD"))"
pass "archive takes another record while its reconnect waits"

LOG_AT=$(stat -c %s "$TEST_DIR/archive.log")
OG_STOP_TIMEOUT=20 og_stop archive "$TEST_DIR" ||
	fail "archive stops while its reconnect waits ($(tail -c +$((LOG_AT + 1)) "$TEST_DIR/archive.log" | tail -n 5))"
since=$(tail -c +$((LOG_AT + 1)) "$TEST_DIR/archive.log")
assert_match "it said it was stopping" "stopping: committing the 2 records held" "$since"
assert_match "and left what it held to dispatch" "stopped with 2 records uncommitted" "$since"
no_session() { [[ -z $(og_backend_pids "$TEST_DB" onegrid-archive) ]]; }
og_poll 10 no_session ||
	fail "its wait was cancelled: no session of archive is left ($(og_backend_pids "$TEST_DB" onegrid-archive))"
pass "its wait was cancelled: no session of archive is left"

og_lock_release "$TEST_DB" og_test_lock || fail "release the lock"
og_start archive "$TEST_DIR"
wait "$pub2" || fail "publish the second report: $(tail -n 3 "$TEST_DIR/p2.txt")"
wait "$pub3" || fail "publish the third report: $(tail -n 3 "$TEST_DIR/p3.txt")"
assert_eq "all three reports stored once, each answered stored" "3|3" \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key")|$(cat "$TEST_DIR"/r[123].out | grep -c '"outcome":"stored"')"
assert_eq "the same dispatch ran throughout" "$DPID" "$(<"$TEST_DIR/dispatch.pid")"
out=$("$ONEGRID_BIN/onegridctl" audit verify --db "dbname=$TEST_DB") || fail "audit verify: $out"
pass "audit verify passes"
