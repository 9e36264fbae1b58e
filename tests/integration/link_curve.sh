#!/usr/bin/env bash
# The links between the daemons on tcp:// (daemons on several hosts): each daemon has its
# own CURVE key pair; dispatch and archive let in only the link clients their
# link_clients_file lists, and intake and dispatch check the next hop's public key. A
# link endpoint on tcp:// without keys is refused at start, so nobody who reaches it can
# inject events that skip intake's checks. A rogue intake (a key nobody listed) that
# connects to dispatch's tcp:// endpoint gets nothing in, and dispatch says which key it
# refused.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"

test_begin "link_curve"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
ctl="$ONEGRID_BIN/onegridctl"
for k in intake dispatch archive stranger; do
	"$ctl" keygen --out "$TEST_DIR/$k.key" >/dev/null
done
echo "$(cat "$TEST_DIR/intake.key.pub")  intake   # onegrid-intake" >"$TEST_DIR/dispatch.clients"
echo "$(cat "$TEST_DIR/dispatch.key.pub")  dispatch-6502" >"$TEST_DIR/archive.clients"
read -r dport aport < <(og_free_tcp_ports 2)
conf=$TEST_DIR/onegrid.conf
plain=$TEST_DIR/plain.conf
cp "$conf" "$plain"
sed -i \
	-e "s|^dispatch = .*|dispatch = tcp://127.0.0.1:$dport\nlink_secret_key_file = $TEST_DIR/intake.key\ndispatch_public_key_file = $TEST_DIR/dispatch.key.pub|" \
	-e "/^\[dispatch\]$/,/^\[archive\]$/s|^listen = .*|listen = tcp://127.0.0.1:$dport\nlink_secret_key_file = $TEST_DIR/dispatch.key\nlink_clients_file = $TEST_DIR/dispatch.clients|" \
	-e "s|^archive = .*|archive = tcp://127.0.0.1:$aport\narchive_public_key_file = $TEST_DIR/archive.key.pub|" \
	-e "/^\[archive\]$/,\$s|^listen = .*|listen = tcp://127.0.0.1:$aport\nlink_secret_key_file = $TEST_DIR/archive.key\nlink_clients_file = $TEST_DIR/archive.clients|" \
	"$conf"

# Misconfiguration: each daemon refuses to start, saying why.
refused() { # refused NAME DAEMON CONFIG EXPECTED
	local out rc=0
	out=$(timeout 10 "$ONEGRID_BIN/onegrid-$2" -c "$3" 2>&1) || rc=$?
	[[ $rc -ne 0 && $rc -ne 124 ]] || fail "$1: onegrid-$2 started (exit $rc)"
	assert_match "$1: refused at start" "$4" "$out"
}
bad() { # bad NAME DAEMON SED-EXPRESSION EXPECTED: the good config, edited
	sed "$3" "$conf" >"$TEST_DIR/bad.conf"
	refused "$1" "$2" "$TEST_DIR/bad.conf" "$4"
}
sed -i "/^\[dispatch\]$/,/^\[archive\]$/s|^listen = .*|listen = tcp://127.0.0.1:$dport|" "$plain"
refused "dispatch: a tcp:// listen without keys" dispatch "$plain" \
	'\[dispatch\] listen "tcp://127.0.0.1:[0-9]*": a link on tcp:// \(or an abstract ipc://@ socket\) needs CURVE'
sed -i "/^\[archive\]$/,\$s|^listen = .*|listen = tcp://127.0.0.1:$aport|" "$plain"
refused "archive: a tcp:// listen without keys" archive "$plain" \
	'\[archive\] listen "tcp://127.0.0.1:[0-9]*": a link on tcp:// \(or an abstract ipc://@ socket\) needs CURVE'
