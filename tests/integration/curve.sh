#!/usr/bin/env bash
# CURVE publishers: with curve_secret_key_file and curve_publishers_file, intake lets in
# only the publisher keys the operators listed, each for one source system. A listed
# publisher's events are stored under its name; one that claims another system's source
# is refused (REASON_UNAUTHORISED_SOURCE, recorded with the publisher's name); one that
# leaves the source empty gets its key's. Unknown keys, plain (non-CURVE) publishers and
# publishers with the wrong server key get no connection at all, and intake says why.
# Misconfiguration stops intake at start with a clear message.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"

test_begin "curve"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
ctl="$ONEGRID_BIN/onegridctl"
for k in intake zz rx stranger; do
	"$ctl" keygen --out "$TEST_DIR/$k.key" >/dev/null
done
assert_eq "keygen: the secret key file is private" 600 "$(stat -c %a "$TEST_DIR/zz.key")"
assert_match "keygen: refuses to overwrite a key" "File exists" \
	"$("$ctl" keygen --out "$TEST_DIR/zz.key" 2>&1 || true)"
# An empty name wrote hidden .sign.* files (or "" and ".pub") into the working directory.
for opt in --out --signing; do
	rc=0
	out=$(cd "$TEST_DIR" && "$ctl" keygen "$opt" '' 2>&1) || rc=$?
	assert_eq "keygen $opt '': refused (2), nothing written ($out)" "2 " \
		"$rc $(find "$TEST_DIR" -maxdepth 1 \( -name '.sign*' -o -name '.pub' \) -printf '%f ')"
done
{
	echo "# onegrid-intake: publisher keys (onegridctl keygen), source system, name"
	echo "$(cat "$TEST_DIR/zz.key.pub")  zongzhi  zongzhi-app-1   # 综治 grid app"
	echo "$(cat "$TEST_DIR/rx.key.pub")  12345"
} >"$TEST_DIR/publishers"
sed -i "s|^\[intake\]$|[intake]\ncurve_secret_key_file = $TEST_DIR/intake.key\ncurve_publishers_file = $TEST_DIR/publishers|" \
	"$TEST_DIR/onegrid.conf"

# Misconfiguration first: intake must refuse to start, saying why.
bad() { # bad NAME SED-EXPRESSION EXPECTED
	sed "$2" "$TEST_DIR/onegrid.conf" >"$TEST_DIR/bad.conf"
	local out rc=0
	out=$(timeout 10 "$ONEGRID_BIN/onegrid-intake" -c "$TEST_DIR/bad.conf" 2>&1) || rc=$?
	[[ $rc -ne 0 && $rc -ne 124 ]] || fail "$1: intake started (exit $rc)"
	assert_match "$1: refused at start" "$3" "$out"
}
bad "one file without the other" '/^curve_publishers_file/d' "go together"
echo "not-a-key" >"$TEST_DIR/broken.key"
chmod 600 "$TEST_DIR/broken.key"
bad "a broken secret key" "s|^curve_secret_key_file = .*|curve_secret_key_file = $TEST_DIR/broken.key|" \
	"not a 40-character"
printf 'ABC zongzhi\n' >"$TEST_DIR/broken-publishers"
bad "a broken publishers line" "s|^curve_publishers_file = .*|curve_publishers_file = $TEST_DIR/broken-publishers|" \
	"broken-publishers:1: expected"
# A source that is no source system code: every event of the key would be stored under it,
# and dispatch drops such frames unanswered (review: intake started, its publisher waited
# for ever).
for src in abcdefghijabcdefghijabcdefghij0123456789 ZongZhi _zz; do
	printf '%s %s\n' "$(cat "$TEST_DIR/zz.key.pub")" "$src" >"$TEST_DIR/source-publishers"
	bad "publishers file source \"$src\"" "s|^curve_publishers_file = .*|curve_publishers_file = $TEST_DIR/source-publishers|" \
		"source-publishers:1: \"$src\" is not a source system code"
done

