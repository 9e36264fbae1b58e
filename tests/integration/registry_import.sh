#!/usr/bin/env bash
# Registry changes as commands (onegridctl registry import|export): the Karamay sample
# files load an empty database and say what karamay-registry.sql says; the preview names
# what is added, changed and removed; --dry-run writes nothing; a routing rule changed with
# an effective time becomes version 2 from then, so a case filed before keeps version 1
# and one filed after the reload (--pid-file: SIGHUP to the running dispatch) follows
# version 2; a version a case followed is never edited in place; export gives the files
# back (import of an export changes nothing); malformed CSV, a wrong column, an unknown
# district and invalid GeoJSON are refused with a message naming file and line, and
# nothing is written.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"

SAMPLE=$ONEGRID_REPO/deploy/sample/registry
test_begin "registry import"
test_createdb --no-registry
C="host=$PGHOST port=$PGPORT dbname=$TEST_DB"
ctl() { "$ONEGRID_BIN/onegridctl" registry "$@"; }
# Every row of every registry table, as one digest: "nothing written" means it is the same.
fingerprint() {
	sql "$TEST_DB" "SELECT md5(string_agg(x, '|' ORDER BY x)) FROM (
	  SELECT 'a' || t::text x FROM og.area t UNION ALL SELECT 'b' || t::text FROM og.source_system t
	  UNION ALL SELECT 'c' || t::text FROM og.grid_crosswalk t UNION ALL SELECT 'd' || t::text FROM og.category t
	  UNION ALL SELECT 'e' || t::text FROM og.handling_unit t UNION ALL SELECT 'f' || t::text FROM og.routing_rule t
	  UNION ALL SELECT 'g' || t::text FROM og.calendar_day t UNION ALL SELECT 'h' || t::text FROM og.supervisor t
	  UNION ALL SELECT 'i' || t::text FROM og.severity_limit t UNION ALL SELECT 'j' || t::text FROM og.grid_boundary t
	  UNION ALL SELECT 'k' || t::text FROM og.source_unit_grant t
	  UNION ALL SELECT 'l' || t::text FROM og.source_action_grant t) s"
}

# The first load: a dry run previews every row and writes nothing.
empty=$(fingerprint)
out=$(ctl import --db "$C" --dry-run --effective -infinity "$SAMPLE")
assert_match "preview: areas added" "og.area \(areas.csv\): 78 added, 0 changed, 0 removed, 0 unchanged" "$out"
assert_match "preview: an added row with its values and line" \
	"  \+ 650200  level=city parent_code= name=克拉玛依市 district_code=650200  \(line 2\)" "$out"
assert_match "preview: rules added as version 1" \
	"og.routing_rule \(routing_rules.csv\): 224 added, 0 changed, 0 removed, 0 unchanged \(effective -infinity\)" "$out"
assert_match "preview: a rule's version" \
	"  \+ c-650204001001-facility.handrail  version 1 from -infinity: category_code=facility.handrail area_prefix=650204001001 unit_code=CU-650204001001 priority=0" "$out"
assert_match "preview: grid boundaries" "og.grid_boundary \(grids.geojson\): 4 added" "$out"
assert_match "dry run says so" "dry run: 733 changes checked, nothing written" "$out"
assert_eq "dry run wrote nothing" "$empty" "$(fingerprint)"

out=$(ctl import --db "$C" --effective -infinity --summary "$SAMPLE")
assert_match "first load committed" "committed: 733 changes" "$out"
assert_eq "--summary prints counts, not rows" 0 "$(grep -c '^  [+~-] ' <<<"$out" || true)"
assert_eq "registry loaded" "78|258|224|4|25" "$(sql "$TEST_DB" "SELECT (SELECT count(*) FROM og.area),
	(SELECT count(*) FROM og.grid_crosswalk), (SELECT count(*) FROM og.routing_rule),
	(SELECT count(*) FROM og.grid_boundary), (SELECT count(*) FROM og.calendar_day)")"
assert_eq "a GeoJSON ring is stored without its closing position" \
	"{{84.87,45.595},{84.876,45.595},{84.876,45.5975},{84.87,45.5975}}" \
	"$(sql "$TEST_DB" "SELECT vertices FROM og.grid_boundary WHERE area_code = '650203002001001'")"
