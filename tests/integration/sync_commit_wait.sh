#!/usr/bin/env bash
# archive's limit on waits ([archive] lock_timeout_ms) never cancels its COMMIT. A COMMIT
# waiting for a synchronous standby that is cancelled returns OK with only a WARNING ("the
# transaction has already committed locally, but might not have been replicated to the
# standby"): archive would then answer "stored" without the standby's word. That wait is
# not a lock wait, and PostgreSQL stops even a statement_timeout before it commits
# (postgres.c, finish_xact_command); this holds archive to it, whatever way it comes to
# limit its waits. First the limit is shown in force (a lock on og.case ends in a lock
# timeout); then a standby that never answers (synchronous_standby_names names one that
# does not exist) holds the COMMIT, for three times the limit, until the setting is taken
# back.
# A private cluster: synchronous_standby_names is a setting of the whole cluster.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/faults.sh"

test_begin "sync_commit_wait"
unset PGHOST PGPORT
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
sed -i 's/^\[archive\]$/[archive]\nlock_timeout_ms = 1000/' "$TEST_DIR/onegrid.conf"
grep -q '^lock_timeout_ms = 1000$' "$TEST_DIR/onegrid.conf" || fail "set archive's lock_timeout_ms"
og_start_all "$TEST_DIR"
APID=$(<"$TEST_DIR/archive.pid")
PGLOG=${_tl_pgdir:?a private cluster}/log/postgresql.log

standby() { # standby NAME|"": sets synchronous_standby_names, and waits until it holds
	sql postgres "ALTER SYSTEM SET synchronous_standby_names = '$1'" >/dev/null
	sql postgres "SELECT pg_reload_conf()" >/dev/null
	og_poll 30 bash -c "[[ \$('$PG_BIN/psql' -XAtq -d postgres -c 'SHOW synchronous_standby_names') == '$1' ]]" ||
		fail "synchronous_standby_names did not become \"$1\""
}
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ZZ=$(sql "$TEST_DB" "SELECT source_grid_id FROM og.grid_crosswalk WHERE source_system = 'zongzhi' ORDER BY 1 LIMIT 1")
report() { # report ID: a report event on stdout
	printf '{"id":"%s","source":"zongzhi","type":"report","time":"%s","subject":"%s","report":{"category":"facility.streetlight","title":"路灯不亮","channel":"CHANNEL_GRID_PATROL"}}\n' \
		"$1" "$NOW" "$ZZ"
}

# The limit is in force: a lock on og.case held for longer ends archive's wait.
report rep-l >"$TEST_DIR/lock.jsonl"
og_lock_take "$TEST_DB" og_test_lock og.case 'ACCESS EXCLUSIVE'
on_exit "og_lock_release $TEST_DB og_test_lock || true"
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 120 \
	--results "$TEST_DIR/lock.out" "$TEST_DIR/lock.jsonl" >"$TEST_DIR/lock.txt" 2>&1 &
pub=$!
og_poll 30 bash -c "grep -q 'database unavailable, holding.*lock timeout' '$TEST_DIR/archive.log'" ||
	fail "archive's wait for the lock ends at its limit: $(tail -n 3 "$TEST_DIR/archive.log")"
pass "archive's wait for a lock ends at its limit (1 s)"
og_lock_release "$TEST_DB" og_test_lock
rc=0
wait "$pub" || rc=$?
assert_eq "then the report is stored" "0|1" "$rc|$(grep -c '"outcome":"stored"' "$TEST_DIR/lock.out" || true)"

standby og_absent_standby
on_exit "$PG_BIN/psql -XAtq -d postgres -c \"ALTER SYSTEM RESET synchronous_standby_names\" -c 'SELECT pg_reload_conf()' >/dev/null 2>&1 || true"
report rep-s >"$TEST_DIR/rep.jsonl"
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 120 \
	--results "$TEST_DIR/rep.out" "$TEST_DIR/rep.jsonl" >"$TEST_DIR/rep.txt" 2>&1 &
pub=$!
on_exit "kill $pub 2>/dev/null || true"

waiting_commit="SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                AND application_name = 'onegrid-archive' AND wait_event = 'SyncRep'"
commit_waits() { [[ $(sql "$TEST_DB" "$waiting_commit") == 1 ]]; }
og_poll 60 commit_waits || fail "archive's COMMIT did not wait for the standby"
pass "archive's COMMIT waits for the standby"
# Three times the limit: a limited COMMIT would have been cancelled, returned
# OK and been answered by now. Any sign of that within the time fails at once.
cancelled() {
	grep -q 'canceling wait for synchronous replication' "$PGLOG" || ! kill -0 "$pub" 2>/dev/null || ! commit_waits
}
if og_poll 3 cancelled; then
	fail "the COMMIT was cancelled or answered without the standby: $(grep -c 'canceling wait for synchronous' "$PGLOG" || true) cancels in the server's log; publisher $(kill -0 "$pub" 2>/dev/null && echo waiting || echo answered)"
fi
pass "after 3 s (three times the limit) the COMMIT still waits and the report is not answered"

standby ''
rc=0
wait "$pub" || rc=$?
assert_eq "with the standby no longer required, the report is answered stored" "0|1" \
	"$rc|$(grep -c '"outcome":"stored"' "$TEST_DIR/rep.out" || true)"
assert_eq "stored once" 1 "$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key WHERE source_event_id = 'rep-s'")"
assert_eq "the same archive runs" "$APID" "$(kill -0 "$APID" 2>/dev/null && echo "$APID")"
assert_eq "nothing was cancelled" 0 "$(grep -c 'canceling wait for synchronous replication' "$PGLOG" || true)"
