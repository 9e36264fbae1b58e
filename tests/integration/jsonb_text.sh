#!/usr/bin/env bash
# og_jsonb_text (daemons/common/jsonb_text.c) computes in C the text PostgreSQL gives for a
# JSON value stored as jsonb, so that a digest of it in C equals one over ::text in SQL.
# For a few thousand random trees (tests/integration/jsonb_random.c) the server must agree:
# og_jsonb_text's text, as jsonb, gives back itself; and the text json-c writes for the tree
# (what archive sends), as jsonb, gives back og_jsonb_text's text. Only the second catches a
# number with the wrong scale: "100000000000000000000.0" for json-c's 1e+20 is text jsonb
# gives back unchanged, but jsonb makes "100000000000000000000" of 1e+20.
# OG_JSONB_SEED=N repeats a run (the seed is printed); OG_JSONB_COUNT=N makes more trees.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"

SEED=${OG_JSONB_SEED:-20261120}
COUNT=${OG_JSONB_COUNT:-4000}
test_begin "jsonb_text"
test_createdb --no-registry
echo "# seed $SEED, $COUNT trees"

"$ONEGRID_BIN/jsonb_random" "$SEED" "$COUNT" >"$TEST_DIR/trees.tsv" ||
	fail "jsonb_random $SEED $COUNT"
sql "$TEST_DB" <<EOF
CREATE TABLE jt (n int PRIMARY KEY, jc text NOT NULL, ours text NOT NULL);
\\copy jt FROM '$TEST_DIR/trees.tsv'
CREATE TABLE jt_text AS
SELECT n, convert_from(decode(jc, 'hex'), 'UTF8') AS jc,
       convert_from(decode(ours, 'hex'), 'UTF8') AS ours
FROM jt;
EOF

assert_eq "every tree was loaded" "$COUNT" "$(sql "$TEST_DB" "SELECT count(*) FROM jt_text")"
# So that the checks below cannot pass on trees that leave out what is hard.
assert_ge "trees with an object in them" $((COUNT / 2)) \
	"$(sql "$TEST_DB" "SELECT count(*) FROM jt_text WHERE ours LIKE '%{%'")"
assert_ge "trees with a number json-c writes with an exponent" 100 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM jt_text WHERE jc ~ '[0-9][eE][-+]?[0-9]'")"
assert_ge "trees with a control byte escaped" 100 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM jt_text WHERE strpos(ours, '\\u00') > 0")"
assert_ge "trees with multibyte characters" 100 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM jt_text WHERE octet_length(ours) > length(ours)")"

# check WHAT CONDITION: no tree for which CONDITION (on jc and ours) is false; the first
# few that fail are shown.
check() {
	local what=$1 cond=$2 bad
	bad=$(sql "$TEST_DB" "SELECT count(*) FROM jt_text WHERE NOT ($cond)")
	if ((bad != 0)); then
		echo "# $bad trees fail; the first few (jc: json-c's text, ours, pg: ours::jsonb::text):"
		sql "$TEST_DB" "SELECT format(E'tree %s\\n  jc:   %s\\n  ours: %s\\n  pg:   %s',
		                       n, jc, ours, ours::jsonb::text)
		                FROM jt_text WHERE NOT ($cond) ORDER BY n LIMIT 3" | sed 's/^/#   /'
	fi
	assert_eq "$what (seed $SEED)" 0 "$bad"
}
check "og_jsonb_text's text of every tree, as jsonb, is itself" "ours::jsonb::text = ours"
check "json-c's text of every tree, as jsonb, is og_jsonb_text's text" "jc::jsonb::text = ours"
