#!/usr/bin/env bash
# Outbound assignments: a handling unit's system reads its assignments from a sequence
# number on, follows new ones as they are committed, and after being offline catches up
# without missing any. A return shows as "withdrawn" for one unit and "assigned" for the
# next. The subscriber role sees the feed and nothing else.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"

test_begin "feed"
test_createdb
sql "$TEST_DB" "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'unit_system')
                THEN CREATE ROLE unit_system LOGIN IN ROLE onegrid_feed; END IF; END \$\$"
og_write_config "$TEST_DIR" "$TEST_DB"
og_start_all "$TEST_DIR"
FEED="dbname=$TEST_DB user=unit_system"
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
read -r GRID AREA < <(sql "$TEST_DB" "SELECT x.source_grid_id, x.area_code FROM og.grid_crosswalk x
                                      JOIN og.area a ON a.code = x.area_code
                                      WHERE x.source_system = 'zongzhi' AND a.level = 'grid' ORDER BY 1 LIMIT 1" | tr '|' ' ')
report() {
	printf '{"id":"%s","source":"zongzhi","type":"report","time":"%s","subject":"%s","report":{"category":"facility.handrail","title":"扶手","channel":"CHANNEL_DOOR_VISIT"}}\n' \
		"$1" "$NOW" "$GRID" >"$TEST_DIR/$1.jsonl"
	"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" \
		--results "$TEST_DIR/$1.out" "$TEST_DIR/$1.jsonl" >/dev/null
}
report f-1
report f-2
UNIT=$(sql "$TEST_DB" "SELECT unit_code FROM og.case LIMIT 1")

out=$("$ONEGRID_BIN/onegridctl" feed --db "$FEED" --unit "$UNIT")
assert_eq "two assignments so far" 2 "$(grep -c '"kind" : "assigned"' <<<"$out")"
LAST=$(tail -1 <<<"$out" | grep -o '"seq" : [0-9]*' | grep -o '[0-9]*$')

"$ONEGRID_BIN/onegridctl" feed --db "$FEED" --unit "$UNIT" --after "$LAST" --follow >"$TEST_DIR/follow.out" &
follower=$!
on_exit "kill $follower 2>/dev/null || true"
sleep 0.5
report f-3
for _ in $(seq 50); do grep -q . "$TEST_DIR/follow.out" && break; sleep 0.1; done
assert_match "the follower hears of the new case at once" '"case_id" : "[0-9-]+", "state" : "dispatched"' \
	"$(cat "$TEST_DIR/follow.out")"
kill "$follower"
wait "$follower" 2>/dev/null || true
SEEN=$(tail -1 "$TEST_DIR/follow.out" | grep -o '"seq" : [0-9]*' | grep -o '[0-9]*$')

# Offline: two more cases, then one is returned by the unit.
report f-4
report f-5
C5=$(grep -o '"case_id":"[^"]*"' "$TEST_DIR/f-5.out" | cut -d'"' -f4)
printf '{"id":"ret-1","source":"zongzhi","type":"status","time":"%s","status":{"case_id":"%s","status":"STATUS_RETURNED","unit":"%s","note":"不属于本单位职责"}}\n' \
	"$NOW" "$C5" "$UNIT" >"$TEST_DIR/ret.jsonl"
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" "$TEST_DIR/ret.jsonl" >/dev/null
out=$("$ONEGRID_BIN/onegridctl" feed --db "$FEED" --unit "$UNIT" --after "$SEEN")
assert_eq "catching up after being offline: f-4, f-5 assigned, f-5 withdrawn" "assigned assigned withdrawn" \
	"$(grep -o '"kind" : "[a-z]*"' <<<"$out" | cut -d'"' -f4 | tr '\n' ' ' | sed 's/ $//')"
NEW_UNIT=$(sql "$TEST_DB" "SELECT unit_code FROM og.case WHERE case_id = '$C5'")
assert_match "the unit it went to has it in its feed" "\"case_id\" : \"$C5\"" \
	"$("$ONEGRID_BIN/onegridctl" feed --db "$FEED" --unit "$NEW_UNIT")"
assert_eq "sequence numbers only grow" "" \
	"$("$ONEGRID_BIN/onegridctl" feed --db "$FEED" --unit "$UNIT" | grep -o '"seq" : [0-9]*' | grep -o '[0-9]*$' | sort -n -c 2>&1)"
assert_match "the subscriber role reads nothing else" "permission denied" \
	"$("$PG_BIN/psql" -XAtq -d "$TEST_DB" -U unit_system -c "SELECT 1 FROM og.case LIMIT 1" 2>&1 || true)"
before=$(sql "$TEST_DB" "SELECT count(*) FROM og.assignment")
rc=0
out=$("$ONEGRID_BIN/onegridctl" rebuild-cases --db "dbname=$TEST_DB" --apply 2>&1) || rc=$?
assert_eq "rebuild-cases --apply succeeds" 0 "$rc"
assert_match "and the rebuilt projection equals the ledger" "0 rows differ between og.case and the ledger after rebuilding" "$out"
assert_eq "rebuilding the projection adds nothing to the feed" "$before" \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.assignment")"
