#!/usr/bin/env bash
# onegridctl migrate while a reader's transaction stays open. A migration that alters
# og.case (as 020, 023 and 025 did) asks for a lock no reader may share; PostgreSQL queues
# every later request for that table behind it, archive's and dispatch's too. migrate used
# to wait for as long as the reader's transaction lasted (an auditor's, left idle), and
# nothing was stored meanwhile (an auditor's trial: an event unanswered ~75 s, until the
# auditor's transaction ended). migrate now waits at most 2 s, then 5 s, at a time, names
# the sessions it waits for, and tries again every 2 s: events are stored in between, and
# the migration is applied once the reader is gone. Then: readers whose short queries
# overlap do not keep it out for ever, and a lock on its own record is waited out too.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"
source "$(dirname "$0")/../lib/faults.sh"

test_begin "migrate_lock_wait"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
og_start_all "$TEST_DIR"
GRID=$(sql "$TEST_DB" "SELECT source_grid_id FROM og.grid_crosswalk x JOIN og.area a ON a.code = x.area_code
                       WHERE x.source_system = 'iot' AND a.level = 'grid' ORDER BY 1 LIMIT 1")
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
og_gas_alert before "$NOW" "$GRID" >"$TEST_DIR/before.jsonl"
og_publish_named "$TEST_DIR" before || fail "publish before: $(cat "$TEST_DIR/before.txt")"

# The release's schema and one migration more, which takes og.case's strongest lock.
cp -r "$ONEGRID_REPO/deploy/sql" "$TEST_DIR/sql"
top=$(cd "$TEST_DIR/sql" && ls [0-9][0-9][0-9]_*.sql | sort | tail -1 | cut -c1-3)
next=$(printf '%03d' $((10#$top + 1)))
printf 'SET LOCAL ROLE onegrid_owner;\nALTER TABLE og.case ALTER COLUMN contacts SET DEFAULT 1;\n' \
	>"$TEST_DIR/sql/${next}_t_case_default.sql"

# An auditor reads a view of og.case in a transaction and leaves it open.
"$PG_BIN/psql" -XAtq -d "$TEST_DB" -U onegrid_audit -v ON_ERROR_STOP=1 \
	-c "BEGIN; SELECT count(*) FROM audit.cases; SELECT pg_sleep(600); COMMIT" >/dev/null 2>&1 &
reader=$!
on_exit "kill $reader 2>/dev/null || true"
reading() { [[ $(sql "$TEST_DB" "SELECT count(*) FROM pg_stat_activity WHERE usename = 'onegrid_audit'
                                  AND datname = current_database() AND xact_start IS NOT NULL
                                  AND query LIKE '%pg_sleep%'") == 1 ]]; }
og_poll 20 reading || fail "the auditor's transaction is open"

"$ONEGRID_BIN/onegridctl" migrate --db "dbname=$TEST_DB" --sql-dir "$TEST_DIR/sql" \
	>"$TEST_DIR/migrate.out" 2>"$TEST_DIR/migrate.err" &
migrate=$!
on_exit "kill $migrate 2>/dev/null || true"
og_poll 30 grep -qF "${next}_t_case_default.sql waits for locks other sessions hold" "$TEST_DIR/migrate.err" ||
	fail "migrate says it waits ($(cat "$TEST_DIR/migrate.err"))"
assert_match "it names the auditor's session" \
	"waits for locks other sessions hold: pid [0-9]+ \\(user onegrid_audit, application \"psql\", active, transaction open since [^)]*\\); trying again every 2 s" \
	"$(cat "$TEST_DIR/migrate.err")"

# Meanwhile a new case is opened and stored: archive writes og.case between migrate's
# tries (the old migrate: no answer until the auditor's transaction ended).
og_gas_alert during "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$GRID" >"$TEST_DIR/during.jsonl"
og_publish_named "$TEST_DIR" during || fail "publish during: $(cat "$TEST_DIR/during.txt")"
assert_match "an event published while migrate waits is stored" '"outcome":"stored"' "$(cat "$TEST_DIR/during.out")"
kill -0 "$migrate" 2>/dev/null || fail "migrate was still waiting ($(cat "$TEST_DIR/migrate.err"))"
assert_eq "(the auditor's transaction was open all along)" 0 "$(reading && echo 0 || echo 1)"

# The reader gone, the migration is applied, once.
sql "$TEST_DB" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'onegrid_audit'
                AND datname = current_database()" >/dev/null
rc=0
wait "$migrate" || rc=$?
assert_eq "then migrate applies it (exit status 0)" 0 "$rc"
assert_eq "applied once" 1 "$(grep -c "^applied ${next}_t_case_default.sql$" "$TEST_DIR/migrate.out")"
assert_eq "each current definition once" "$(grep -v '^#' "$ONEGRID_REPO/deploy/sql/current/ORDER" | grep -c .)" \
	"$(grep -c '^applied current ' "$TEST_DIR/migrate.out")"
assert_match "and the run ends as usual" "^schema up to date: version $next \\(1 versioned migration applied now\\)" \
	"$(tail -1 "$TEST_DIR/migrate.out")"
assert_eq "og.case's default is the migration's" 1 \
	"$(sql "$TEST_DB" "SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d JOIN pg_attribute a
	                     ON a.attrelid = d.adrelid AND a.attnum = d.adnum
	                    WHERE d.adrelid = 'og.case'::regclass AND a.attname = 'contacts'")"

# Readers whose transactions are short but overlap (a dashboard polling a view of og.case,
# 1.2 s a query, two at a time) always hold og.case's lock: a wait shorter than their
# queries never had it (review: 25 s of tries, as long as they ran). The first wait is 2 s
# (at least twice deadlock_timeout): new readers queue behind it while the old ones end.
next2=$(printf '%03d' $((10#$next + 1)))
printf 'SET LOCAL ROLE onegrid_owner;\nALTER TABLE og.case ALTER COLUMN contacts SET DEFAULT 1;\n' \
	>"$TEST_DIR/sql/${next2}_t_case_default_again.sql"
poll_view() {
	local end=$((SECONDS + 40))
	while ((SECONDS < end)); do
		"$PG_BIN/psql" -XAtq -d "$TEST_DB" -U onegrid_audit \
			-c "SELECT count(*), pg_sleep(1.2) FROM audit.cases" >/dev/null 2>&1 || true
	done
}
poll_view &
dash1=$!
on_exit "kill $dash1 2>/dev/null || true"
sleep_until_overlap() { [[ $(sql "$TEST_DB" "SELECT count(*) FROM pg_stat_activity WHERE usename = 'onegrid_audit'
                                              AND datname = current_database() AND query LIKE '%pg_sleep(1.2)%'") -ge 1 ]]; }
og_poll 20 sleep_until_overlap || fail "the dashboard polls"
poll_view &
dash2=$!
on_exit "kill $dash2 2>/dev/null || true"
rc=0
"$ONEGRID_BIN/onegridctl" migrate --db "dbname=$TEST_DB" --sql-dir "$TEST_DIR/sql" \
	>"$TEST_DIR/migrate2.out" 2>"$TEST_DIR/migrate2.err" || rc=$?
assert_eq "beside readers that keep a lock in turn, migrate applies it (exit status 0)" 0 "$rc"
assert_eq "while they still read" 0 "$(kill -0 "$dash1" 2>/dev/null && kill -0 "$dash2" 2>/dev/null && echo 0 || echo 1)"
kill "$dash1" "$dash2" 2>/dev/null || true

# The record of what migrate applied (public.onegrid_repeatable) locked for a while: the
# definition is recorded once the lock is had (the old migrate stopped: "recording ...:
# canceling statement due to lock timeout").
printf '\n-- changed\n' >>"$TEST_DIR/sql/current/og.ns.sql"
"$PG_BIN/psql" -XAtq -d "$TEST_DB" \
	-c "BEGIN; LOCK public.onegrid_repeatable IN SHARE MODE; SELECT pg_sleep(6); COMMIT" >/dev/null 2>&1 &
locker=$!
on_exit "kill $locker 2>/dev/null || true"
locked() { [[ $(sql "$TEST_DB" "SELECT count(*) FROM pg_locks WHERE relation = 'public.onegrid_repeatable'::regclass
                                  AND mode = 'ShareLock' AND granted") == 1 ]]; }
og_poll 20 locked || fail "the record is locked"
rc=0
"$ONEGRID_BIN/onegridctl" migrate --db "dbname=$TEST_DB" --sql-dir "$TEST_DIR/sql" \
	>"$TEST_DIR/migrate3.out" 2>"$TEST_DIR/migrate3.err" || rc=$?
assert_eq "with its record locked a while, migrate applies the changed definition (exit status 0)" \
	"0|applied current og.ns (changed)" "$rc|$(grep '^applied current' "$TEST_DIR/migrate3.out")"
