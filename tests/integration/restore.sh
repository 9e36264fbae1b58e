#!/usr/bin/env bash
# A database restored from a backup has gone back in time. What was given after the backup
# must not be given again: case numbers (a unit's update would act on another case), the
# feed's seq (a reader that read further would skip the new rows), fencing epochs (a
# dispatch that outlived the restore would have its decisions from lost memory committed).
# First with the daemons stopped, as the docs say; then with them left running, the
# restored copy renamed into place under them; then the same backup restored once more (the
# database holds nothing the second restore did not: the server's clock tells them apart);
# last, a restore that keeps the database's identity. Each time the daemons find that the
# database went back (its new identity, og.generation_check; an epoch it has not given,
# og.epoch_went_back) and a new generation moves every counter on.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"
source "$(dirname "$0")/../lib/faults.sh"

test_begin "restore"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
sed -i 's/^\[intake\]$/[intake]\nresend_ms = 1000/' "$TEST_DIR/onegrid.conf"
og_start_all "$TEST_DIR"
og_gen_reports "$TEST_DB" 160 rs >"$TEST_DIR/all.jsonl"
for part in a:1 b:21 c:41 d:61 e:81 f:101 g:121 h:141; do
	sed -n "${part#*:},$((${part#*:} + 19))p" "$TEST_DIR/all.jsonl" >"$TEST_DIR/${part%:*}.jsonl"
done
cases_of() { grep -o '"case_id":"[^"]*"' "$TEST_DIR/$1.out" | cut -d'"' -f4 | sort -u; }
stored_in() { grep -c '"outcome":"stored"' "$TEST_DIR/$1.out" || true; }
# restore DUMP: the copy made in a database of its own, then put in place of TEST_DB.
restore() {
	sql postgres "CREATE DATABASE ${TEST_DB}_r TEMPLATE template0 ENCODING 'UTF8'"
	"$PG_BIN/pg_restore" --single-transaction --exit-on-error -d "${TEST_DB}_r" "$1"
	sql postgres "DROP DATABASE $TEST_DB WITH (FORCE)"
	sql postgres "ALTER DATABASE ${TEST_DB}_r RENAME TO $TEST_DB"
}
feed_max() { sql "$TEST_DB" "SELECT coalesce(max(seq), 0) FROM og.assignment"; }
# publish_through_restarts NAME: publishes NAME.jsonl, starting dispatch again whenever it
# exits to reload (as systemd would), and checks that every event was answered.
publish_through_restarts() {
	local pub rc=0
	og_publish_named "$TEST_DIR" "$1" &
	pub=$!
	on_exit "kill $pub 2>/dev/null || true"
	og_restart_while dispatch "$TEST_DIR" "$pub"
	wait "$pub" || rc=$?
	assert_eq "the publisher got every answer ($1)" 0 "$rc"
}

og_publish_named "$TEST_DIR" a
assert_eq "20 stored before the backup" 20 "$(stored_in a)"
"$PG_BIN/pg_dump" -Fc -d "$TEST_DB" -f "$TEST_DIR/t0.dump"
a_ledger=$(sql "$TEST_DB" "SELECT max(ledger_id) FROM og.ledger")
og_publish_named "$TEST_DIR" b
assert_eq "20 more stored and acknowledged after it" 20 "$(stored_in b)"
b_feed=$(feed_max)
b_epoch=$(sql "$TEST_DB" "SELECT epoch FROM og.dispatch_epoch")
b_ledger=$(sql "$TEST_DB" "SELECT max(ledger_id) FROM og.ledger")
assert_ge "the feed told units of them" 20 "$b_feed"

# 1. Stopped, restored, started.
og_stop_all "$TEST_DIR"
restore "$TEST_DIR/t0.dump"
assert_eq "the restored database lacks what came after the backup" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key WHERE source_event_id BETWEEN 'rs-000021' AND 'rs-000040'")"
assert_eq "a copy restored into a new database gives PUBLIC temporary tables again" t \
	"$(sql "$TEST_DB" "SELECT has_database_privilege('public', current_database(), 'TEMPORARY')")"
