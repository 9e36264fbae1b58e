#!/usr/bin/env bash
# onegridctl audit definitions: the views, functions, tables, triggers and grants of the
# record's schemas, each with a digest of its definition, compared with a database the
# auditor made from the release. audit verify proves the records, not what reads and writes
# them: a view of the owner's that hides overdue cases, a storage function that stores
# something else, a trigger, a grant (a column's too), a trigger dropped, an event
# trigger, a domain, a table of another schema that inherits one of the record's are
# each named, and so are the roles that may act as onegrid's, and the database's grants;
# og.ledger's monthly partitions count as one object however many months there are.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"

test_begin "definitions"
test_createdb
CTL=$ONEGRID_BIN/onegridctl
REF=${TEST_DB}_ref
on_exit "\"\$PG_BIN/psql\" -X -q -d postgres -c 'DROP DATABASE IF EXISTS $REF WITH (FORCE)' >/dev/null 2>&1"
pgcluster_createdb "$REF" || fail "create the reference database $REF"
defs() { # defs DB [--expect FILE]: as the auditor; prints the output, then "rc=N"
	local db=$1 rc=0
	shift
	"$CTL" audit definitions --db "dbname=$db user=onegrid_audit" "$@" 2>&1 || rc=$?
	echo "rc=$rc"
}

defs "$REF" >"$TEST_DIR/ref.txt"
assert_eq "the auditor lists the reference's definitions" "rc=0" "$(tail -1 "$TEST_DIR/ref.txt")"
sed -i '$d' "$TEST_DIR/ref.txt"
assert_match "one line per object: kind, SHA-256, name" \
	"^view [0-9a-f]{64} audit\\.kpi$" "$(grep ' audit\.kpi$' "$TEST_DIR/ref.txt")"
assert_match "functions are named with their arguments" \
	"^function [0-9a-f]{64} og\\.store_event\\(" "$(grep ' og\.store_event(' "$TEST_DIR/ref.txt")"
n=$(grep -vc '^#' "$TEST_DIR/ref.txt")

# The months to come and months long past are partitions of the ledger like any other.
sql "$TEST_DB" "SELECT og.ensure_ledger_partition('2020-01-15'), og.ensure_ledger_partition('2031-07-01')" >/dev/null
assert_eq "a database made the same way, with more months, is as the reference" \
	"definitions: $n objects, each as in $TEST_DIR/ref.txt|rc=0" \
	"$(defs "$TEST_DB" --expect "$TEST_DIR/ref.txt" | paste -sd'|')"

# Auditors often work on a restored copy: pg_dump and psql make the same definitions (a
# literal column of audit.kpi came back as `'street'::text AS text`: "CHANGED view
# audit.kpi" on an untouched copy; a new user's trial).
COPY_DB=${TEST_DB}_copy
on_exit "\"\$PG_BIN/psql\" -X -q -d postgres -c 'DROP DATABASE IF EXISTS $COPY_DB WITH (FORCE)' >/dev/null 2>&1"
sql postgres "CREATE DATABASE $COPY_DB" >/dev/null
"$PG_BIN/pg_dump" -d "$TEST_DB" | "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$COPY_DB" >"$TEST_DIR/restore.out" 2>&1 ||
	fail "restore the copy: $(tail -3 "$TEST_DIR/restore.out")"
# Database privileges are not in a pg_dump: the copy lets PUBLIC make temporary tables,
# and onegrid_owner's logins may not (registry import stages its files in them).
# `onegridctl migrate`, which the restore procedure runs (docs/operating.md), takes the
# one and gives the other back.
assert_eq "a pg_dump copy of it differs in the database's privileges only" \
	"CHANGED database this|definitions: 1 of $n objects differ from $TEST_DIR/ref.txt|rc=1" \
	"$(defs "$COPY_DB" --expect "$TEST_DIR/ref.txt" | paste -sd'|')"
"$CTL" migrate --db "dbname=$COPY_DB" --sql-dir "$ONEGRID_REPO/deploy/sql" >"$TEST_DIR/migrate.out" 2>&1 ||
	fail "migrate the copy: $(tail -3 "$TEST_DIR/migrate.out")"
assert_match "migrate gives onegrid's roles their rights in the copy again, and says so" \
	"had lost rights migration 018 granted .*: granted CONNECT to onegrid_owner, CREATE to onegrid_owner, TEMPORARY to onegrid_owner, CONNECT to onegrid_writer" \
	"$(cat "$TEST_DIR/migrate.out")"
assert_eq "then the copy is as the reference" \
	"definitions: $n objects, each as in $TEST_DIR/ref.txt|rc=0" \
	"$(defs "$COPY_DB" --expect "$TEST_DIR/ref.txt" | paste -sd'|')"