og_start_all "$TEST_DIR"
assert_match "intake says it requires CURVE" "CURVE: publishers authenticate; 2 keys" "$(cat "$TEST_DIR/intake.log")"
GRID=$(sql "$TEST_DB" "SELECT source_grid_id FROM og.grid_crosswalk WHERE source_system = 'zongzhi' ORDER BY 1 LIMIT 1")
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
report() { # report ID SOURCE
	printf '{"id":"%s","source":"%s","type":"report","time":"%s","subject":"%s","report":{"category":"facility.handrail","title":"扶手松动","channel":"CHANNEL_GRID_PATROL"}}\n' \
		"$1" "$2" "$NOW" "$GRID"
}
publish() { # publish NAME [ARGS...]: exit status in $rc, answers in NAME.out
	local name=$1
	shift
	rc=0
	"$ctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 3 --results "$TEST_DIR/$name.out" \
		"$@" "$TEST_DIR/$name.jsonl" >"$TEST_DIR/$name.txt" 2>&1 || rc=$?
}

{ report zz-1 zongzhi; report zz-2 ""; report zz-3 12345; } >"$TEST_DIR/zz.jsonl"
publish zz --curve-server-key "$TEST_DIR/intake.key.pub" --curve-key "$TEST_DIR/zz.key"
assert_eq "a listed publisher: answered (one rejection)" 3 "$rc"
assert_match "its own source: stored" '"id":"zz-1","source":"zongzhi","outcome":"stored"' "$(cat "$TEST_DIR/zz.out")"
assert_match "an empty source: its key's" '"id":"zz-2","source":"zongzhi","outcome":"stored"' "$(cat "$TEST_DIR/zz.out")"
assert_match "another system's source: refused" '"id":"zz-3".*REASON_UNAUTHORISED_SOURCE' "$(cat "$TEST_DIR/zz.out")"
assert_eq "stored under the publisher's name" "zongzhi-app-1 zongzhi|zongzhi-app-1 zongzhi" \
	"$(sql "$TEST_DB" "SELECT string_agg(detail ->> 'publisher' || ' ' || source_system, '|' ORDER BY source_event_id)
	                   FROM og.ledger WHERE kind = 'event'")"
assert_eq "the refusal is recorded with the publisher's name" "zongzhi-app-1 zz-3 REASON_UNAUTHORISED_SOURCE" \
	"$(sql "$TEST_DB" "SELECT publisher || ' ' || source_event_id || ' ' || reason FROM og.rejection")"

report rx-1 12345 >"$TEST_DIR/rx.jsonl"
sed -i "s/\"subject\":\"[^\"]*\"/\"subject\":\"$(sql "$TEST_DB" "SELECT source_grid_id FROM og.grid_crosswalk WHERE source_system = '12345' ORDER BY 1 LIMIT 1")\"/" \
	"$TEST_DIR/rx.jsonl"
publish rx --curve-server-key "$(cat "$TEST_DIR/intake.key.pub")" --curve-key "$TEST_DIR/rx.key"
assert_eq "a second publisher, server key given inline: stored" 0 "$rc"

report st-1 zongzhi >"$TEST_DIR/stranger.jsonl"
publish stranger --curve-server-key "$TEST_DIR/intake.key.pub" --curve-key "$TEST_DIR/stranger.key"
assert_eq "an unknown key: no answer" 4 "$rc"
assert_eq "intake says which key it refused, once however often it retries" 1 \
	"$(grep -cF "unknown key $(cat "$TEST_DIR/stranger.key.pub")" "$TEST_DIR/intake.log")"
report pl-1 zongzhi >"$TEST_DIR/plain.jsonl"
publish plain
assert_eq "a publisher without CURVE: no answer" 4 "$rc"
report wk-1 zongzhi >"$TEST_DIR/wrongkey.jsonl"
publish wrongkey --curve-server-key "$TEST_DIR/stranger.key.pub" --curve-key "$TEST_DIR/zz.key"
assert_eq "the wrong server key: no answer" 4 "$rc"
assert_eq "none of them stored or recorded anything" "3|1" \
	"$(sql "$TEST_DB" "SELECT (SELECT count(*) FROM og.event_key), (SELECT count(*) FROM og.rejection)")"
assert_match "publish: half a CURVE configuration is a usage error" "go together" \
	"$("$ctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --curve-key "$TEST_DIR/zz.key" "$TEST_DIR/zz.jsonl" 2>&1 || true)"
