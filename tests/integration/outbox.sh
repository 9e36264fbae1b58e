#!/usr/bin/env bash
# libonegrid's durable outbox.
# 1. A publisher killed before any answer came back loses nothing. Its outbox (with a torn
#    record at the end, as a crash mid-write leaves it) is read by the next run, which
#    sends the unanswered events again: each is stored once. While the first publisher
#    holds the outbox, a second one on the same file is refused.
# 2. A damaged record in the middle of the outbox costs that record only: the next run
#    warns how many it skipped, keeps the original as FILE.corrupt and sends the rest.
# 3. An outbox on a full file system (a small tmpfs; root only): publish says so once,
#    goes on when there is space again, and gives up with exit status 5 after
#    --wait-space seconds when there is none.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"

test_begin "outbox"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
og_start_all "$TEST_DIR"
og_gen_reports "$TEST_DB" 300 ob >"$TEST_DIR/events.jsonl"
OUTBOX=$TEST_DIR/publisher.outbox
EP=ipc://$TEST_DIR/intake.sock

stored() { # stored PREFIX: events stored with ids PREFIX-...
	sql "$TEST_DB" "SELECT count(*) FROM og.event_key WHERE source_event_id LIKE '$1-%'"
}

# XORs the byte at OFFSET of FILE with 0x5a.
flip_byte() {
	local file=$1 offset=$2 byte
	byte=$(od -An -tu1 -j "$offset" -N1 "$file" | tr -d ' ')
	# shellcheck disable=SC2059
	printf "$(printf '\\%03o' $((byte ^ 0x5a)))" |
		dd of="$file" bs=1 seek="$offset" conv=notrunc status=none
}

# --- 1. killed publisher, torn tail, one process per outbox
# No intake: nothing can be answered, so everything stays in the outbox.
og_stop intake "$TEST_DIR"
"$ONEGRID_BIN/onegridctl" publish --endpoint "$EP" --outbox "$OUTBOX" \
	--timeout 600 "$TEST_DIR/events.jsonl" >"$TEST_DIR/first.txt" 2>&1 &
pub=$!
on_exit "kill -9 $pub 2>/dev/null || true"
# Wait until all 300 events are in the file (each record is 17 bytes of header + event).
for _ in $(seq 100); do
	(($(stat -c %s "$OUTBOX" 2>/dev/null || echo 0) > 300 * 17 + 300 * 100)) && break
	sleep 0.1
done
sleep 0.3

rc=0
"$ONEGRID_BIN/onegridctl" publish --endpoint "$EP" --outbox "$OUTBOX" --timeout 1 \
	>"$TEST_DIR/second-at-once.txt" 2>&1 || rc=$?
assert_eq "a second publisher on the same outbox is refused" \
	"1|onegridctl publish: outbox \"$OUTBOX\" is in use by another process" \
	"$rc|$(cat "$TEST_DIR/second-at-once.txt")"

kill -9 "$pub"
wait "$pub" 2>/dev/null || true
assert_ge "the killed publisher's outbox holds the events" $((300 * 100)) "$(stat -c %s "$OUTBOX")"
assert_eq "nothing stored yet" 0 "$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key")"

# A crash in the middle of an append leaves a torn record at the end.
printf '\x40\x00\x00\x00torn' >>"$OUTBOX"

og_start intake "$TEST_DIR"
rc=0
"$ONEGRID_BIN/onegridctl" publish --endpoint "$EP" --outbox "$OUTBOX" \
	--results "$TEST_DIR/second.out" >"$TEST_DIR/second.txt" 2>&1 || rc=$?
assert_eq "the next run drains the outbox" 0 "$rc"
assert_match "it says what it found" "outbox: 300 events of an earlier run" "$(cat "$TEST_DIR/second.txt")"
assert_match "all 300 answered as stored" "stored 300, duplicate 0, rejected 0, unanswered 0" \
	"$(cat "$TEST_DIR/second.txt")"
assert_eq "a torn tail is no damage: no warning" "" "$(grep -i 'damaged\|warning' "$TEST_DIR/second.txt" || true)"
assert_eq "each event stored once" 300 "$(stored ob)"

# Answered events are marked done: a third run finds nothing to send.
rc=0
"$ONEGRID_BIN/onegridctl" publish --endpoint "$EP" --outbox "$OUTBOX" \
	>"$TEST_DIR/third.txt" 2>&1 || rc=$?
assert_eq "third run: nothing left" "0|published 0 events: stored 0, duplicate 0, rejected 0, unanswered 0" \
	"$rc|$(head -1 "$TEST_DIR/third.txt")"

# --- 2. a damaged record in the middle
DAMAGED=$TEST_DIR/damaged.outbox
og_gen_reports "$TEST_DB" 100 obd >"$TEST_DIR/damaged.jsonl"
og_stop intake "$TEST_DIR"
rc=0
"$ONEGRID_BIN/onegridctl" publish --endpoint "$EP" --outbox "$DAMAGED" --timeout 1 \
	"$TEST_DIR/damaged.jsonl" >"$TEST_DIR/damaged-1.txt" 2>&1 || rc=$?
