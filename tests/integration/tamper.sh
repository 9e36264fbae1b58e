#!/usr/bin/env bash
# A record its owner cannot rewrite unseen (deploy/sql/current/og.chain_link.sql): archive signs
# every chain link with a key the database never holds, and `onegridctl audit verify
# --public-key` fails after each way the owner role or a superuser can rewrite the record:
# triggers disabled or session_replication_role = replica, a ledger row edited and every
# link recomputed with the database's own functions, signatures removed, a rejection, an
# event key or a batch deleted, an event key forged, the newest batch rolled back (caught
# by heads kept elsewhere: --expect-heads), a key that is not archive's, and an archive
# that stops signing. Each case runs on its own copy of the database. Also: a signature
# the database will not store is a fault (held and retried, never a refusal), and links
# made before migration 015 still verify.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"

test_begin "tamper"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
EP="ipc://$TEST_DIR/intake.sock"
CTL=$ONEGRID_BIN/onegridctl
KEY=$TEST_DIR/archive.sign.secret
PUB=$TEST_DIR/archive.sign.public

# The key pair: the secret for archive only, the public key for auditors.
"$CTL" keygen --signing "$TEST_DIR/archive" >"$TEST_DIR/keygen.out"
assert_eq "keygen --signing: the secret key file is 0600" 600 "$(stat -c %a "$KEY")"
assert_eq "and prints the public key it wrote" "$(head -1 "$PUB")" "$(cat "$TEST_DIR/keygen.out")"
rc=0
"$CTL" keygen --signing "$TEST_DIR/archive" >/dev/null 2>&1 || rc=$?
assert_eq "keygen --signing never overwrites a key" 1 "$rc"
echo "signing_key = $KEY" >>"$TEST_DIR/onegrid.conf" # [archive] is the last section

chmod 0640 "$KEY"
rc=0
og_start archive "$TEST_DIR" 2>/dev/null || rc=$?
assert_eq "archive refuses a signing key its group may read" 1 "$rc"
assert_match "and says why" "signing_key: signing key file \".*\" is open to its group or others \\(mode 0640\\)" \
	"$(cat "$TEST_DIR/archive.log")"
chmod 0600 "$KEY"

og_start_all "$TEST_DIR"
assert_eq "archive with a key does not warn that links are unsigned" 0 \
	"$(grep -c 'chain links are not signed' "$TEST_DIR/archive.log" || true)"
