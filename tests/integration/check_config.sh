#!/usr/bin/env bash
# Checking a configuration before a restart, and what systemd is told (issue 12 items 5
# and 6):
# 1. `--check-config` checks every section, key, range, endpoint and key file without
#    binding anything, and with the database reachable compares its schema with the one
#    the binary was built for: exit 0 and "is good", or 78 (EX_CONFIG) and why.
# 2. A daemon refuses to start on a configuration error, or on a schema too old or too
#    new, with exit status 78, which the units name in RestartPreventExitStatus=.
# 3. sd_notify: READY=1, WATCHDOG=1 from every main loop (WatchdogSec=), and while
#    dispatch waits for the database, EXTEND_TIMEOUT_USEC with a "waiting" status so
#    that TimeoutStartSec= does not end it.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"

test_begin "check_config"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
conf=$TEST_DIR/onegrid.conf
version=$(sql "$TEST_DB" "SELECT max(version) FROM public.onegrid_migration")
printf -v v3 '%03d' "$version"

check() { # check DAEMON CONFIG: output in $out, exit status in $rc
	rc=0
	out=$(timeout 20 "$ONEGRID_BIN/onegrid-$1" --check-config -c "$2" 2>&1) || rc=$?
}
bad() { # bad NAME DAEMON SED-EXPRESSION EXPECTED: --check-config and a start both say 78
	sed "$3" "$conf" >"$TEST_DIR/bad.conf"
	check "$2" "$TEST_DIR/bad.conf"
	assert_eq "$1: --check-config exits 78" 78 "$rc"
	assert_match "$1: and says why" "$4" "$out"
	rc=0
	out=$(timeout 20 "$ONEGRID_BIN/onegrid-$2" -c "$TEST_DIR/bad.conf" 2>&1) || rc=$?
	assert_eq "$1: the daemon does not start (78)" 78 "$rc"
}

# 1. A good configuration: nothing bound, no epoch taken.
epochs=$(sql "$TEST_DB" "SELECT count(*) FROM og.dispatch_epoch")
for d in intake dispatch archive; do
	check "$d" "$conf"
	assert_eq "$d --check-config: good" "0" "$rc"
	assert_match "$d --check-config: says so" "onegrid-$d: configuration \"$conf\" is good" "$out"
done
check dispatch "$conf"
assert_match "dispatch --check-config: the schema compared" "the database schema is version $v3, as needed" "$out"
assert_eq "--check-config binds nothing" "" "$(find "$TEST_DIR" -maxdepth 1 -name '*.sock')"
assert_eq "--check-config takes no fencing epoch" "$epochs" "$(sql "$TEST_DB" "SELECT count(*) FROM og.dispatch_epoch")"

# A secret key passed by systemd as a credential (LoadCredential=intake.key:FILE).
"$ONEGRID_BIN/onegridctl" keygen --out "$TEST_DIR/intake.key" >/dev/null
echo "$(cat "$TEST_DIR/intake.key.pub") zongzhi" >"$TEST_DIR/publishers"
mkdir "$TEST_DIR/creds"
install -m 0400 "$TEST_DIR/intake.key" "$TEST_DIR/creds/intake.key"
sed "s|^\[intake\]$|[intake]\ncurve_secret_key_file = credential:intake.key\ncurve_publishers_file = $TEST_DIR/publishers|" \
	"$conf" >"$TEST_DIR/cred.conf"
rc=0
out=$(CREDENTIALS_DIRECTORY=$TEST_DIR/creds timeout 20 "$ONEGRID_BIN/onegrid-intake" --check-config \
	-c "$TEST_DIR/cred.conf" 2>&1) || rc=$?
assert_eq "a key as a credential: good" "0" "$rc"
# systemd lets the service read a credential by an ACL entry, whose mask stat shows as the
# group's bits: 0440 (an ACL needs no package here: the mode is what the daemon sees).
chmod 0440 "$TEST_DIR/creds/intake.key"
rc=0
out=$(CREDENTIALS_DIRECTORY=$TEST_DIR/creds timeout 20 "$ONEGRID_BIN/onegrid-intake" --check-config \
	-c "$TEST_DIR/cred.conf" 2>&1) || rc=$?
assert_eq "a credential readable through an ACL (mode 0440): good" "0" "$rc"
chmod 0444 "$TEST_DIR/creds/intake.key"
rc=0
out=$(CREDENTIALS_DIRECTORY=$TEST_DIR/creds timeout 20 "$ONEGRID_BIN/onegrid-intake" --check-config \
	-c "$TEST_DIR/cred.conf" 2>&1) || rc=$?
