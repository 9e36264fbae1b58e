#!/usr/bin/env bash
# Graceful stop under load: while a publisher sends, each daemon in turn gets SIGTERM,
# must drain what it holds and exit 0 within its drain time, and is started again. The
# publisher ends with every event answered and each stored exactly once.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"

test_begin "graceful"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
sed -i 's/^\[intake\]$/[intake]\nresend_ms = 1000/; s/^\[dispatch\]$/[dispatch]\nresend_ms = 1000/' \
	"$TEST_DIR/onegrid.conf"
og_start_all "$TEST_DIR"
og_gen_reports "$TEST_DB" 20000 gr >"$TEST_DIR/events.jsonl"

"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --window 100 \
	--outbox "$TEST_DIR/p.outbox" --timeout 120 --results "$TEST_DIR/r.out" \
	"$TEST_DIR/events.jsonl" >"$TEST_DIR/p.txt" 2>&1 &
pub=$!
on_exit "kill $pub 2>/dev/null || true"

for d in archive dispatch intake; do
	sleep 0.5
	in_db=$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key")
	og_stop "$d" "$TEST_DIR" || fail "onegrid-$d did not stop cleanly on SIGTERM"
	pass "onegrid-$d drained and exited 0 on SIGTERM with $in_db events stored so far"
	og_start "$d" "$TEST_DIR"
done
rc=0
wait "$pub" || rc=$?
assert_eq "the publisher got every answer" 0 "$rc"
assert_match "all stored, none rejected" "published 20000 events: stored [0-9]+, duplicate [0-9]+, rejected 0, unanswered 0" \
	"$(head -1 "$TEST_DIR/p.txt")"
assert_eq "each event stored exactly once" 20000 "$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key")"
assert_match "archive committed what it held before exiting" "stopped: [0-9]+ records committed" \
	"$(cat "$TEST_DIR/archive.log")"
assert_eq "archive never stopped with records uncommitted" 0 \
	"$(grep -c 'stopped with .* uncommitted' "$TEST_DIR/archive.log" || true)"