ctl export --db "$C" "$TEST_DIR/exp1" >/dev/null
assert_eq "export gives the sample files back" "" "$(diff -r "$SAMPLE" "$TEST_DIR/exp1" || true)"

# The sample files agree with karamay-registry.sql, which the other tests load.
SQLDB=${TEST_DB}_sql
on_exit "\"\$PG_BIN/psql\" -X -q -d postgres -c 'DROP DATABASE IF EXISTS $SQLDB' >/dev/null 2>&1"
pgcluster_createdb "$SQLDB" || fail "create database $SQLDB with karamay-registry.sql"
assert_match "karamay-registry.sql holds what the sample files say" \
	"dry run: 0 changes checked, nothing written" \
	"$(ctl import --db "host=$PGHOST port=$PGPORT dbname=$SQLDB" --dry-run "$SAMPLE")"

og_write_config "$TEST_DIR" "$TEST_DB"
og_start_all "$TEST_DIR"
n=0
publish() { # publish ID: a handrail report from 沁苑社区 grid 1, filed now
	n=$((n + 1))
	echo '{"id":"'"$1"'","source":"zongzhi","type":"report","time":"'"$(date -u +%Y-%m-%dT%H:%M:%SZ)"'","subject":"ZZ-BJT-ZX-QY-01","report":{"category":"facility.handrail","title":"楼道扶手松动","channel":"CHANNEL_DOOR_VISIT"}}' \
		>"$TEST_DIR/e$n.jsonl"
	"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" \
		--results "$TEST_DIR/r$n.jsonl" "$TEST_DIR/e$n.jsonl" >/dev/null
}
case_of() {
	sql "$TEST_DB" "SELECT c.unit_code || '|' || c.rule_version || '|' || r.rule_key
	                  FROM og.case c JOIN og.event_key k USING (case_id) JOIN og.routing_rule r USING (rule_id)
	                 WHERE k.source_event_id = '$1'"
}
publish reg-1
assert_eq "a case filed now follows version 1" "CU-650204001001|1|c-650204001001-facility.handrail" \
	"$(case_of reg-1)"

# An operator's change: the handrail rule of 沁苑社区 moves to the street office, a
# category's time limit shortens, a grid id is added, a grant removed.
cp -r "$SAMPLE" "$TEST_DIR/reg"
sed -i 's/^c-650204001001-facility.handrail,facility.handrail,650204001001,CU-650204001001,0,$/c-650204001001-facility.handrail,facility.handrail,650204001001,ST-650204001,0,扶手改由街道办理/' \
	"$TEST_DIR/reg/routing_rules.csv"
sed -i 's/^environment.noise,噪声扰民,市容环境,噪声污染,event,district,3,/environment.noise,噪声扰民,市容环境,噪声污染,event,district,2,/' \
	"$TEST_DIR/reg/categories.csv"
sed -i 's/^zongzhi,ZZ-BJT-ZX-QY-04,650204001001004$/&\nzongzhi,ZZ-BJT-ZX-QY-09,650204001001004/' \
	"$TEST_DIR/reg/crosswalk.csv"
sed -i '/^12345,evaluation,/d' "$TEST_DIR/reg/source_action_grants.csv"

before=$(fingerprint)
out=$(ctl import --db "$C" --dry-run "$TEST_DIR/reg")
assert_match "preview: the rule becomes version 2 from now" \
	"  ~ c-650204001001-facility.handrail  version 1 until [0-9T:+-]+, version 2 from then: unit_code: CU-650204001001 -> ST-650204001, note: \(empty\) -> 扶手改由街道办理  \(line 105\)" "$out"
assert_match "preview: the changed column, old and new" \
	"  ~ environment.noise  time_limit: 3 -> 2  \(line 10\)" "$out"
assert_match "preview: the added crosswalk row" \
	"  \+ zongzhi ZZ-BJT-ZX-QY-09  area_code=650204001001004  \(line 223\)" "$out"
assert_match "preview: the removed grant" "og.source_action_grant \(source_action_grants.csv\): 0 added, 0 changed, 1 removed, 9 unchanged
  - 12345 evaluation" "$out"
