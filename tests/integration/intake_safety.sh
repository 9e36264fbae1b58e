#!/usr/bin/env bash
# Safe defaults and small holes at intake's edge (issue 10 items 4 and 7):
#   - a tcp:// listen that the network can reach, without CURVE, stops intake at start
#     unless the operator wrote allow_unauthenticated = yes; loopback and ipc:// are fine;
#     the shipped configuration starts; an empty listen stops it;
#   - a secret key file its group or others may read is refused, by intake and by
#     onegridctl publish, and publish takes a secret key from a file only;
#   - what publishers send reaches intake's log without control characters.
# (Handshakes of clients without CURVE and the rate limits of refusals: flood.sh, curve.sh
# and the unit tests of ratelimit.c and zap.c.)
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"
source "$(dirname "$0")/../lib/faults.sh"

test_begin "intake safety"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
ctl=$ONEGRID_BIN/onegridctl
PORT=$(og_free_tcp_port)
"$ctl" keygen --out "$TEST_DIR/intake.key" >/dev/null
"$ctl" keygen --out "$TEST_DIR/zz.key" >/dev/null
echo "$(cat "$TEST_DIR/zz.key.pub")  zongzhi" >"$TEST_DIR/publishers"

# intake with the test configuration (or BASE) changed by a sed expression.
conf() { # conf NAME SED-EXPRESSION [BASE]
	sed "$2" "${3:-$TEST_DIR/onegrid.conf}" >"$TEST_DIR/$1.conf"
}
refused() { # refused NAME SED-EXPRESSION EXPECTED: intake exits at start, saying why
	conf "$1" "$2"
	local out rc=0
	out=$(timeout 20 "$ONEGRID_BIN/onegrid-intake" -c "$TEST_DIR/$1.conf" 2>&1) || rc=$?
	[[ $rc -ne 0 && $rc -ne 124 ]] || fail "$1: intake started (exit $rc)"
	assert_match "$1: refused at start" "$3" "$out"
}
starts() { # starts NAME SED-EXPRESSION [EXPECTED [BASE]]: intake gets ready (and says EXPECTED)
	conf "$1" "$2" "${4:-}"
	"$ONEGRID_BIN/onegrid-intake" -c "$TEST_DIR/$1.conf" >"$TEST_DIR/$1.log" 2>&1 &
	local pid=$!
	og_poll 20 grep -q '^<5>ready' "$TEST_DIR/$1.log" || {
		kill "$pid" 2>/dev/null || true
		fail "$1: intake got ready ($(tail -n 3 "$TEST_DIR/$1.log"))"
	}
	kill "$pid"
	wait "$pid" || fail "$1: intake stopped cleanly"
	pass "$1: intake starts"
	[[ -z ${3:-} ]] || assert_match "$1: says so" "$3" "$(cat "$TEST_DIR/$1.log")"
}
listen() { echo "s|^listen = ipc://$TEST_DIR/intake.sock\$|listen = $1|"; }
curve() { echo "s|^\[intake\]\$|[intake]\ncurve_secret_key_file = ${1:-$TEST_DIR/intake.key}\ncurve_publishers_file = $TEST_DIR/publishers|"; }
grep -q "^listen = ipc://$TEST_DIR/intake.sock\$" "$TEST_DIR/onegrid.conf" || fail "the test configuration's listen line"

refused "every interface, no CURVE" "$(listen "ipc://$TEST_DIR/intake.sock, tcp://0.0.0.0:$PORT")" \
	"listen: \"tcp://0.0.0.0:$PORT\" may be reached from the network, and publishers do not authenticate.*allow_unauthenticated = yes"
refused "a wildcard, no CURVE" "$(listen "tcp://*:$PORT")" "may be reached from the network"
refused "allow_unauthenticated neither yes nor no" \
	"$(listen "tcp://0.0.0.0:$PORT");s|^\[intake\]\$|[intake]\nallow_unauthenticated = true|" \
	"allow_unauthenticated: \"true\" is neither yes nor no"
refused "an empty listen" "$(listen "")" "\[intake\] listen: no endpoint"
refused "a listen of separators only" "$(listen " , ")" "\[intake\] listen: no endpoint"
starts "every interface, allow_unauthenticated = yes" \
	"$(listen "tcp://0.0.0.0:$PORT");s|^\[intake\]\$|[intake]\nallow_unauthenticated = yes|" \
	"<4>\[intake\] allow_unauthenticated = yes: publishers do not authenticate"