assert_eq "a credential others may read: 78" "78" "$rc"
check intake "$TEST_DIR/cred.conf"
assert_eq "a credential without \$CREDENTIALS_DIRECTORY: 78" 78 "$rc"
assert_match "and why" 'no credentials were passed to this process \(\$CREDENTIALS_DIRECTORY is not set: LoadCredential=intake.key:FILE in the unit\)' "$out"

# 2. Bad configurations.
bad "a misspelled section" dispatch 's/^\[dispatch\]$/[dispach]/' \
	'\[dispach\]: unknown section \(known: \[database\] \[intake\] \[dispatch\] \[archive\]\)'
bad "a value out of range" archive 's/^batch_max = .*/batch_max = 0/' \
	'\[archive\] batch_max: "0" is not an integer in 1..10000'
bad "a port out of range" intake "s|^listen = ipc://$TEST_DIR/intake.sock|listen = tcp://127.0.0.1:99999|" \
	'\[intake\] listen: "tcp://127.0.0.1:99999": the port is not a number in 1..65535'
bad "a mistyped ipc:// directory" intake "s|^dispatch = .*|dispatch = ipc://$TEST_DIR/no-such-dir/dispatch.sock|" \
	"\[intake\] dispatch: \"ipc://$TEST_DIR/no-such-dir/dispatch.sock\": directory \"$TEST_DIR/no-such-dir\": No such file or directory"
bad "an unknown key" intake 's/^max_event_bytes = /max_event_byte = /' '\[intake\] max_event_byte: unknown setting'
# A shard that is no area-code prefix would start and refuse every report as outside it,
# as the publisher's fault.
bad "a shard that is not an area code prefix" dispatch 's/^shard = .*/shard = 6502%s%n/' \
	'\[dispatch\] shard: "6502%s%n" is not a unified area code prefix \(1 to 15 digits'
# archive's name is stored with each batch: one that would be cut (inside a character) or
# is not UTF-8 would make every batch fail in the database, for ever.
long_name=$(printf 'é%.0s' {1..70})
bad "an archive name longer than the record keeps" archive "s/^\[archive\]$/[archive]\nname = $long_name/" \
	'\[archive\] name: 140 bytes; give 1 to 127'
bad "an archive name with a control character" archive "s/^\[archive\]$/[archive]\nname = a$(printf '\033')[31mb/" \
	'\[archive\] name: "a\?\[31mb" has control characters \(shown as \?\)'
bad "an archive name with a C1 control character" archive "s/^\[archive\]$/[archive]\nname = a$(printf '\xc2\x9b')31mb/" \
	'\[archive\] name: "a\?31mb" has control characters \(shown as \?\)'
bad "a comment that is not UTF-8" archive "1s/^/# caf$(printf '\xe9')\n/" '"[^"]*" line 1 is not valid UTF-8'
bad "a value that is not UTF-8" archive "s/^\[archive\]$/[archive]\nname = caf$(printf '\xe9')/" \
	'line [0-9]+ is not valid UTF-8'
# A section header without its "]": the lines after it belong to the section before, so a
# key set there again is only the symptom. The error names the header.
bad "a section header without its ]" archive 's/^\[archive\]$/[archive/' \
	'syntax error in ".*" at line [0-9]+: not a \[section\] header'
# A refused event travels to dispatch whole and with its raw bytes: both together must fit
# a link's frame (4 MiB), or the refusal would cut the link and be resent for ever.
bad "events too large for the link when refused" intake 's/^max_event_bytes = .*/max_event_bytes = 4194304/' \
	'\[intake\] max_event_bytes \(4194304\) plus max_rejected_bytes \(4096\) must be at most 4128768'
# Every publisher connection may make intake hold 5 frames of up to 2 x max_event_bytes:
# max_memory_mb must hold a few such connections.
bad "events too large for the memory bound" intake 's/^max_event_bytes = .*/max_event_bytes = 1048576/' \
	'\[intake\] max_memory_mb \(48\) holds 3 publisher connections, fewer than 4: with max_event_bytes = 1048576 each may make intake hold [0-9]+ KiB; raise max_memory_mb to at least [0-9]+'
bad "a missing key file" archive "/^\[archive\]$/a signing_key = $TEST_DIR/none.key" "none.key"
sed "s|^dispatch = .*|dispatch = ipc://$TEST_DIR/dispach.sock|" "$conf" >"$TEST_DIR/typo.conf"
check intake "$TEST_DIR/typo.conf"
assert_eq "an ipc:// path with no socket yet: still good" 0 "$rc"
assert_match "but said" "dispatch: \"ipc://$TEST_DIR/dispach.sock\": no socket there yet" "$out"

# The database away: the configuration is still checked; the schema cannot be.
port=$(og_free_tcp_port)
sed "/^\[dispatch\]$/,/^\[archive\]$/s|^conninfo = .*|conninfo = host=127.0.0.1 port=$port dbname=x connect_timeout=2|" \
	"$conf" >"$TEST_DIR/nodb.conf"