assert_match "dry run counts the changes" "dry run: 4 changes checked, nothing written" "$out"
assert_eq "dry run wrote nothing" "$before" "$(fingerprint)"

# The version case reg-1 followed cannot be changed in place (its valid_from is -infinity).
rc=0
ctl import --db "$C" --effective -infinity "$TEST_DIR/reg" >/dev/null 2>"$TEST_DIR/err" || rc=$?
assert_eq "editing a version a case followed: refused" 1 "$rc"
assert_match "and said why" \
	"routing rule \"c-650204001001-facility.handrail\" version 1 starts at --effective -infinity and cases followed it" \
	"$(cat "$TEST_DIR/err")"
assert_eq "nothing written" "$before" "$(fingerprint)"

reloads=$(grep -c "registry reloaded" "$TEST_DIR/dispatch.log" || true)
out=$(ctl import --db "$C" --pid-file "$TEST_DIR/dispatch.pid" "$TEST_DIR/reg")
assert_match "committed" "committed: 4 changes" "$out"
assert_match "dispatch signalled" "sent SIGHUP to dispatch" "$out"
for _ in $(seq 300); do
	(($(grep -c "registry reloaded" "$TEST_DIR/dispatch.log" || true) > reloads)) && break
	sleep 0.1
done
assert_match "dispatch reloaded the registry" "registry reloaded: .* 259 crosswalk entries, 6 sources, 25 categories, 50 units, 225 rules" \
	"$(grep "registry reloaded" "$TEST_DIR/dispatch.log" | tail -1)"
assert_eq "version 1 closed where version 2 starts" "t|t" \
	"$(sql "$TEST_DB" "SELECT v1.valid_to = v2.valid_from, v2.valid_to = 'infinity'
	                     FROM og.routing_rule v1 JOIN og.routing_rule v2 USING (rule_key)
	                    WHERE rule_key = 'c-650204001001-facility.handrail' AND v1.version = 1 AND v2.version = 2")"
publish reg-2
assert_eq "a case filed after the change follows version 2" "ST-650204001|2|c-650204001001-facility.handrail" \
	"$(case_of reg-2)"
assert_eq "the earlier case keeps version 1" "CU-650204001001|1|c-650204001001-facility.handrail" \
	"$(case_of reg-1)"

# Round trip: the export is the operator's files, and importing it changes nothing.
ctl export --db "$C" "$TEST_DIR/exp2" >/dev/null
assert_eq "export gives the imported files back" "" "$(diff -r "$TEST_DIR/reg" "$TEST_DIR/exp2" || true)"
assert_match "import of the export: no change" "dry run: 0 changes checked, nothing written" \
	"$(ctl import --db "$C" --dry-run "$TEST_DIR/exp2")"

# --reload runs `systemctl reload onegrid-dispatch.service` (here a stand-in that records
# its arguments and does what the unit's ExecReload does), only when something changed.
mkdir "$TEST_DIR/bin"
cat >"$TEST_DIR/bin/systemctl" <<EOF
#!/bin/sh
echo "\$*" >>"$TEST_DIR/systemctl.log"
kill -HUP "\$(cat "$TEST_DIR/dispatch.pid")"
EOF
chmod +x "$TEST_DIR/bin/systemctl"
echo "2026-12-31,false,测试假日" >>"$TEST_DIR/reg/calendar.csv"
reloads=$(grep -c "registry reloaded" "$TEST_DIR/dispatch.log" || true)
out=$(PATH="$TEST_DIR/bin:$PATH" ctl import --db "$C" --reload "$TEST_DIR/reg/calendar.csv")
assert_match "--reload: committed and reloaded" "committed: 1 change
reloaded onegrid-dispatch.service" "$out"
assert_eq "--reload ran systemctl reload" "reload onegrid-dispatch.service" "$(cat "$TEST_DIR/systemctl.log")"
for _ in $(seq 300); do
	(($(grep -c "registry reloaded" "$TEST_DIR/dispatch.log" || true) > reloads)) && break
	sleep 0.1
done
assert_eq "dispatch reloaded" $((reloads + 1)) "$(grep -c "registry reloaded" "$TEST_DIR/dispatch.log")"
assert_match "--reload without a change: no reload" "nothing changed: dispatch not reloaded" \
	"$(PATH="$TEST_DIR/bin:$PATH" ctl import --db "$C" --reload "$TEST_DIR/reg/calendar.csv")"