sed -i "s|^dispatch = .*|dispatch = tcp://127.0.0.1:$dport|" "$plain"
refused "intake: a tcp:// dispatch without keys" intake "$plain" \
	'\[intake\] dispatch "tcp://127.0.0.1:[0-9]*": a link on tcp:// \(or an abstract ipc://@ socket\) needs CURVE: set link_secret_key_file and dispatch_public_key_file'
bad "dispatch: a tcp:// archive without its key" dispatch '/^archive_public_key_file/d' \
	'archive "tcp://127.0.0.1:[0-9]*": a link on tcp:// \(or an abstract ipc://@ socket\) needs CURVE'
bad "archive: a clients file without a key pair" archive \
	"/^\[archive\]$/,\$ { /^link_secret_key_file/d }" "link_clients_file needs link_secret_key_file"
bad "a link endpoint that is neither ipc:// nor tcp://" dispatch \
	"s|^archive = .*|archive = udp://127.0.0.1:$aport|" 'is not an ipc:// or tcp:// endpoint'
cp "$TEST_DIR/archive.key" "$TEST_DIR/open.key"
chmod 644 "$TEST_DIR/open.key"
bad "a secret key others may read" archive \
	"/^\[archive\]$/,\$s|^link_secret_key_file = .*|link_secret_key_file = $TEST_DIR/open.key|" "chmod 600 it"
# Lists split on spaces as on commas: a tcp:// endpoint after a space is one too.
sed "/^\[archive\]$/,\$s|^listen = .*|listen = ipc://$TEST_DIR/archive.sock tcp://127.0.0.1:$aport|" \
	"$TEST_DIR/plain.conf" >"$TEST_DIR/spaced.conf"
refused "archive: a tcp:// listen after a space, without keys" archive "$TEST_DIR/spaced.conf" \
	'\[archive\] listen ".*": a link on tcp:// \(or an abstract ipc://@ socket\) needs CURVE'
# An abstract unix socket has no file permissions: anyone on the host may connect.
sed "/^\[archive\]$/,\$s|^listen = .*|listen = ipc://@onegrid-archive-$$|" "$TEST_DIR/plain.conf" \
	>"$TEST_DIR/abstract.conf"
refused "archive: an abstract ipc://@ listen without keys" archive "$TEST_DIR/abstract.conf" \
	'\[archive\] listen "ipc://@onegrid-archive-[0-9]+": a link on tcp:// \(or an abstract ipc://@ socket\) needs CURVE'
# dispatch's key pair may serve its link to archive alone, its own listen staying ipc://.
sed -e "/^\[dispatch\]$/,/^\[archive\]$/{ s|^listen = .*|listen = ipc://$TEST_DIR/dispatch.sock|; /^link_clients_file/d }" \
	"$conf" >"$TEST_DIR/half.conf"
rc=0
out=$(timeout 20 "$ONEGRID_BIN/onegrid-dispatch" --check-config -c "$TEST_DIR/half.conf" 2>&1) || rc=$?
assert_eq "dispatch: CURVE to archive only, its listen plain ipc://: good" "0" "$rc"
# A next hop's name that does not resolve now may later (DNS at boot): said, not refused.
sed "s|^dispatch = .*|dispatch = tcp://onegrid-no-such-host.invalid:$dport|" "$conf" >"$TEST_DIR/dns.conf"
rc=0
out=$(timeout 20 "$ONEGRID_BIN/onegrid-intake" --check-config -c "$TEST_DIR/dns.conf" 2>&1) || rc=$?
assert_eq "intake: a next hop that does not resolve now: still good" "0" "$rc"
assert_match "but said" 'tcp://onegrid-no-such-host.invalid: does not resolve now' "$out"
printf 'ABC intake\n' >"$TEST_DIR/broken.clients"
bad "a broken clients file" dispatch "s|^link_clients_file = $TEST_DIR/dispatch.clients|link_clients_file = $TEST_DIR/broken.clients|" \
	"broken.clients:1: expected"