out=$("$ONEGRID_BIN/onegridctl" migrate --db "dbname=$TEST_DB" --sql-dir "$ONEGRID_REPO/deploy/sql" 2>&1)
assert_match "migrate takes that right again, and says so" \
	"PUBLIC could make temporary tables in database $TEST_DB again .*: revoked" "$out"
assert_eq "it is gone" f \
	"$(sql "$TEST_DB" "SELECT has_database_privilege('public', current_database(), 'TEMPORARY')")"
og_start_all "$TEST_DIR"
og_publish_named "$TEST_DIR" c
assert_eq "new reports are stored" 20 "$(stored_in c)"
assert_eq "no case number acknowledged after the backup is given again" "" \
	"$(comm -12 <(cases_of b) <(cases_of c))"
assert_eq "the feed's new rows come after every seq a reader saw" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.assignment a JOIN og.event_key k USING (case_id)
	                   WHERE k.source_event_id BETWEEN 'rs-000041' AND 'rs-000060' AND a.seq <= $b_feed")"
assert_ge "dispatch's epoch is past the one it held before" "$((b_epoch + 1))" \
	"$(sql "$TEST_DB" "SELECT epoch FROM og.dispatch_epoch")"
assert_eq "nor routing rule ids (a rule re-entered would take a lost one's)" t \
	"$(sql "$TEST_DB" "SELECT last_value > 1000000000 FROM og.routing_rule_rule_id_seq")"
assert_eq "ledger ids are not given again" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.ledger WHERE ledger_id > $a_ledger AND ledger_id <= $b_ledger")"
assert_match "the auditor sees the new generation and why" \
	"^2\|the database's identity changed \(database OID [0-9]+, was [0-9]+\)" \
	"$(sql "$TEST_DB" "SET ROLE onegrid_audit; SELECT generation || '|' || why FROM audit.database_generations
	                   ORDER BY generation DESC LIMIT 1")"
rc=0
out=$("$ONEGRID_BIN/onegridctl" audit verify --db "dbname=$TEST_DB user=onegrid_audit") || rc=$?
assert_eq "the restored and continued record verifies" 0 "$rc"
assert_eq "the case projection agrees with the ledger" 0 \
	"$("$ONEGRID_BIN/onegridctl" rebuild-cases --db "dbname=$TEST_DB" >/dev/null; echo $?)"

# 2. Left running: a backup, more events, then the backup renamed into place under them.
"$PG_BIN/pg_dump" -Fc -d "$TEST_DB" -f "$TEST_DIR/t1.dump"
og_publish_named "$TEST_DIR" d
assert_eq "20 stored after the second backup" 20 "$(stored_in d)"
d_feed=$(feed_max)
"$ONEGRID_BIN/onegridctl" audit heads --db "dbname=$TEST_DB user=onegrid_audit" >"$TEST_DIR/heads-d.txt"
d_epoch=$(sql "$TEST_DB" "SELECT epoch FROM og.dispatch_epoch")
restore "$TEST_DIR/t1.dump"
publish_through_restarts e
assert_eq "every report after the restore stored" 20 "$(stored_in e)"
assert_match "the dispatch that outlived the restore said why it stopped deciding" \
	"the database is of generation 3, not 2 as when this dispatch loaded its cases" \
	"$(cat "$TEST_DIR/dispatch.log")"
assert_match "so did archive" "<2>the database is of generation 3, not 2 as before" \
	"$(cat "$TEST_DIR/archive.log")"
assert_eq "no case number acknowledged after the second backup is given again" "" \
	"$(comm -12 <(cases_of d) <(cases_of e))"
assert_eq "nor one of the first lost time" "" "$(comm -12 <(cases_of b) <(cases_of e))"
assert_eq "the feed's new rows come after every seq a reader saw" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.assignment a JOIN og.event_key k USING (case_id)
	                   WHERE k.source_event_id >= 'rs-000081' AND a.seq <= $d_feed")"
assert_ge "dispatch's epoch is past the one it held" "$((d_epoch + 1))" \
	"$(sql "$TEST_DB" "SELECT epoch FROM og.dispatch_epoch")"
