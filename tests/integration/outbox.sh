#!/usr/bin/env bash
# libonegrid's durable outbox: a publisher killed before any answer came back loses
# nothing. Its outbox (with a torn record at the end, as a crash mid-write leaves it) is
# read by the next run, which sends the unanswered events again: each is stored once.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"

test_begin "outbox"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
og_start_all "$TEST_DIR"
og_gen_reports "$TEST_DB" 300 ob >"$TEST_DIR/events.jsonl"
OUTBOX=$TEST_DIR/publisher.outbox

# No intake: nothing can be answered, so everything stays in the outbox.
og_stop intake "$TEST_DIR"
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --outbox "$OUTBOX" \
	--timeout 600 "$TEST_DIR/events.jsonl" >"$TEST_DIR/first.txt" 2>&1 &
pub=$!
on_exit "kill -9 $pub 2>/dev/null || true"
# Wait until all 300 events are in the file (each record is 17 bytes of header + event).
for _ in $(seq 100); do
	(($(stat -c %s "$OUTBOX" 2>/dev/null || echo 0) > 300 * 17 + 300 * 100)) && break
	sleep 0.1
done
sleep 0.3
kill -9 "$pub"
wait "$pub" 2>/dev/null || true
assert_ge "the killed publisher's outbox holds the events" $((300 * 100)) "$(stat -c %s "$OUTBOX")"
assert_eq "nothing stored yet" 0 "$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key")"

# A crash in the middle of an append leaves a torn record at the end.
printf '\x40\x00\x00\x00torn' >>"$OUTBOX"

og_start intake "$TEST_DIR"
rc=0
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --outbox "$OUTBOX" \
	--results "$TEST_DIR/second.out" >"$TEST_DIR/second.txt" 2>&1 || rc=$?
assert_eq "the next run drains the outbox" 0 "$rc"
assert_match "it says what it found" "outbox: 300 events of an earlier run" "$(cat "$TEST_DIR/second.txt")"
assert_match "all 300 answered as stored" "stored 300, duplicate 0, rejected 0, unanswered 0" \
	"$(cat "$TEST_DIR/second.txt")"
assert_eq "each event stored once" 300 "$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key
                                                        WHERE source_event_id LIKE 'ob-%'")"

# Answered events are marked done: a third run finds nothing to send.
rc=0
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --outbox "$OUTBOX" \
	>"$TEST_DIR/third.txt" 2>&1 || rc=$?
assert_eq "third run: nothing left" "0|published 0 events: stored 0, duplicate 0, rejected 0, unanswered 0" \
	"$rc|$(head -1 "$TEST_DIR/third.txt")"
