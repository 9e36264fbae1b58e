#!/usr/bin/env bash
# archive makes the hash-chain digests of the ledger rows and event keys its set-based calls
# store (og.store_opened, og.store_moved), and og.end_batch takes them instead of making
# them (4.5 µs of the server's time a row). They must be the digests the database, and
# `onegridctl audit verify`, make of the rows as stored, for any content: reports whose
# text holds quotes, backslashes, control characters, 4-byte UTF-8 and coordinates jsonb
# writes without an exponent. og.end_batch checks them in every batch (counts, a row of
# each district picked at random) and compares them all on archive's first batch (and one
# in 64): a difference would say so and archive would stop making them; here there is
# none, and every row stored set-based was given.
# A batch mixing given rows with rows stored one by one; og.end_batch's checks, called
# directly with what archive could give, right and wrong. Then the database is made to
# store something else than archive sent (a trigger that adds a key to every ledger row's
# detail) while archive runs: its next batch finds the difference, archive says so in its
# log and makes no more digests, and every link is still the database's, so the chains
# verify.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"
source "$(dirname "$0")/../lib/faults.sh"

test_begin "given_digests"
test_createdb
sql "$TEST_DB" "ALTER DATABASE $TEST_DB SET track_functions = 'pl'"
og_write_config "$TEST_DIR" "$TEST_DB"
APORT=$(og_free_tcp_port)
sed -i -e "/^\[archive\]$/a metrics_listen = 127.0.0.1:$APORT" \
	-e 's/^batch_wait_ms = .*$/batch_wait_ms = 100/' "$TEST_DIR/onegrid.conf"
og_start_all "$TEST_DIR"

# reports N PREFIX: N reports whose texts and coordinates vary as described above.
reports() {
	og_gen_reports "$TEST_DB" "$1" "$2" | python3 -c '
import json, sys
texts = ["引号 \" 反斜杠 \\ 斜杠 /", "制表\t换行\n回车\r", "控制 \u0001\u001f\u007f 字符",
         "emoji \U0001F600 \U00020000 扩展B", "unicode escapes \u2028\u2029 \u00e9",
         "{\"json\": [1, 2]} 在文本里", "  前后空格  ", "长" * 300]
coords = [(31.2304, 121.4737), (0.00001, 100.5), (-0.000000123, -179.99999999999997),
          (89.99999999999999, 1e-7), (45.65, 0), (12.5, 0.1), (-33.8688, 151.2093)]
for n, line in enumerate(sys.stdin):
    e = json.loads(line)
    r = e["report"]
    r["title"] = texts[n % len(texts)][:120] + " " + str(n)
    r["description"] = texts[(n + 3) % len(texts)]
    lat, lon = coords[n % len(coords)]
    e["location"] = {"latitude": lat, "longitude": lon}
    print(json.dumps(e, ensure_ascii=(n % 2 == 0)))
'
}
publish() { # publish FILE: every event answered stored
	"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 60 \
		--results "$1.out" "$1" >"$1.txt" 2>&1 || fail "publish $1: $(tail -n 3 "$1.txt")"
	assert_eq "every event of $(basename "$1") stored" "$(wc -l <"$1")" "$(grep -c '"outcome":"stored"' "$1.out")"
}
calls() { sql "$TEST_DB" "SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions WHERE schemaname = 'og' AND funcname = '$1'"; }
verify() {
	"$ONEGRID_BIN/onegridctl" audit verify --db "dbname=$TEST_DB" >"$TEST_DIR/verify.out" 2>&1 ||
		fail "audit verify ($1): $(tail -n 3 "$TEST_DIR/verify.out")"
	pass "the chains verify ($1): $(tail -n 1 "$TEST_DIR/verify.out")"
}

N=400
reports "$N" gd >"$TEST_DIR/r.jsonl"
publish "$TEST_DIR/r.jsonl"
# Status updates, each of its own case: og.store_moved.
sql "$TEST_DB" "SELECT format('{\"id\":\"acc-%s\",\"source\":\"%s\",\"type\":\"status\",\"time\":\"%s\",\"status\":{\"case_id\":\"%s\",\"status\":\"STATUS_ACCEPTED\",\"unit\":\"%s\",\"note\":\"已受理 \\\"%s\\\" \\t\"}}',
                         c.source_event_id, og.unit_source(c.unit_code),
                         to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                         c.case_id, c.unit_code, c.case_id)
                  FROM og.case c WHERE og.unit_source(c.unit_code) IS NOT NULL ORDER BY c.case_id" >"$TEST_DIR/s.jsonl"
