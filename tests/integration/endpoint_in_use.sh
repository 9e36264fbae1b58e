#!/usr/bin/env bash
# A second daemon started by mistake on the same ipc:// endpoint must refuse to start
# (libzmq alone would remove the socket file and silently take the endpoint away from the
# running daemon), and the running one must go on working.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"

test_begin "endpoint_in_use"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
og_start_all "$TEST_DIR"

for d in archive intake; do
	rc=0
	out=$(timeout 10 "$ONEGRID_BIN/onegrid-$d" -c "$TEST_DIR/onegrid.conf" 2>&1) || rc=$?
	assert_eq "a second onegrid-$d exits with failure" 1 "$rc"
	assert_match "and says the endpoint is taken" "another process is listening there" "$out"
done
og_gen_reports "$TEST_DB" 10 eu >"$TEST_DIR/e.jsonl"
rc=0
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 20 \
	"$TEST_DIR/e.jsonl" >"$TEST_DIR/p.txt" 2>&1 || rc=$?
assert_eq "the running daemons still work" "0|10" "$rc|$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key")"