GRID=$(sql "$TEST_DB" "SELECT source_grid_id FROM og.grid_crosswalk x JOIN og.area a ON a.code = x.area_code
                       WHERE x.source_system = 'zongzhi' AND a.level = 'grid' ORDER BY 1 LIMIT 1")
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
publish() { # publish NAME: $TEST_DIR/NAME.jsonl; status in $rc
	rc=0
	"$CTL" publish --endpoint "$EP" --results "$TEST_DIR/$1.out" "$TEST_DIR/$1.jsonl" \
		>"$TEST_DIR/$1.txt" 2>&1 || rc=$?
}
og_gen_reports "$TEST_DB" 40 first >"$TEST_DIR/first.jsonl"
# Two refusals: an unknown category (dispatch's) and an unregistered source (intake's).
printf '{"id":"rj-1","source":"zongzhi","type":"report","time":"%s","subject":"%s","report":{"category":"pet.dog_barking","title":"狗叫","channel":"CHANNEL_APP"}}\n' \
	"$NOW" "$GRID" >>"$TEST_DIR/first.jsonl"
printf '{"id":"rj-2","source":"weibo","type":"report","time":"%s","subject":"%s","report":{"category":"facility.handrail","title":"扶手","channel":"CHANNEL_APP"}}\n' \
	"$NOW" "$GRID" >>"$TEST_DIR/first.jsonl"
publish first
assert_eq "40 events stored, 2 refused (publish exits 3)" 3 "$rc"
og_gen_reports "$TEST_DB" 20 second >"$TEST_DIR/second.jsonl"
publish second
assert_eq "20 more stored" 0 "$rc"

AUDITOR="dbname=$TEST_DB user=onegrid_audit"
assert_eq "every link is signed" 0 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.chain c WHERE NOT EXISTS
	                   (SELECT 1 FROM og.chain_signature s WHERE (s.district_code, s.seq) = (c.district_code, c.seq))")"
assert_eq "the rejections are in their shard's chain" 2 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.rejection j JOIN og.chain c ON c.batch_id = j.batch_id
	                   AND c.district_code = 'shard:6502'")"
rc=0
out=$("$CTL" audit verify --db "$AUDITOR" --public-key "$PUB") || rc=$?
assert_eq "audit verify --public-key passes as the auditor" 0 "$rc"
assert_match "every link signed and checked" "audit verify: passed: ([0-9]+) links \\(\\1 signed, every signature valid\\)" "$out"
assert_match "the shard's chain holds the batches and rejections" "shard:6502: [0-9]+ links \\([0-9]+ signed\\), [0-9]+ batches, 2 rejections, head [0-9a-f]{64}: intact" "$out"
"$CTL" audit heads --db "$AUDITOR" >"$TEST_DIR/heads1.txt"
assert_match "audit heads prints signed heads" "^shard:6502 [0-9]+ [0-9a-f]{64} [0-9]+ 2 $(head -1 "$PUB") [0-9a-f]{128}$" \
	"$(tail -1 "$TEST_DIR/heads1.txt")"
og_gen_reports "$TEST_DB" 10 third >"$TEST_DIR/third.jsonl"
publish third
assert_eq "a third batch" 0 "$rc"
"$CTL" audit heads --db "$AUDITOR" >"$TEST_DIR/heads2.txt"
rc=0
out=$("$CTL" audit verify --db "$AUDITOR" --public-key "$PUB" --expect-heads "$TEST_DIR/heads1.txt") || rc=$?
assert_eq "heads kept before the third batch are still in their chains" 0 "$rc"
assert_match "and were read" "expected heads: [0-9]+ read from" "$out"
# Not a file of heads: a device that never ends a line is refused at once (review: it was
# read for ever).
rc=0
out=$(timeout 20 "$CTL" audit verify --db "$AUDITOR" --public-key "$PUB" --expect-heads /dev/zero 2>&1) || rc=$?
assert_eq "--expect-heads /dev/zero: refused (2), not read for ever" 2 "$rc"
assert_match "and says why" "/dev/zero:1: longer than 1022 bytes, or a NUL byte" "$out"

# Tampering, each on its own copy (daemons stopped: copies need that).
og_stop_all "$TEST_DIR"
ROW=$(sql "$TEST_DB" "SELECT min(ledger_id) FROM og.ledger WHERE source_event_id LIKE 'second-%' AND kind = 'event'")
copy() { # copy NAME: $DB, a copy of the database
	DB=${TEST_DB}_$1
	sql postgres "CREATE DATABASE $DB TEMPLATE $TEST_DB" >/dev/null
	on_exit "$PG_BIN/dropdb --if-exists $DB"
}
verify() { # verify [ARGS...]: verify $DB as the auditor; output in $out, status in $rc.
	# verify --per-link (each link recomputed by queries of its own, not by the one pass over
	# the record) must come to the same verdict, line for line.
	local rc2=0 out2
	rc=0
	out=$("$CTL" audit verify --db "dbname=$DB user=onegrid_audit" "$@") || rc=$?
	out2=$("$CTL" audit verify --per-link --db "dbname=$DB user=onegrid_audit" "$@") || rc2=$?
	assert_eq "verify $* and verify --per-link agree" "$rc $out" "$rc2 $out2"
}
EDIT="UPDATE og.ledger SET detail = jsonb_set(detail, '{report,title}', '\"改过的标题\"') WHERE ledger_id = $ROW;"
# Every link of every chain recomputed with the database's own function (districts first:
# a shard's link covers its batch's district links), and the heads moved to match.
RECOMPUTE="DO \$\$
DECLARE r og.chain; n og.chain; prev bytea; cur text := '';
BEGIN
  FOR r IN SELECT * FROM og.chain ORDER BY district_code LIKE 'shard:%', district_code, seq LOOP
    IF r.district_code <> cur THEN cur := r.district_code; prev := r.prev_hash; END IF;
    n := og.chain_link(r.district_code, r.seq, r.batch_id, prev);
    UPDATE og.chain SET prev_hash = prev, hash = n.hash WHERE district_code = r.district_code AND seq = r.seq;
    UPDATE og.chain_head SET hash = n.hash WHERE district_code = r.district_code;
    prev := n.hash;
  END LOOP;
END \$\$;"

# 1. The owner role: triggers disabled, a row edited, every link recomputed. While the
# triggers are off, verify says so, whatever the chains say; once they are on again, only
# the signatures tell.
copy owner
sql "$DB" "SET ROLE onegrid_owner;
           ALTER TABLE og.ledger DISABLE TRIGGER append_only; ALTER TABLE og.chain DISABLE TRIGGER append_only;
           $EDIT $RECOMPUTE" >/dev/null
assert_eq "owner: the row was changed" "改过的标题" \
	"$(sql "$DB" "SELECT detail #>> '{report,title}' FROM og.ledger WHERE ledger_id = $ROW")"
verify
assert_eq "owner, triggers still disabled: verify fails" 1 "$rc"
assert_match "and names them" "BROKEN: triggers that keep the record append-only are disabled: og.chain.append_only, og.ledger.append_only" "$out"
sql "$DB" "SET ROLE onegrid_owner;
           ALTER TABLE og.ledger ENABLE TRIGGER append_only; ALTER TABLE og.chain ENABLE TRIGGER append_only" >/dev/null
verify
assert_eq "owner, recomputed chains: verify without the public key cannot tell" 0 "$rc"
verify --public-key "$PUB"
assert_eq "owner, recomputed chains: verify --public-key fails" 1 "$rc"
assert_match "a signature no longer matches its link" "BROKEN at link [0-9]+ \\(batch [0-9]+\\): its signature does not match the link" "$out"
echo "$out" | sed 's/^/# owner: /'

# 2. The owner also removes the signatures of the links that changed.
copy owner_unsigned
sql "$DB" "SET ROLE onegrid_owner;
           ALTER TABLE og.ledger DISABLE TRIGGER append_only; ALTER TABLE og.chain DISABLE TRIGGER append_only;
           ALTER TABLE og.chain_signature DISABLE TRIGGER append_only;
           $EDIT $RECOMPUTE
           DELETE FROM og.chain_signature s USING og.chain c
            WHERE (c.district_code, c.seq) = (s.district_code, s.seq)
              AND c.batch_id >= (SELECT batch_id FROM og.ledger WHERE ledger_id = $ROW)" >/dev/null
verify --public-key "$PUB"
assert_eq "owner, changed links unsigned: verify --public-key fails" 1 "$rc"
assert_match "an unsigned link after signed ones" "not signed, though links are signed since batch [0-9]+" "$out"

# 3. A superuser: no trigger touched, session_replication_role = replica.
copy replica
sql "$DB" "SET session_replication_role = replica; $EDIT $RECOMPUTE" >/dev/null
verify --public-key "$PUB"
assert_eq "superuser (replica role), recomputed chains: verify --public-key fails" 1 "$rc"
assert_match "a signature no longer matches its link" "its signature does not match the link" "$out"
echo "$out" | sed 's/^/# replica: /'

# 4-7. Records outside the ledger, each caught by the chain itself (no key needed).
copy rejection
# The batch that held it: rj-2 may be in it too, or not (how the events fell into batches).
RJ_BATCH=$(sql "$DB" "SELECT batch_id FROM og.rejection WHERE source_event_id = 'rj-1'")
sql "$DB" "SET session_replication_role = replica; DELETE FROM og.rejection WHERE source_event_id = 'rj-1'" >/dev/null
verify
assert_eq "a rejection deleted: verify fails" 1 "$rc"
assert_match "its shard's link, that of its batch, names what it found" "shard:6502: BROKEN at link [0-9]+ \\(batch $RJ_BATCH\\): recorded [0-9]+ records; found [0-9]+ \\(batch row: present; [0-9]+ rejections, ids [^;]+;" "$out"
echo "$out" | grep BROKEN | sed 's/^/# rejection deleted: /'

copy event_key
sql "$DB" "SET session_replication_role = replica; DELETE FROM og.event_key WHERE ledger_id = $ROW" >/dev/null
verify
assert_eq "an event key deleted: verify fails" 1 "$rc"
assert_match "its district's link counts one key less" "BROKEN at link [0-9]+ \\(batch [0-9]+\\): recorded [0-9]+ ledger rows, ids [0-9]+\\.\\.[0-9]+, and ([0-9]+) records in all; found [0-9]+ ledger rows" "$out"
echo "$out" | grep BROKEN | sed 's/^/# event key deleted: /'

copy batch
sql "$DB" "SET session_replication_role = replica;
           DELETE FROM og.batch WHERE batch_id = (SELECT batch_id FROM og.ledger WHERE ledger_id = $ROW)" >/dev/null
verify
assert_eq "a batch row deleted: verify fails" 1 "$rc"
assert_match "its shard's link misses the batch row" "batch row: MISSING" "$out"

copy forged_key
sql "$DB" "SET session_replication_role = replica;
           INSERT INTO og.event_key VALUES ('zongzhi', 'not-yet-sent', '650204', NULL, 999999, now())" >/dev/null
verify
assert_eq "an event key forged (the event would be answered duplicate): verify fails" 1 "$rc"
assert_match "and names it" "BROKEN: 1 event keys \\(ledger ids 999999\\.\\.999999\\) name no stored event" "$out"

# 7a. A twin of a real event key (another event id, the same ledger id), stored before the
# real one, so that the pass finds the twin first among the keys of that id and must go on
# to the real one. With the ids as a sequence gives them (and one forged key just below
# them, at -1), the pass finds keys by an array indexed by ledger id; with keys forged far
# off (10^12, and bigint's least and greatest), the ids are sparse, and it finds them by a
# hash table. The first copy names the twin and the key at -1, the second the twin and the
# three far keys; neither anything else.
TWIN="CREATE TEMP TABLE k AS SELECT * FROM og.event_key WHERE ledger_id = $ROW;
      DELETE FROM og.event_key WHERE ledger_id = $ROW;
      INSERT INTO og.event_key SELECT source_system, source_event_id || '-twin', district_code, case_id, ledger_id, stored_at FROM k;
      INSERT INTO og.event_key SELECT * FROM k;"
copy key_twin
sql "$DB" "SET session_replication_role = replica; $TWIN
           INSERT INTO og.event_key VALUES ('zongzhi', 'below', '650204', NULL, -1, now())" >/dev/null
verify
assert_eq "a twin of an event key, and a key at -1: verify fails" 1 "$rc"
assert_match "and names both" "BROKEN: 2 event keys \\(ledger ids -1\\.\\.$ROW\\) name no stored event" "$out"
assert_eq "and nothing else (the real key was found after its twin)" 1 "$(grep -c BROKEN <<<"$out")"
copy key_twin_far
sql "$DB" "SET session_replication_role = replica; $TWIN
           INSERT INTO og.event_key VALUES ('zongzhi', 'far-off', '650204', NULL, 1000000000000, now()),
                  ('zongzhi', 'least', '650204', NULL, -9223372036854775808, now()),
                  ('zongzhi', 'greatest', '650204', NULL, 9223372036854775807, now())" >/dev/null
verify
assert_eq "a twin and keys far off: verify fails" 1 "$rc"
assert_match "and names them" "BROKEN: 4 event keys \\(ledger ids -9223372036854775808\\.\\.9223372036854775807\\) name no stored event" "$out"
assert_eq "and nothing else" 1 "$(grep -c BROKEN <<<"$out")"

# 7b. Ledger rows the pass over the record must not take for intact: a row edited with its
# link left as it was, a row added to a link after its last one (the link looked complete
# by then), and a row in a batch whose district has no link.
copy edited
sql "$DB" "SET session_replication_role = replica; $EDIT" >/dev/null
verify
assert_eq "a row edited, its link left alone: verify fails" 1 "$rc"
assert_match "the link's rows hash to something else" "BROKEN at link [0-9]+ \\(batch [0-9]+\\): recorded ([0-9]+) ledger rows, ids [0-9]+\\.\\.[0-9]+, and [0-9]+ records in all; found \\1 ledger rows \\(ids [0-9,.]+\\) and [0-9]+ event keys; they hash to [0-9a-f]{64}, the chain holds [0-9a-f]{64}" "$out"

copy extra_row
sql "$DB" "SET session_replication_role = replica;
           INSERT INTO og.ledger SELECT 900000 + ledger_id, recorded_at, batch_id, district_code, 'decision', case_id,
                  source_system, source_event_id, event_type, detail, body FROM og.ledger WHERE ledger_id = $ROW" >/dev/null
verify
assert_eq "a row added to a link after its last one: verify fails" 1 "$rc"
assert_match "the link finds one row more than it records" "BROKEN at link [0-9]+ \\(batch [0-9]+\\): recorded [0-9]+ ledger rows, .*found [0-9]+ ledger rows \\(ids [0-9,.]+\\)" "$out"
assert_eq "and nothing else is broken" 1 "$(grep -c BROKEN <<<"$out")"

copy stray_row
sql "$DB" "SET session_replication_role = replica;
           INSERT INTO og.ledger SELECT 900000 + ledger_id, recorded_at, 999999, district_code, kind, case_id,
                  source_system, source_event_id || '-copy', event_type, detail, body FROM og.ledger WHERE ledger_id = $ROW" >/dev/null
verify
assert_eq "a row in a batch its district has no link for: verify fails" 1 "$rc"
assert_match "and names it" "BROKEN: 1 ledger rows \\(ids 9[0-9]+\\.\\.9[0-9]+\\) belong to no link of any chain" "$out"

# 7d. Links whose recorded counts are forged (the owner role): the pass must not size
# anything by them (a negative count made a 0-byte block, and rows were written past it; a
# huge one made verify give up with "out of memory"). The link is named as broken.
LINK=$(sql "$TEST_DB" "SELECT district_code || ' ' || seq || ' ' || batch_id FROM og.chain c
                       WHERE (district_code, batch_id) = (SELECT district_code, batch_id FROM og.ledger WHERE ledger_id = $ROW)")
read -r LDIST LSEQ LBATCH <<<"$LINK"
n=0
for counts in "-16 -16" "2147483647 records"; do
	read -r crows crecords <<<"$counts"
	copy "counts_$((++n))"
	sql "$DB" "SET ROLE onegrid_owner; ALTER TABLE og.chain DISABLE TRIGGER append_only;
	           UPDATE og.chain SET rows = $crows, records = $crecords WHERE district_code = '$LDIST' AND seq = $LSEQ" >/dev/null
	verify
	assert_eq "a link's counts forged ($counts): verify fails" 1 "$rc"
	assert_match "and names the link" "$LDIST: BROKEN at link $LSEQ \\(batch $LBATCH\\): recorded $crows ledger rows" "$out"
done

# 7e. A ledger row inserted by the owner into a shard's chain's name and an existing batch:
# a shard's link covers the batch, but hashes no ledger row, so the row is outside every link.
copy shard_row
sql "$DB" "SET ROLE onegrid_owner; ALTER TABLE og.ledger DISABLE TRIGGER append_only;
           INSERT INTO og.ledger SELECT 900000 + ledger_id, recorded_at, batch_id, 'shard:6502', kind, case_id,
                  source_system, source_event_id || '-shard', event_type, detail, body FROM og.ledger WHERE ledger_id = $ROW" >/dev/null
assert_eq "shard row: a shard's link names its batch" 1 \
	"$(sql "$DB" "SELECT count(*) FROM og.chain WHERE district_code = 'shard:6502'
	              AND batch_id = (SELECT batch_id FROM og.ledger WHERE ledger_id = $ROW)")"
verify
assert_eq "a ledger row in a shard's chain: verify fails" 1 "$rc"
assert_match "and names it" "BROKEN: 1 ledger rows \\(ids $((900000 + ROW))\\.\\.$((900000 + ROW))\\) belong to no link of any chain" "$out"

# 7f. Times no link archive made can hold ('infinity', '-infinity'): verify names the links
# that cover them (their hash differs), never overflows or stops with an error.
copy infinite
sql "$DB" "SET ROLE onegrid_owner; ALTER TABLE og.batch DISABLE TRIGGER USER; ALTER TABLE og.event_key DISABLE TRIGGER USER;
           UPDATE og.batch SET committed_at = 'infinity' WHERE batch_id = $LBATCH;
           UPDATE og.event_key SET stored_at = '-infinity' WHERE ledger_id = $ROW" >/dev/null
verify
assert_eq "infinite times: verify fails" 1 "$rc"
assert_match "the shard's link of the batch is broken" "shard:6502: BROKEN at link [0-9]+ \\(batch $LBATCH\\): recorded" "$out"
assert_match "and the district's link of the key" "$LDIST: BROKEN at link $LSEQ \\(batch $LBATCH\\): recorded" "$out"

# 7g. Links without their chain, number or batch (the owner drops the constraints): named.
copy null_link
sql "$DB" "SET ROLE onegrid_owner; ALTER TABLE og.chain DISABLE TRIGGER USER;
           ALTER TABLE og.chain DROP CONSTRAINT chain_pkey CASCADE, ALTER COLUMN district_code DROP NOT NULL,
                 ALTER COLUMN seq DROP NOT NULL, ALTER COLUMN batch_id DROP NOT NULL;
           UPDATE og.chain SET batch_id = NULL WHERE district_code = '$LDIST' AND seq = $LSEQ;
           UPDATE og.chain SET seq = NULL WHERE (district_code, seq) =
                  (SELECT district_code, max(seq) FROM og.chain WHERE district_code NOT IN ('$LDIST') GROUP BY 1 ORDER BY 1 LIMIT 1);
           UPDATE og.chain SET district_code = NULL WHERE (district_code, seq) =
                  (SELECT district_code, max(seq) FROM og.chain WHERE district_code LIKE 'shard:%' GROUP BY 1)" >/dev/null
verify
assert_eq "links with NULL chain, number, batch: verify fails" 1 "$rc"
assert_match "a link without its batch" "$LDIST: BROKEN at link $LSEQ: a link without its batch \\(batch_id is NULL\\)" "$out"
assert_match "a link without its number" "BROKEN at link [0-9]+: a link without its number \\(seq is NULL\\)" "$out"
assert_match "a link without its chain" "BROKEN: 1 links or heads without their chain \\(district_code is NULL\\)" "$out"

# 7h. More chains than the pass's first table held (4,200, one link each, made with the
# database's own function, and their heads): the pass grows it, and walks every one. Each
# chain is intact in itself, but its batch has no shard's link: no batch of archive's wrote
# it, so verify fails and says so (before, it passed: the owner could add chains, a forged
# decision on a real case in them, review).
copy many_chains
sql "$DB" "SET ROLE onegrid_owner;
           INSERT INTO og.chain SELECT (og.chain_link('x' || i, 1, 1000000 + i::bigint, decode(repeat('00', 32), 'hex'))).*
             FROM generate_series(1, 4200) i;
           INSERT INTO og.chain_head SELECT district_code, seq, hash FROM og.chain WHERE district_code LIKE 'x%'" >/dev/null
verify
assert_match "every chain walked" "x999: 1 links, 0 ledger rows, head [0-9a-f]{64}: intact" "$out"
assert_eq "4,200 chains that no shard's link covers: verify fails" 1 "$rc"
assert_match "and says why" "BROKEN: 4200 district links \\(of batches 1000001\\.\\.1004200\\) belong to no shard's link" "$out"

# 7i. Records the owner adds below the first batch (review): a district chain of batch 0, a
# batch row 0 and a refusal in it. Batches are numbered from 1, and nothing covers them.
copy below_first
sql "$DB" "SET ROLE onegrid_owner;
           INSERT INTO og.batch VALUES (0, '6502', 1, 'forged', now());
           INSERT INTO og.rejection (batch_id, received_at, publisher, source_system, source_event_id,
                                     reason, detail, raw, raw_size, raw_sha256)
             SELECT 0, received_at, publisher || '-forged', source_system, source_event_id, reason, detail,
                    raw, raw_size, raw_sha256 FROM og.rejection ORDER BY rejection_id LIMIT 1;
           INSERT INTO og.chain SELECT (og.chain_link('650299', 1, 0, decode(repeat('00', 32), 'hex'))).*;
           INSERT INTO og.chain_head SELECT district_code, seq, hash FROM og.chain WHERE district_code = '650299'" >/dev/null
verify --public-key "$PUB"
assert_eq "records below the first batch: verify --public-key fails" 1 "$rc"
assert_match "the chain of batch 0" "650299: BROKEN at link 1: batch 0, not one archive numbers" "$out"
assert_match "the batch row" "BROKEN: 1 batches \\(ids 0\\.\\.0\\) belong to no link of their shard's chain" "$out"
assert_match "the refusal" "BROKEN: 1 rejections \\(ids [0-9]+\\.\\.[0-9]+\\) belong to no link of any shard's chain" "$out"

# 7j. Row security on a table of the record (forced, so that the audit views, which read
# the tables with their owner's rights, are bound by it too): a policy can show readers a
# record other than the one stored. verify names the table.
copy row_security
sql "$DB" "SET ROLE onegrid_owner; ALTER TABLE og.rejection ENABLE ROW LEVEL SECURITY;
           ALTER TABLE og.rejection FORCE ROW LEVEL SECURITY;
           CREATE POLICY hide_one ON og.rejection USING (source_event_id <> 'rj-1')" >/dev/null
verify
assert_eq "row security on og.rejection: verify fails" 1 "$rc"
assert_match "and names it" "BROKEN: tables of the record can show readers other rows than those stored: og.rejection \\(row security, forced\\)" "$out"

# 7k. A record whose first batch was written before archive signed (its links' signatures
# removed, as a superuser: signing then began at the second batch), and a shard's chain the
# owner adds for that first batch, made with the database's own function: unsigned, and
# older than signing, so no rule about unsigned links after signed ones applies. A real
# shard's chain ends in a signed link; this one does not, so nothing proves archive made it.
copy late_signing
FIRST=$(sql "$DB" "SELECT min(batch_id) FROM og.batch")
sql "$DB" "SET session_replication_role = replica;
           DELETE FROM og.chain_signature s USING og.chain c
            WHERE (c.district_code, c.seq) = (s.district_code, s.seq) AND c.batch_id = $FIRST;
           SET ROLE onegrid_owner;
           INSERT INTO og.chain SELECT (og.chain_link('shard:6599', 1, $FIRST, decode(repeat('00', 32), 'hex'))).*;
           INSERT INTO og.chain_head SELECT district_code, seq, hash FROM og.chain WHERE district_code = 'shard:6599'" >/dev/null
verify --public-key "$PUB"
assert_eq "a shard's chain added below signing: verify --public-key fails" 1 "$rc"
assert_match "it names the chain" "shard:6599: BROKEN: its last link \\(1\\) is not signed: nothing proves archive wrote this chain" "$out"
assert_match "while the real shard's chain, signed since, is intact" "shard:6502: [0-9]+ links \\([0-9]+ signed\\), [0-9]+ batches, [0-9]+ rejections, head [0-9a-f]{64}: intact" "$out"

# 7c. A database that takes one connection of the auditor's: verify reads it all through
# that one (its pass uses two when it can), with the same verdict.
copy one_connection
sql "$DB" "SET session_replication_role = replica; $EDIT" >/dev/null
sql postgres "ALTER DATABASE $DB CONNECTION LIMIT 1" >/dev/null
verify
assert_eq "one connection only: verify still fails the edited row's link" 1 "$rc"
assert_match "and says the same" "BROKEN at link [0-9]+ \\(batch [0-9]+\\): recorded ([0-9]+) ledger rows, .*they hash to" "$out"

# 8. Signatures removed altogether.
copy unsigned
sql "$DB" "SET session_replication_role = replica; DELETE FROM og.chain_signature" >/dev/null
verify --public-key "$PUB"
assert_eq "every signature removed: verify --public-key fails" 1 "$rc"
assert_match "and says so" "BROKEN: no link is signed" "$out"

# 9. The newest batch rolled back whole: its rows, keys, batch, links and signatures, the
# heads set back. The chains are consistent and signed: only heads kept elsewhere tell.
copy rollback
sql "$DB" "SET session_replication_role = replica;
  CREATE TEMP TABLE gone AS SELECT max(batch_id) AS b FROM og.batch;
  DELETE FROM og.event_key k USING og.ledger l, gone WHERE l.ledger_id = k.ledger_id AND l.batch_id = gone.b;
  DELETE FROM og.case WHERE last_ledger_id IN (SELECT ledger_id FROM og.ledger, gone WHERE batch_id = gone.b);
  DELETE FROM og.ledger USING gone WHERE batch_id = gone.b;
  DELETE FROM og.chain_signature s USING og.chain c, gone
   WHERE (c.district_code, c.seq) = (s.district_code, s.seq) AND c.batch_id = gone.b;
  DELETE FROM og.chain USING gone WHERE batch_id = gone.b;
  DELETE FROM og.batch USING gone WHERE batch_id = gone.b;
  UPDATE og.chain_head h SET seq = c.seq, hash = c.hash FROM og.chain c
   WHERE c.district_code = h.district_code AND c.seq = (SELECT max(seq) FROM og.chain m WHERE m.district_code = h.district_code);
  DELETE FROM og.chain_head h WHERE NOT EXISTS (SELECT 1 FROM og.chain c WHERE c.district_code = h.district_code)" >/dev/null
verify --public-key "$PUB"
assert_eq "the newest batch rolled back: the signed chains alone cannot tell" 0 "$rc"
verify --public-key "$PUB" --expect-heads "$TEST_DIR/heads2.txt"
assert_eq "the newest batch rolled back: verify --expect-heads fails" 1 "$rc"
assert_match "a kept head is missing" "BROKEN: link [0-9]+, a head kept in .*heads2.txt \\(line [0-9]+\\), is not in the chain" "$out"
echo "$out" | grep BROKEN | sed 's/^/# rolled back: /'

# 10. Heads kept elsewhere that do not match (an edited copy of the file).
DB=$TEST_DB
awk 'NR == 2 { $3 = "00" substr($3, 3) } { print }' "$TEST_DIR/heads1.txt" >"$TEST_DIR/heads_bad.txt"
verify --public-key "$PUB" --expect-heads "$TEST_DIR/heads_bad.txt"
assert_eq "a kept head that differs: verify fails" 1 "$rc"
assert_match "and names both hashes" "BROKEN: link [0-9]+ is [0-9a-f]{64}; .*heads_bad.txt \\(line 2\\) kept it as 00" "$out"
assert_match "the edited line's own signature fails too" "the signature kept with link [0-9]+ in .*heads_bad.txt \\(line 2\\) is not a signature" "$out"

# 11. A key that is not archive's.
"$CTL" keygen --signing "$TEST_DIR/other" >/dev/null
verify --public-key "$TEST_DIR/other.sign.public"
assert_eq "checked against another key: verify fails" 1 "$rc"
assert_match "and names the key that signed" "signed with key $(head -1 "$PUB"), which is not one of the public keys given" "$out"
verify --public-key "$TEST_DIR/other.sign.public" --public-key "$PUB"
assert_eq "with both keys (a rotation): verify passes" 0 "$rc"

# 12. Storing a signature fails (archive's role may not call og.sign_link for a while): a
# fault, so the records are held and retried, never refused, and the batch is signed.
og_start_all "$TEST_DIR"
sql "$TEST_DB" "REVOKE EXECUTE ON FUNCTION og.sign_link(text, bigint, bytea, bytea) FROM onegrid_writer"
( # grant again once archive has failed for it (polled: a loaded machine may be slow)
	for ((i = 0; i < 600; i++)); do
		grep -q "permission denied for function sign_link" "$TEST_DIR/archive.log" 2>/dev/null && break
		sleep 0.1
	done
	sql "$TEST_DB" "GRANT EXECUTE ON FUNCTION og.sign_link(text, bigint, bytea, bytea) TO onegrid_writer"
) &
grant=$!
og_gen_reports "$TEST_DB" 5 fault >"$TEST_DIR/fault.jsonl"
publish fault
wait "$grant"
assert_eq "signing refused for a while: every event stored all the same" 0 "$rc"
assert_eq "none answered STORAGE_REFUSED" 0 "$(grep -c STORAGE_REFUSED "$TEST_DIR/fault.out" || true)"
assert_match "archive held them as a fault" "<3>database unavailable, holding [0-9]+ records and retrying: .*permission denied for function sign_link" \
	"$(cat "$TEST_DIR/archive.log")"
DB=$TEST_DB
verify --public-key "$PUB"
assert_eq "and the batch that got through is signed: verify --public-key passes" 0 "$rc"

# 13. An archive that stops signing: it warns at start, and its links fail verify.
og_stop_all "$TEST_DIR"
sed -i '/^signing_key = /d' "$TEST_DIR/onegrid.conf"
og_start_all "$TEST_DIR"
assert_match "archive without a key warns once at start" "<4>no \\[archive\\] signing_key: chain links are not signed" \
	"$(cat "$TEST_DIR/archive.log")"
og_gen_reports "$TEST_DB" 5 fourth >"$TEST_DIR/fourth.jsonl"
publish fourth
assert_eq "stored unsigned" 0 "$rc"
verify
assert_eq "unsigned links: verify without a key passes" 0 "$rc"
verify --public-key "$PUB"
assert_eq "unsigned links after signed ones: verify --public-key fails" 1 "$rc"
assert_match "and names them" "not signed, though links are signed since batch [0-9]+" "$out"

# 14. The upgrade: links made before migration 015 (format 1) still verify, and each chain
# continues with format-2 links onto the head they left. Driven at the SQL level with the
# functions archive calls, on a database first migrated up to 014 only. deploy/sql starts
# new databases at its 018 baseline, so 001 to 018 come from git (the last commit that had
# them), as an operator of a database older than 018 would upgrade: to 018 with them, then
# with deploy/sql.
UP=${TEST_DB}_upgrade
test_old_layout "$TEST_DIR/old" deploy/sql
mkdir "$TEST_DIR/sql014"
for f in "$TEST_DIR"/old/deploy/sql/[0-9]*.sql; do
	n=$(basename "$f")
	((10#${n%%_*} <= 14)) && cp "$f" "$TEST_DIR/sql014/"
done
sql postgres "CREATE DATABASE $UP" >/dev/null
on_exit "$PG_BIN/dropdb --if-exists $UP"
"$CTL" migrate --db "dbname=$UP" --sql-dir "$TEST_DIR/sql014" >/dev/null
sql "$UP" "INSERT INTO og.dispatch_epoch VALUES ('up', 1, 'test', now())"
# batch NAME [old]: one event and one refusal for district 650204, as archive stores them
# (old: as the archive of 014 did, which also gave og.store_event the case's columns)
batch() {
	"$PG_BIN/psql" -XAtq -v ON_ERROR_STOP=1 -d "$UP" -U onegrid_archive >/dev/null <<-SQL
		BEGIN;
		SELECT og.begin_batch('up', 1, 'test');
		SELECT og.store_event('zongzhi', 'up-$1', 'report', '650204', '{"id": "up-$1"}', '\x01',
		       '{"kind": "KIND_OPEN_CASE"}', '\x02', ${2:+NULL,} false, NULL);
		SELECT og.store_rejection(now(), 'local', 'zongzhi', 'rj-$1', 'REASON_INVALID_FIELD', 'bad',
		       convert_to('rj-$1', 'UTF8'), 6, NULL);
		SELECT og.end_batch();
		COMMIT;
	SQL
}
batch old1 old
batch old2 old
rc=0
out=$("$CTL" migrate --db "dbname=$UP" --sql-dir "$ONEGRID_REPO/deploy/sql" 2>&1) || rc=$?
assert_eq "upgrade: deploy/sql does not take a database at 014 by itself" 1 "$rc"
assert_match "and says to bring it to 018 first" "at version 014 .*bring the database to version 018 first" "$out"
"$CTL" migrate --db "dbname=$UP" --sql-dir "$TEST_DIR/old/deploy/sql" >/dev/null
"$CTL" migrate --db "dbname=$UP" --sql-dir "$ONEGRID_REPO/deploy/sql" >/dev/null
batch new1
assert_eq "upgrade: the district's chain goes on, format 1, 1, then 2" "1:1 2:1 3:2" \
	"$(sql "$UP" "SELECT string_agg(seq || ':' || format, ' ' ORDER BY seq) FROM og.chain WHERE district_code = '650204'")"
assert_eq "upgrade: the first format-2 link links onto the last format-1 link" t \
	"$(sql "$UP" "SELECT (SELECT prev_hash FROM og.chain WHERE district_code = '650204' AND seq = 3)
	              = (SELECT hash FROM og.chain WHERE district_code = '650204' AND seq = 2)")"
DB=$UP
verify
assert_eq "upgrade: both formats verify" 0 "$rc"
assert_match "upgrade: the shard's chain starts at the upgrade" "shard:up: 1 links, 1 batches, 1 rejections" "$out"
copy_of() { # copy_of SOURCE NAME: $DB, a copy of database SOURCE
	DB=${1}_$2
	sql postgres "CREATE DATABASE $DB TEMPLATE $1" >/dev/null
	on_exit "$PG_BIN/dropdb --if-exists $DB"
}
copy_of "$UP" old_row
sql "$DB" "SET session_replication_role = replica;
           UPDATE og.ledger SET detail = '{\"id\": \"forged\"}' WHERE source_event_id = 'up-old1' AND kind = 'event'" >/dev/null
verify
assert_eq "upgrade: a row under a format-1 link changed: verify fails" 1 "$rc"
assert_match "at that link" "650204: BROKEN at link 1 \\(batch 1\\): recorded 2 ledger rows" "$out"