assert_eq "systemctl not run again" 1 "$(wc -l <"$TEST_DIR/systemctl.log")"

# A change scheduled for later: in force then, not now. An export now has the rule as it
# is now, and importing it changes nothing; changing that rule before then is refused.
sed -i 's/^d-650205-environment.noise,environment.noise,650205,GAJ-650205,0,$/d-650205-environment.noise,environment.noise,650205,GC-650205,0,/' \
	"$TEST_DIR/reg/routing_rules.csv"
assert_match "a change scheduled for 2099" "committed: 1 change" \
	"$(ctl import --db "$C" --effective 2099-01-01T00:00:00+08:00 "$TEST_DIR/reg/routing_rules.csv")"
ctl export --db "$C" "$TEST_DIR/exp3" >/dev/null 2>"$TEST_DIR/err"
assert_match "export names the scheduled version" \
	"routing rule \"d-650205-environment.noise\" version 2 takes effect at 2098-12-31 16:00:00\+00" \
	"$(cat "$TEST_DIR/err")"
assert_match "import of that export: no change, the scheduled version kept" \
	"dry run: 0 changes checked, nothing written" "$(ctl import --db "$C" --dry-run "$TEST_DIR/exp3")"
sed -i 's/^d-650205-environment.noise,environment.noise,650205,GAJ-650205,0,$/d-650205-environment.noise,environment.noise,650205,ST-650205001,0,/' \
	"$TEST_DIR/exp3/routing_rules.csv"
rc=0
ctl import --db "$C" --dry-run "$TEST_DIR/exp3/routing_rules.csv" >/dev/null 2>"$TEST_DIR/err" || rc=$?
assert_eq "changing it before then: refused" 1 "$rc"
assert_match "and said why" \
	"routing rule \"d-650205-environment.noise\" has a change scheduled at 2098-12-31T16:00:00\+00" \
	"$(cat "$TEST_DIR/err")"

# Bad input: refused with a message naming the file and line, nothing written.
before=$(fingerprint)
refused() { # refused WHAT FILE REGEX: importing FILE fails, says REGEX, writes nothing
	local rc=0
	ctl import --db "$C" "$2" >/dev/null 2>"$TEST_DIR/err" || rc=$?
	assert_eq "$1: refused" "${WANT:-1}" "$rc"
	assert_match "$1: says why" "$3" "$(cat "$TEST_DIR/err")"
	assert_eq "$1: nothing written" "$before" "$(fingerprint)"
}
mkdir "$TEST_DIR/bad"
cp "$TEST_DIR/reg/categories.csv" "$TEST_DIR/bad/categories.csv"
sed -i '5s/^/x"/' "$TEST_DIR/bad/categories.csv"
refused "malformed CSV" "$TEST_DIR/bad/categories.csv" "categories.csv line 5: malformed CSV"
cp "$TEST_DIR/reg/categories.csv" "$TEST_DIR/bad/categories.csv"
sed -i '2s/,5,working_days,/,five,working_days,/' "$TEST_DIR/bad/categories.csv"
refused "a value of the wrong type" "$TEST_DIR/bad/categories.csv" \
	"categories.csv line 2: invalid input syntax for type integer: \"five\""
cp "$TEST_DIR/reg/areas.csv" "$TEST_DIR/bad/areas.csv"
sed -i '1s/parent_code/parent/' "$TEST_DIR/bad/areas.csv"
refused "a wrong column" "$TEST_DIR/bad/areas.csv" \
	"areas.csv line 1: unknown column \"parent\" \(the columns of og.area are: code,level,parent_code,name,district_code\)"
cp "$TEST_DIR/reg/units.csv" "$TEST_DIR/bad/units.csv"
echo "CU-650299001001,新社区两委,community,650204001001,650299" >>"$TEST_DIR/bad/units.csv"
refused "an unknown district" "$TEST_DIR/bad/units.csv" \
	"units.csv line 52: unit \"CU-650299001001\": unknown district \"650299\""