publish "$TEST_DIR/s.jsonl"
counted() { (($(calls store_opened) > 0 && $(calls store_moved) > 0)); }
og_poll 30 counted || fail "no og.store_opened and og.store_moved calls counted"
assert_eq "nothing stored one by one (every row given)" "0 0" "$(calls store_event) $(calls store_decision)"
ROWS=$(sql "$TEST_DB" "SELECT count(*) FROM og.ledger")
assert_eq "two ledger rows an event" "$((2 * (N + $(wc -l <"$TEST_DIR/s.jsonl"))))" "$ROWS"
given() { [[ $(og_metric "$APORT" onegrid_archive_given_digests_total) == "$1" ]]; }
og_poll 30 given "$ROWS" || true # asserted below
assert_eq "archive made the digests of every ledger row, and still makes them" "$ROWS 1" \
	"$(og_metric "$APORT" onegrid_archive_given_digests_total onegrid_archive_own_digests | paste -sd' ')"
if grep -q "differ" "$TEST_DIR/archive.log"; then
	fail "the database found a digest that differs: $(grep "differ" "$TEST_DIR/archive.log" | head -n 2)"
fi
pass "og.end_batch found none that differs from its own"
assert_eq "texts stored as sent: the control characters, the 4-byte character, the quotes" "1 1 1" \
	"$(sql "$TEST_DB" "SELECT bool_or(detail #>> '{report,title}' LIKE E'%\\u0001\\u001f\\u007f%')::int,
	                          bool_or(detail #>> '{report,description}' LIKE '%😀%')::int,
	                          bool_or(detail #>> '{report,title}' LIKE '%\"%\\\\%')::int
	                     FROM og.ledger WHERE kind = 'event'" | tr '|' ' ')"
# (jsonb keeps numbers as numeric, so the stored text never has an exponent: what this
# checks is that the digests above covered such numbers.)
assert_eq "the rows hold coordinates C writes with an exponent (1e-07, 1e-05)" "t t" \
	"$(sql "$TEST_DB" "SELECT bool_or((detail #>> '{location,longitude}')::float8 = 1e-7),
	                          bool_or((detail #>> '{location,latitude}')::float8 = 0.00001)
	                     FROM og.ledger WHERE kind = 'event'" | tr '|' ' ')"
verify "every digest of the reports and updates made by archive"

# A batch that mixes rows archive gives (reports, set-based) with rows stored one by one
# (two updates of one case, in order): the latter's digests are the database's, after the
# given ones in each link.
GIVEN=$ROWS
og_gen_reports "$TEST_DB" 30 gm >"$TEST_DIR/m.jsonl"
sql "$TEST_DB" "SELECT format('{\"id\":\"%s-%s\",\"source\":\"%s\",\"type\":\"status\",\"time\":\"%s\",\"status\":{\"case_id\":\"%s\",\"status\":\"%s\",\"unit\":\"%s\"}}',
                         s, c.source_event_id, og.unit_source(c.unit_code),
                         to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                         c.case_id, CASE s WHEN 'r1' THEN 'STATUS_IN_PROGRESS' ELSE 'STATUS_RESOLVED' END,
                         c.unit_code)
                  FROM (SELECT * FROM og.case WHERE og.unit_source(unit_code) IS NOT NULL
                         ORDER BY case_id LIMIT 5) c, (VALUES ('r1'), ('r2')) v(s)
                 ORDER BY c.case_id, s" >>"$TEST_DIR/m.jsonl"
before_event=$(calls store_event)
publish "$TEST_DIR/m.jsonl"
more_one_by_one() { (($(calls store_event) > before_event)); }
og_poll 30 more_one_by_one ||
	fail "no update stored one by one"
MIXED=$(sql "$TEST_DB" "SELECT count(*) FROM (SELECT batch_id FROM og.ledger l
                          JOIN og.event_key k ON k.ledger_id = l.ledger_id
                         WHERE l.kind = 'event' AND (k.source_event_id LIKE 'gm-%' OR k.source_event_id LIKE 'r_-%')
                         GROUP BY batch_id HAVING bool_or(k.source_event_id LIKE 'gm-%')
                            AND bool_or(k.source_event_id LIKE 'r_-%')) b")
pass "updates stored one by one, in $MIXED batch(es) with given rows"
ROWS=$(sql "$TEST_DB" "SELECT count(*) FROM og.ledger")
og_poll 30 given "$((GIVEN + 60))" || true # asserted below
assert_eq "the reports' rows given, the updates' not, and archive still makes them" "$((GIVEN + 60)) 1" \
	"$(og_metric "$APORT" onegrid_archive_given_digests_total onegrid_archive_own_digests | paste -sd' ')"
verify "given and made digests in the same links"

# A fault that passes (archive's og.end_batch cancelled while it waits for a chain's head)
# is tried again, with digests: it says nothing about them.
og_lock_take "$TEST_DB" gd-lock og.chain_head SHARE || fail "a session takes the lock"
og_gen_reports "$TEST_DB" 5 gc >"$TEST_DIR/c.jsonl"
publish "$TEST_DIR/c.jsonl" &
PUB=$!
waiting() { og_backend_waiting "$TEST_DB" onegrid-archive; }
og_poll 30 waiting || fail "archive did not wait for the chain's head"
og_backend_cancel "$TEST_DB" onegrid-archive >/dev/null
og_lock_release "$TEST_DB" gd-lock
wait "$PUB" || fail "the reports published while archive waited"
og_poll 30 given "$((GIVEN + 70))" || true # asserted below
assert_eq "stored after the cancel, their rows given: archive still makes the digests" \
	"$((GIVEN + 70)) 1" \
	"$(og_metric "$APORT" onegrid_archive_given_digests_total onegrid_archive_own_digests | paste -sd' ')"
assert_match "the cancel was a fault archive tried again" "canceling statement due to user request" \
	"$(cat "$TEST_DIR/archive.log")"

# og.end_batch's contract, in transactions rolled back: rows as archive stores them (ten of
# the reports' rows, stored again under new keys), and what archive could give for them.
EPOCH=$(sql "$TEST_DB" "SELECT epoch FROM og.dispatch_epoch WHERE shard = '6502'")
contract() { # contract UPTO DISTRICTS LEDGER KEYS ROWS EVENTS FIRSTS LASTS CHECK: why | links right
	sql "$TEST_DB" <<SQL | tail -n 1
SET client_min_messages = error;
BEGIN;
SELECT og.begin_batch('6502', $EPOCH, 'test') \\gset
INSERT INTO og.ledger
  SELECT nextval('og.ledger_id_seq'), now(), currval('og.batch_id_seq'), district_code, kind,
         case_id, source_system, source_event_id || '-again', event_type, detail, body
    FROM (SELECT * FROM og.ledger WHERE kind IN ('event', 'decision') ORDER BY ledger_id LIMIT 10) l
   ORDER BY ledger_id;
INSERT INTO og.event_key (source_system, source_event_id, district_code, case_id, ledger_id,
                          stored_at)
  SELECT source_system, source_event_id, district_code, case_id, ledger_id, now()
    FROM og.ledger WHERE batch_id = currval('og.batch_id_seq') AND kind = 'event';
CREATE TEMP TABLE right_ ON COMMIT DROP AS
  SELECT (SELECT max(ledger_id) FROM og.ledger WHERE batch_id = currval('og.batch_id_seq')) AS upto,
         array_agg(district_code ORDER BY district_code) AS d,
         array_agg(ledger_digests ORDER BY district_code) AS l,
         array_agg(key_digests ORDER BY district_code) AS k,
         array_agg(rows ORDER BY district_code) AS n,
         array_agg(records - rows ORDER BY district_code) AS e,
         array_agg(first_ledger_id ORDER BY district_code) AS f,
         array_agg(last_ledger_id ORDER BY district_code) AS t
    FROM og.district_records(currval('og.batch_id_seq'), now(), true, 0, '{}');
-- The first six rows only (three events), as when the batch's later rows are stored one by one.
CREATE TEMP TABLE first6 ON COMMIT DROP AS
  SELECT max(ledger_id) AS upto6, array_agg(ledger_id) AS ids
    FROM (SELECT ledger_id FROM og.ledger WHERE batch_id = currval('og.batch_id_seq')
           ORDER BY ledger_id LIMIT 6) x;
CREATE TEMP TABLE part_ ON COMMIT DROP AS
  SELECT array_agg(district_code ORDER BY district_code) AS d6,
         array_agg(ledger_digests ORDER BY district_code) AS l6,
         array_agg(key_digests ORDER BY district_code) AS k6,
         array_agg(rows ORDER BY district_code) AS n6,
         array_agg(records - rows ORDER BY district_code) AS e6,
         array_agg(first_ledger_id ORDER BY district_code) AS f6,
         array_agg(last_ledger_id ORDER BY district_code) AS t6
    FROM first6,
         og.district_records(currval('og.batch_id_seq'), now(), true, 9223372036854775807, ids);
SELECT count(*) FROM right_, first6, part_, og.end_batch($1, $2, $3, $4, $5, $6, $7, $8, $9) \\gset
SELECT coalesce(current_setting('og.given_digests', true), '') || ' | '
       || (SELECT bool_and(c.hash = x.hash AND c.rows = x.rows)::text
             FROM og.chain c,
                  LATERAL og.chain_link(c.district_code, c.seq, c.batch_id, c.prev_hash) x
            WHERE c.batch_id = currval('og.batch_id_seq') AND c.district_code NOT LIKE 'shard:%');
ROLLBACK;
SQL
}
zeros="(SELECT array_agg(decode(repeat('00', octet_length(x)), 'hex')) FROM unnest(l) x)"
assert_eq "archive's digests, right: taken, links right" " | true" \
	"$(contract upto d l k n e f t false)"
assert_eq "and compared all (check)" " | true" "$(contract upto d l k n e f t true)"
assert_eq "the first rows given, the rest made here" " | true" \
	"$(contract upto6 d6 l6 k6 n6 e6 f6 t6 false)"
assert_eq "and compared all (check)" " | true" "$(contract upto6 d6 l6 k6 n6 e6 f6 t6 true)"
assert_eq "a wrong digest of every row: a row picked at random finds it" \
	"a digest of a row picked at random | true" "$(contract upto d "$zeros" k n e f t false)"
assert_eq "and check finds it" "a digest, all compared | true" "$(contract upto d "$zeros" k n e f t true)"
assert_eq "a row fewer than stored" "the rows it gave are not those stored | true" \
	"$(contract upto d l k "(SELECT array_agg(x - 1) FROM unnest(n) x)" e f t false)"
assert_eq "digests with no row given (given_upto 0)" "the rows it gave are not those stored | true" \
	"$(contract 0 d l k n e f t false)"
assert_eq "no given_upto, nothing given: every row's digest made" " | true" \
	"$(contract NULL "'{}'::text[]" "'{}'::bytea[]" "'{}'::bytea[]" "'{}'::int[]" "'{}'::int[]" "'{}'::bigint[]" "'{}'::bigint[]" false)"

# The database stores something else than archive sent, from now on: archive's next batch
# finds it (a row picked at random, or all of them compared), archive says so and makes no
# more digests, and every link is still the database's, so the chains verify.
sql "$TEST_DB" "CREATE FUNCTION public.test_detail_changed() RETURNS trigger LANGUAGE plpgsql AS \$\$
                BEGIN NEW.detail := NEW.detail || '{\"changed\": true}'; RETURN NEW; END \$\$;
                CREATE TRIGGER test_detail_changed BEFORE INSERT ON og.ledger
                  FOR EACH ROW EXECUTE FUNCTION public.test_detail_changed()" >/dev/null
reports 50 gx >"$TEST_DIR/x.jsonl"
publish "$TEST_DIR/x.jsonl"
og_poll 30 grep -q "did not take archive's digests" "$TEST_DIR/archive.log" ||
	fail "archive did not say that the database found a digest that differs"
pass "archive says so: $(grep -m 1 "did not take archive's digests" "$TEST_DIR/archive.log" | cut -c1-240)"
own_off() { [[ $(og_metric "$APORT" onegrid_archive_own_digests) == 0 ]]; }
og_poll 30 own_off || true # asserted below
assert_eq "and makes no more digests (given: none more)" "$((GIVEN + 70)) 0" \
	"$(og_metric "$APORT" onegrid_archive_given_digests_total onegrid_archive_own_digests | paste -sd' ')"
assert_eq "the rows stored are those the trigger changed" 100 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.ledger WHERE detail ? 'changed'")"
verify "links made of the database's digests after the difference"
