#!/usr/bin/env bash
# Messages that are not even a Submit (garbage, a multipart message, an unknown field in
# the Submit, a tag over 64 bytes) are refused like bad events: answered with a reason
# (and an empty tag, since none could be read) and recorded. A good Submit's tag comes
# back in its Reply.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"

test_begin "wrapper"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
og_start_all "$TEST_DIR"
RAW=$ONEGRID_BIN/rawsend
EP="ipc://$TEST_DIR/intake.sock"

# A valid Envelope, made by onegridctl's encoder: publish one event and take its bytes
# from the ledger (the ledger keeps the canonical Envelope).
og_gen_reports "$TEST_DB" 1 wr >"$TEST_DIR/e.jsonl"
"$ONEGRID_BIN/onegridctl" publish --endpoint "$EP" "$TEST_DIR/e.jsonl" >/dev/null
ENV=$(sql "$TEST_DB" "SELECT encode(body, 'hex') FROM og.ledger WHERE kind = 'event'")
len_hex() { printf '%02x' $(($1)); } # lengths below 128 only
# Submit{tag=0xC0FFEE, event=ENV}: field 1 (0a), field 2 (12) with a two-byte varint length.
n=$((${#ENV} / 2))
SUBMIT="0a03c0ffee12$(printf '%02x%02x' $((n % 128 + 128)) $((n / 128)))$ENV"

out=$("$RAW" "$EP" "$SUBMIT")
assert_match "a good Submit: duplicate, its tag echoed" "^tag=c0ffee outcome=duplicate case=6502" "$out"

out=$("$RAW" "$EP" "07ffee")
assert_match "garbage: UNDECODABLE, empty tag" "^tag= outcome=rejected reason=REASON_UNDECODABLE" "$out"
out=$("$RAW" "$EP" "0a01aa|$SUBMIT")
assert_match "two frames: UNDECODABLE, says why" \
	"^tag= outcome=rejected reason=REASON_UNDECODABLE text=a message must be one frame holding one Submit, not 2" "$out"
out=$("$RAW" "$EP" "0a01aa1a0178")
assert_match "unknown field 3 in the Submit: UNKNOWN_FIELD" "reason=REASON_UNKNOWN_FIELD text=onegrid.v1.Submit: field number 3" "$out"
out=$("$RAW" "$EP" "0a41$(printf 'aa%.0s' $(seq 65))1200")
assert_match "tag of 65 bytes: refused" "reason=REASON_UNDECODABLE text=Submit.tag: longer than 64 bytes" "$out"

assert_eq "each refusal recorded once" 4 "$(sql "$TEST_DB" "SELECT count(*) FROM og.rejection")"
out=$("$RAW" "$EP" "07ffee")
assert_eq "the same garbage again: not recorded twice" 4 "$(sql "$TEST_DB" "SELECT count(*) FROM og.rejection")"

# onegridctl publish: a raw_base64 that is not a string is a bad input line (it crashed).
printf '%s\n' '{"raw_base64": null}' '{"raw_base64": 12}' >"$TEST_DIR/raw-null.jsonl"
rc=0
out=$("$ONEGRID_BIN/onegridctl" publish --endpoint "$EP" --timeout 10 "$TEST_DIR/raw-null.jsonl" 2>&1) || rc=$?
assert_eq "publish: bad input lines, exit status 2" 2 "$rc"
assert_match "each named" "raw-null.jsonl:2: raw_base64: not a string of base64" "$out"