assert_eq "and a second migrate has nothing to grant" "" \
	"$("$CTL" migrate --db "dbname=$COPY_DB" --sql-dir "$ONEGRID_REPO/deploy/sql" 2>&1 | grep -i 'warning' || true)"

# The owner changes what the records are read and written through.
overdue=$(sql "$TEST_DB" "SELECT pg_get_viewdef('audit.overdue_cases')")
sql "$TEST_DB" "BEGIN; SET LOCAL ROLE onegrid_owner;
	CREATE OR REPLACE VIEW audit.overdue_cases AS SELECT * FROM (${overdue%;}) x WHERE false;
	CREATE OR REPLACE FUNCTION og.event_severity(e jsonb) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT 4';
	CREATE TRIGGER quiet BEFORE INSERT ON og.ledger_203107 FOR EACH ROW EXECUTE FUNCTION og.refuse_change();
	GRANT UPDATE ON og.ledger TO onegrid_writer;
	DROP TRIGGER append_only ON og.chain;
	GRANT UPDATE (case_id) ON og.case_report TO onegrid_writer;
	CREATE DOMAIN og.t_code AS text;
	COMMIT;
	CREATE SCHEMA t_x;
	CREATE TABLE t_x.extra () INHERITS (og.case_report);
	CREATE FUNCTION public.t_noop() RETURNS event_trigger LANGUAGE plpgsql AS 'BEGIN END';
	CREATE EVENT TRIGGER t_hush ON ddl_command_end EXECUTE FUNCTION public.t_noop();" >/dev/null
assert_eq "each change is named, and the check fails" \
	"ADDED   constraint t_x.extra.case_report_joined_check|ADDED   event_trigger t_hush|CHANGED function og.event_severity(jsonb)|CHANGED partitions og.ledger_YYYYMM|CHANGED table og.case_report|CHANGED table og.ledger|ADDED   table t_x.extra|MISSING trigger og.chain.append_only|ADDED   type og.t_code|CHANGED view audit.overdue_cases|definitions: 10 of $((n + 4)) objects differ from $TEST_DIR/ref.txt|rc=1" \
	"$(defs "$TEST_DB" --expect "$TEST_DIR/ref.txt" | paste -sd'|')"
rc=0
"$CTL" audit verify --db "dbname=$TEST_DB user=onegrid_audit" >/dev/null 2>&1 || rc=$?
assert_eq "(which audit verify, reading the records, does not see)" 0 "$rc"

# Who may act as onegrid's roles is the server's, not the schema's, but it decides who
# writes the record: a login given onegrid_writer stores batches that verify. Each role of
# onegrid's (its attributes, what it is a member of, its settings), each role that holds
# one's rights (but onegrid_feed's members, which the registry grants), each superuser,
# this database's owner, grants and settings, the default privileges that would give new
# objects away, and the grants on pg_catalog that are not initdb's are listed too. (Roles
# are the cluster's: the tests that change them hold ctest's lock "cluster_roles".)
sql "$TEST_DB" "DROP EVENT TRIGGER t_hush" >/dev/null
defs "$TEST_DB" | sed '$d' >"$TEST_DIR/now.txt"
m=$(grep -vc '^#' "$TEST_DIR/now.txt")
rogue=t_rogue_$$ inner=t_inner_$$ maker=t_maker_$$
# (Handlers run before the database is dropped: the default privileges go first, or the
# role cannot be dropped.)
on_exit "\"\$PG_BIN/psql\" -X -q -d postgres -c 'DROP ROLE IF EXISTS $rogue' -c 'DROP ROLE IF EXISTS $inner' -c 'DROP ROLE IF EXISTS $maker' >/dev/null 2>&1"
on_exit "\"\$PG_BIN/psql\" -X -q -d $TEST_DB -c 'DROP OWNED BY $rogue' >/dev/null 2>&1"
on_exit "\"\$PG_BIN/psql\" -X -q -d postgres -c 'ALTER ROLE onegrid_reader NOBYPASSRLS' -c 'ALTER ROLE ALL RESET t_onegrid.x' >/dev/null 2>&1"
sql "$TEST_DB" "CREATE ROLE $inner NOLOGIN IN ROLE onegrid_writer;
	CREATE ROLE $rogue LOGIN IN ROLE $inner, pg_write_all_data;
	CREATE ROLE $maker LOGIN CREATEROLE;
	ALTER ROLE onegrid_reader BYPASSRLS;
	ALTER ROLE onegrid_auditor IN DATABASE $TEST_DB SET session_replication_role = replica;
	GRANT TEMPORARY ON DATABASE $TEST_DB TO PUBLIC;
	ALTER DEFAULT PRIVILEGES FOR ROLE onegrid_owner IN SCHEMA og GRANT INSERT ON TABLES TO $rogue;
	GRANT EXECUTE ON FUNCTION pg_advisory_lock(bigint) TO PUBLIC;
	GRANT EXECUTE ON FUNCTION pg_read_file(text) TO onegrid_auditor;" >/dev/null
