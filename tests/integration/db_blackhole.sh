#!/usr/bin/env bash
# A network that drops everything between a daemon and PostgreSQL (a cut link, a firewall
# that lost its state, a host gone) sends no error back. Before, a statement sent into it
# waited for the kernel to give up retransmitting (tcp_retries2: about 15 minutes):
# archive's commit, and dispatch's fetch of a closed case (or its regular reading of the
# database's clock), blocked the daemon's loop; no WATCHDOG=1 went out, and systemd killed
# and restarted it, again and again. Now onegrid's connections carry keepalives and a
# tcp_user_timeout (og_db_conn_params): within 30 s the connection fails, the daemon logs
# the outage, holds the event, goes on telling the watchdog it is alive, and stores the
# event once the network is back.
# The test runs in a network namespace of its own. dispatch and archive each reach the
# cluster over TCP on loopback, on a port of their own (socat to the cluster's socket),
# and traffic control drops every packet of a port. archive's goes first, once dispatch
# has passed it a report; then dispatch's, as an evaluation of a closed case arrives.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"
source "$(dirname "$0")/../lib/faults.sh"
og_netns_enter "$0" "$@"

test_begin "db_blackhole"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
declare -A PORT PID LOG_AT
for name in archive dispatch; do
	mkdir "$TEST_DIR/$name.net"
	PORT[$name]=$(og_db_tcp_port "$TEST_DIR/$name.net") || fail "a TCP path to the cluster for $name (socat)"
	on_exit "pkill -P $(<"$TEST_DIR/$name.net/socat.pid") 2>/dev/null; kill $(<"$TEST_DIR/$name.net/socat.pid") 2>/dev/null || true"
	sed -i "/^\[$name\]$/,/^\[/ s|^conninfo = host=[^ ]* port=[0-9]*|conninfo = host=127.0.0.1 port=${PORT[$name]}|" \
		"$TEST_DIR/onegrid.conf"
done
MPORT=$(og_free_tcp_port)
sed -i "/^\[dispatch\]/a metrics_listen = 127.0.0.1:$MPORT" "$TEST_DIR/onegrid.conf"
[[ $(grep -c "^conninfo = host=127.0.0.1 port=" "$TEST_DIR/onegrid.conf") == 2 ]] ||
	fail "dispatch and archive connect over TCP: $(grep conninfo "$TEST_DIR/onegrid.conf")"
og_start_all "$TEST_DIR"
# /proc/net/tcp: column 3 is the remote address:port, column 4 the state (01: established).
connected() {
	awk -v p=":$(printf '%04X' "$1")" 'NR > 1 && $4 == "01" && substr($3, length($3) - 4) == p { n++ }
		END { print n + 0 }' /proc/net/tcp
}
assert_eq "dispatch and archive connect over TCP, each on its own port" "1 1" \
	"$(connected "${PORT[dispatch]}") $(connected "${PORT[archive]}")"

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
decided() {
	curl -sS --max-time 5 "http://127.0.0.1:$MPORT/metrics" |
		awk '$1 == "onegrid_dispatch_decisions_total{outcome=\"accepted\"}" { print $2 }'
}
D0=$(decided)

# archive's network goes; a new report arrives, which dispatch decides and archive must
# store. Then dispatch's goes; an evaluation of the closed case arrives, which dispatch
# must read.
on_exit og_net_pass
og_net_drop "${PORT[archive]}" || fail "drop the packets of archive's port (tc)"
T0=$SECONDS
report rep-y >"$TEST_DIR/rep.jsonl"
publish rep &
pub_rep=$!
on_exit "kill $pub_rep 2>/dev/null || true"
og_poll 30 bash -c "[[ \$(curl -sS --max-time 5 http://127.0.0.1:$MPORT/metrics | awk '\$1 == \"onegrid_dispatch_decisions_total{outcome=\\\"accepted\\\"}\" { print \$2 }') == $((D0 + 1)) ]]" ||
	fail "dispatch decided the report (accepted: $(decided), $D0 before)"
og_net_drop "${PORT[dispatch]}" || fail "drop the packets of dispatch's port (tc)"
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