assert_eq "no valid report was blamed for our fault" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.rejection WHERE reason = 'REASON_STORAGE_REFUSED'")"
assert_eq "each event of the restored database and after it stored once" "60|60" \
	"$(sql "$TEST_DB" "SELECT count(*) || '|' || count(DISTINCT case_id) FROM og.event_key")"
rc=0
out=$("$ONEGRID_BIN/onegridctl" audit verify --db "dbname=$TEST_DB user=onegrid_audit") || rc=$?
assert_eq "the record verifies" 0 "$rc"
rc=0
out=$("$ONEGRID_BIN/onegridctl" audit verify --db "dbname=$TEST_DB user=onegrid_audit" \
	--expect-heads "$TEST_DIR/heads-d.txt") || rc=$?
assert_eq "heads kept before the restore no longer match" 1 "$rc"
assert_match "verify names the restore that explains it" \
	"the database began generation 3 at [^:]+:[^:]+:[^:]+: the database's identity changed \\(database OID" "$out"
assert_eq "the case projection agrees with the ledger" 0 \
	"$("$ONEGRID_BIN/onegridctl" rebuild-cases --db "dbname=$TEST_DB" >/dev/null; echo $?)"

# 3. The same backup restored again: what the first restore's time gave is not given again.
e_feed=$(feed_max)
e_epoch=$(sql "$TEST_DB" "SELECT epoch FROM og.dispatch_epoch")
og_stop_all "$TEST_DIR"
restore "$TEST_DIR/t1.dump"
og_start_all "$TEST_DIR"
og_publish_named "$TEST_DIR" f
assert_eq "reports after the second restore of the same backup stored" 20 "$(stored_in f)"
assert_eq "no case number the first restore's time gave is given again" "" \
	"$(comm -12 <(cases_of e) <(cases_of f))"
assert_eq "nor a feed seq" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.assignment a JOIN og.event_key k USING (case_id)
	                   WHERE k.source_event_id >= 'rs-000101' AND a.seq <= $e_feed")"
assert_ge "nor an epoch" "$((e_epoch + 1))" "$(sql "$TEST_DB" "SELECT epoch FROM og.dispatch_epoch")"
assert_match "new case numbers are 13 digits, of the time" "^[0-9]{6}-[0-9]{13}$" "$(cases_of f | head -1)"

# 4. Gone back with its identity kept: the third backup restored into the same database
# (its schemas dropped and restored in one transaction) under running daemons, as a
# snapshot of the data directory put back would be. Nothing sees the identity change, but
# the dispatch started after the backup holds an epoch the database has not given, and the
# lost time's case numbers and feed seqs were given. archive holds its records (it cannot
# tell a dispatch of another database); the dispatch, which took its epoch from this
# database, finds the shard's epoch below its own and opens a new generation
# (og.epoch_went_back): the records are dropped, it exits to load the database again, and
# intake's resends are decided anew, with nothing given again.
"$PG_BIN/pg_dump" -Fc -d "$TEST_DB" -f "$TEST_DIR/t2.dump"
og_stop dispatch "$TEST_DIR"
og_start dispatch "$TEST_DIR"
og_publish_named "$TEST_DIR" g
assert_eq "20 stored after the third backup, by a dispatch started after it" 20 "$(stored_in g)"
g_feed=$(feed_max)
g_epoch=$(sql "$TEST_DB" "SELECT epoch FROM og.dispatch_epoch")
g_gen=$(sql "$TEST_DB" "SELECT max(generation) FROM og.database_generation")
identity() { sql "$TEST_DB" "SELECT system_identifier || '/' || database_oid || '/' || timeline FROM og.database_identity()"; }
g_identity=$(identity)
{
	echo 'DROP SCHEMA og, audit, feed CASCADE;'
	echo 'DROP TABLE public.onegrid_migration, public.onegrid_repeatable;'
	"$PG_BIN/pg_restore" -f - "$TEST_DIR/t2.dump"
} | PGOPTIONS='-c client_min_messages=warning' psql -X -q -1 -v ON_ERROR_STOP=1 -d "$TEST_DB" >/dev/null
assert_eq "the database went back and kept its identity" "$g_identity" "$(identity)"
assert_eq "so no generation was opened for it" "$g_gen" \
	"$(sql "$TEST_DB" "SELECT og.generation_check()")"
