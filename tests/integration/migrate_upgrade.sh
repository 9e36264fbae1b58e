#!/usr/bin/env bash
# The SQL layout of deploy/sql (its README.md): versioned migrations from the 018
# baseline on, and one current definition per function or view.
#
# A database made by the old layout (the numbered migrations 001 to 018, applied by the
# onegridctl of commit 8285e23, built from git) with the sample stored in it upgrades with
# no data change: migrate applies no baseline, the versioned migrations after 018 and
# every current definition. It then has the schema of a new database made by the new
# layout (pg_dump --schema-only, the same text), and after the same events both hold the
# same rows (times, bytes and process names masked). A second run applies nothing; an
# edited current definition is the one thing the next run applies; --status and --dry-run
# say so; views a DROP ... CASCADE took are made again.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"

test_begin "migrate upgrade"
CTL=$ONEGRID_BIN/onegridctl
SQL=$ONEGRID_REPO/deploy/sql

# The old layout's onegridctl and daemons, built from their own tree (8285e23, from git):
# a database of the old layout is filled by the daemons of its day (today's need today's
# schema).
test_old_layout "$TEST_DIR/old"
OLD=$TEST_OLD_COMMIT
echo "# the old layout: commit $OLD"
# A database made by 001 to 018: that commit's later migrations (019) are left out.
for f in "$TEST_DIR"/old/deploy/sql/[0-9]*.sql; do
	n=$(basename "$f")
	((10#${n%%_*} <= 18)) || rm "$f"
done
if ! { cmake -S "$TEST_DIR/old" -B "$TEST_DIR/old/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DONEGRID_TESTS=OFF && cmake --build "$TEST_DIR/old/build" -j2 --target onegridctl \
	onegrid-intake onegrid-dispatch onegrid-archive; } \
	>"$TEST_DIR/old-build.log" 2>&1; then
	tail -n 20 "$TEST_DIR/old-build.log"
	fail "build the onegridctl of commit $OLD"
fi
pass "built the onegridctl and the daemons of the old layout"

# Two databases: $NEW from the new layout, $OLD_DB from the old; the same registry (the
# old commit's) in both.
NEW=$TEST_DB
test_createdb --no-registry
OLD_DB=${TEST_DB}_old
on_exit "$PG_BIN/psql -XAtq -d postgres -c 'DROP DATABASE IF EXISTS $OLD_DB WITH (FORCE)'"
ONEGRID_BIN=$TEST_DIR/old/build/bin ONEGRID_REPO=$TEST_DIR/old pgcluster_createdb "$OLD_DB" ||
	fail "create $OLD_DB with the old layout"
sql "$NEW" <"$TEST_DIR/old/deploy/sample/karamay-registry.sql" >/dev/null
assert_eq "the old database has the old layout's 18 migrations" "18|018_erase_rejections.sql" \
	"$(sql "$OLD_DB" "SELECT count(*), max(name) FROM public.onegrid_migration")"

# publish DB NAME FILE [OPTIONS]: the daemons on DB, one event at a time (so every
# database gets the same batches), answers in $TEST_DIR/NAME.out.
publish() {
	local db=$1 name=$2 file=$3 rc=0
	shift 3
	og_write_config "$TEST_DIR" "$db"
	# Merging on (as the quickstart has it): merged reports and their case_report rows.
	sed -i 's/^merge_window_hours = 0$/merge_window_hours = 72/' "$TEST_DIR/onegrid.conf"
	og_start_all "$TEST_DIR"
	"$CTL" publish --endpoint "ipc://$TEST_DIR/intake.sock" --window 1 --results "$TEST_DIR/$name.out" \
		"$@" "$file" >"$TEST_DIR/$name.txt" || rc=$?
	og_stop_all "$TEST_DIR"
	((rc == 0 || rc == 3)) || fail "publish $file to $db: exit status $rc"
	head -1 "$TEST_DIR/$name.txt"
}
SAMPLE=$TEST_DIR/old/deploy/sample/events.jsonl
summary=$(ONEGRID_BIN=$TEST_DIR/old/build/bin publish "$OLD_DB" old-sample "$SAMPLE" --rebase-time 2026-11-26T00:00:00Z)
assert_match "the sample is stored in the old database" "stored [1-9][0-9]*, duplicate [0-9]+, rejected [1-9]" "$summary"
assert_eq "and in the new one, answered the same" "$summary" \
	"$(publish "$NEW" new-sample "$SAMPLE" --rebase-time 2026-11-26T00:00:00Z)"

# rows DB: every row of the database's own tables (not the migration records). Of og.case,
# the columns it had at 018: migration 020 adds the facts the KPIs read, filled from the
# ledger, and 023 dispatch's conclusions (stage, clock), filled by the rule of their day
# (the cases' rebuilding from the ledger, below, checks both).
rows() {
	"$PG_BIN/pg_dump" --data-only --no-owner --exclude-table=public.onegrid_migration \
		--exclude-table=public.onegrid_repeatable --exclude-table=og.case \
		--exclude-table=og.database_generation -d "$1" 2>/dev/null |
		grep -v '^\\\(un\)\?restrict '
	sql "$1" "COPY (SELECT to_jsonb(c) - '{first_resolved_at, deadline_when_resolved, first_closed_at,
	                   deadline_when_closed, returned, reworks, last_evaluation, stage, clock, clock_started_at, extension_lapsed_at,
	                   lapsed_paused_at, lapsed_paused_deadline_at}'::text[]
	                 FROM og.case c ORDER BY case_id) TO STDOUT"
}
rows "$OLD_DB" >"$TEST_DIR/old-rows-before.sql"

# The upgrade.
# What comes after 018 in deploy/sql, and the version it ends at.
after=$(cd "$SQL" && for f in [0-9]*.sql; do
	n=${f%%_*}
	if ((10#$n > 18)) && [[ $f != *_baseline.sql ]]; then echo "$f"; fi
done)
nafter=$(grep -c . <<<"$after" || true)
top=$(tail -1 <<<"$after")
top=${top%%_*}
out=$("$CTL" migrate --db "dbname=$OLD_DB" --sql-dir "$SQL" --dry-run)
assert_eq "dry run: the baseline is not for this database, what came after 018 is" \
	"$(sed 's/^/would apply /' <<<"$after")" "$(grep '^would apply 0' <<<"$out" | sed 's/ (with current .*)$//')"
assert_eq "dry run: changes nothing" 18 "$(sql "$OLD_DB" "SELECT count(*) FROM public.onegrid_migration")"
out=$("$CTL" migrate --db "dbname=$OLD_DB" --sql-dir "$SQL")
echo "$out" | sed 's/^/#   /'
# 023 makes og.case's stage and clock NOT NULL: the functions that write og.case change in
# the same transaction, or a batch stored before migrate's transaction of current
# definitions would meet the old ones (refused for a NULL stage, or stale conclusions).
assert_match "023 changes og.case's writers together with its columns" \
	"applied 023_case_conclusions.sql \(with current .*og.apply_case, og.store_event, og.store_opened\)" "$out"
ncurrent=$(grep -v '^#' "$SQL/current/ORDER" | grep -c .)
# Current definitions a versioned migration applied at its --@current line ("applied
# 022_... (with current og.a, og.b)") are not applied again after it.
inline=$(grep '^applied 0' <<<"$out" | grep -o '(with current [^)]*)' | sed 's/^(with current //; s/)$//' | tr ',' '\n' | grep -c . || true)
assert_eq "the upgrade applies no baseline, what came after 018, then every current definition" \
	"$(sed 's/^/applied /' <<<"$after")|$((ncurrent - inline))|schema up to date: version $top ($nafter versioned migration$( ((nafter == 1)) || echo s) applied now), $ncurrent current definitions ($ncurrent applied now)" \
	"$(grep '^applied 0' <<<"$out" | sed 's/ (with current .*)$//')|$(grep -c '^applied current ' <<<"$out")|$(tail -1 <<<"$out")"
rows "$OLD_DB" >"$TEST_DIR/old-rows-after.sql"
if cmp -s "$TEST_DIR/old-rows-before.sql" "$TEST_DIR/old-rows-after.sql"; then
	pass "the upgrade changes no row ($(grep -c . "$TEST_DIR/old-rows-after.sql") lines of pg_dump --data-only)"
else
	_tl_not_ok "the upgrade changes no row" "$(diff "$TEST_DIR/old-rows-before.sql" "$TEST_DIR/old-rows-after.sql" | head -20)"
fi
assert_eq "what it adds is the database's first generation (028), counters left as they were" \
	"1|migration 028|true" \
	"$(sql "$OLD_DB" "SELECT generation || '|' || why || '|' || (moved IS NULL)
	                  FROM og.database_generation")"
assert_eq "every object of og, audit and feed belongs to onegrid_owner now" "" \
	"$(sql "$OLD_DB" "SELECT string_agg(c.oid::regclass::text, ', ') FROM pg_class c
	                  WHERE c.relnamespace IN ('og'::regnamespace, 'audit'::regnamespace, 'feed'::regnamespace)
	                    AND c.relowner <> 'onegrid_owner'::regrole
	                  UNION ALL
	                  SELECT string_agg(p.oid::regprocedure::text, ', ') FROM pg_proc p
	                  WHERE p.pronamespace IN ('og'::regnamespace, 'audit'::regnamespace, 'feed'::regnamespace)
	                    AND p.proowner <> 'onegrid_owner'::regrole" | tr -d '\n')"

# schema DB: pg_dump --schema-only, without its per-run \restrict key; the ledger's
# monthly partitions made for the same months in both (a month may begin between them).
schema() {
	sql "$1" "SELECT og.ensure_ledger_partition(now() + make_interval(months => i))
	          FROM generate_series(-2, 4) i" >/dev/null
	"$PG_BIN/pg_dump" --schema-only -d "$1" | grep -v '^\\\(un\)\?restrict '
}
schema "$OLD_DB" >"$TEST_DIR/old-schema.sql"
schema "$NEW" >"$TEST_DIR/new-schema.sql"
if cmp -s "$TEST_DIR/old-schema.sql" "$TEST_DIR/new-schema.sql"; then
	pass "the upgraded database has the new database's schema ($(grep -c . "$TEST_DIR/new-schema.sql") lines of pg_dump --schema-only)"
else
	_tl_not_ok "the upgraded database has the new database's schema" \
		"$(diff "$TEST_DIR/old-schema.sql" "$TEST_DIR/new-schema.sql" | head -40)"
fi

# After the upgrade, the same new events in both.
og_gen_reports "$NEW" 30 after >"$TEST_DIR/after.jsonl"
assert_eq "the upgraded database stores new events as the new one does" \
	"$(publish "$NEW" new-after "$TEST_DIR/after.jsonl")" "$(publish "$OLD_DB" old-after "$TEST_DIR/after.jsonl")"

# data DB: every row of every og table, sorted; times, bytes (protobuf bodies, hashes,
# signatures) and process names (dispatch's epoch holder, archive's name) masked.
data() {
	local t host
	host=$(hostname)
	for t in $(sql "$1" "SELECT c.oid::regclass FROM pg_class c WHERE c.relnamespace = 'og'::regnamespace
	                     AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY c.oid::regclass::text"); do
		echo "== $t"
		# og.case's clock_started_at: the old daemons did not send it (025), the new do;
		# nor the lapse and the pause it ended (025, 029).
		if [[ $t == 'og."case"' ]]; then
			sql "$1" "COPY (SELECT to_jsonb(c) - '{clock_started_at, extension_lapsed_at, lapsed_paused_at,
			                lapsed_paused_deadline_at}'::text[] FROM og.case c) TO STDOUT"
		elif [[ $t == og.batch || $t == og.dispatch_epoch ]]; then
			# Epochs: the old og.take_epoch counted 1, 2, ...; this one takes the time.
			sql "$1" "COPY (SELECT to_jsonb(x) - 'epoch' FROM $t x) TO STDOUT"
		elif [[ $t == og.database_generation ]]; then # each database its own OID
			sql "$1" "COPY (SELECT generation, system_identifier, timeline, why, moved
			                FROM og.database_generation) TO STDOUT"
		else
			sql "$1" "COPY (SELECT * FROM $t) TO STDOUT"
		fi |
			sed -E -e 's/[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}(:[0-9]{2})?)?/<time>/g' \
				-e 's/\\\\x[0-9a-f]*/<bytes>/g' -e "s/$host:[0-9]+/<process>/g" \
				-e 's/, "tag": "[0-9a-f]*"//g' -e 's/\t<bytes>\t[0-9]+\t<bytes>$/\t<bytes>\t<size>\t<bytes>/' \
				-e 's/"clock": "[a-z]*", "stage": "[a-z]*", //g' \
				-e 's/"clock_started": "<time>", //g; s/, "clock_started": "<time>"//g' |
			sort # the Submit's tag, dispatch's refusals' sizes of the bytes received and its
		# decisions' conclusions, stage, clock and clock_started (the old daemons recorded
		# none of them: a re-encoding's size; og.case's stage and clock, from both, are
		# compared)
	done
}
data "$OLD_DB" >"$TEST_DIR/old-data.txt"
data "$NEW" >"$TEST_DIR/new-data.txt"
if cmp -s "$TEST_DIR/old-data.txt" "$TEST_DIR/new-data.txt"; then
	pass "both hold the same rows ($(grep -vc '^== ' "$TEST_DIR/new-data.txt") rows in $(grep -c '^== ' "$TEST_DIR/new-data.txt") tables)"
else
	_tl_not_ok "both hold the same rows" "$(diff "$TEST_DIR/old-data.txt" "$TEST_DIR/new-data.txt" | head -40)"
fi
assert_eq "the upgraded record verifies" 0 \
	"$("$CTL" audit verify --db "dbname=$OLD_DB" >"$TEST_DIR/verify.txt" 2>&1; echo $?)"
assert_eq "and its cases rebuild from the ledger" 0 \
	"$(sql "$OLD_DB" "SELECT count(*) FROM audit.projection_differences")"
assert_eq "and so do their reports" 0 \
	"$(sql "$OLD_DB" "SELECT count(*) FROM audit.report_projection_differences")"
# An auditor compares the upgraded database's definitions with a new one's.
"$CTL" audit definitions --db "dbname=$NEW user=onegrid_audit" >"$TEST_DIR/new-defs.txt" ||
	fail "audit definitions of the new database"
assert_match "its definitions are the new database's, object by object" \
	"^definitions: [0-9]+ objects, each as in" \
	"$("$CTL" audit definitions --db "dbname=$OLD_DB user=onegrid_audit" --expect "$TEST_DIR/new-defs.txt" 2>&1)"

# Nothing left to do, in either.
for db in "$OLD_DB" "$NEW"; do
	assert_eq "$db: a second run applies nothing" \
		"schema up to date: version $top (0 versioned migrations applied now), $ncurrent current definitions (0 applied now)" \
		"$("$CTL" migrate --db "dbname=$db" --sql-dir "$SQL")"
done

# An edited current definition: the next run applies that one, and only it.
cp -r "$SQL" "$TEST_DIR/sql"
printf '%s\n' '-- an edit' >>"$TEST_DIR/sql/current/audit.kpi.sql"
assert_eq "dry run after an edit: that file only" \
	"would apply current audit.kpi (changed)|dry run: 0 versioned migrations and 1 current definition to apply; nothing changed" \
	"$("$CTL" migrate --db "dbname=$OLD_DB" --sql-dir "$TEST_DIR/sql" --dry-run | paste -sd'|')"
assert_eq "the run after an edit applies that file only" \
	"applied current audit.kpi (changed)|schema up to date: version $top (0 versioned migrations applied now), $ncurrent current definitions (1 applied now)" \
	"$("$CTL" migrate --db "dbname=$OLD_DB" --sql-dir "$TEST_DIR/sql" | paste -sd'|')"
status=$("$CTL" migrate --db "dbname=$OLD_DB" --sql-dir "$TEST_DIR/sql" --status)
assert_match "status: the old migrations are history" "  001  001_core.sql +applied [0-9-]+ [0-9:+]+ \(no file: history\)" "$status"
assert_match "status: the baseline stands for them" "  018  018_baseline.sql +baseline: the database has the migrations it stands for" "$status"
assert_match "status: what came after 018, applied" "  $top  $(tail -1 <<<"$after") +applied " "$status"
assert_match "status: each current definition, up to date" "  audit.kpi +up to date, applied " "$status"
assert_eq "status: nothing to apply" "to apply: 0 versioned migrations, 0 current definitions" "$(tail -1 <<<"$status")"

# A current definition whose object is gone (dropped with CASCADE) is applied again.
sql "$OLD_DB" "SET client_min_messages = warning; DROP VIEW audit.case_facts CASCADE"
assert_eq "views dropped with CASCADE are made again, in order" \
	"applied current audit.case_facts (its object is missing)|applied current audit.overdue_cases (its object is missing)|applied current audit.kpi (its object is missing)" \
	"$("$CTL" migrate --db "dbname=$OLD_DB" --sql-dir "$TEST_DIR/sql" | grep '^applied' | paste -sd'|')"
