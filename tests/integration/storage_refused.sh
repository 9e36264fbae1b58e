#!/usr/bin/env bash
# A record the database itself refuses for its content (here: a constraint trigger an
# operator added, SQLSTATE class 23) must not block the batch it is in, nor be retried for
# ever, nor vanish. The store names the record whose statement failed; archive records it
# as a refusal (REASON_STORAGE_REFUSED, with the database's message) and commits the rest;
# dispatch, whose memory held the refused case, exits so that a restart reloads committed
# state. (A failure that is not about the record is retried: tests/integration/db_faults.sh.)
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"

test_begin "storage_refused"
test_createdb
og_refuse_contact_trigger "$TEST_DB"
og_write_config "$TEST_DIR" "$TEST_DB"
sed -i 's/^batch_wait_ms = .*$/batch_wait_ms = 200/' "$TEST_DIR/onegrid.conf"
og_start_all "$TEST_DIR"
og_gen_reports "$TEST_DB" 50 sr >"$TEST_DIR/e.jsonl"
# Event 25 carries the contact the trigger refuses.
sed -i '25s/"channel":/"contact":{"name":"REFUSE-ME","phone":"13800000000"},"channel":/' "$TEST_DIR/e.jsonl"

"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 30 \
	--results "$TEST_DIR/r.out" "$TEST_DIR/e.jsonl" >"$TEST_DIR/p.txt" 2>&1 &
pub=$!
on_exit "kill $pub 2>/dev/null || true"
og_wait_exit dispatch "$TEST_DIR" 10 || true
og_stop dispatch "$TEST_DIR" 2>/dev/null && fail "dispatch should have exited to reload its state"
pass "dispatch exited to reload its state"
assert_match "after finishing what archive held" "stopped: [0-9]+ decided" "$(cat "$TEST_DIR/dispatch.log")"
og_start dispatch "$TEST_DIR"
assert_match "the restarted dispatch loaded the committed cases" \
	"epoch $(sql "$TEST_DB" "SELECT epoch FROM og.dispatch_epoch"): .* 4[0-9] cases" \
	"$(cat "$TEST_DIR/dispatch.log")"
# As systemd would (Restart=on-failure). When the refused copy's answer had not reached
# intake before dispatch exited, intake resends it to the restarted dispatch, which
# answers it with the recorded refusal (tests/integration/refused_resend.sh).
og_restart_while dispatch "$TEST_DIR" "$pub"
rc=0
wait "$pub" || rc=$?
assert_eq "publish: one rejected, all answered" 3 "$rc"
assert_match "49 stored (some as duplicates after the restart), 1 rejected" \
	"published 50 events: stored [0-9]+, duplicate [0-9]+, rejected 1, unanswered 0" "$(head -1 "$TEST_DIR/p.txt")"
assert_match "the refused event is answered REASON_STORAGE_REFUSED" \
	'"id":"sr-000025".*"reason":"REASON_STORAGE_REFUSED"' "$(grep sr-000025 "$TEST_DIR/r.out")"
assert_eq "its refusal is recorded with the database's message" 1 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.rejection WHERE reason = 'REASON_STORAGE_REFUSED'
	                   AND source_event_id = 'sr-000025' AND detail LIKE '%refused by test trigger%'")"
assert_eq "the other 49 are stored" 49 "$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key")"
assert_match "archive said what it refused" 'the database refused record .*sr-000025' \
	"$(cat "$TEST_DIR/archive.log")"
sed -i '25s/REFUSE-ME/吴先生/' "$TEST_DIR/e.jsonl"
# Again as systemd would: intake may resend the refused copy to the restarted dispatch,
# which then refuses it again and exits again to reload.
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 30 \
	"$TEST_DIR/e.jsonl" >"$TEST_DIR/p2.txt" 2>&1 &
pub=$!
og_restart_while dispatch "$TEST_DIR" "$pub"
rc=0
wait "$pub" || rc=$?
assert_match "with a contact the trigger accepts it is stored, the rest are duplicates" \
	"stored 1, duplicate 49, rejected 0, unanswered 0" "$(head -1 "$TEST_DIR/p2.txt")"
assert_eq "50 distinct cases, none reused" 50 "$(sql "$TEST_DB" "SELECT count(DISTINCT case_id) FROM og.case")"