publish_through_restarts h
assert_eq "every report after the restore stored" 20 "$(stored_in h)"
assert_match "the dispatch that outlived the restore found it out, and opened a generation" \
	"<2>the database went back in time and kept its identity .*: shard 6502's epoch there is below ours, $g_epoch, which it gave; it is of generation $((g_gen + 1)) now " \
	"$(cat "$TEST_DIR/dispatch.log")"
# (archive held the records it got of that epoch meanwhile, or, getting them only after
# the generation opened, dropped them as stale: which depends on the machine's speed.)
assert_eq "nothing it decided from the lost time's memory was stored" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.batch WHERE epoch = $g_epoch")"
assert_match "the generation says why" \
	"^dispatch [^ ]+ holds epoch [0-9]+ of shard 6502, which the database says it has not given" \
	"$(sql "$TEST_DB" "SELECT why FROM og.database_generation WHERE generation = $((g_gen + 1))")"
assert_eq "no case number acknowledged after the third backup is given again" "" \
	"$(comm -12 <(cases_of g) <(cases_of h))"
assert_eq "nor a feed seq" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.assignment a JOIN og.event_key k USING (case_id)
	                   WHERE k.source_event_id >= 'rs-000141' AND a.seq <= $g_feed")"
assert_eq "none recorded as refused by storage" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.rejection WHERE reason = 'REASON_STORAGE_REFUSED'")"
assert_eq "each event of the restored database and after it stored once" "80|80" \
	"$(sql "$TEST_DB" "SELECT count(*) || '|' || count(DISTINCT case_id) FROM og.event_key")"
rc=0
"$ONEGRID_BIN/onegridctl" audit verify --db "dbname=$TEST_DB user=onegrid_audit" >/dev/null || rc=$?
assert_eq "the record verifies" 0 "$rc"
# An epoch the database has given is no sign of going back. Only dispatch's role may ask.
gen=$(sql "$TEST_DB" "SELECT max(generation) FROM og.database_generation")
went_back() { sql "$TEST_DB" "SET ROLE onegrid_reader; SELECT og.epoch_went_back($1, 't')"; }
assert_eq "one the database has given returns its generation" "$gen" \
	"$(went_back "(SELECT shard FROM og.dispatch_epoch), (SELECT epoch FROM og.dispatch_epoch)")"
assert_eq "and opens none" "$gen" "$(sql "$TEST_DB" "SELECT max(generation) FROM og.database_generation")"
for role in onegrid_writer onegrid_auditor; do
	rc=0
	sql "$TEST_DB" "SET ROLE $role; SELECT og.epoch_went_back('x', 1, 't')" >/dev/null 2>&1 || rc=$?
	assert_eq "$role may not call it" 1 "$rc"
done

# A new generation moves every shard's epoch past the time, not only the highest one's: a
# shard whose dispatch took its epoch long ago may have taken another in the lost time.
sql "$TEST_DB" "INSERT INTO og.dispatch_epoch VALUES ('6599', 5, 'a shard started long ago', now())"
t=$(sql "$TEST_DB" "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint")
sql "$TEST_DB" "SELECT og.new_generation('restore.sh: every shard')" >/dev/null 2>&1
assert_eq "a new generation moves every shard's epoch past the time" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.dispatch_epoch WHERE epoch <= $t")"

# A case id that is not "district-number" (made by hand, or damaged) has no number: the
# generation still opens, and moves the numbers past the highest well-formed one (the cast
# of every id failed on it: "invalid input syntax for type bigint").
sql "$TEST_DB" "INSERT INTO og.case
                SELECT (jsonb_populate_record(c, jsonb_build_object('case_id', c.district_code || '-7a'))).*
                  FROM og.case c ORDER BY c.case_id LIMIT 1" >/dev/null