assert_eq "without intake the 100 events stay in the outbox" 4 "$rc"
flip_byte "$DAMAGED" $(($(stat -c %s "$DAMAGED") / 2))
cp "$DAMAGED" "$TEST_DIR/damaged.copy"

og_start intake "$TEST_DIR"
rc=0
"$ONEGRID_BIN/onegridctl" publish --endpoint "$EP" --outbox "$DAMAGED" \
	>"$TEST_DIR/damaged-2.txt" 2>&1 || rc=$?
assert_eq "the next run sends what could be read" 0 "$rc"
assert_match "it warns how many records it skipped and where the original is" \
	"onegridctl publish: warning: outbox \"$DAMAGED\": skipped 1 damaged record \([0-9]+ bytes\); the original file is kept as \"$DAMAGED.corrupt\"" \
	"$(cat "$TEST_DIR/damaged-2.txt")"
assert_match "99 events, from before and after the damage, stored" \
	"published 99 events: stored 99, duplicate 0, rejected 0, unanswered 0" \
	"$(cat "$TEST_DIR/damaged-2.txt")"
assert_eq "99 stored" 99 "$(stored obd)"
assert_eq "the original is kept as it was" "same" \
	"$(cmp -s "$TEST_DIR/damaged.copy" "$DAMAGED.corrupt" && echo same || echo different)"
rc=0
"$ONEGRID_BIN/onegridctl" publish --endpoint "$EP" --outbox "$DAMAGED" \
	>"$TEST_DIR/damaged-3.txt" 2>&1 || rc=$?
assert_eq "the outbox was rewritten without the damage" \
	"0|published 0 events: stored 0, duplicate 0, rejected 0, unanswered 0" \
	"$rc|$(cat "$TEST_DIR/damaged-3.txt")"

# --- 3. a full file system
if [[ $(id -u) != 0 ]]; then
	echo "# skipped: the full-disk part needs root (mount -t tmpfs)"
	exit 0
fi
FS=$TEST_DIR/fs
mkdir "$FS"
mount -t tmpfs -o size=1m tmpfs "$FS"
on_exit "umount -l '$FS'"
FULL=$FS/publisher.outbox
# Fill all but 32 KiB: about 150 events fit, with their answers.
dd if=/dev/zero of="$FS/filler" bs=64k status=none 2>/dev/null || true
truncate -s -32k "$FS/filler"
og_gen_reports "$TEST_DB" 600 obf >"$TEST_DIR/full.jsonl"

"$ONEGRID_BIN/onegridctl" publish --endpoint "$EP" --outbox "$FULL" --wait-space 120 \
	"$TEST_DIR/full.jsonl" >"$TEST_DIR/full-1.out" 2>"$TEST_DIR/full-1.err" &
pub=$!
on_exit "kill -9 $pub 2>/dev/null || true"
for _ in $(seq 200); do
	grep -q "waiting for space" "$TEST_DIR/full-1.err" && break
	sleep 0.1
done
assert_match "publish says the disk is full, in words" \
	"onegridctl publish: outbox \"$FULL\": no space left on device; waiting for space \([0-9]+ events waiting\)" \
	"$(cat "$TEST_DIR/full-1.err")"
sleep 1
rm "$FS/filler"
rc=0
wait "$pub" || rc=$?
assert_eq "with space again, it carries on and every event is answered" \
	"0|published 600 events: stored 600, duplicate 0, rejected 0, unanswered 0" \
	"$rc|$(head -1 "$TEST_DIR/full-1.out")"
assert_eq "it said so once" 1 "$(grep -c "waiting for space" "$TEST_DIR/full-1.err")"
assert_match "and that there is space again" "space again after" "$(cat "$TEST_DIR/full-1.err")"
assert_eq "600 stored" 600 "$(stored obf)"

# No space at all, and none coming: it gives up after --wait-space with status 5.
dd if=/dev/zero of="$FS/filler" bs=64k status=none 2>/dev/null || true
og_gen_reports "$TEST_DB" 200 obg >"$TEST_DIR/full-2.jsonl"
rc=0
timeout 60 "$ONEGRID_BIN/onegridctl" publish --endpoint "$EP" --outbox "$FULL" --wait-space 2 \
	"$TEST_DIR/full-2.jsonl" >"$TEST_DIR/full-2.out" 2>"$TEST_DIR/full-2.err" || rc=$?
assert_eq "no space for --wait-space seconds: exit status 5" 5 "$rc"
assert_match "it says why it gave up" \
	"outbox \"$FULL\": still no space after 2 s, giving up; $TEST_DIR/full-2.jsonl:[0-9]+ and the lines after it were not published" \
	"$(cat "$TEST_DIR/full-2.err")"
