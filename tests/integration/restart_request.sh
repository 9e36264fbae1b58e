#!/usr/bin/env bash
# An extension request (申请延期) intake received in time, while dispatch was away, pauses
# the clock as of its receipt, and the case does not escalate: dispatch, back after the
# deadline, scans for overdue cases only once intake has sent what it held (its HELLO
# names the newest of it). Before, the first scan ran at once: the case was escalated to
# level 2, then the request, decided a moment later, paused it as of 02:50 (review). A
# status update that waits in dispatch's inbox (the database away) holds its case out of
# the scan the same way (fetch_fault_room.sh has events waiting so during scans).
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/faults.sh"

test_begin "restart_request"
command -v curl >/dev/null || fail "curl not found"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
PORT=$(og_free_tcp_port)
sed -i -e 's/^\[dispatch\]$/[dispatch]\nescalation_scan_ms = 100/' \
	-e "/^\[intake\]/a metrics_listen = 127.0.0.1:$PORT" "$TEST_DIR/onegrid.conf"
levels() { sql "$TEST_DB" "SELECT coalesce(string_agg(level::text, ' ' ORDER BY escalated_at), '')
                           FROM audit.escalations WHERE case_id = '$1'"; }
og_start_all "$TEST_DIR"
GRID=$(sql "$TEST_DB" "SELECT source_grid_id FROM og.grid_crosswalk x JOIN og.area a ON a.code = x.area_code
                       WHERE x.source_system = 'iot' AND a.level = 'grid' AND a.district_code = '650204' ORDER BY 1 LIMIT 1")
og_restart_at dispatch "$TEST_DIR" "2026-11-16 02:00:00"
og_restart_at intake "$TEST_DIR" "2026-11-16 02:00:00"
alert() { # alert ID SENSOR
	printf '{"id":"%s","source":"iot","type":"sensor_alert","time":"2026-11-16T02:00:00Z","subject":"%s","sensor_alert":{"category":"hazard.gas","sensor_id":"%s","title":"燃气浓度超限","urgency":"URGENCY_IMMEDIATE","severity":"SEVERITY_EXTREME","certainty":"CERTAINTY_OBSERVED"}}\n' \
		"$1" "$GRID" "$2"
}
# gas-2, at another sensor, is the control: nobody asks for time, and it escalates.
{ alert gas-1 GAS-1; alert gas-2 GAS-2; } >"$TEST_DIR/a.jsonl"
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --results "$TEST_DIR/a.out" \
	"$TEST_DIR/a.jsonl" >/dev/null
CASE=$(grep '"id":"gas-1"' "$TEST_DIR/a.out" | grep -o '[0-9]\{6\}-[0-9]\{8\}')
OTHER=$(grep '"id":"gas-2"' "$TEST_DIR/a.out" | grep -o '[0-9]\{6\}-[0-9]\{8\}')
[[ -n $CASE && -n $OTHER && $CASE != "$OTHER" ]] || fail "two cases opened: $(cat "$TEST_DIR/a.out")"
HOLDER=$(sql "$TEST_DB" "SELECT unit_code FROM og.case WHERE case_id = '$CASE'")
assert_eq "an extreme gas leak, due in an hour" "2026-11-16 03:00:00+00" \
	"$(sql "$TEST_DB" "SELECT date_trunc('minute', deadline_at) FROM og.case WHERE case_id = '$CASE'")"

# 02:50: dispatch is away (an upgrade, a crash); the unit asks for more time, in time.
og_stop dispatch "$TEST_DIR"
og_restart_at intake "$TEST_DIR" "2026-11-16 02:50:00"
printf '{"id":"req-1","source":"zongzhi","type":"status","time":"2026-11-16T02:50:00Z","status":{"case_id":"%s","status":"STATUS_EXTENSION_REQUESTED","unit":"%s","note":"等待配件","extension_working_days":2}}\n' \
	"$CASE" "$HOLDER" >"$TEST_DIR/req.jsonl"
"$ONEGRID_BIN/onegridctl" publish --timeout 120 --endpoint "ipc://$TEST_DIR/intake.sock" \
	--results "$TEST_DIR/req.out" "$TEST_DIR/req.jsonl" >/dev/null 2>&1 &
pub=$!
on_exit "kill $pub 2>/dev/null || true"
og_poll 30 og_metric_at_least "$PORT" onegrid_intake_received_total 1 || fail "intake received the request"
# Back at 04:00, an hour after the deadline.
og_restart_at dispatch "$TEST_DIR" "2026-11-16 04:00:00"
rc=0
wait "$pub" || rc=$?
assert_eq "the request is answered stored" "0 stored" "$rc $(grep -o '"outcome":"[a-z]*"' "$TEST_DIR/req.out" | cut -d'"' -f4)"
assert_eq "the clock paused as intake received it, not escalated" "2026-11-16 02:50:00+00|0|paused" \
	"$(sql "$TEST_DB" "SELECT date_trunc('minute', paused_at), escalation_level, clock FROM og.case WHERE case_id = '$CASE'")"
# The scans ran: the control case, due at the same time, is escalated twice (03:00, 04:00).
control() { [[ $(levels "$OTHER") == "1 2" ]]; }
og_poll 30 control || fail "the control case escalates: $(levels "$OTHER")"
pass "the other case, due at the same time, escalated to level 2"
assert_eq "the case that asked in time: no escalation on record" "" "$(levels "$CASE")"
assert_eq "none in dispatch's log either" 0 "$(grep -c "case $CASE is overdue" "$TEST_DIR/dispatch.log" || true)"
