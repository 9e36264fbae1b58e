#!/usr/bin/env bash
# The Karamay sample (deploy/sample/events.jsonl): every event is stored once, answered
# as a duplicate, or refused with the reason deploy/sample/expected.txt names, and every
# refusal is recorded. Covers each kind of invalid input intake and dispatch refuse, plus
# an oversized frame; a second run records nothing twice.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"

SAMPLE=$ONEGRID_REPO/deploy/sample
test_begin "sample"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
og_start_all "$TEST_DIR"

publish() { # publish RESULTS FILE...: prints the summary, returns onegridctl's status
	local results=$1
	shift
	"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" \
		--rebase-time 2026-11-26T00:00:00Z --results "$results" "$@"
}
expected() { awk -v k="$1" '$1 == k { print $2 }' "$SAMPLE/expected.txt"; }

rc=0
publish "$TEST_DIR/r1.jsonl" "$SAMPLE/events.jsonl" >"$TEST_DIR/s1.txt" || rc=$?
assert_eq "publish exits 3 (some rejected, all answered)" 3 "$rc"
assert_match "summary matches expected.txt" \
	"stored $(expected stored), duplicate $(expected duplicate), rejected $(expected rejected), unanswered 0" \
	"$(head -1 "$TEST_DIR/s1.txt")"

while read -r reason n; do
	[[ $reason == REASON_* ]] || continue
	assert_eq "$reason: answered $n times" "$n" \
		"$(grep -c "\"reason\":\"$reason\"" "$TEST_DIR/r1.jsonl" || true)"
	assert_eq "$reason: $n rejections recorded" "$n" \
		"$(sql "$TEST_DB" "SELECT count(*) FROM og.rejection WHERE reason = '$reason'")"
done <"$SAMPLE/expected.txt"

assert_eq "every rejection keeps publisher, detail, size and digest" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.rejection WHERE publisher = '' OR detail = ''
	                   OR raw_size <= 0 OR length(raw_sha256) <> 32")"
assert_eq "refusals for content name their source and event id" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.rejection WHERE reason IN ('REASON_INVALID_TIME',
	                   'REASON_MISSING_FIELD', 'REASON_TYPE_MISMATCH', 'REASON_UNKNOWN_GRID')
	                   AND (source_system = '' OR source_event_id = '')")"
assert_eq "stored events = cases = expected stored" "$(expected stored)" \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.case")"
contacts=$(grep -c '"contact"' "$SAMPLE/events.jsonl" || true)
assert_ge "the sample has reports with contacts" 1 "$contacts"
assert_eq "contacts are kept apart" "$(sql "$TEST_DB" "SELECT count(*) FROM og.reporter_contact")" \
	"$(sql "$TEST_DB" "SELECT count(DISTINCT (source_system, source_event_id)) FROM og.reporter_contact")"
assert_eq "no contact in the ledger" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.ledger WHERE kind = 'event' AND detail->'report' ? 'contact'")"
assert_eq "every case of each district got its district's prefix" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.case WHERE case_id NOT LIKE district_code || '-%'
	                   OR area_code NOT LIKE district_code || '%'")"

# An oversized frame is refused by intake itself (REASON_TOO_LARGE), not dropped.
head -c 70000 /dev/urandom | base64 -w0 | awk '{ print "{\"raw_base64\":\"" $0 "\"}" }' \
	>"$TEST_DIR/big.jsonl"
rc=0
publish "$TEST_DIR/r2.jsonl" "$TEST_DIR/big.jsonl" >"$TEST_DIR/s2.txt" || rc=$?
assert_eq "oversized: exits 3" 3 "$rc"
assert_match "oversized: REASON_TOO_LARGE" '"reason":"REASON_TOO_LARGE"' "$(cat "$TEST_DIR/r2.jsonl")"
assert_eq "oversized: recorded with its full size and a bounded copy" "70000|4096" \
	"$(sql "$TEST_DB" "SELECT raw_size, length(raw) FROM og.rejection WHERE reason = 'REASON_TOO_LARGE'")"

# Again: nothing stored twice, no refusal recorded twice.
before=$(sql "$TEST_DB" "SELECT count(*) FROM og.rejection")
rc=0
publish "$TEST_DIR/r3.jsonl" "$SAMPLE/events.jsonl" >"$TEST_DIR/s3.txt" || rc=$?
assert_match "second run: all valid events duplicates" \
	"stored 0, duplicate $(($(expected stored) + $(expected duplicate))), rejected $(expected rejected), unanswered 0" \
	"$(head -1 "$TEST_DIR/s3.txt")"
assert_eq "second run: no new case" "$(expected stored)" "$(sql "$TEST_DB" "SELECT count(*) FROM og.case")"
# Byte-identical refused frames (the raw_base64 lines) are recorded once; lines refused for
# their content may be re-encoded with a time shifted by a second, so they may add rows.
raw_lines=$(grep -c raw_base64 "$SAMPLE/events.jsonl")
added=$(($(sql "$TEST_DB" "SELECT count(*) FROM og.rejection") - before))
assert_ge "second run: at most the re-encoded refusals added ($added)" "$added" \
	"$(($(expected rejected) - raw_lines))"
assert_eq "second run: no frame recorded twice" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM (SELECT raw_sha256 FROM og.rejection
	                   GROUP BY raw_sha256 HAVING count(*) > 1) d")"

rc=0
out=$("$ONEGRID_BIN/onegridctl" audit verify --db "dbname=$TEST_DB user=onegrid_audit") || rc=$?
assert_eq "the hash chains verify as the auditor" 0 "$rc"
assert_match "one chain per district with cases" "audit verify: passed" "$out"
assert_eq "four districts, four chains" 4 "$(grep -c '^[0-9]\{6\}: .*: intact$' <<<"$out")"
assert_match "and the shard's chain of batches and rejections" "shard:6502: [0-9]+ links.*: intact" "$out"
rc=0
"$ONEGRID_BIN/onegridctl" rebuild-cases --db "dbname=$TEST_DB" >/dev/null || rc=$?
assert_eq "rebuild-cases: the projection equals the ledger" 0 "$rc"
# Grid boundaries (og.grid_boundary; the sample has them for 光明鸿雁社区's four grids):
# the 12345 hotline's grid ids name only communities, but its calls with a position inside
# one of those grids open their cases on that grid. Every other 12345 case stays on its
# community, and no case lands on a grid without a boundary it lies in.
assert_eq "three located 12345 calls in 光明鸿雁社区 open on their grids" 3 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.case c JOIN og.grid_boundary b ON b.area_code = c.area_code
	                   WHERE c.source_system = '12345' AND c.latitude IS NOT NULL")"
assert_eq "no other 12345 case is on a grid" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.case c WHERE c.source_system = '12345' AND length(c.area_code) = 15
	                   AND NOT EXISTS (SELECT 1 FROM og.grid_boundary b WHERE b.area_code = c.area_code)")"