cp "$TEST_DIR/reg/crosswalk.csv" "$TEST_DIR/bad/crosswalk.csv"
echo "zongzhi,ZZ-NOWHERE,650204009009009" >>"$TEST_DIR/bad/crosswalk.csv"
refused "an unknown area" "$TEST_DIR/bad/crosswalk.csv" \
	"crosswalk.csv: insert or update on table \"grid_crosswalk\" violates foreign key constraint .*Key \(area_code\)=\(650204009009009\) is not present in table \"area\""
# A NUL byte would end the value where the database reads it (review: the field was cut
# short and the import said "unchanged").
cp "$TEST_DIR/reg/crosswalk.csv" "$TEST_DIR/bad/crosswalk.csv"
sed -i '2s/,\([^,]*\)$/,\1\x00EXTRA/' "$TEST_DIR/bad/crosswalk.csv"
refused "a NUL byte in a field" "$TEST_DIR/bad/crosswalk.csv" "crosswalk.csv line 2: a NUL byte in field 3"
sed 's/"FeatureCollection"/"Feature\x00Collection"/' "$TEST_DIR/reg/grids.geojson" >"$TEST_DIR/bad/grids.geojson"
refused "a NUL byte in GeoJSON" "$TEST_DIR/bad/grids.geojson" "grids.geojson: a NUL byte \(not a JSON text\)"
head -c 300 "$TEST_DIR/reg/grids.geojson" >"$TEST_DIR/bad/grids.geojson"
refused "GeoJSON that is not JSON" "$TEST_DIR/bad/grids.geojson" \
	"grids.geojson line 2: not valid JSON: the file ends inside a value"
sed 's/\[ \[ \[ 84.87, 45.595 \], \[ 84.876, 45.595 \], \[ 84.876, 45.5975 \], \[ 84.87, 45.5975 \], \[ 84.87, 45.595 \] \] \]/[ [ [ 84.87, 45.595 ], [ 84.876, 45.595 ] ] ]/' \
	"$TEST_DIR/reg/grids.geojson" >"$TEST_DIR/bad/grids.geojson"
refused "a boundary of two positions" "$TEST_DIR/bad/grids.geojson" \
	"grids.geojson feature 1 \(grid \"650203002001001\"\): a ring of 2 distinct positions: at least 3 are needed"
sed 's/"Polygon"/"LineString"/' "$TEST_DIR/reg/grids.geojson" >"$TEST_DIR/bad/grids.geojson"
refused "a geometry that is not a polygon" "$TEST_DIR/bad/grids.geojson" \
	"grids.geojson feature 1 \(grid \"650203002001001\"\): geometry type \"LineString\": a grid boundary is a Polygon"
# A JSON null where GeoJSON wants a type name (review: the import crashed on it).
sed '0,/"Polygon"/s//null/' "$TEST_DIR/reg/grids.geojson" >"$TEST_DIR/bad/grids.geojson"
refused "a geometry whose type is null" "$TEST_DIR/bad/grids.geojson" \
	"grids.geojson feature 1 \(grid \"650203002001001\"\): no geometry with a type and coordinates"
sed 's/"FeatureCollection"/null/' "$TEST_DIR/reg/grids.geojson" >"$TEST_DIR/bad/grids.geojson"
refused "a collection whose type is null" "$TEST_DIR/bad/grids.geojson" \
	"grids.geojson: not a GeoJSON FeatureCollection"
# A time limit dispatch's calendar cannot count (migration 032): every case of the
# category would be due after the year 9999, refused by archive and never answered.
cp "$TEST_DIR/reg/categories.csv" "$TEST_DIR/bad/categories.csv"
sed -i '2s/,[0-9]*,working_days,/,2147483647,hours,/' "$TEST_DIR/bad/categories.csv"
refused "a time limit beyond ten years" "$TEST_DIR/bad/categories.csv" \
	"categories.csv.*violates check constraint \"category_time_limit_bound\""
cp "$TEST_DIR/reg/severity_limits.csv" "$TEST_DIR/bad/severity_limits.csv"
sed -i '2s/,[0-9]*,\([a-z_]*\)$/,2001,working_days/' "$TEST_DIR/bad/severity_limits.csv"
refused "a severity's time limit beyond what the calendar counts" "$TEST_DIR/bad/severity_limits.csv" \
	"severity_limits.csv.*violates check constraint \"severity_limit_time_limit_bound\""