check dispatch "$TEST_DIR/nodb.conf"
assert_eq "no database: --check-config still good" 0 "$rc"
assert_match "and says the schema was not checked" "could not be reached, so its schema was not checked" "$out"

# 3. The schema: too new, too old, other definitions.
sql "$TEST_DB" "INSERT INTO public.onegrid_migration (version, name, sha256) VALUES (999, '999_future.sql', 'x')"
check dispatch "$conf"
assert_eq "a newer schema: 78" 78 "$rc"
assert_match "a newer schema: says so" "the database schema is at version 999, newer than this build's $v3: upgrade onegrid" "$out"
for d in dispatch archive; do
	rc=0
	out=$(timeout 20 "$ONEGRID_BIN/onegrid-$d" -c "$conf" 2>&1) || rc=$?
	assert_eq "$d does not start on a newer schema (78)" 78 "$rc"
	assert_match "$d says why" "newer than this build's" "$out"
done
sql "$TEST_DB" "DELETE FROM public.onegrid_migration WHERE version = 999"
top=$(sql "$TEST_DB" "SELECT name || '|' || sha256 FROM public.onegrid_migration WHERE version = $version")
sql "$TEST_DB" "DELETE FROM public.onegrid_migration WHERE version = $version"
check archive "$conf"
assert_eq "an older schema: 78" 78 "$rc"
assert_match "an older schema: run migrate" "this build needs $v3: run onegridctl migrate" "$out"
sql "$TEST_DB" "INSERT INTO public.onegrid_migration (version, name, sha256) VALUES ($version, '${top%%|*}', '${top#*|}')"
sql "$TEST_DB" "UPDATE public.onegrid_repeatable SET sha256 = 'edited' WHERE name = 'audit.kpi'"
check dispatch "$conf"
assert_eq "other definitions: 78" 78 "$rc"
assert_match "other definitions: run migrate" "functions and views \\(deploy/sql/current\\) differ from this build.s" "$out"
"$ONEGRID_BIN/onegridctl" migrate --db "dbname=$TEST_DB" --sql-dir "$ONEGRID_REPO/deploy/sql" \
	>"$TEST_DIR/migrate.out" 2>&1 || fail "migrate: $(cat "$TEST_DIR/migrate.out")"
check dispatch "$conf"
assert_eq "after onegridctl migrate: good again" 0 "$rc"

# 4. What systemd is told.
"$ONEGRID_BIN/notifyrecv" "$TEST_DIR/notify" >"$TEST_DIR/notify.log" 2>&1 &
recv=$!
on_exit "kill $recv 2>/dev/null || true"
for ((i = 0; i < 100; i++)); do [[ -S $TEST_DIR/notify ]] && break; sleep 0.05; done
# dispatch waiting for the database: it extends the start timeout, says why.
NOTIFY_SOCKET=$TEST_DIR/notify "$ONEGRID_BIN/onegrid-dispatch" -c "$TEST_DIR/nodb.conf" \
	>"$TEST_DIR/waiting.log" 2>&1 &
waiting=$!
on_exit "kill $waiting 2>/dev/null || true"
for ((i = 0; i < 200; i++)); do
	grep -q "^$waiting EXTEND_TIMEOUT_USEC=" "$TEST_DIR/notify.log" && break
	sleep 0.05
done
assert_match "waiting for the database: EXTEND_TIMEOUT_USEC" "^$waiting EXTEND_TIMEOUT_USEC=[0-9]+" \
	"$(grep "^$waiting EXTEND" "$TEST_DIR/notify.log" | head -1)"
assert_match "and a status that says so" "^$waiting STATUS=waiting for the database" \
	"$(grep "^$waiting STATUS" "$TEST_DIR/notify.log" | head -1)"
kill -TERM "$waiting"
wait "$waiting" || true
# The pipeline under a watchdog of 0.3 s: READY=1, then WATCHDOG=1 again and again.
ONEGRID_WRAPPER="env NOTIFY_SOCKET=$TEST_DIR/notify WATCHDOG_USEC=300000" og_start_all "$TEST_DIR"
for d in archive dispatch intake; do
	pid=$(<"$TEST_DIR/$d.pid")
	for ((i = 0; i < 200; i++)); do
		(($(grep -c "^$pid WATCHDOG=1$" "$TEST_DIR/notify.log" || true) >= 3)) && break
		sleep 0.05
	done
	assert_match "$d: READY=1" "^$pid READY=1" "$(grep "^$pid READY" "$TEST_DIR/notify.log" | head -1)"
	assert_ge "$d: WATCHDOG=1 from its loop, again and again" 3 \
		"$(grep -c "^$pid WATCHDOG=1$" "$TEST_DIR/notify.log" || true)"
done
