#!/usr/bin/env bash
# The whole pipeline with the real daemons: 1,000 events in, exactly 1,000 stored and
# 1,000 answers; the same events again, all answered as duplicates and nothing new stored.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"

test_begin "pipeline"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
og_start_all "$TEST_DIR"

og_gen_reports "$TEST_DB" 1000 pl >"$TEST_DIR/events.jsonl"
assert_eq "1000 events generated" 1000 "$(wc -l <"$TEST_DIR/events.jsonl")"

rc=0
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" \
	--results "$TEST_DIR/first.jsonl" "$TEST_DIR/events.jsonl" >"$TEST_DIR/first.txt" || rc=$?
assert_eq "first publish exits 0" 0 "$rc"
assert_match "first publish summary" \
	"published 1000 events: stored 1000, duplicate 0, rejected 0, unanswered 0" \
	"$(cat "$TEST_DIR/first.txt")"
assert_eq "one answer per event" 1000 "$(grep -c '"outcome":"stored"' "$TEST_DIR/first.jsonl")"
assert_eq "each answer names a case" 1000 "$(grep -c '"case_id":"6502' "$TEST_DIR/first.jsonl")"
assert_eq "answers name 1000 different cases" 1000 \
	"$(grep -o '"case_id":"[^"]*"' "$TEST_DIR/first.jsonl" | sort -u | wc -l)"

assert_eq "event keys stored" 1000 "$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key")"
assert_eq "cases opened" 1000 "$(sql "$TEST_DB" "SELECT count(*) FROM og.case")"
assert_eq "ledger: one event and one decision row each" 2000 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.ledger")"
assert_eq "every case routed to a unit by a recorded rule" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.case WHERE unit_code IS NULL OR rule_id IS NULL
	                   OR state <> 'dispatched'")"
assert_eq "every case has a deadline after its opening" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.case WHERE deadline_at IS NULL OR deadline_at <= opened_at")"
assert_eq "a limit in plain hours is due exactly that much later" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.case c JOIN og.category k ON k.code = c.category_code
	                   WHERE k.time_unit = 'hours'
	                   AND c.deadline_at <> date_trunc('second', c.opened_at) + make_interval(hours => k.time_limit)")"
assert_eq "working-day limits end at 17:00 China time" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.case c JOIN og.category k ON k.code = c.category_code
	                   WHERE k.time_unit = 'working_days'
	                   AND (c.deadline_at AT TIME ZONE 'Asia/Shanghai')::time <> '17:00'")"
assert_eq "case ids agree with event keys" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key k LEFT JOIN og.case c USING (case_id)
	                   WHERE c.case_id IS NULL OR c.source_event_id <> k.source_event_id")"
assert_eq "events were batched, not committed one by one" t \
	"$(sql "$TEST_DB" "SELECT count(*) < 100 FROM og.batch")"

rc=0
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" \
	--results "$TEST_DIR/again.jsonl" "$TEST_DIR/events.jsonl" >"$TEST_DIR/again.txt" || rc=$?
assert_eq "second publish exits 0" 0 "$rc"
assert_match "second publish: all duplicates" \
	"published 1000 events: stored 0, duplicate 1000, rejected 0, unanswered 0" \
	"$(cat "$TEST_DIR/again.txt")"
assert_eq "duplicates name the original cases" "" \
	"$(diff <(grep -o '"id":"[^"]*","source":"[^"]*","outcome":"[a-z]*","case_id":"[^"]*"' \
		"$TEST_DIR/first.jsonl" | sed 's/"outcome":"stored"//' | sort) \
		<(grep -o '"id":"[^"]*","source":"[^"]*","outcome":"[a-z]*","case_id":"[^"]*"' \
		"$TEST_DIR/again.jsonl" | sed 's/"outcome":"duplicate"//' | sort))"
assert_eq "nothing new stored" 1000 "$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key")"
assert_eq "no new ledger rows" 2000 "$(sql "$TEST_DB" "SELECT count(*) FROM og.ledger")"
assert_eq "no rejections" 0 "$(sql "$TEST_DB" "SELECT count(*) FROM og.rejection")"

og_stop_all "$TEST_DIR"
assert_match "archive logged a clean stop" "stopped: [0-9]+ records committed" \
	"$(cat "$TEST_DIR/archive.log")"