# The whole pipeline over CURVE links.
og_start_all "$TEST_DIR"
for d in dispatch archive; do
	assert_match "$d lets in its link clients by key" "CURVE: link clients authenticate; 1 keys in $TEST_DIR/$d.clients" \
		"$(cat "$TEST_DIR/$d.log")"
done
GRID=$(sql "$TEST_DB" "SELECT source_grid_id FROM og.grid_crosswalk WHERE source_system = 'zongzhi' ORDER BY 1 LIMIT 1")
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
reports() { # reports PREFIX N
	local i
	for ((i = 1; i <= $2; i++)); do
		printf '{"id":"%s-%d","source":"zongzhi","type":"report","time":"%s","subject":"%s","report":{"category":"facility.handrail","title":"扶手松动","channel":"CHANNEL_GRID_PATROL"}}\n' \
			"$1" "$i" "$NOW" "$GRID"
	done
}
reports ok 20 >"$TEST_DIR/ok.jsonl"
rc=0
"$ctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 30 "$TEST_DIR/ok.jsonl" \
	>"$TEST_DIR/ok.txt" 2>&1 || rc=$?
assert_eq "events over CURVE links: every one answered" 0 "$rc"
assert_eq "and stored" 20 "$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key WHERE source_event_id LIKE 'ok-%'")"

# A rogue intake with a key of its own, not listed: it reaches dispatch's port and knows
# dispatch's public key, but its handshake is refused and nothing it sends gets in.
rogue=$TEST_DIR/rogue
mkdir "$rogue"
sed -e "s|ipc://$TEST_DIR/intake.sock|ipc://$rogue/intake.sock|" \
	-e "s|^link_secret_key_file = $TEST_DIR/intake.key|link_secret_key_file = $TEST_DIR/stranger.key\nresend_ms = 200|" \
	"$conf" >"$rogue/onegrid.conf"
on_exit og_stop_all "$rogue"
og_start intake "$rogue"
reports rogue 3 >"$TEST_DIR/rogue.jsonl"
rc=0
"$ctl" publish --endpoint "ipc://$rogue/intake.sock" --timeout 3 "$TEST_DIR/rogue.jsonl" \
	>"$TEST_DIR/rogue.txt" 2>&1 || rc=$?
assert_eq "a rogue intake's events: no answer" 4 "$rc"
stranger=$(cat "$TEST_DIR/stranger.key.pub")
for ((i = 0; i < 100; i++)); do
	grep -qF "unknown key $stranger" "$TEST_DIR/dispatch.log" && break
	sleep 0.1
done
assert_match "dispatch says whom it refused, and why" \
	"refusing a link client from 127.0.0.1: unknown key .* \\(not in $TEST_DIR/dispatch.clients\\)" \
	"$(grep -F -e "$stranger" "$TEST_DIR/dispatch.log")"
assert_match "the rogue intake says its next hop does not answer, and why that may be" \
	'dispatch has not answered for [0-9]+ s while [0-9]+ frames wait for it \(not connected\): is it running, and listening where \[intake\] dispatch says\? \(with CURVE: is this daemon.s link key in its link_clients_file' \
	"$(cat "$rogue/intake.log")"
assert_eq "nothing of the rogue's is stored or recorded" "0|0" \
	"$(sql "$TEST_DB" "SELECT (SELECT count(*) FROM og.event_key WHERE source_event_id LIKE 'rogue-%'),
	                          (SELECT count(*) FROM og.rejection WHERE source_event_id LIKE 'rogue-%')")"
og_stop_all "$rogue"

# The real intake is still let in after the rogue's attempts.
reports after 5 >"$TEST_DIR/after.jsonl"
rc=0
"$ctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 30 "$TEST_DIR/after.jsonl" \
	>"$TEST_DIR/after.txt" 2>&1 || rc=$?
assert_eq "the listed intake's events still stored" "0 5" \
	"$rc $(sql "$TEST_DB" "SELECT count(*) FROM og.event_key WHERE source_event_id LIKE 'after-%'")"
