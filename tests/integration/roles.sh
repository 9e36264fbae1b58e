#!/usr/bin/env bash
# Least privilege as migration 001 sets it up: archive's role can only call the store
# functions (no direct INSERT, UPDATE or DELETE on the record), dispatch's role can read
# the registry and take an epoch but not write, and the auditor role reads nothing raw.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/faults.sh"

test_begin "roles"
test_createdb

# as ROLE SQL: runs SQL as a login role; prints "denied" when permission is refused.
as() {
	local out
	if out=$("$PG_BIN/psql" -XAtq -v ON_ERROR_STOP=1 -d "$TEST_DB" -U "$1" -c "$2" 2>&1); then
		echo "$out"
	elif [[ $out == *"permission denied"* ]]; then
		echo denied
	else
		echo "error: $out"
	fi
}

assert_eq "writer cannot INSERT into the ledger directly" denied \
	"$(as onegrid_archive "INSERT INTO og.ledger VALUES (1, now(), 1, '650204', 'event', NULL, 's', 'e', 'report', '{}', '')")"
assert_eq "writer cannot UPDATE cases directly" denied \
	"$(as onegrid_archive "UPDATE og.case SET state = 'closed'")"
assert_eq "writer cannot DELETE event keys" denied \
	"$(as onegrid_archive "DELETE FROM og.event_key")"
assert_eq "writer cannot change the registry" denied \
	"$(as onegrid_archive "DELETE FROM og.routing_rule")"
assert_eq "writer cannot take a dispatch epoch" denied \
	"$(as onegrid_archive "SELECT og.take_epoch('6502', 'intruder')")"
assert_eq "reader can read the registry" 4 \
	"$(as onegrid_dispatch "SELECT count(*) FROM og.area WHERE level = 'district'")"
assert_eq "reader cannot store events" denied \
	"$(as onegrid_dispatch "SELECT og.begin_batch('6502', 1, 'x')")"
assert_eq "reader cannot write cases" denied \
	"$(as onegrid_dispatch "INSERT INTO og.case (case_id) VALUES ('x')")"
assert_eq "reader cannot read reporters' contacts" denied \
	"$(as onegrid_dispatch "SELECT count(*) FROM og.reporter_contact")"
assert_eq "auditor cannot read raw tables" denied \
	"$(as onegrid_audit "SELECT count(*) FROM og.ledger")"
assert_eq "auditor cannot read contacts" denied \
	"$(as onegrid_audit "SELECT count(*) FROM og.reporter_contact")"
# A temporary table is a file on the database's volume: a login that is meant to read
# could fill the disk with them and stop archive's commits (migration 027: PostgreSQL gives
# every role TEMPORARY in every database). Nor schema public, which PostgreSQL 14 and
# older gave PUBLIC: a database restored from one keeps that grant.
# Nor large objects (data of its own, kept after it logs out, in every backup), nor
# advisory locks (taken in a loop, they fill the cluster's shared lock table: archive's
# next batch, and every new connection, fail with "out of shared memory").
for login in onegrid_audit onegrid_dispatch onegrid_archive; do
	assert_eq "$login cannot make a temporary table" denied \
		"$(as "$login" "CREATE TEMP TABLE filler AS SELECT repeat('x', 1000) FROM generate_series(1, 10)")"
	assert_eq "$login cannot make a large object" denied \
		"$(as "$login" "SELECT lo_from_bytea(0, '\\x00')")"
	assert_eq "$login cannot take an advisory lock" denied \
		"$(as "$login" "SELECT pg_try_advisory_xact_lock_shared(1, 2)")"
done
# A database at version 026, restored from one made by PostgreSQL 14 (schema public open
# to PUBLIC), upgrades to 027: both grants go.
sql "$TEST_DB" "GRANT CREATE ON SCHEMA public TO PUBLIC; GRANT TEMPORARY ON DATABASE $TEST_DB TO PUBLIC;
                GRANT EXECUTE ON FUNCTION pg_advisory_lock(bigint), lo_creat(integer) TO PUBLIC;
                DELETE FROM public.onegrid_migration WHERE version = 27" >/dev/null
assert_eq "(the login may before)" "" "$(as onegrid_audit "CREATE TEMP TABLE filler (x text)")"
assert_eq "(and take an advisory lock)" "" "$(as onegrid_audit "SELECT pg_advisory_lock(1)")"
"$ONEGRID_BIN/onegridctl" migrate --db "dbname=$TEST_DB" --sql-dir "$ONEGRID_REPO/deploy/sql" >"$TEST_DIR/migrate27.out" 2>&1 ||
	fail "migrate to 027: $(cat "$TEST_DIR/migrate27.out")"
