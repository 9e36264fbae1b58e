#!/usr/bin/env bash
# Another event under the source and id of one still being decided (a corrected event, its
# content changed, sent again before the first was answered) gets its own answer: intake
# answers it REASON_BUSY (not a refusal; the publisher sends it again) until the first is
# answered, then passes it on to be decided afresh. Before, intake attached it to the
# first: it got the first's refusal, for a reason that was not in it, and nothing of it was
# decided or recorded. A resend of the same event (the same bytes) still gets the first's
# answer.
#
# With two intakes (DESIGN: publishers connect to all), the two versions can come through
# different ones, each seeing only its own: dispatch then answers the second REASON_BUSY
# while the first waits for archive. Before, dispatch took it for a resend of the first
# and gave it the first's refusal.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"
source "$(dirname "$0")/../lib/faults.sh"

test_begin "id_in_flight"
command -v curl >/dev/null || fail "curl not found"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
PORT=$(og_free_tcp_port)
sed -i "/^\[intake\]/a metrics_listen = 127.0.0.1:$PORT" "$TEST_DIR/onegrid.conf"
# dispatch is away while both are sent: the first waits for its answer.
og_start intake "$TEST_DIR"
og_gen_reports "$TEST_DB" 1 fl >"$TEST_DIR/v2.jsonl"
# The first version names a grid no source system has: dispatch refuses it.
sed 's/"subject":"[^"]*"/"subject":"NO-SUCH-GRID-1"/' "$TEST_DIR/v2.jsonl" >"$TEST_DIR/v1.jsonl"
! cmp -s "$TEST_DIR/v1.jsonl" "$TEST_DIR/v2.jsonl" || fail "make a first version of the event"
publish_bg() { # publish_bg NAME: NAME.jsonl in the background, answers in NAME.out; pid in $pid
	"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 120 \
		--results "$TEST_DIR/$1.out" "$TEST_DIR/$1.jsonl" >"$TEST_DIR/$1.txt" 2>&1 &
	pid=$!
	on_exit "kill $pid 2>/dev/null || true"
}
publish_bg v1
p1=$pid
og_poll 30 og_metric_at_least "$PORT" onegrid_intake_received_total 1 ||
	fail "intake took the first version"
publish_bg v2
p2=$pid
og_poll 30 og_metric_at_least "$PORT" onegrid_intake_received_total 2 ||
	fail "intake took the second version"
og_start archive "$TEST_DIR"
og_start dispatch "$TEST_DIR"
rc=0
wait "$p1" || rc=$?
assert_eq "the first version: rejected (publish exits 3)" 3 "$rc"
assert_match "for its unknown grid" '"outcome":"rejected","reason":"REASON_UNKNOWN_GRID"' "$(cat "$TEST_DIR/v1.out")"
rc=0
wait "$p2" || rc=$?
assert_eq "the second version: decided afresh and stored (publish exits 0): $(cat "$TEST_DIR/v2.out")" 0 "$rc"
assert_match "with its case" '"outcome":"stored","case_id":"[0-9]' "$(cat "$TEST_DIR/v2.out")"
assert_ge "intake answered the second version REASON_BUSY while the first was in flight" 1 \
	"$(og_metric "$PORT" onegrid_intake_busy_total)"
assert_eq "one refusal recorded (the first version's), one event stored" "1|1" \
	"$(sql "$TEST_DB" "SELECT (SELECT count(*) FROM og.rejection) || '|' || (SELECT count(*) FROM og.event_key)")"

# 2. Two intakes: the first version through one, the second through the other, while the
# first waits for archive (stopped) at dispatch.
D2=$TEST_DIR/b
mkdir "$D2"
sed -e "s|^listen = ipc://$TEST_DIR/intake.sock|listen = ipc://$D2/intake.sock|" \
	-e "s|^metrics_listen = .*|metrics_listen = 127.0.0.1:$(og_free_tcp_port)|" \
	"$TEST_DIR/onegrid.conf" >"$D2/onegrid.conf"
og_start intake "$D2"
on_exit "og_stop intake '$D2' >/dev/null 2>&1 || true"
og_gen_reports "$TEST_DB" 1 tw >"$TEST_DIR/w2.jsonl"
sed 's/"subject":"[^"]*"/"subject":"NO-SUCH-GRID-2"/' "$TEST_DIR/w2.jsonl" >"$TEST_DIR/w1.jsonl"
kill -STOP "$(<"$TEST_DIR/archive.pid")"
on_exit "kill -CONT $(<"$TEST_DIR/archive.pid") 2>/dev/null || true"
publish_bg w1
p1=$pid
og_poll 30 grep -qF 'refusing "tw-000001"' "$TEST_DIR/dispatch.log" ||
	fail "dispatch decided the first version (refused), and it waits for archive"
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$D2/intake.sock" --timeout 120 \
	--results "$TEST_DIR/w2.out" "$TEST_DIR/w2.jsonl" >"$TEST_DIR/w2.txt" 2>&1 &
p2=$!
on_exit "kill $p2 2>/dev/null || true"
og_poll 30 grep -qF 'answering "tw-000001" REASON_BUSY' "$TEST_DIR/dispatch.log" ||
	fail "dispatch answers the second version, through the other intake, REASON_BUSY"
pass "dispatch answers the second version, through the other intake, REASON_BUSY"
kill -CONT "$(<"$TEST_DIR/archive.pid")"
rc=0
wait "$p1" || rc=$?
assert_eq "two intakes: the first version rejected (publish exits 3)" 3 "$rc"
assert_match "for its unknown grid" '"outcome":"rejected","reason":"REASON_UNKNOWN_GRID"' "$(cat "$TEST_DIR/w1.out")"
rc=0
wait "$p2" || rc=$?
assert_eq "two intakes: the second version decided afresh and stored (publish exits 0): $(cat "$TEST_DIR/w2.out")" 0 "$rc"
assert_match "with its case" '"outcome":"stored","case_id":"[0-9]' "$(cat "$TEST_DIR/w2.out")"
assert_eq "two refusals recorded in all, two events stored" "2|2" \
	"$(sql "$TEST_DB" "SELECT (SELECT count(*) FROM og.rejection) || '|' || (SELECT count(*) FROM og.event_key)")"
og_stop intake "$D2"