starts "every interface, with CURVE" "$(listen "tcp://0.0.0.0:$PORT");$(curve)"
starts "loopback, no CURVE" "$(listen "ipc://$TEST_DIR/intake.sock, tcp://127.0.0.1:$PORT")"

# The shipped configuration, its paths moved into the test directory.
sed -e "s|/run/onegrid/|$TEST_DIR/|g" -e "s|:7300|:$PORT|g" "$ONEGRID_REPO/deploy/conf/onegrid.conf" >"$TEST_DIR/shipped.conf"
starts "the shipped configuration" "" "" "$TEST_DIR/shipped.conf"
# ... and what its comment says to do for other hosts: CURVE, then every interface.
starts "the shipped configuration opened to the network with CURVE" \
	"s|^listen = .*|listen = ipc://$TEST_DIR/intake.sock, tcp://0.0.0.0:$PORT|;$(curve)" "" "$TEST_DIR/shipped.conf"

# Secret key files open to others: refused by intake and by onegridctl publish; a public
# key file may be read by anyone.
cp "$TEST_DIR/intake.key" "$TEST_DIR/open.key"
chmod 640 "$TEST_DIR/open.key"
refused "a secret key file the group may read" "$(curve "$TEST_DIR/open.key")" \
	"open.key: a secret key file its group or others may read \(mode 0640\): chmod 600 it"
og_start_all "$TEST_DIR"
EP=ipc://$TEST_DIR/intake.sock
og_gen_reports "$TEST_DB" 1 safe >"$TEST_DIR/one.jsonl"
publish() { # publish ARGS...: exit status in $rc, output in $out
	rc=0
	out=$("$ctl" publish --endpoint "$EP" --timeout 3 "$@" "$TEST_DIR/one.jsonl" 2>&1) || rc=$?
}
cp "$TEST_DIR/zz.key" "$TEST_DIR/zz-open.key"
chmod 644 "$TEST_DIR/zz-open.key"
publish --curve-server-key "$TEST_DIR/intake.key.pub" --curve-key "$TEST_DIR/zz-open.key"
assert_eq "publish: a world-readable secret key file: usage error" 2 "$rc"
assert_match "publish: says chmod 600" "--curve-key: .*zz-open.key: a secret key file its group or others may read \(mode 0644\): chmod 600 it" "$out"
publish --curve-server-key "$TEST_DIR/intake.key.pub" --curve-key "$(head -n 1 "$TEST_DIR/zz.key")"
assert_eq "publish: a secret key on the command line: usage error" 2 "$rc"
assert_match "publish: says to use a file" "--curve-key: a secret key is read from a file only" "$out"
assert_eq "the public key file is world-readable, as keygen writes it" 644 "$(stat -c %a "$TEST_DIR/intake.key.pub")"

# Control characters in what publishers send (ESC, BEL, CR, a C1 CSI, a line break) reach
# the log made harmless: every line of intake's log is one message with its priority.
ESC=$'\x1b'
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
{
	printf '{"id":"x\\u001b[31mred\\u0007","source":"zongzhi","type":"report","time":"%s","subject":"g","report":{}}\n' "$NOW"
	printf '{"id":"ok-1","source":"zong\\r\\nzhi\\u009b2J","type":"report","time":"%s","subject":"g","report":{}}\n' "$NOW"
	printf '{"id":"ok-2","source":"zongzhi","type":"report\\u001b]0;pwned\\u0007","time":"%s","subject":"g\\n<0>fake","report":{"category":"facility.handrail","title":"t"}}\n' "$NOW"
} >"$TEST_DIR/ctl.jsonl"
rc=0
"$ctl" publish --endpoint "$EP" --timeout 10 "$TEST_DIR/ctl.jsonl" >"$TEST_DIR/ctl.txt" 2>&1 || rc=$?
assert_eq "events with control characters: answered (rejected)" 3 "$rc"
og_poll 10 eval '(($(grep -c "refusing event .* from local" "$TEST_DIR/intake.log") >= 3))' ||
	fail "intake logs the three refusals"
assert_match "a refusal's line names the event by its key" \
	'refusing event "ok-2" of source "zongzhi" from local: REASON_' "$(cat "$TEST_DIR/intake.log")"
assert_eq "no control character in intake's log" "" \
	"$(LC_ALL=C grep -naP '[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]' "$TEST_DIR/intake.log" || true)"
assert_eq "every line of intake's log is a message with its priority" "" \
	"$(grep -nvE '^(<[0-7]>|# ---- )' "$TEST_DIR/intake.log" || true)"
[[ $(cat "$TEST_DIR/intake.log") != *"$ESC"* ]] || fail "no ESC in intake's log"