assert_match "migrate applies 027" "applied 027_public_privileges.sql" "$(cat "$TEST_DIR/migrate27.out")"
assert_eq "after it, no temporary table" denied "$(as onegrid_audit "CREATE TEMP TABLE filler (x text)")"
assert_eq "nor a table in schema public" denied "$(as onegrid_audit "CREATE TABLE public.filler (x text)")"
assert_eq "nor an advisory lock" denied "$(as onegrid_audit "SELECT pg_advisory_lock(1)")"
assert_eq "nor a large object" denied "$(as onegrid_audit "SELECT lo_creat(-1)")"
# onegrid's owner still may: `registry import` stages each file in a temporary table. An
# operator's login that is a member of onegrid_owner (not a superuser) runs it.
operator=og_operator_$$
sql postgres "CREATE ROLE $operator LOGIN IN ROLE onegrid_owner" >/dev/null
on_exit "$PG_BIN/psql -XAtq -d postgres -c 'DROP ROLE IF EXISTS $operator' >/dev/null 2>&1 || true"
assert_match "the owner's member imports the registry (temporary tables)" "og.area \(areas.csv\): 0 added, 0 changed, 0 removed, [0-9]+ unchanged" \
	"$("$ONEGRID_BIN/onegridctl" registry import --db "host=$PGHOST port=$PGPORT dbname=$TEST_DB user=$operator" \
		--dry-run "$ONEGRID_REPO/deploy/sample/registry" 2>&1)"
assert_eq "begin_batch refuses an epoch nobody took" \
	"error: ERROR:  stale dispatch epoch 7 for shard \"6502\" (current <NULL>)" \
	"$(as onegrid_archive "SELECT og.begin_batch('6502', 7, 'x')" | head -1)"
# A SECURITY DEFINER function that does not name pg_temp last searches the caller's
# temporary schema first for relations: every one must (migration 017).
assert_eq "every SECURITY DEFINER function searches pg_temp last" "" \
	"$(sql "$TEST_DB" "SELECT string_agg(p.oid::regprocedure::text, ', ')
	                   FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	                  WHERE p.prosecdef AND n.nspname IN ('og', 'audit', 'feed')
	                    AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c
	                                     WHERE c LIKE 'search_path=%pg_temp')")"
# A SECURITY DEFINER function runs with the owner's rights: only the roles it is for may
# call it. The two trigger functions of the feed could be called by anyone (EXECUTE is
# PUBLIC's unless revoked): a login attached them to a temporary table of its own, and its
# made-up rows became feed rows, as the owner (review).
assert_eq "no SECURITY DEFINER function may be called by PUBLIC" "" \
	"$(sql "$TEST_DB" "SELECT string_agg(p.oid::regprocedure::text, ', ')
	                   FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	                  WHERE p.prosecdef AND n.nspname IN ('og', 'audit', 'feed')
	                    AND has_function_privilege('public', p.oid, 'EXECUTE')")"
for login in onegrid_dispatch onegrid_archive; do
	assert_eq "$login cannot make feed rows with og.feed_case_change on a table of its own" denied \
		"$(as "$login" "CREATE TEMP TABLE fake (case_id text, unit_code text, supervisor_unit text, state text,
		                                        deadline_at timestamptz, last_ledger_id bigint);
		                CREATE TRIGGER forge AFTER INSERT ON pg_temp.fake REFERENCING NEW TABLE AS new_case
		                  FOR EACH STATEMENT EXECUTE FUNCTION og.feed_case_change();
		                INSERT INTO fake VALUES ('650204-00000001', 'X', NULL, 'dispatched', now(), 1)")"
done
assert_eq "nor can the owner attach it elsewhere" \
	"error: ERROR:  og.feed_case_change() makes the feed of og.case only, not of fake" \
	"$(as postgres "CREATE TEMP TABLE fake (case_id text, unit_code text, supervisor_unit text, state text,
	                                        deadline_at timestamptz, last_ledger_id bigint);
	                CREATE TRIGGER forge AFTER INSERT ON pg_temp.fake REFERENCING NEW TABLE AS new_case
	                  FOR EACH STATEMENT EXECUTE FUNCTION og.feed_case_change();
	                INSERT INTO fake VALUES ('650204-00000001', 'X', NULL, 'dispatched', now(), 1)" | head -1)"
