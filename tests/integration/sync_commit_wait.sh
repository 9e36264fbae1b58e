#!/usr/bin/env bash
# archive's statement timeout ([archive] statement_timeout_ms) never cancels its COMMIT. A
# COMMIT waiting for a synchronous standby that is cancelled returns OK with only a WARNING
# ("the transaction has already committed locally, but might not have been replicated to
# the standby"): archive would then answer "stored" without the standby's word.
# PostgreSQL stops a statement's timer before it commits (postgres.c, finish_xact_command);
# this holds archive to that, whatever way it comes to limit statements. A standby that
# never answers (synchronous_standby_names names one that does not exist) holds the
# COMMIT, for three times the timeout, until the setting is taken back.
# A private cluster: synchronous_standby_names is a setting of the whole cluster.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/faults.sh"

test_begin "sync_commit_wait"
unset PGHOST PGPORT
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
sed -i 's/^\[archive\]$/[archive]\nstatement_timeout_ms = 1000/' "$TEST_DIR/onegrid.conf"
grep -q '^statement_timeout_ms = 1000$' "$TEST_DIR/onegrid.conf" || fail "set archive's statement_timeout_ms"
og_start_all "$TEST_DIR"
APID=$(<"$TEST_DIR/archive.pid")
PGLOG=${_tl_pgdir:?a private cluster}/log/postgresql.log

standby() { # standby NAME|"": sets synchronous_standby_names, and waits until it holds
	sql postgres "ALTER SYSTEM SET synchronous_standby_names = '$1'" >/dev/null
	sql postgres "SELECT pg_reload_conf()" >/dev/null
	og_poll 30 bash -c "[[ \$('$PG_BIN/psql' -XAtq -d postgres -c 'SHOW synchronous_standby_names') == '$1' ]]" ||
		fail "synchronous_standby_names did not become \"$1\""
}
standby og_absent_standby
on_exit "$PG_BIN/psql -XAtq -d postgres -c \"ALTER SYSTEM RESET synchronous_standby_names\" -c 'SELECT pg_reload_conf()' >/dev/null 2>&1 || true"

NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ZZ=$(sql "$TEST_DB" "SELECT source_grid_id FROM og.grid_crosswalk WHERE source_system = 'zongzhi' ORDER BY 1 LIMIT 1")
printf '{"id":"rep-s","source":"zongzhi","type":"report","time":"%s","subject":"%s","report":{"category":"facility.streetlight","title":"路灯不亮","channel":"CHANNEL_GRID_PATROL"}}\n' \
	"$NOW" "$ZZ" >"$TEST_DIR/rep.jsonl"
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 120 \
	--results "$TEST_DIR/rep.out" "$TEST_DIR/rep.jsonl" >"$TEST_DIR/rep.txt" 2>&1 &
pub=$!
on_exit "kill $pub 2>/dev/null || true"

waiting_commit="SELECT count(*) FROM pg_stat_activity WHERE application_name = 'onegrid-archive'
                AND wait_event = 'SyncRep'"
commit_waits() { [[ $(sql "$TEST_DB" "$waiting_commit") == 1 ]]; }
og_poll 60 commit_waits || fail "archive's COMMIT did not wait for the standby"
pass "archive's COMMIT waits for the standby"
# Three times the statement timeout: a limited COMMIT would have been cancelled, returned
# OK and been answered by now. Any sign of that within the time fails at once.
cancelled() {
	grep -q 'canceling wait for synchronous replication' "$PGLOG" || ! kill -0 "$pub" 2>/dev/null || ! commit_waits
}
if og_poll 3 cancelled; then
	fail "the COMMIT was cancelled or answered without the standby: $(grep -c 'canceling wait for synchronous' "$PGLOG" || true) cancels in the server's log; publisher $(kill -0 "$pub" 2>/dev/null && echo waiting || echo answered)"
fi
pass "after 3 s (three statement timeouts) the COMMIT still waits and the report is not answered"

standby ''
rc=0
wait "$pub" || rc=$?
assert_eq "with the standby no longer required, the report is answered stored" "0|1" \
	"$rc|$(grep -c '"outcome":"stored"' "$TEST_DIR/rep.out" || true)"
assert_eq "stored once" 1 "$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key WHERE source_event_id = 'rep-s'")"
assert_eq "the same archive runs" "$APID" "$(kill -0 "$APID" 2>/dev/null && echo "$APID")"
assert_eq "nothing was cancelled" 0 "$(grep -c 'canceling wait for synchronous replication' "$PGLOG" || true)"
