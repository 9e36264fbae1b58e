#!/usr/bin/env bash
# What an operator sees of `onegridctl publish` (issue 12 item 8):
# 1. --dry-run checks every line as intake would and publishes nothing: no endpoint, no
#    daemon; the lines intake would refuse are named with the reason, exit 3; a line that
#    is not an event, exit 2.
# 2. A JSON line with a key twice is refused, whichever value comes last (json-c kept the
#    last silently); so is a line with more than one value or a NUL byte (json-c read the
#    first value and ignored the rest).
# 3. On a terminal a progress line on standard error keeps count; in a pipe there is none.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"

test_begin "publish_cli"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
ctl="$ONEGRID_BIN/onegridctl"
GRID=$(sql "$TEST_DB" "SELECT source_grid_id FROM og.grid_crosswalk WHERE source_system = 'zongzhi' ORDER BY 1 LIMIT 1")
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
report() { # report ID TIME
	printf '{"id":"%s","source":"zongzhi","type":"report","time":"%s","subject":"%s","report":{"category":"facility.handrail","title":"扶手松动","channel":"CHANNEL_GRID_PATROL"}}\n' \
		"$1" "$2" "$GRID"
}
{ report ok-1 "$NOW"; report ok-2 "$NOW"; report old-1 2001-01-01T00:00:00Z; } >"$TEST_DIR/some.jsonl"
rc=0
out=$("$ctl" publish --dry-run "$TEST_DIR/some.jsonl" 2>&1) || rc=$?
assert_eq "--dry-run: some would be refused: exit 3" 3 "$rc"
assert_match "--dry-run names the line, the event and the reason" \
	"some.jsonl:3: \"old-1\": would be refused: REASON_INVALID_TIME" "$out"
assert_match "--dry-run counts" "checked 3 events: 2 valid, 1 would be refused by intake" "$out"
rc=0
out=$("$ctl" publish --dry-run --outbox "$TEST_DIR/ob" "$TEST_DIR/some.jsonl" 2>&1) || rc=$?
assert_eq "--dry-run with an outbox: refused, nothing kept (exit 2)" "2 no" "$rc $([[ -e $TEST_DIR/ob ]] && echo yes || echo no)"
{ report ok-1 "$NOW"; report ok-2 "$NOW"; } >"$TEST_DIR/good.jsonl"
rc=0
"$ctl" publish --dry-run "$TEST_DIR/good.jsonl" >/dev/null 2>&1 || rc=$?
assert_eq "--dry-run: all valid: exit 0" 0 "$rc"

printf '{"id":"dup-1","source":"zongzhi","type":"report","time":"%s","subject":"%s","report":{"category":"facility.handrail","title":"a","title":"b"}}\n' \
	"$NOW" "$GRID" >"$TEST_DIR/dup.jsonl"
rc=0
out=$("$ctl" publish --dry-run "$TEST_DIR/dup.jsonl" 2>&1) || rc=$?
assert_eq "a key twice: not an event (exit 2)" 2 "$rc"
assert_match "a key twice: says which" 'dup.jsonl:1: key "title" is given twice in one object' "$out"

# One event per line: a second object after the first, text after it, or a NUL byte in the
# line is an input error, not something to drop unseen (review: only the first object of
# `{A} {B}` was published, exit 0).
{
	printf '%s %s\n' "$(report two-a "$NOW")" "$(report two-b "$NOW")"
	printf '%s trailing\n' "$(report two-c "$NOW")"
	report two-d "$NOW" | sed 's/扶手松动/扶手\x00松动/'
	report two-e "$NOW"
} >"$TEST_DIR/two.jsonl"
rc=0
out=$("$ctl" publish --dry-run "$TEST_DIR/two.jsonl" 2>&1) || rc=$?
assert_eq "more than one value on a line: not an event (exit 2)" 2 "$rc"
assert_match "a second object: named" "two.jsonl:1: more after the JSON value at column [0-9]+ \(one event per line\)" "$out"
assert_match "text after the object: named" "two.jsonl:2: more after the JSON value" "$out"
assert_match "a NUL byte: named" "two.jsonl:3: a NUL byte at column [0-9]+" "$out"
assert_match "the good line is still checked" "checked 1 events: 1 valid" "$out"

og_start_all "$TEST_DIR"
rc=0
out=$("$ctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 30 "$TEST_DIR/two.jsonl" 2>&1) || rc=$?
assert_eq "publishing them: an input error (exit 2)" 2 "$rc"
assert_eq "only the good line was sent" "two-e" \
	"$(sql "$TEST_DB" "SELECT string_agg(source_event_id, ' ' ORDER BY 1) FROM og.event_key WHERE source_event_id LIKE 'two-%'")"
rc=0
out=$("$ctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 30 "$TEST_DIR/dup.jsonl" 2>&1) || rc=$?
assert_eq "publishing a key twice: refused before sending (exit 2)" 2 "$rc"
assert_eq "--dry-run stored nothing, the line with a key twice was not sent" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key WHERE source_event_id NOT LIKE 'two-%'")"
for i in $(seq 1 50); do report "tty-$i" "$NOW"; done >"$TEST_DIR/tty.jsonl"
# script(1) gives publish a terminal; its output is what the terminal showed.
script -qec "$ctl publish --endpoint ipc://$TEST_DIR/intake.sock --timeout 30 $TEST_DIR/tty.jsonl" \
	"$TEST_DIR/tty.txt" >/dev/null 2>&1 || fail "publish on a terminal: $(cat "$TEST_DIR/tty.txt")"
assert_match "on a terminal: a progress line" \
	"sent 50, answered 50 \(stored 50, duplicate 0, rejected 0\), waiting 0, [0-9]+ answers/s" \
	"$(tr '\r' '\n' <"$TEST_DIR/tty.txt")"
rc=0
"$ctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 30 "$TEST_DIR/good.jsonl" \
	>"$TEST_DIR/pipe.out" 2>"$TEST_DIR/pipe.err" || rc=$?
assert_eq "in a pipe: no progress line" "0 " "$rc $(grep -c 'answers/s' "$TEST_DIR/pipe.err" | grep -v '^0$' || true)"