assert_eq "no feed row was made, pending or numbered" "0|0" \
	"$(sql "$TEST_DB" "SELECT (SELECT count(*) FROM og.assignment_pending), (SELECT count(*) FROM og.assignment)")"
# Every object is onegrid_owner's (001): a SECURITY DEFINER function of the owner cannot
# call what it does not own (019: og.stored_outcome belonged to the migrating superuser).
assert_eq "everything in og, audit and feed is owned by onegrid_owner" "" \
	"$(sql "$TEST_DB" "SELECT string_agg(name, ', ') FROM (
	     SELECT p.oid::regprocedure::text AS name FROM pg_proc p
	       JOIN pg_namespace n ON n.oid = p.pronamespace
	      WHERE n.nspname IN ('og', 'audit', 'feed') AND pg_get_userbyid(p.proowner) <> 'onegrid_owner'
	     UNION ALL
	     SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	      WHERE n.nspname IN ('og', 'audit', 'feed') AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
	        AND pg_get_userbyid(c.relowner) <> 'onegrid_owner') x")"

# Another operator's session (an owner's member may take advisory locks; before 027 any
# login could, an auditor's too) that holds migrate's lock kept `onegridctl migrate`
# waiting with no word of why (review). migrate now names the session it waits for, and
# goes on once it ends.
"$PG_BIN/psql" -XAtq -d "$TEST_DB" -U "$operator" \
	-c "SELECT pg_advisory_lock(hashtext('onegrid migrate'))" -c "SELECT pg_sleep(120)" >/dev/null 2>&1 &
holder=$!
on_exit "kill $holder 2>/dev/null || true"
# The same lock in another database (another test's migrate, say) is another lock.
"$PG_BIN/psql" -XAtq -d postgres \
	-c "SELECT pg_advisory_lock(hashtext('onegrid migrate'))" -c "SELECT pg_sleep(120)" >/dev/null 2>&1 &
