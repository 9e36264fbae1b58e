#!/usr/bin/env bash
# A record archive holds from a dispatch that was replaced (its epoch is stale), whose key
# the new dispatch sent again meanwhile (intake resent the event, the new dispatch decided
# it again), is dropped without an answer: the answer would reach the new dispatch as the
# answer to its own record ("not stored") and make it exit to reload. The new dispatch
# resends its record, which is stored. Before, the new dispatch exited ("archive did not
# store ...") whenever archive had held the old record through a fault (chaos_short saw it
# once, after archive's reconnects moved to its committing thread).
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"
source "$(dirname "$0")/../lib/faults.sh"

test_begin "stale_superseded"
command -v curl >/dev/null || fail "curl not found"
# A private cluster: archive's role is made unable to log in for a while, and roles are the
# whole cluster's.
unset PGHOST PGPORT
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
PORT=$(og_free_tcp_port)
sed -i -e "/^\[dispatch\]/a metrics_listen = 127.0.0.1:$PORT" "$TEST_DIR/onegrid.conf"
og_start_all "$TEST_DIR"
og_gen_reports "$TEST_DB" 1 ss >"$TEST_DIR/e.jsonl"
# archive loses its session and cannot log in again: it holds the record and tries again
# (a fault), with no session, so nothing tells it yet that its epoch went stale.
on_exit "sql postgres 'ALTER ROLE onegrid_archive LOGIN' >/dev/null 2>&1 || true"
sql postgres "ALTER ROLE onegrid_archive NOLOGIN"
og_backend_terminate "$TEST_DB" onegrid-archive >/dev/null
LOG_AT=$(stat -c %s "$TEST_DIR/archive.log")
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 120 \
	--results "$TEST_DIR/r.out" "$TEST_DIR/e.jsonl" >"$TEST_DIR/p.txt" 2>&1 &
pub=$!
on_exit "kill $pub 2>/dev/null || true"
fault_seen() { tail -c +$((LOG_AT + 1)) "$TEST_DIR/archive.log" | grep -q 'database unavailable, holding 1 records'; }
og_poll 60 fault_seen || fail "archive holds the record through its faults"
# The first dispatch goes; a new one takes the shard (a newer epoch) and decides the event
# again.
E_OLD=$(sql "$TEST_DB" "SELECT epoch FROM og.dispatch_epoch")
og_kill dispatch "$TEST_DIR"
og_start dispatch "$TEST_DIR"
E_NEW=$(sql "$TEST_DB" "SELECT epoch FROM og.dispatch_epoch")
DPID=$(<"$TEST_DIR/dispatch.pid")
INFLIGHT='onegrid_link_in_flight{side="client",peer="archive"}'
og_poll 60 og_metric_at_least "$PORT" "$INFLIGHT" 1 ||
	fail "the new dispatch sent its record to archive (in flight: $(og_metric "$PORT" "$INFLIGHT"))"
pass "the new dispatch decided the event again while archive held the old record"
sql postgres "ALTER ROLE onegrid_archive LOGIN"
rc=0
wait "$pub" || rc=$?
assert_eq "the publisher is answered: stored (publish exits 0)" 0 "$rc"
assert_match "with its case" '"outcome":"stored","case_id":"[0-9]' "$(cat "$TEST_DIR/r.out")"
assert_match "archive dropped the old epoch's record" "dropping records of shard \"6502\" epoch $E_OLD: current epoch is $E_NEW" \
	"$(cat "$TEST_DIR/archive.log")"
kill -0 "$DPID" 2>/dev/null || fail "the new dispatch exited: $(tail -n 3 "$TEST_DIR/dispatch.log")"
pass "the new dispatch still runs"
assert_eq "and did not take the answer for its own" 0 "$(grep -c 'archive did not store' "$TEST_DIR/dispatch.log" || true)"
assert_eq "the event stored once" 1 "$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key")"
out=$("$ONEGRID_BIN/onegridctl" audit verify --db "dbname=$TEST_DB") || fail "audit verify: $out"
pass "audit verify passes"