highest=$(sql "$TEST_DB" "SELECT max(substr(case_id, 8)::bigint) FROM og.case WHERE case_id ~ '^[0-9]{6}-[0-9]+$'")
[[ $highest =~ ^[0-9]+$ ]] || fail "no well-formed case id to compare with: \"$highest\""
rc=0
out=$(sql "$TEST_DB" "SELECT og.new_generation('restore.sh: a malformed case id')" 2>&1) || rc=$?
((rc == 0)) || echo "# $out"
assert_eq "a generation opens beside a malformed case id" 0 "$rc"
assert_eq "and reads the highest well-formed case number" "$highest" \
	"$(sql "$TEST_DB" "SELECT moved -> 'case_number' ->> 0 FROM og.database_generation ORDER BY generation DESC LIMIT 1")"
sql "$TEST_DB" "DELETE FROM og.case WHERE case_id !~ '^[0-9]{6}-[0-9]+$'" >/dev/null

# A dispatch that takes its epoch while a generation opens keeps it: the generation never
# moves an epoch back (one that had waited for the generations' lock, holding the time it
# started with, overwrote a newer epoch; that dispatch then found the database below its
# epoch and opened another generation, needlessly). Three sessions, each fed its statements
# one at a time, each step taken once the last one shows in pg_locks or pg_stat_activity:
# S3 holds the generations' lock; S2's generation waits for it; S1 takes an epoch; S3
# commits; S2 waits for S1's row; S1 commits.
session() { # NAME VAR: a psql session reading its statements from file descriptor $VAR
	local fd
	exec {fd}> >(PGAPPNAME=og-test-$1 "$PG_BIN/psql" -XAtq -v ON_ERROR_STOP=1 -d "$TEST_DB" \
		>"$TEST_DIR/$1.out" 2>&1)
	printf -v "$2" %s "$fd"
}
seen() { [[ $(sql "$TEST_DB" "$1") == 1 ]]; }
lock_of() { # APP GRANTED LOCKTYPE
	echo "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
	      WHERE a.application_name = 'og-test-$1' AND l.granted = $2 AND l.locktype = '$3'
	        AND ('$3' <> 'relation' OR l.relation = 'og.database_generation'::regclass)"
}
session s3 s3
echo "BEGIN; LOCK og.database_generation IN EXCLUSIVE MODE;" >&"$s3"
og_poll 60 seen "$(lock_of s3 true relation)" || fail "S3 did not take the generations' lock"
session s2 s2
echo "SELECT og.new_generation('restore.sh: a generation opening while a dispatch starts');" >&"$s2"
og_poll 60 seen "$(lock_of s2 false relation)" || fail "the generation did not wait for the lock"
session s1 s1
echo "BEGIN; SELECT og.take_epoch('6502', 'restore.sh S1');" >&"$s1"
og_poll 60 seen "SELECT count(*) FROM pg_stat_activity
                 WHERE application_name = 'og-test-s1' AND state = 'idle in transaction'" ||
	fail "S1 did not take its epoch"
echo "COMMIT;" >&"$s3"
og_poll 60 seen "$(lock_of s2 false transactionid)" || fail "the generation did not wait for S1's row"
echo "COMMIT;" >&"$s1"
exec {s1}>&- {s2}>&- {s3}>&-
gone() { seen "SELECT (count(*) = 0)::int FROM pg_stat_activity WHERE application_name LIKE 'og-test-s_'"; }
og_poll 60 gone || fail "the sessions did not end"
assert_eq "no session of the race failed" "" "$(grep -h 'ERROR' "$TEST_DIR"/s[123].out || true)"
assert_eq "the generation opened while S1 took its epoch" 1 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.database_generation
	                   WHERE why = 'restore.sh: a generation opening while a dispatch starts'")"
assert_ge "the epoch taken while the generation opened was not moved back" \
	"$(grep -E '^[0-9]+$' "$TEST_DIR/s1.out" | head -1)" \
	"$(sql "$TEST_DB" "SELECT epoch FROM og.dispatch_epoch WHERE shard = '6502'")"
