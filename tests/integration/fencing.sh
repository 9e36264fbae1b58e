#!/usr/bin/env bash
# Fencing: a second dispatch for the same shard takes a newer epoch; archive then refuses
# every record of the first one, which notices, says so and exits rather than let its
# memory disagree with what is committed. A restarted dispatch (a newer epoch again)
# reloads committed state, and every event ends up stored exactly once. An epoch is the
# time it was taken, in microseconds: never one given before, even by a database that went
# back in time and kept its identity.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"

test_begin "fencing"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
sed -i 's/^\[intake\]$/[intake]\nresend_ms = 1000/' "$TEST_DIR/onegrid.conf"
now_us() { sql "$TEST_DB" "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint"; }
t0=$(now_us)
og_start_all "$TEST_DIR"
og_gen_reports "$TEST_DB" 200 fe >"$TEST_DIR/all.jsonl"
head -100 "$TEST_DIR/all.jsonl" >"$TEST_DIR/first.jsonl"
tail -100 "$TEST_DIR/all.jsonl" >"$TEST_DIR/second.jsonl"
publish() {
	"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 60 \
		"$TEST_DIR/$1.jsonl" >"$TEST_DIR/$1.txt" 2>&1
}

publish first
E1=$(sql "$TEST_DB" "SELECT epoch FROM og.dispatch_epoch")
assert_ge "the first dispatch's epoch is the time it was taken, in microseconds" "$t0" "$E1"
assert_eq "first 100 stored under it" "100|$E1" \
	"$(sql "$TEST_DB" "SELECT count(*), max(epoch) FROM og.event_key, og.dispatch_epoch")"

# A second dispatch for the same shard, with its own socket but the same archive.
mkdir "$TEST_DIR/b" && chmod 755 "$TEST_DIR/b"
og_write_config "$TEST_DIR/b" "$TEST_DB"
sed -i "s|^archive = .*|archive = ipc://$TEST_DIR/archive.sock|" "$TEST_DIR/b/onegrid.conf"
og_start dispatch "$TEST_DIR/b"
E2=$(sql "$TEST_DB" "SELECT epoch FROM og.dispatch_epoch")
assert_ge "the second dispatch took a newer epoch" "$((E1 + 1))" "$E2"

publish second &
pub=$!
on_exit "kill $pub 2>/dev/null || true"
og_wait_exit dispatch "$TEST_DIR" 10 || true
if og_stop dispatch "$TEST_DIR" 2>/dev/null; then
	fail "the fenced dispatch should have exited on its own"
fi
pass "the first dispatch exited when archive refused its epoch"
assert_match "and said why" "fenced: archive answered with epoch $E2, ours is $E1" "$(cat "$TEST_DIR/dispatch.log")"
assert_eq "once, not once per record answered" 1 "$(grep -c "fenced:" "$TEST_DIR/dispatch.log")"
assert_eq "nothing of the first epoch was stored after the takeover" 100 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key")"

og_stop dispatch "$TEST_DIR/b"
og_start dispatch "$TEST_DIR"
rc=0
wait "$pub" || rc=$?
assert_eq "the publisher got every answer after the restart" 0 "$rc"
E3=$(sql "$TEST_DB" "SELECT epoch FROM og.dispatch_epoch")
assert_ge "a newer epoch again" "$((E2 + 1))" "$E3"
assert_eq "all 200 stored exactly once" 200 "$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key")"
assert_eq "200 distinct cases" 200 "$(sql "$TEST_DB" "SELECT count(DISTINCT case_id) FROM og.case")"
assert_eq "every batch carried the epoch current when it committed" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.batch b WHERE b.epoch NOT IN ($E1, $E3)")"

# The database goes back to before the third epoch was given, keeping its identity (as a
# snapshot put back would): the next dispatch does not take that epoch again, or archive
# would store what a dispatch of the lost time decided and it still holds.
sql "$TEST_DB" "UPDATE og.dispatch_epoch SET epoch = $E2"
og_stop dispatch "$TEST_DIR"
og_start dispatch "$TEST_DIR"
assert_ge "an epoch taken after the database went back is above every one it gave" "$((E3 + 1))" \
	"$(sql "$TEST_DB" "SELECT epoch FROM og.dispatch_epoch")"
