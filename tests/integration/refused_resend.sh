#!/usr/bin/env bash
# A submission the database refused for its own content, whose answer intake did not get
# before dispatch exited (dispatch exits to reload after such a refusal, at once), is
# resent by intake to the restarted dispatch. That one answers it with the refusal the
# record holds for this very submission (og.refused_outcomes: the same receipt time and
# publisher), instead of deciding it again: before, it decided it again, archive refused
# it again, and that dispatch exited too, round after round while the answer kept being
# lost (db_faults.sh's poison section failed so, now and then).
# intake is frozen from the moment dispatch has decided the event until the first dispatch
# has exited, so that the answer often fails to reach it before the connection goes (2
# runs in 3 here; then the old dispatch decided the event again).
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"
source "$(dirname "$0")/../lib/faults.sh"

test_begin "refused_resend"
command -v curl >/dev/null || fail "curl not found"
test_createdb
og_refuse_contact_trigger "$TEST_DB"
og_write_config "$TEST_DIR" "$TEST_DB"
PORT=$(og_free_tcp_port)
sed -i "/^\[dispatch\]/a metrics_listen = 127.0.0.1:$PORT" "$TEST_DIR/onegrid.conf"
og_start_all "$TEST_DIR"
og_gen_reports "$TEST_DB" 1 rr >"$TEST_DIR/e.jsonl"
sed -i '1s/"channel":/"contact":{"name":"REFUSE-ME","phone":"13800000000"},"channel":/' "$TEST_DIR/e.jsonl"
ACCEPTED='onegrid_dispatch_decisions_total{outcome="accepted"}'
IPID=$(<"$TEST_DIR/intake.pid") APID=$(<"$TEST_DIR/archive.pid")
on_exit "kill -CONT $IPID $APID 2>/dev/null || true"
# archive is held until dispatch has decided the event, then intake is frozen and archive
# let go: it records the refusal and answers dispatch, which answers the frozen intake
# and exits.
kill -STOP "$APID"
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 60 \
	--results "$TEST_DIR/r.out" "$TEST_DIR/e.jsonl" >"$TEST_DIR/p.txt" 2>&1 &
pub=$!
on_exit "kill $pub 2>/dev/null || true"
og_poll 30 og_metric_at_least "$PORT" "$ACCEPTED" 1 ||
	fail "dispatch decided the event (accepted: $(og_metric "$PORT" "$ACCEPTED"))"
kill -STOP "$IPID"
kill -CONT "$APID"
og_wait_exit dispatch "$TEST_DIR" 30 || fail "dispatch exited to reload after the refusal"
pass "dispatch exited to reload after the refusal, its answer unread by the frozen intake"
og_start dispatch "$TEST_DIR"
kill -CONT "$IPID"
og_restart_while dispatch "$TEST_DIR" "$pub"
rc=0
wait "$pub" || rc=$?
assert_eq "publish: rejected, all answered (exit 3)" 3 "$rc"
assert_match "the publisher is answered: rejected, REASON_STORAGE_REFUSED" \
	'"id":"rr-000001".*"outcome":"rejected","reason":"REASON_STORAGE_REFUSED"' "$(cat "$TEST_DIR/r.out")"
assert_eq "the event was decided once: only the first dispatch exited to reload" 1 \
	"$(grep -c 'disagrees with the decision' "$TEST_DIR/dispatch.log" || true)"
assert_eq "one refusal recorded, nothing stored" "1|0" \
	"$(sql "$TEST_DB" "SELECT (SELECT count(*) FROM og.rejection) || '|' || (SELECT count(*) FROM og.event_key)")"
