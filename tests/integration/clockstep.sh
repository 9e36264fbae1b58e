#!/usr/bin/env bash
# Clock steps: dispatch's wall clock jumps 30 days ahead while events come in, and back;
# then 30 days behind, and back. A step must not escalate, open or date anything by
# itself: dispatch notices it (against its boot-time clock and the database's clock),
# logs it once, holds the submissions until the clocks agree again, says so once more,
# and then decides them on the right time. Nothing escalates and no case or decision is
# dated by the stepped clock. The step is made with libfaketime reading its offset from
# a file on every call (FAKETIME_TIMESTAMP_FILE, FAKETIME_NO_CACHE), so the same dispatch
# runs on through it; its monotonic clocks are left alone, as the kernel leaves them.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"

test_begin "clockstep"
[[ -r $OG_FAKETIME_LIB ]] || fail "libfaketime is missing: deploy/install-deps installs the faketime package"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
# Scans every 100 ms: a dispatch that believed a stepped clock would escalate at once.
sed -i 's/^\[dispatch\]$/[dispatch]\nescalation_scan_ms = 100/' "$TEST_DIR/onegrid.conf"
CLOCK=$TEST_DIR/clock.rc
echo "+0" >"$CLOCK"

og_start archive "$TEST_DIR"
(
	unset FAKETIME
	export FAKETIME_TIMESTAMP_FILE=$CLOCK FAKETIME_NO_CACHE=1 FAKETIME_DONT_FAKE_MONOTONIC=1
	ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" \
		ONEGRID_WRAPPER="env LD_PRELOAD=$OG_FAKETIME_LIB" og_start dispatch "$TEST_DIR"
) || fail "start dispatch under libfaketime"
og_start intake "$TEST_DIR"

og_gen_reports "$TEST_DB" 300 cs >"$TEST_DIR/all.jsonl"
sed -n '1,100p' "$TEST_DIR/all.jsonl" >"$TEST_DIR/before.jsonl"
sed -n '101,200p' "$TEST_DIR/all.jsonl" >"$TEST_DIR/ahead.jsonl"
sed -n '201,300p' "$TEST_DIR/all.jsonl" >"$TEST_DIR/behind.jsonl"
publish() { # publish NAME: publishes NAME.jsonl, answers in NAME.out
	"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 120 \
		--results "$TEST_DIR/$1.out" "$TEST_DIR/$1.jsonl" >"$TEST_DIR/$1.txt" 2>&1
}
count() { sql "$TEST_DB" "$1"; }
escalations() { count "SELECT count(*) FROM og.event_key WHERE source_system = 'onegrid'"; }
# Cases and decisions dated outside [$FROM - 60 s, now + 60 s] (60 s: the bound).
misdated() {
	count "SELECT (SELECT count(*) FROM og.case WHERE opened_at NOT BETWEEN
	               '$FROM'::timestamptz - interval '60 s' AND now() + interval '60 s')
	            + (SELECT count(*) FROM og.ledger WHERE (detail ->> 'decided')::timestamptz NOT BETWEEN
	               '$FROM'::timestamptz - interval '60 s' AND now() + interval '60 s')"
}
log_count() { grep -c -- "$1" "$TEST_DIR/dispatch.log" || true; }
# wait_for SECONDS CMD...: polls CMD until it succeeds, or fails after SECONDS.
wait_for() {
	local until=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS < until)) || return 1
		sleep 0.1
	done
}
# Something came of the step: dispatch noticed it and holds what arrives, or (as a
# dispatch that believes the clock would) it escalated or dated something by it.
step_shows() { # step_shows N: the N-th step
	{ (($(log_count "clock step:") >= $1)) && (($(log_count "holding [0-9]* submission") >= $1)); } ||
		(($(escalations) > 0 || $(misdated) > 0))
}

FROM=$(count "SELECT now()")
publish before
assert_eq "100 events stored on a steady clock" 100 "$(count "SELECT count(*) FROM og.case")"

# +30 days, and events come in meanwhile.
echo "+30d" >"$CLOCK"
publish ahead &
pub=$!
on_exit "kill $pub 2>/dev/null || true"
wait_for 30 step_shows 1 || fail "dispatch neither noticed the step nor acted on it within 30 s"
assert_eq "no case escalated while the clock was 30 days ahead" 0 "$(escalations)"
assert_eq "no case or decision dated by the stepped clock" 0 "$(misdated)"
assert_eq "nothing arriving during the step was decided" 100 "$(count "SELECT count(*) FROM og.case")"
assert_match "the step is logged, with its size" \
	"<3>clock step: the wall clock is 2592[0-9]{3} s \(30\.0 days\) ahead of the boot-time clock's reckoning" \
	"$(grep -- "clock step:" "$TEST_DIR/dispatch.log")"
echo "+0" >"$CLOCK"
rc=0
wait "$pub" || rc=$?
assert_eq "the events sent during the step were all answered once the clocks agreed" 0 "$rc"
assert_match "every one stored" "stored 100, duplicate 0, rejected 0, unanswered 0" "$(cat "$TEST_DIR/ahead.txt")"
assert_match "the end of the hold is logged, with what was held" \
	"<5>the clocks agree again after [0-9]+ s: deciding and escalating again \([0-9]+ submissions held\)" \
	"$(grep -- "the clocks agree again after" "$TEST_DIR/dispatch.log")"
assert_eq "200 cases, all dated by the right clock" "200|0" \
	"$(count "SELECT count(*) FROM og.case")|$(misdated)"

# 30 days back, and events come in meanwhile.
echo "-30d" >"$CLOCK"
publish behind &
pub=$!
on_exit "kill $pub 2>/dev/null || true"
wait_for 30 step_shows 2 || fail "dispatch neither noticed the step back nor acted on it within 30 s"
assert_eq "no case or decision dated 30 days back" 0 "$(misdated)"
assert_eq "nothing arriving during the step back was decided" 200 "$(count "SELECT count(*) FROM og.case")"
echo "+0" >"$CLOCK"
rc=0
wait "$pub" || rc=$?
assert_eq "the events sent during the step back were all answered" 0 "$rc"
assert_match "every one stored" "stored 100, duplicate 0, rejected 0, unanswered 0" "$(cat "$TEST_DIR/behind.txt")"
assert_eq "300 cases, all dated by the right clock" "300|0" \
	"$(count "SELECT count(*) FROM og.case")|$(misdated)"

# After both steps dispatch decides as before, and the escalation scans that ran
# meanwhile (every 100 ms) found nothing due.
og_gen_reports "$TEST_DB" 1 probe >"$TEST_DIR/probe.jsonl"
publish probe
assert_eq "dispatch decides again after the steps" "301|0" "$(count "SELECT count(*) FROM og.case")|$(misdated)"
assert_eq "no case escalated because of either step" 0 "$(escalations)"
assert_eq "each step logged once, and each end once" "2|2" \
	"$(log_count "clock step:")|$(log_count "the clocks agree again after")"
