#!/usr/bin/env bash
# A network that drops everything between a daemon and PostgreSQL (a cut link, a firewall
# that lost its state, a host gone) sends no error back. Before, a statement sent into it
# waited for the kernel to give up retransmitting (tcp_retries2: about 15 minutes):
# archive's commit, and dispatch's fetch of a closed case (or its regular reading of the
# database's clock), blocked the daemon's loop; no WATCHDOG=1 went out, and systemd killed
# and restarted it, again and again. Now onegrid's connections carry keepalives and a
# tcp_user_timeout (og_db_conn_params), on both ends: within 30 s the connection fails,
# the daemon logs the outage, holds the event, goes on telling the watchdog it is alive,
# and stores the event once the network is back; and the server's end of a connection is
# probed as often (its backend does not linger for hours, holding a batch's locks).
# The test runs in a network namespace of its own, with a cluster of its own that listens
# on TCP at two addresses: dispatch connects to 127.0.0.1, archive to 127.0.0.2, and
# traffic control drops every packet sent from an address. archive's goes first, once
# dispatch has passed it a report; then dispatch's, as an evaluation of a closed case
# arrives.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"
source "$(dirname "$0")/../lib/faults.sh"
# As root only (tests/run --no-install runs as any user): exits 77, which CTest counts as
# skipped. As root, a namespace or traffic control that cannot be had is a failure.
if ((EUID != 0)); then
	echo "# db_blackhole: skipped: a network namespace and traffic control need root"
	exit 77
fi
og_netns_enter "$0" "$@"

test_begin "db_blackhole"
unset PGHOST PGPORT
PGCLUSTER_LISTEN=127.0.0.1,127.0.0.2 test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
declare -A ADDR=([dispatch]=127.0.0.1 [archive]=127.0.0.2) PID LOG_AT
for name in archive dispatch; do
	sed -i "/^\[$name\]$/,/^\[/ s|^conninfo = host=[^ ]* port=[0-9]*|conninfo = host=${ADDR[$name]} port=$PGPORT|" \
		"$TEST_DIR/onegrid.conf"
done
MPORT=$(og_free_tcp_port)
sed -i "/^\[dispatch\]/a metrics_listen = 127.0.0.1:$MPORT" "$TEST_DIR/onegrid.conf"
[[ $(grep -c "^conninfo = host=127.0.0.[12] port=$PGPORT " "$TEST_DIR/onegrid.conf") == 2 ]] ||
	fail "dispatch and archive connect over TCP: $(grep conninfo "$TEST_DIR/onegrid.conf")"