other=$!
on_exit "kill $other 2>/dev/null || true"
held() { [[ $(sql "$TEST_DB" "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                              WHERE l.locktype = 'advisory' AND l.granted AND a.usename = '$operator'
                                AND a.datname = current_database()") == 1 ]]; }
og_poll 20 held || fail "the operator's session holds the lock"
held_elsewhere() { [[ $(sql postgres "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                                      WHERE l.locktype = 'advisory' AND l.granted AND a.datname = 'postgres'") -ge 1 ]]; }
og_poll 20 held_elsewhere || fail "a session of another database holds its own"
"$ONEGRID_BIN/onegridctl" migrate --db "dbname=$TEST_DB" --sql-dir "$ONEGRID_REPO/deploy/sql" >"$TEST_DIR/migrate.out" 2>"$TEST_DIR/migrate.err" &
migrate=$!
on_exit "kill $migrate 2>/dev/null || true"
og_poll 20 grep -qF "another session holds the migration lock: pid" "$TEST_DIR/migrate.err" ||
	fail "migrate names the session it waits for ($(cat "$TEST_DIR/migrate.err"))"
# Only this database's holder: advisory locks are the database's (tests run side by side,
# each migrating its own).
assert_match "it names the operator's session, and no other" "holds the migration lock: pid [0-9]+ \\(user $operator, application \"psql\", connected [^)]*\\); waiting" \
	"$(cat "$TEST_DIR/migrate.err")"
sql "$TEST_DB" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '$operator'
                AND datname = current_database()" >/dev/null
rc=0
wait "$migrate" || rc=$?
assert_eq "once it ends, migrate runs (exit status 0)" 0 "$rc"
assert_match "and has nothing to apply" "schema up to date" "$(cat "$TEST_DIR/migrate.out")"

# A copy restored without its owners (pg_restore --no-owner as the superuser, say) has
# objects of another owner: its SECURITY DEFINER functions run with that role's rights, and
# migrate, applying definitions as onegrid_owner, cannot replace them. migrate names them
# and applies nothing (it checked no owner: the first definition it had to apply failed
# with "must be owner", and with none to apply it said "up to date"); --reassign-owners
# gives them back.
sql "$TEST_DB" "ALTER SCHEMA audit OWNER TO postgres; ALTER FUNCTION og.generation_check() OWNER TO postgres;
                ALTER VIEW audit.kpi OWNER TO postgres" >/dev/null
migrate() { "$ONEGRID_BIN/onegridctl" migrate --db "dbname=$TEST_DB" --sql-dir "$ONEGRID_REPO/deploy/sql" "$@"; }
others="3 objects of og, audit and feed belong to another role than onegrid_owner \\(a copy restored without its owners\\?\\): +function og.generation_check\\(\\) \\(owner postgres\\) +schema audit \\(owner postgres\\) +view audit.kpi \\(owner postgres\\) "
for how in "" --status --dry-run; do
	rc=0
	migrate $how >"$TEST_DIR/owners.out" 2>"$TEST_DIR/owners.err" || rc=$?
	assert_eq "migrate ${how:-(a run)} fails on objects of another owner" 1 "$rc"
	assert_match "and names them" "$others" "$(tr '\n' ' ' <"$TEST_DIR/owners.err")"
done
# Without the conninfo, which may hold a password.
assert_match "and says how to give them back" "run it again with --reassign-owners, as the superuser" \
	"$(cat "$TEST_DIR/owners.err")"
assert_eq "a run changed no owner" "postgres postgres postgres" \
	"$(sql "$TEST_DB" "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'audit'") $(sql "$TEST_DB" "SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE oid = 'og.generation_check()'::regprocedure") $(sql "$TEST_DB" "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'audit.kpi'::regclass")"
# On a live database: an auditor's transaction reads audit.kpi and stays open. Giving the
# view back takes its strongest lock; migrate waits at most a few seconds at a time, names
# the session, and tries again, so another auditor's query of the view is not queued
# behind it meanwhile (before: it waited for as long as the first transaction lasted).
"$PG_BIN/psql" -XAtq -d "$TEST_DB" -U onegrid_audit -v ON_ERROR_STOP=1 \
	-c "BEGIN; SELECT count(*) FROM audit.kpi; SELECT pg_sleep(600); COMMIT" >/dev/null 2>&1 &
reader=$!
on_exit "kill $reader 2>/dev/null || true"
reading() { [[ $(sql "$TEST_DB" "SELECT count(*) FROM pg_stat_activity WHERE usename = 'onegrid_audit'
                                  AND datname = current_database() AND query LIKE '%pg_sleep%'") == 1 ]]; }
og_poll 20 reading || fail "the auditor's transaction is open"
migrate --reassign-owners >"$TEST_DIR/owners.out" 2>"$TEST_DIR/owners.err" &
reassigning=$!
on_exit "kill $reassigning 2>/dev/null || true"
og_poll 30 grep -qF "giving the owners back waits for locks other sessions hold: pid" "$TEST_DIR/owners.err" ||
	fail "migrate --reassign-owners says it waits ($(cat "$TEST_DIR/owners.err"))"
assert_match "--reassign-owners names the auditor's session it waits for" "user onegrid_audit" "$(cat "$TEST_DIR/owners.err")"
assert_eq "meanwhile another auditor reads the view (within 20 s)" ok \
	"$("$PG_BIN/psql" -XAtq -d "$TEST_DB" -U onegrid_audit -c "SET statement_timeout = '20s'" \
		-c "SELECT 'ok' WHERE (SELECT count(*) FROM (SELECT 1 FROM audit.kpi LIMIT 1) k) >= 0" 2>&1)"
sql "$TEST_DB" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'onegrid_audit'
                AND datname = current_database() AND query LIKE '%pg_sleep%'" >/dev/null
rc=0
wait "$reassigning" || rc=$?
assert_eq "once it ends, migrate --reassign-owners runs (exit status 0; $(cat "$TEST_DIR/owners.err"))" 0 "$rc"
assert_match "and says what it gave back" "gave 3 objects of og, audit and feed back to onegrid_owner: +function og.generation_check\\(\\) \\(owner postgres\\) +schema audit \\(owner postgres\\) +view audit.kpi \\(owner postgres\\) +schema up to date" \
	"$(tr '\n' ' ' <"$TEST_DIR/owners.out")"
assert_eq "everything in og, audit and feed is onegrid_owner's again" "onegrid_owner onegrid_owner onegrid_owner" \
	"$(sql "$TEST_DB" "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'audit'") $(sql "$TEST_DB" "SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE oid = 'og.generation_check()'::regprocedure") $(sql "$TEST_DB" "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'audit.kpi'::regclass")"
rc=0
migrate >"$TEST_DIR/owners.out" 2>&1 || rc=$?
assert_eq "and a run finds nothing to give back" "0 schema up to date" "$rc $(grep -o 'schema up to date' "$TEST_DIR/owners.out")"
