#!/usr/bin/env bash
# A report merged into a case whose opening the database then refused is not refused for
# it: its reason would not be in the report. dispatch decided the second report (the same
# problem, 20 m away) against a case it held in memory while the first report's record was
# still in flight; archive finds that case missing (SQLSTATE OG002), stores nothing for the
# second report and answers dispatch "not stored"; dispatch exits to reload, and intake's
# resend is decided again against the committed state: it opens a case of its own.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/faults.sh"
source "$(dirname "$0")/../lib/events.sh"

test_begin "refused_opening"
command -v curl >/dev/null || fail "curl not found"
test_createdb
og_refuse_contact_trigger "$TEST_DB"
og_write_config "$TEST_DIR" "$TEST_DB"
read -r PORT APORT < <(og_free_tcp_ports 2)
sed -i 's/^merge_window_hours = 0$/merge_window_hours = 72\nmerge_distance_m = 150/' "$TEST_DIR/onegrid.conf"
sed -i "/^\[dispatch\]/a metrics_listen = 127.0.0.1:$PORT" "$TEST_DIR/onegrid.conf"
sed -i "/^\[archive\]/a metrics_listen = 127.0.0.1:$APORT" "$TEST_DIR/onegrid.conf"
og_start_all "$TEST_DIR"
ZZ=$(sql "$TEST_DB" "SELECT x.source_grid_id FROM og.grid_crosswalk x JOIN og.area a ON a.code = left(x.area_code, 12)
                     WHERE x.source_system = 'zongzhi' AND a.name = '沁苑社区' ORDER BY 1 LIMIT 1")
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
report() { # report ID LAT CONTACT_JSON
	printf '{"id":"%s","source":"zongzhi","type":"report","time":"%s","subject":"%s","location":{"latitude":%s,"longitude":84.8800},"report":{"category":"facility.handrail","title":"单元门前需要扶手","description":"老人腿脚不便",%s"channel":"CHANNEL_GRID_PATROL"}}\n' \
		"$1" "$NOW" "$ZZ" "$2" "$3"
}
{
	report ro-first 45.5960 '"contact":{"name":"REFUSE-ME","phone":"13800000000"},'
	report ro-second 45.5962 ''
} >"$TEST_DIR/e.jsonl"

# archive is held until dispatch has decided both: the second joins the first's case in
# dispatch's memory before the first's record reaches the database.
APID=$(<"$TEST_DIR/archive.pid")
kill -STOP "$APID"
on_exit "kill -CONT $APID 2>/dev/null || true"
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 60 \
	--results "$TEST_DIR/r.out" "$TEST_DIR/e.jsonl" >"$TEST_DIR/p.txt" 2>&1 &
pub=$!
on_exit "kill $pub 2>/dev/null || true"
accepted() {
	curl -sS --max-time 5 "http://127.0.0.1:$PORT/metrics" |
		awk '$1 == "onegrid_dispatch_decisions_total{outcome=\"accepted\"}" { print $2 }'
}
both_decided() { [[ $(accepted) == 2 ]]; }
og_poll 30 both_decided ||
	fail "dispatch did not decide both reports (accepted: $(accepted))"
pass "dispatch decided both reports while archive was held"
kill -CONT "$APID"
og_restart_while dispatch "$TEST_DIR" "$pub"
rc=0
wait "$pub" || rc=$?
assert_eq "publish: one rejected, all answered" 3 "$rc"
assert_match "one stored, one rejected" \
	"published 2 events: stored 1, duplicate 0, rejected 1, unanswered 0" "$(head -1 "$TEST_DIR/p.txt")"
assert_match "the first is refused for its own content" \
	'"id":"ro-first".*"reason":"REASON_STORAGE_REFUSED"' "$(grep ro-first "$TEST_DIR/r.out")"
assert_match "the second is stored, with a case" '"id":"ro-second".*"outcome":"stored","case_id":"[^"]+"' \
	"$(grep ro-second "$TEST_DIR/r.out")"
assert_eq "only the first is recorded refused" "ro-first" \
	"$(sql "$TEST_DB" "SELECT string_agg(source_event_id, ',') FROM og.rejection")"
CASE=$(grep -o '"case_id":"[^"]*"' <(grep ro-second "$TEST_DIR/r.out") | cut -d'"' -f4)
assert_eq "the second report opened that case, the only one" "1|$CASE" \
	"$(sql "$TEST_DB" "SELECT count(*), max(case_id) FROM og.case")"
assert_eq "and is its only report" "ro-second|opened" \
	"$(sql "$TEST_DB" "SELECT string_agg(source_event_id || '|' || joined, ',') FROM og.case_report")"
assert_match "archive said why it stored nothing for the second" \
	'record "[^"]*ro-second[^"]*" names a case or report the database does not have' \
	"$(cat "$TEST_DIR/archive.log")"
read -r UNSTORED BATCHES < <(curl -sS --max-time 5 "http://127.0.0.1:$APORT/metrics" |
	awk '$1 == "onegrid_archive_unstored_records_total" { u = $2 } $1 == "onegrid_archive_batches_total" { b = $2 }
	     END { print u + 0, b + 0 }')
assert_ge "archive counted the second unstored" 1 "$UNSTORED"
assert_eq "and counted only the batches it committed" "$(sql "$TEST_DB" "SELECT count(*) FROM og.batch")" "$BATCHES"
assert_match "dispatch exited to reload its state" \
	'archive did not store "zongzhi/ro-second".*exiting so that a restart reloads committed state' \
	"$(cat "$TEST_DIR/dispatch.log")"
"$ONEGRID_BIN/onegridctl" audit verify --db "dbname=$TEST_DB" >"$TEST_DIR/verify.txt" 2>&1 ||
	fail "audit verify failed: $(cat "$TEST_DIR/verify.txt")"
pass "the record verifies"
