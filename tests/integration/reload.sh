#!/usr/bin/env bash
# Reloading the registry without downtime: an event from a grid id the crosswalk does not
# know is refused; the operator maps it and publishes a new version of a routing rule,
# sends SIGHUP to dispatch, and the same event is then stored and routed by the new rule.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"

test_begin "reload"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
og_start_all "$TEST_DIR"
GRID=$(sql "$TEST_DB" "SELECT area_code FROM og.grid_crosswalk WHERE source_system = 'zongzhi' LIMIT 1")
EVENT='{"id":"rl-1","source":"zongzhi","type":"report","time":"'$(date -u +%Y-%m-%dT%H:%M:%SZ)'","subject":"ZZ-NEW-GRID-01","report":{"category":"facility.handrail","title":"新网格的扶手","channel":"CHANNEL_DOOR_VISIT"}}'
echo "$EVENT" >"$TEST_DIR/e.jsonl"
publish() {
	rc=0
	"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" \
		--results "$TEST_DIR/$1.out" "$TEST_DIR/e.jsonl" >/dev/null || rc=$?
}

publish before
assert_eq "unknown grid id refused" 3 "$rc"
assert_match "with REASON_UNKNOWN_GRID" '"reason":"REASON_UNKNOWN_GRID"' "$(cat "$TEST_DIR/before.out")"

sql "$TEST_DB" <<SQL
INSERT INTO og.grid_crosswalk VALUES ('zongzhi', 'ZZ-NEW-GRID-01', '$GRID');
INSERT INTO og.handling_unit VALUES ('RELOAD-UNIT', '测试单位', 'community', '$GRID', substr('$GRID', 1, 6));
INSERT INTO og.routing_rule (rule_key, version, category_code, area_prefix, unit_code, priority)
  VALUES ('reload-test', 2, 'facility.handrail', '$GRID', 'RELOAD-UNIT', 100);
SQL
kill -HUP "$(<"$TEST_DIR/dispatch.pid")"
for _ in $(seq 50); do
	grep -q "registry reloaded" "$TEST_DIR/dispatch.log" && break
	sleep 0.1
done
assert_match "dispatch reloaded" "registry reloaded: .* 259 crosswalk entries" "$(cat "$TEST_DIR/dispatch.log")"

publish after
assert_eq "now stored" 0 "$rc"
assert_eq "routed by the new rule version" "RELOAD-UNIT|2" \
	"$(sql "$TEST_DB" "SELECT unit_code, rule_version FROM og.case c JOIN og.event_key k USING (case_id)
	                   WHERE k.source_event_id = 'rl-1'")"
assert_eq "dispatch kept its epoch (no restart)" \
	"$(grep -o 'ready: shard 6502 epoch [0-9]*' "$TEST_DIR/dispatch.log" | head -1 | cut -d' ' -f5)" \
	"$(sql "$TEST_DB" "SELECT epoch FROM og.dispatch_epoch")"