# A category code no event can name (intake takes 1 to 64 characters), and names that are
# too long or carry control characters (a terminal's escape sequences reached the feed and
# the auditor's views): migration 032.
cp "$TEST_DIR/reg/categories.csv" "$TEST_DIR/bad/categories.csv"
echo "environment.$(printf 'x%.0s' {1..60}),噪声,环境,噪声,event,community,3,working_days,false" >>"$TEST_DIR/bad/categories.csv"
refused "a category code longer than an event can carry" "$TEST_DIR/bad/categories.csv" \
	"categories.csv.*violates check constraint \"category_code_length\""
cp "$TEST_DIR/reg/units.csv" "$TEST_DIR/bad/units.csv"
sed -i "2s/^\([^,]*\),[^,]*,/\1,$(printf '\033')[31m红字单位,/" "$TEST_DIR/bad/units.csv"
refused "a unit name with an escape sequence" "$TEST_DIR/bad/units.csv" \
	"units.csv.*violates check constraint \"handling_unit_name\""
cp "$TEST_DIR/reg/areas.csv" "$TEST_DIR/bad/areas.csv"
sed -i "2s/^\([^,]*,[^,]*,[^,]*\),[^,]*,/\1,$(printf '长%.0s' {1..201}),/" "$TEST_DIR/bad/areas.csv"
refused "an area name of 201 characters" "$TEST_DIR/bad/areas.csv" \
	"areas.csv.*violates check constraint \"area_name\""
cp "$TEST_DIR/reg/units.csv" "$TEST_DIR/bad/unit.csv"
WANT=2 refused "a file not named after a table" "$TEST_DIR/bad/unit.csv" \
	"a registry file is named after its table"

# A registry that already holds such values stops migration 032, which names each; once
# they are fixed, migrate goes on.
OLD_DB=${TEST_DB}_031
on_exit "$PG_BIN/psql -XAtq -d postgres -c 'DROP DATABASE IF EXISTS $OLD_DB WITH (FORCE)' >/dev/null 2>&1 || true"
sql postgres "CREATE DATABASE $OLD_DB" >/dev/null
cp -r "$ONEGRID_REPO/deploy/sql" "$TEST_DIR/sql031"
rm "$TEST_DIR"/sql031/03[2-9]_*.sql
"$ONEGRID_BIN/onegridctl" migrate --db "dbname=$OLD_DB" --sql-dir "$TEST_DIR/sql031" >/dev/null ||
	fail "migrate a database to 031"
sql "$OLD_DB" <"$ONEGRID_REPO/deploy/sample/karamay-registry.sql" >/dev/null
sql "$OLD_DB" "INSERT INTO og.category (code, name, major, minor, kind, unit_level, time_limit, time_unit)
               VALUES ('test.forever', '永不到期', '测试', '测试', 'event', 'community', 2147483647, 'hours');
               UPDATE og.handling_unit SET name = name || E'\\x1b[0m' WHERE code = 'CU-650204001001'" >/dev/null
rc=0
out=$("$ONEGRID_BIN/onegridctl" migrate --db "dbname=$OLD_DB" --sql-dir "$ONEGRID_REPO/deploy/sql" 2>&1) || rc=$?
assert_eq "migrate stops at 032 on a limit beyond it" "1 31" "$rc $(sql "$OLD_DB" "SELECT max(version) FROM public.onegrid_migration")"
assert_match "and names each value" "the registry holds values onegrid cannot use or show: category test.forever: time limit 2147483647 hours; unit CU-650204001001: name of [0-9]+ characters, with control characters" "$out"
sql "$OLD_DB" "UPDATE og.category SET time_limit = 87600 WHERE code = 'test.forever';
               UPDATE og.handling_unit SET name = replace(name, E'\\x1b[0m', '') WHERE code = 'CU-650204001001'" >/dev/null
"$ONEGRID_BIN/onegridctl" migrate --db "dbname=$OLD_DB" --sql-dir "$ONEGRID_REPO/deploy/sql" >/dev/null ||
	fail "migrate once the limit is fixed"
assert_eq "once fixed, migrate applies 032" 32 "$(sql "$OLD_DB" "SELECT max(version) FROM public.onegrid_migration")"
