#!/usr/bin/env bash
# A reporter's contact stays out of the permanent record, refused events included, and
# og.erase_contact reaches every copy: a report dispatch refuses is recorded without its
# contact; one intake refuses keeps the bytes it received (they may not decode) until the
# contact is erased, which empties that copy and leaves digest, size and chain intact.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"

test_begin "contact_erasure"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
og_start_all "$TEST_DIR"
GRID=$(sql "$TEST_DB" "SELECT source_grid_id FROM og.grid_crosswalk WHERE source_system = 'zongzhi' LIMIT 1")
NOW=$(date -u +%FT%TZ)
PHONE=13912345678
report() { # report ID SUBJECT TIME
	echo "{\"id\":\"$1\",\"source\":\"zongzhi\",\"type\":\"report\",\"time\":\"$3\",\"subject\":\"$2\",\"report\":{\"category\":\"facility.handrail\",\"title\":\"扶手松动\",\"channel\":\"CHANNEL_HOTLINE\",\"contact\":{\"name\":\"王阿姨\",\"phone\":\"$PHONE\"}}}"
}
{
	report cx-1 NO-SUCH-GRID "$NOW"           # refused by dispatch: UNKNOWN_GRID
	report cx-2 "$GRID" "2099-01-01T00:00:00Z" # refused by intake: in the future
	report cx-3 "$GRID" "$NOW"                 # stored
	# refused by intake: bytes that do not decode (no source, no event id), phone included
	printf '{"raw_base64":"%s"}\n' "$(printf '\xff not an envelope: 王阿姨 %s' "$PHONE" | base64 -w0)"
} >"$TEST_DIR/e.jsonl"
rc=0
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 60 \
	--results "$TEST_DIR/r.out" "$TEST_DIR/e.jsonl" >"$TEST_DIR/p.txt" 2>&1 || rc=$?
assert_match "three refused, one stored" "stored 1, duplicate 0, rejected 3" "$(head -1 "$TEST_DIR/p.txt")"
assert_match "cx-1 refused by dispatch" '"id":"cx-1".*REASON_UNKNOWN_GRID' "$(grep cx-1 "$TEST_DIR/r.out")"

with_phone() { # rows of og.rejection whose raw copy holds the phone number, for event $1
	sql "$TEST_DB" "SELECT count(*) FROM og.rejection WHERE source_event_id = '$1'
	                AND position(convert_to('$PHONE', 'UTF8') in raw) > 0"
}
assert_eq "dispatch's refusal is recorded" 1 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.rejection WHERE source_event_id = 'cx-1' AND raw <> ''")"
assert_eq "without the reporter's phone" 0 "$(with_phone cx-1)"
assert_eq "intake's refusal keeps the bytes received, phone included" 1 "$(with_phone cx-2)"
assert_eq "the stored report's contact is kept apart" 1 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.reporter_contact WHERE source_event_id = 'cx-3' AND phone = '$PHONE'")"
assert_eq "and not in the ledger" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.ledger WHERE position(convert_to('$PHONE', 'UTF8') in body) > 0
	                   OR detail::text LIKE '%$PHONE%'")"

# The reporter asks for erasure of each report.
assert_eq "erasing cx-2 empties its refusal's copy" t "$(sql "$TEST_DB" "SELECT og.erase_contact('zongzhi', 'cx-2')")"
assert_eq "erasing cx-3 empties its contact" t "$(sql "$TEST_DB" "SELECT og.erase_contact('zongzhi', 'cx-3')")"
# The bytes that did not decode have no key to erase them by: the operator finds them by
# content and erases that one refusal.
undecoded=$(sql "$TEST_DB" "SELECT rejection_id FROM og.rejection WHERE position(convert_to('$PHONE', 'UTF8') in raw) > 0")
assert_eq "the undecodable refusal holds the phone, under no event key" "|" \
	"$(sql "$TEST_DB" "SELECT concat(source_system, '|', source_event_id) FROM og.rejection WHERE rejection_id = '$undecoded'")"
assert_eq "og.erase_refusal empties that one copy" t "$(sql "$TEST_DB" "SELECT og.erase_refusal($undecoded)")"
assert_eq "twice: nothing left to erase" f "$(sql "$TEST_DB" "SELECT og.erase_refusal($undecoded)")"
assert_eq "a refusal that does not exist" "" "$(sql "$TEST_DB" "SELECT og.erase_refusal(-1)")"
assert_match "no other role may erase" "permission denied for function erase_refusal" \
	"$("$PG_BIN/psql" -XAtq -d "$TEST_DB" -U onegrid_archive -c "SELECT og.erase_refusal($undecoded)" 2>&1 || true)"
assert_eq "no copy of the phone number is left anywhere" "0|0" \
	"$(sql "$TEST_DB" "SELECT (SELECT count(*) FROM og.rejection WHERE position(convert_to('$PHONE', 'UTF8') in raw) > 0),
	                          (SELECT count(*) FROM og.reporter_contact WHERE phone IS NOT NULL)")"
assert_eq "the refusal's digest and size stay" 1 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.rejection WHERE source_event_id = 'cx-2'
	                   AND raw = '' AND raw_size > 0 AND length(raw_sha256) = 32")"
assert_match "anything else in a refusal stays append-only" "append-only" \
	"$(sql "$TEST_DB" "UPDATE og.rejection SET detail = 'x' WHERE source_event_id = 'cx-2'" 2>&1 || true)"
assert_match "the raw copy cannot be replaced, only emptied" "append-only" \
	"$(sql "$TEST_DB" "UPDATE og.rejection SET raw = 'x' WHERE source_event_id = 'cx-1'" 2>&1 || true)"
rc=0
"$ONEGRID_BIN/onegridctl" audit verify --db "dbname=$TEST_DB user=onegrid_audit" >"$TEST_DIR/v.txt" 2>&1 || rc=$?
assert_eq "the record still verifies" 0 "$rc"
