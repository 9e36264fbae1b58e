#!/usr/bin/env bash
# dispatch's pass over the open cases for 督办 goes in steps, with intake's events decided
# between them; a pass that runs out of room on the way to archive waits at the case it
# stopped at and goes on as archive answers. Before, a pass was one walk over every case,
# and the cases past the room it found waited for the next pass (escalation_scan_ms later:
# with 5,000 cases falling due at once and the default window of 4,000, a minute).
#
# window = 100 on the link to archive, an hour between passes, 150 gas cases overdue at
# once, archive frozen: the first pass makes 64 escalations in a step, 36 in the next (the
# window is full) and waits; 300 reports come and wait too. Archive back, the pass takes
# the room its answers free before the reports do (dispatch reads intake only with room,
# so the turn that frees it runs the pass's step first), and all 150 escalate in that
# pass.
# The pass is due as dispatch starts, however long the host has been up (before, dispatch
# counted the interval from the host's boot: within an hour of it, none came).
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"
source "$(dirname "$0")/../lib/faults.sh"

test_begin "scan_room"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
read -r MPORT IPORT < <(og_free_tcp_ports 2)
sed -i -e "s/^\[dispatch\]$/[dispatch]\nescalation_scan_ms = 3600000\nwindow = 100\nmetrics_listen = 127.0.0.1:$MPORT/" \
	-e "s/^\[intake\]$/[intake]\nmetrics_listen = 127.0.0.1:$IPORT/" "$TEST_DIR/onegrid.conf"
if ! grep -q '^window = 100$' "$TEST_DIR/onegrid.conf" || ! grep -q '^escalation_scan_ms = 3600000$' "$TEST_DIR/onegrid.conf"; then
	fail "set dispatch's window and escalation_scan_ms in $TEST_DIR/onegrid.conf"
fi
og_start_all "$TEST_DIR"
# dispatch's day: yesterday, whatever today is (gas falls due in two hours, not working
# hours, so the weekday does not matter).
DAY=$(date -u -d '1 day ago' +%F)
og_restart_at dispatch "$TEST_DIR" "$DAY 10:00:00"

GRID=$(sql "$TEST_DB" "SELECT source_grid_id FROM og.grid_crosswalk x JOIN og.area a ON a.code = x.area_code
                       WHERE x.source_system = 'iot' AND a.level = 'grid' ORDER BY 1 LIMIT 1")
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
for i in $(seq 1 150); do og_gas_alert "gas-$i" "$NOW" "$GRID"; done >"$TEST_DIR/alerts.jsonl"
og_publish_named "$TEST_DIR" alerts || fail "the gas alerts stored: $(tail -n 3 "$TEST_DIR/alerts.txt")"
assert_eq "150 gas cases open, none escalated" "150|0" \
	"$(sql "$TEST_DB" "SELECT count(*), sum(escalation_level) FROM og.case WHERE category_code = 'hazard.gas'")"

# Half an hour past their deadline: the first pass finds all 150 overdue.
APID=$(<"$TEST_DIR/archive.pid")
kill -STOP "$APID"
on_exit "kill -CONT $APID 2>/dev/null || true"
og_restart_at dispatch "$TEST_DIR" "$DAY 12:30:00"
metric() { og_metric "$MPORT" "$1"; }
og_poll 60 og_metric_at_least "$MPORT" onegrid_dispatch_pending 100 || true
assert_eq "archive frozen: the window's 100 escalations wait for it" 100 "$(metric onegrid_dispatch_pending)"
assert_eq "in two steps, and the pass waits (not counted yet)" "2|0" \
	"$(metric onegrid_dispatch_escalation_scan_step_seconds_count)|$(metric onegrid_dispatch_escalation_scan_seconds_count)"
# 300 reports meanwhile: intake passes them on, and they wait for room too.
og_gen_reports "$TEST_DB" 300 late >"$TEST_DIR/late.jsonl"
og_publish_named "$TEST_DIR" late &
pub=$!
on_exit "kill $pub 2>/dev/null || true"
og_poll 60 og_metric_at_least "$IPORT" onegrid_intake_waiting_submits 300 || true
assert_eq "the 300 reports wait" 300 "$(og_metric "$IPORT" onegrid_intake_waiting_submits)"
kill -CONT "$APID"
rc=0
wait "$pub" || rc=$?
assert_eq "the reports are stored" "0|300" \
	"$rc|$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key WHERE source_event_id LIKE 'late-%'")"
assert_eq "the pass's escalations went to archive before the reports" t \
	"$(sql "$TEST_DB" "SELECT (SELECT max(batch_id) FROM og.ledger WHERE kind = 'event' AND source_system = 'onegrid')
	                       <= (SELECT min(batch_id) FROM og.ledger WHERE kind = 'event' AND source_event_id LIKE 'late-%')")"
escalated() { sql "$TEST_DB" "SELECT count(*) FROM og.case WHERE category_code = 'hazard.gas' AND escalation_level = 1"; }
all_escalated() { [[ $(escalated) == 150 ]]; }
og_poll 60 all_escalated || true
assert_eq "all escalated in the first pass" 150 "$(escalated)"
assert_eq "one escalation event each, stored once" 150 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key WHERE source_system = 'onegrid' AND source_event_id LIKE 'esc-%'")"
# The pass is one observation of onegrid_dispatch_escalation_scan_seconds, however many
# steps and waits it took.
og_poll 30 og_metric_at_least "$MPORT" onegrid_dispatch_escalation_scan_seconds_count 1 || true
assert_eq "the pass is counted once" 1 "$(metric onegrid_dispatch_escalation_scan_seconds_count)"