assert_eq "a role that writes, one through another, role attributes and settings, the database's grants, default privileges and grants on the catalog are named" \
	"CHANGED catalog_grants pg_catalog.pg_advisory_lock(bigint)|ADDED   catalog_grants pg_catalog.pg_read_file(text)|ADDED   createrole $maker|CHANGED database this|ADDED   default_privileges onegrid_owner og tables|ADDED   member onegrid_writer $inner|ADDED   member pg_write_all_data $rogue|ADDED   member $inner $rogue|CHANGED role onegrid_auditor|CHANGED role onegrid_reader|definitions: 10 of $((m + 6)) objects differ from $TEST_DIR/now.txt|rc=1" \
	"$(defs "$TEST_DB" --expect "$TEST_DIR/now.txt" | paste -sd'|')"
sql "$TEST_DB" "ALTER DEFAULT PRIVILEGES FOR ROLE onegrid_owner IN SCHEMA og REVOKE INSERT ON TABLES FROM $rogue;
	DROP ROLE $rogue; DROP ROLE $inner; DROP ROLE $maker; ALTER ROLE onegrid_reader NOBYPASSRLS;
	ALTER ROLE onegrid_auditor IN DATABASE $TEST_DB RESET session_replication_role;
	REVOKE TEMPORARY ON DATABASE $TEST_DB FROM PUBLIC;
	REVOKE EXECUTE ON FUNCTION pg_advisory_lock(bigint) FROM PUBLIC;
	REVOKE EXECUTE ON FUNCTION pg_read_file(text) FROM onegrid_auditor" >/dev/null
assert_eq "undone, nothing differs" "definitions: $m objects, each as in $TEST_DIR/now.txt|rc=0" \
	"$(defs "$TEST_DB" --expect "$TEST_DIR/now.txt" | paste -sd'|')"
# A setting for every role in every database (ALTER ROLE ALL SET; a harmless one here).
sql postgres "ALTER ROLE ALL SET t_onegrid.x = '1'" >/dev/null
assert_eq "a setting of every role's is named" \
	"CHANGED database this|definitions: 1 of $m objects differ from $TEST_DIR/now.txt|rc=1" \
	"$(defs "$TEST_DB" --expect "$TEST_DIR/now.txt" | paste -sd'|')"
sql postgres "ALTER ROLE ALL RESET t_onegrid.x" >/dev/null

# --show prints the text a line's SHA-256 is of: what an auditor compares to see what a
# CHANGED line changed.
line=$(grep '^role [0-9a-f]* onegrid_owner$' "$TEST_DIR/now.txt")
"$CTL" audit definitions --db "dbname=$TEST_DB user=onegrid_audit" --show "role onegrid_owner" >"$TEST_DIR/show.txt" ||
	fail "audit definitions --show"
assert_eq "--show heads the text with the object's line" "# $line" "$(head -1 "$TEST_DIR/show.txt")"
assert_match "and prints what it is: onegrid_owner is a member of onegrid_feed" "member of onegrid_feed with admin option" \
	"$(cat "$TEST_DIR/show.txt")"
assert_eq "the text printed is the one whose SHA-256 is listed" "$(cut -d' ' -f2 <<<"$line")" \
	"$(sed '1d' "$TEST_DIR/show.txt" | head -c -1 | sha256sum | cut -d' ' -f1)"
rc=0
"$CTL" audit definitions --db "dbname=$TEST_DB user=onegrid_audit" --show "view audit.no_such_view" >/dev/null 2>"$TEST_DIR/show.err" || rc=$?
assert_eq "an object not in the list: exit 1, said" "1|onegridctl audit definitions: no view audit.no_such_view in the list" \
	"$rc|$(cat "$TEST_DIR/show.err")"

# A list from another PostgreSQL major version is compared all the same, with a warning;
# a line that is not a definition stops the comparison.
sed '1s/PostgreSQL [0-9]*/PostgreSQL 14/' "$TEST_DIR/ref.txt" >"$TEST_DIR/ref14.txt"
assert_match "another major version is named" "ref14.txt was taken on PostgreSQL 14, this server is [0-9]+" \
	"$(defs "$REF" --expect "$TEST_DIR/ref14.txt" | head -1)"
printf 'view 12 audit.kpi\n' >"$TEST_DIR/bad.txt"
assert_match "a list that is not one is refused" "bad.txt:1: not a definition.*rc=2" \
	"$(defs "$REF" --expect "$TEST_DIR/bad.txt" | paste -sd' ')"
