#!/usr/bin/env bash
# The systemd units in deploy/systemd/ are valid and stay hardened.
#
# 1. `systemd-analyze verify` accepts every unit without a word. It exits 0 on warnings
#    (unknown keys, bad values), so any output at all fails the check. verify also
#    insists that ExecStart= names an executable file: the units name the installed
#    /usr/bin/onegrid-*, so they are checked as copies pointing at $ONEGRID_BIN.
# 2. `systemd-analyze security --offline=true` scores each service at most 2.5 (a bare
#    unit scores about 9.6; ours about 1.1).
#
# Needs no running systemd: both commands read unit files only, so this also runs in a
# container whose PID 1 is not systemd. Needs the built daemons (ONEGRID_BIN).
set -euo pipefail
# shellcheck source=tests/lib/testlib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/testlib.sh"

MAX_EXPOSURE=2.5
units_src=$ONEGRID_REPO/deploy/systemd
services=(onegrid-archive.service onegrid-dispatch.service onegrid-intake.service)

test_begin "systemd units"

command -v systemd-analyze >/dev/null || fail "systemd-analyze is installed (package systemd)"
for s in "${services[@]}"; do
	[[ -x $ONEGRID_BIN/${s%.service} ]] || fail "$ONEGRID_BIN/${s%.service} is built"
done

# The copies live together so the units find each other (Wants=/After=): verify puts
# the directory of the units it is given first in its unit search path.
units=$TEST_DIR/units
mkdir "$units"
cp "$units_src"/onegrid-*.service "$units_src"/onegrid.target "$units"/
for s in "${services[@]}"; do
	sed -i "s|^ExecStart=/usr/bin/onegrid-|ExecStart=$ONEGRID_BIN/onegrid-|" "$units/$s"
	assert_match "$s: ExecStart= points at the build" "^ExecStart=$ONEGRID_BIN/" \
		"$(grep '^ExecStart=' "$units/$s")"
done

for u in "${services[@]}" onegrid.target; do
	rc=0
	# SYSTEMD_LOG_LEVEL from the caller's environment would add debug lines.
	out=$(env -u SYSTEMD_LOG_LEVEL systemd-analyze verify --man=no "$units/$u" 2>&1) || rc=$?
	assert_eq "systemd-analyze verify $u: exit status" 0 "$rc"
	assert_eq "systemd-analyze verify $u: no warnings" "" "$out"
done

for s in "${services[@]}"; do
	rc=0
	out=$(systemd-analyze security --offline=true --no-pager "$units/$s" 2>&1) || rc=$?
	assert_eq "systemd-analyze security $s: exit status" 0 "$rc"
	# "→ Overall exposure level for onegrid-intake.service: 1.1 OK 🙂"
	score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9.]*\).*/\1/p' <<<"$out")
	[[ -n $score ]] || fail "systemd-analyze security $s printed an exposure level"
	echo "# $s: exposure $score"
	if awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }'; then
		pass "$s: exposure $score <= $MAX_EXPOSURE"
	else
		echo "$out" | grep '✗' | sed 's/^/#   /'
		fail "$s: exposure $score <= $MAX_EXPOSURE"
	fi
done

# 3. What the daemons tell systemd and how it answers (issue 12 item 5; the daemons' side
#    is in check_config.sh): the watchdog, no restart loop on a configuration error (78),
#    the network up before a tcp:// endpoint is bound or connected.
for s in "${services[@]}"; do
	u=$units/$s
	assert_match "$s: WatchdogSec=" "^WatchdogSec=[0-9]+" "$(grep '^WatchdogSec=' "$u")"
	assert_eq "$s: no restart on exit 78 (EX_CONFIG)" "RestartPreventExitStatus=78" \
		"$(grep '^RestartPreventExitStatus=' "$u")"
	assert_match "$s: after network-online.target" "^After=network-online.target" "$(grep '^After=' "$u")"
	assert_eq "$s: wants network-online.target" "Wants=network-online.target" \
		"$(grep '^Wants=network-online' "$u")"
done
# 4. A secret key passed as a credential (the drop-in docs/operating.md shows) verifies.
mkdir "$units/onegrid-intake.service.d"
printf '[Service]\nLoadCredential=intake.key:/etc/onegrid/curve/intake.key\n' \
	>"$units/onegrid-intake.service.d/credentials.conf"
rc=0
out=$(env -u SYSTEMD_LOG_LEVEL systemd-analyze verify --man=no "$units/onegrid-intake.service" 2>&1) || rc=$?
assert_eq "with LoadCredential= in a drop-in: verify passes" "0 " "$rc $out"
