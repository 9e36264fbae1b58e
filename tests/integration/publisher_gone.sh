#!/usr/bin/env bash
# A publisher that goes away while intake is not reading from it (intake waits for room
# towards dispatch: here dispatch is not running) must not bring intake down. With libzmq's
# heartbeats on the publishers' socket, libzmq 4.3.4 aborted the whole process at the next
# heartbeat ("Assertion failed: !_io_error (src/stream_engine_base.cpp:331)", libzmq issue
# 4841): any publisher could crash intake, and a publisher restarting during a dispatch
# outage did. intake stops it now: the publishers' socket sends no heartbeats (a dead
# publisher is found by TCP keepalive, and its memory is bounded by peers.c).
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"
source "$(dirname "$0")/../lib/faults.sh"

test_begin "publisher_gone"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
# Room for 10 events towards dispatch: the rest wait in the publisher's connection, which
# intake stops reading.
sed -i 's/^\[intake\]$/[intake]\nwindow = 10/' "$TEST_DIR/onegrid.conf"
grep -q '^window = 10$' "$TEST_DIR/onegrid.conf" || fail "set intake's window"
PORT=$(og_free_tcp_port)
sed -i "/^\[intake\]/a metrics_listen = 127.0.0.1:$PORT" "$TEST_DIR/onegrid.conf"
og_start intake "$TEST_DIR"
IPID=$(<"$TEST_DIR/intake.pid")
og_gen_reports "$TEST_DB" 200 pg >"$TEST_DIR/e.jsonl"
RECEIVED=onegrid_intake_received_total

alive() { kill -0 "$IPID" 2>/dev/null && [[ $(ps -o stat= -p "$IPID") != Z* ]]; }
dead() { ! alive; }
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --window 200 --timeout 60 \
	"$TEST_DIR/e.jsonl" >"$TEST_DIR/p.txt" 2>&1 &
pub=$!
# intake read what its window towards dispatch holds; the rest waits in the connection,
# which intake no longer reads.
og_poll 30 og_metric_at_least "$PORT" "$RECEIVED" 10 ||
	fail "intake read the publisher's first events (received: $(og_metric "$PORT" "$RECEIVED"))"
kill -KILL "$pub" 2>/dev/null || true
wait "$pub" 2>/dev/null || true
# libzmq's heartbeat came within a second: three of them.
if og_poll 3 dead; then
	fail "intake died after the publisher went away: $(tail -n 3 "$TEST_DIR/intake.log")"
fi
pass "intake outlived a publisher that went away while it was not reading it"

# dispatch and archive start: what the publishers sent before is theirs to resend, and a
# new publisher is answered.
og_start archive "$TEST_DIR"
og_start dispatch "$TEST_DIR"
head -n 1 "$TEST_DIR/e.jsonl" | sed 's/"id":"pg-/"id":"pg2-/' >"$TEST_DIR/one.jsonl"
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 60 \
	--results "$TEST_DIR/one.out" "$TEST_DIR/one.jsonl" >"$TEST_DIR/one.txt" 2>&1 ||
	fail "a new publisher is answered: $(cat "$TEST_DIR/one.txt")"
assert_match "stored" '"outcome":"stored"' "$(cat "$TEST_DIR/one.out")"
assert_eq "the same intake ran throughout" "$IPID" "$(<"$TEST_DIR/intake.pid")"