og_start_all "$TEST_DIR"
# server_end NAME: the server's end of daemon NAME's connection, as "ADDRESS TIMER" (ss:
# its local address, and its timer: keepalive while idle, with the time left).
server_end() {
	local port
	port=$(sql "$TEST_DB" "SELECT client_port FROM pg_stat_activity WHERE application_name = 'onegrid-$1' AND backend_type = 'client backend'")
	[[ $port =~ ^[0-9]+$ ]] || return 0
	ss -tnoH state established "( sport = :$PGPORT and dport = :$port )" |
		awk '{ split($3, a, ":"); t = ""; for (i = 4; i <= NF; i++) if ($i ~ /^timer:/) t = $i; print a[1], t }'
}
# The server probes an idle connection as soon as its client does: within 15 s (the
# kernel's default is 2 hours), so a backend whose client is gone does not linger.
short_keepalive() { [[ $(server_end "$1") =~ ^${ADDR[$1]}\ timer:\(keepalive,([0-9.]+)(ms|sec), ]] && ((${BASH_REMATCH[1]%.*} <= 15)); }
for name in archive dispatch; do
	og_poll 10 short_keepalive "$name" ||
		fail "$name's connection goes to ${ADDR[$name]}, and the server probes it within 15 s: $(server_end "$name")"
	pass "$name's connection goes to ${ADDR[$name]}, and the server probes it within 15 s: $(server_end "$name")"
done

NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ZZ=$(sql "$TEST_DB" "SELECT source_grid_id FROM og.grid_crosswalk WHERE source_system = 'zongzhi' ORDER BY 1 LIMIT 1")
publish() { # publish NAME: its exit status in $rc
	rc=0
	"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 300 \
		--results "$TEST_DIR/$1.out" "$TEST_DIR/$1.jsonl" >"$TEST_DIR/$1.txt" 2>&1 || rc=$?
}
report() { # report ID: a report event on stdout
	printf '{"id":"%s","source":"zongzhi","type":"report","time":"%s","subject":"%s","report":{"category":"facility.streetlight","title":"路灯不亮","channel":"CHANNEL_GRID_PATROL"}}\n' \
		"$1" "$NOW" "$ZZ"
}
report rep-x >"$TEST_DIR/open.jsonl"
publish open
assert_eq "a report is stored over TCP" 0 "$rc"
X=$(grep -o '"case_id":"[^"]*"' "$TEST_DIR/open.out" | cut -d'"' -f4)
og_close_events "$TEST_DB" "$X" "$NOW" x >"$TEST_DIR/close.jsonl"
publish close
assert_eq "its case closed (and left dispatch's memory)" "0|closed" \
	"$rc|$(sql "$TEST_DB" "SELECT state FROM og.case WHERE case_id = '$X'")"

# dispatch and archive again, under a stand-in for systemd's notify socket.
"$ONEGRID_BIN/notifyrecv" "$TEST_DIR/notify" >"$TEST_DIR/notify.log" 2>&1 &
on_exit "kill $! 2>/dev/null || true"
og_poll 10 test -S "$TEST_DIR/notify" || fail "notifyrecv did not bind its socket"
pings() { grep -c "^$1 WATCHDOG=1$" "$TEST_DIR/notify.log" || true; }
for name in archive dispatch; do
	og_stop "$name" "$TEST_DIR"
	ONEGRID_WRAPPER="env NOTIFY_SOCKET=$TEST_DIR/notify WATCHDOG_USEC=1000000" og_start "$name" "$TEST_DIR"
	PID[$name]=$(<"$TEST_DIR/$name.pid")
	og_poll 30 bash -c "(( \$(grep -c '^${PID[$name]} WATCHDOG=1\$' '$TEST_DIR/notify.log' || true) >= 1 ))" ||
		fail "$name tells the watchdog it is alive"
	LOG_AT[$name]=$(stat -c %s "$TEST_DIR/$name.log")
done
since() { tail -c +"$((LOG_AT[$1] + 1))" "$TEST_DIR/$1.log"; }
ACCEPTED='onegrid_dispatch_decisions_total{outcome="accepted"}'
decided() { og_metric "$MPORT" "$ACCEPTED"; }
D0=$(decided)

# archive's network goes; a new report arrives, which dispatch decides and archive must
# store. Then dispatch's goes; an evaluation of the closed case arrives, which dispatch
# must read.
on_exit og_net_pass
og_net_drop "${ADDR[archive]}" || fail "drop the packets of archive's address (tc)"
T0=$SECONDS
report rep-y >"$TEST_DIR/rep.jsonl"
publish rep &
pub_rep=$!
on_exit "kill $pub_rep 2>/dev/null || true"
og_poll 30 og_metric_at_least "$MPORT" "$ACCEPTED" $((D0 + 1)) ||
	fail "dispatch decided the report (accepted: $(decided), $D0 before)"
og_net_drop "${ADDR[dispatch]}" || fail "drop the packets of dispatch's address (tc)"
printf '{"id":"ev-x","source":"12345","type":"evaluation","time":"%s","evaluation":{"case_id":"%s","result":"RESULT_SATISFIED"}}\n' \
	"$NOW" "$X" >"$TEST_DIR/ev.jsonl"
publish ev &
pub_ev=$!
on_exit "kill $pub_ev 2>/dev/null || true"
for name in archive dispatch; do
	og_poll 90 bash -c "tail -c +$((LOG_AT[$name] + 1)) '$TEST_DIR/$name.log' | grep -q 'database unavailable, holding'" ||
		fail "$name noticed the lost connection within 90 s: $(since "$name" | tail -n 5)"
	pass "$name noticed the lost connection ($((SECONDS - T0)) s after archive's network went): $(since "$name" | grep -m1 -o 'database unavailable, holding.*' | cut -c1-160)"
done
# While the network is still gone, each loop runs: the watchdog hears from both again and
# again, and neither event is answered.
for name in archive dispatch; do
	p0=$(pings "${PID[$name]}")
	og_poll 60 bash -c "(( \$(grep -c '^${PID[$name]} WATCHDOG=1\$' '$TEST_DIR/notify.log' || true) >= $p0 + 4 ))" ||
		fail "$name kept telling the watchdog it is alive while the network was gone ($(pings "${PID[$name]}") pings, $p0 before)"
	pass "$name kept telling the watchdog it is alive while the network was gone"
done
assert_eq "neither event is answered while the network is gone" "running running" \
	"$(kill -0 "$pub_rep" 2>/dev/null && echo running) $(kill -0 "$pub_ev" 2>/dev/null && echo running)"

og_net_pass
wait "$pub_rep" || true
wait "$pub_ev" || true
assert_eq "once the network is back, both are answered stored" "1 1" \
	"$(grep -c '"outcome":"stored"' "$TEST_DIR/rep.out" || true) $(grep -c '"outcome":"stored"' "$TEST_DIR/ev.out" || true)"
assert_eq "the report's case is stored once; the closed case is evaluated" "1|evaluated" \
	"$(sql "$TEST_DB" "SELECT (SELECT count(*) FROM og.case_report WHERE source_event_id = 'rep-y') || '|' || (SELECT state FROM og.case WHERE case_id = '$X')")"
for name in archive dispatch; do
	assert_match "$name said the database is back" "database available again" "$(since "$name")"
	assert_eq "the same $name runs" "${PID[$name]}" "$(kill -0 "${PID[$name]}" 2>/dev/null && echo "${PID[$name]}")"
done
"$ONEGRID_BIN/onegridctl" audit verify --db "dbname=$TEST_DB" >"$TEST_DIR/verify.txt" 2>&1 ||
	fail "audit verify failed: $(cat "$TEST_DIR/verify.txt")"
pass "audit verify passes"
