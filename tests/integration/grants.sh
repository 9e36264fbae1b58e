#!/usr/bin/env bash
# The rule of who may speak for a handling unit lives twice: in dispatch
# (og_registry_speaks_for, which refuses a status update from another source) and in the
# database (og.unit_source, which operators' scripts and the quickstart use to pick the
# source of a unit's updates). They must agree: for every unit of the sample registry,
# og.unit_source names a source dispatch lets speak for it, and names none exactly when
# dispatch lets none. Also for grants an operator adds: an exact grant beside a prefix one.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"

test_begin "grants"
test_createdb
db="host=$PGHOST port=$PGPORT dbname=$TEST_DB"

compare() { # compare WHAT: og.unit_source against dispatch's rule, for every unit
	"$ONEGRID_BIN/speaks_for" "$db" >"$TEST_DIR/c.txt" || fail "speaks_for: $(cat "$TEST_DIR/c.txt")"
	sql "$TEST_DB" "SELECT code || ' ' || coalesce(og.unit_source(code), '-') FROM og.handling_unit ORDER BY 1" \
		>"$TEST_DIR/sql.txt"
	local unit src bad=() n=0
	while read -r unit src; do
		n=$((n + 1))
		if [[ $src == - ]]; then
			! grep -q " $unit\$" "$TEST_DIR/c.txt" || bad+=("$unit: og.unit_source names none, dispatch lets $(grep " $unit\$" "$TEST_DIR/c.txt" | cut -d' ' -f1 | tr '\n' ' ')")
		else
			grep -qx "$src $unit" "$TEST_DIR/c.txt" || bad+=("$unit: og.unit_source names $src, which dispatch does not let speak for it")
		fi
	done <"$TEST_DIR/sql.txt"
	assert_eq "$1: og.unit_source agrees with dispatch for all $n units" "" "${bad[*]}"
}
compare "the sample registry"
assert_ge "the sample has units someone speaks for" 40 "$(cut -d' ' -f2 "$TEST_DIR/c.txt" | sort -u | wc -l)"

# An operator's grants: an exact unit for iot, a prefix for 12345, a unit nobody else has.
unit=$(sql "$TEST_DB" "SELECT code FROM og.handling_unit WHERE code LIKE 'CGJ-%' ORDER BY 1 LIMIT 1")
sql "$TEST_DB" "INSERT INTO og.source_unit_grant (source_system, unit_pattern) VALUES ('iot', '$unit'), ('12345', 'GAJ-*')"
compare "with an exact and a prefix grant added"
assert_eq "the exact grant wins in og.unit_source" iot "$(sql "$TEST_DB" "SELECT og.unit_source('$unit')")"
