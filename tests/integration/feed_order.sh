#!/usr/bin/env bash
# A feed reader never skips a row. It reads "its rows after the last seq it saw", so a row
# must never become visible after a row with a higher seq has been: two writers whose
# transactions commit in the other order than they wrote their rows must not hide the
# first writer's rows from a reader that has already seen the second's.
#
# Driven at the SQL level by two sessions, A and B, that change cases as the owner in
# transactions kept open (the feed trigger is what every writer goes through, archive
# included), with a reader (`onegridctl feed`, as the auditor) between the steps:
#   1. A writes its rows and waits; B writes and commits; the reader reads; A commits;
#      the reader reads on from the last row it saw.
#   2. A is held inside its COMMIT (a test trigger at commit time waits on a lock the test
#      holds) while B commits; the reader reads; A is let go; the reader reads on.
# Then: what listeners are told, and writers that number early, or roll part of their
# work back, leave no row unnumbered.
# Every step waits for a condition (a marker in a session's output, a wait event), never
# for a fixed time.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"

test_begin "feed_order"
test_createdb

# Background psql sessions reading SQL from a fifo. PGAPPNAME names each one so
# pg_stat_activity can tell what it is doing.
declare -A FD PID
MARKS=0
session_open() { # session_open NAME
	mkfifo "$TEST_DIR/$1.in"
	PGAPPNAME="feed_order_$1" "$PG_BIN/psql" -XAtq -d "$TEST_DB" \
		<"$TEST_DIR/$1.in" >"$TEST_DIR/$1.out" 2>&1 &
	PID[$1]=$!
	local fd
	exec {fd}>"$TEST_DIR/$1.in"
	FD[$1]=$fd
	on_exit "kill ${PID[$1]} 2>/dev/null || true"
}
# A backend waiting for a lock outlives its psql: end the sessions' backends at exit.
on_exit "sql postgres \"SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                       WHERE datname = '$TEST_DB' AND application_name LIKE 'feed_order_%'\" >/dev/null"
say() { # say NAME SQL: sends SQL to session NAME without waiting for it
	printf '%s\n' "$2" >&"${FD[$1]}"
}
# wait_until WHAT CMD...: polls CMD until it succeeds; fails the test after 30 s.
wait_until() {
	local what=$1 i
	shift
	for ((i = 0; i < 600; i++)); do
		"$@" && return 0
		sleep 0.05
	done
	_tl_not_ok "$what (waited 30 s)" "$(for s in "${!PID[@]}"; do echo "-- session $s:"; cat "$TEST_DIR/$s.out"; done)"
}
has_mark() { grep -qx "$2" "$TEST_DIR/$1.out"; }
done_with() { # done_with NAME: waits until NAME has run everything sent to it so far
	MARKS=$((MARKS + 1))
	say "$1" "\\echo mark-$MARKS"
	wait_until "session $1 runs its statements" has_mark "$1" "mark-$MARKS"
	if grep -q 'ERROR' "$TEST_DIR/$1.out"; then
		_tl_not_ok "session $1 runs its statements without error" "$(cat "$TEST_DIR/$1.out")"
	fi
}
# wait_event NAME: what session NAME's backend waits for (type:event), empty if nothing.
wait_event() {
	sql "$TEST_DB" "SELECT coalesce(wait_event_type || ':' || wait_event, '') FROM pg_stat_activity
	                WHERE datname = '$TEST_DB' AND application_name = 'feed_order_$1'"
}
waits_on() { [[ $(wait_event "$1") == "$2" ]]; }

# Cases held by unit U1; each step moves one to unit U2, whose feed the reader follows:
# the step's row is U2's "assigned".
read -r U1 U2 < <(sql "$TEST_DB" "SELECT string_agg(code, ' ' ORDER BY code) FROM
                                  (SELECT code FROM og.handling_unit ORDER BY code LIMIT 2) u")
sql "$TEST_DB" <<EOF
SET ROLE onegrid_owner;
INSERT INTO og.case (case_id, shard, district_code, area_code, category_code, state, unit_code,
                     title, channel, source_system, source_event_id, occurred_at, opened_at,
                     deadline_at, updated_at, last_ledger_id, stage, clock)
  SELECT 'fo-' || i, '650204', '650204', '650204001001001', 'facility.handrail', 'dispatched', '$U1',
         'feed order ' || i, 'CHANNEL_DOOR_VISIT', 'zongzhi', 'fo-' || i, now(), now(),
         now() + interval '5 days', now(), i, 'handling', 'running'
    FROM generate_series(1, 4) i;
EOF
START=$(sql "$TEST_DB" "SELECT max(seq) FROM og.assignment")
move() { # the SQL that gives case fo-$1 to U2 as the owner
	echo "SET LOCAL ROLE onegrid_owner; UPDATE og.case SET unit_code = '$U2' WHERE case_id = 'fo-$1';"
}

FEED="dbname=$TEST_DB user=onegrid_audit"
LAST=0
: >"$TEST_DIR/reader.out"
# read_on: the reader reads U2's rows after the last seq it saw, as a subscriber does,
# and remembers the last seq; GOT: the case ids it got, space-separated.
read_on() {
	local out
	GOT=
	out=$("$ONEGRID_BIN/onegridctl" feed --db "$FEED" --unit "$U2" --after "$LAST")
	[[ -n $out ]] || return 0
	printf '%s\n' "$out" >>"$TEST_DIR/reader.out"
	LAST=$(tail -1 <<<"$out" | grep -o '"seq" : [0-9]*' | grep -o '[0-9]*$')
	GOT=$(grep -o '"case_id" : "[^"]*"' <<<"$out" | cut -d'"' -f4 | tr '\n' ' ' | sed 's/ $//')
}
# Every row U2's feed has, as case ids in seq order.
all_rows() {
	"$ONEGRID_BIN/onegridctl" feed --db "$FEED" --unit "$U2" | grep -o '"case_id" : "[^"]*"' |
		cut -d'"' -f4 | tr '\n' ' ' | sed 's/ $//'
}
read_on
assert_eq "U2's feed is empty at first" "" "$GOT"

session_open A
session_open B
session_open L
say L "LISTEN onegrid_assignment;"
done_with L

# 1. Two transactions that commit out of order.
say A "BEGIN; $(move 1)"
done_with A
say B "BEGIN; $(move 2) COMMIT;"
done_with B
read_on
assert_eq "the reader sees B's row, committed first" fo-2 "$GOT"
say A "COMMIT;"
done_with A
read_on
assert_eq "reading on from the last row it saw, the reader gets A's row, committed second" fo-1 "$GOT"
assert_eq "and has read every row of the feed" "$(all_rows | tr ' ' '\n' | sort | tr '\n' ' ')" \
	"$(grep -o '"case_id" : "[^"]*"' "$TEST_DIR/reader.out" | cut -d'"' -f4 | sort | tr '\n' ' ')"

# 2. A slow inside COMMIT, after its rows got their numbers (where the numbers are given
# at commit: this test trigger fires after any other commit-time work on og.assignment),
# as a slow disk or a lost connection would keep it. B commits meanwhile.
sql "$TEST_DB" <<'EOF'
CREATE FUNCTION public.feed_order_hold() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('feed_order.hold', true) = 'on' THEN
    PERFORM pg_advisory_xact_lock(7413);
  END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER zz_feed_order_hold AFTER INSERT ON og.assignment
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.feed_order_hold();
EOF
session_open C
say C "SELECT pg_advisory_lock(7413);"
done_with C
say A "BEGIN; SET LOCAL feed_order.hold = on; $(move 3) COMMIT;"
wait_until "A waits inside its COMMIT" waits_on A Lock:advisory
MARKS=$((MARKS + 1))
B_DONE=mark-$MARKS
say B "BEGIN; $(move 4) COMMIT;"
say B "\\echo $B_DONE"
b_settled() { has_mark B "$B_DONE" || [[ $(wait_event B) == Lock:* ]]; }
wait_until "B has committed or waits for a lock" b_settled
if has_mark B "$B_DONE"; then
	echo "# B committed while A was still committing"
else
	echo "# B waits ($(wait_event B)) until A has committed"
fi
read_on
assert_eq "while A commits, the reader sees no row after A's" "" "$GOT"
say C "SELECT pg_advisory_unlock(7413);"
done_with C
done_with A
done_with B
read_on
assert_eq "once A has committed, reading on gets A's row, then B's" "fo-3 fo-4" "$GOT"
assert_eq "the reader has read every row of the feed, each once" "$(all_rows)" \
	"$(grep -o '"case_id" : "[^"]*"' "$TEST_DIR/reader.out" | cut -d'"' -f4 | tr '\n' ' ' | sed 's/ $//')"

# A listener hears once per transaction, with the highest seq it added (each move adds
# two rows: U2's "assigned" and U1's "withdrawn"). psql prints them after a query.
say L "SELECT 1;"
done_with L
assert_eq "a listener got one notification per transaction, its highest seq" \
	"$(sql "$TEST_DB" "SELECT string_agg(m::text, ' ' ORDER BY m) FROM (SELECT max(seq) m FROM og.assignment
	                   WHERE seq > $START GROUP BY case_id) t")" \
	"$(grep -o 'with payload "[0-9]*"' "$TEST_DIR/L.out" | grep -o '[0-9]*' | sort -n | tr '\n' ' ' | sed 's/ $//')"

# Numbered early (SET CONSTRAINTS ALL IMMEDIATE numbers at the end of each statement),
# then more rows; a savepoint rolled back with the transaction's first row in it.
before=$(sql "$TEST_DB" "SELECT count(*) FROM og.assignment")
sql "$TEST_DB" <<EOF
BEGIN;
SET LOCAL ROLE onegrid_owner;
SET CONSTRAINTS ALL IMMEDIATE;
UPDATE og.case SET unit_code = '$U1' WHERE case_id = 'fo-1';
SET CONSTRAINTS ALL DEFERRED;
UPDATE og.case SET unit_code = '$U1' WHERE case_id = 'fo-2';
COMMIT;
BEGIN;
SET LOCAL ROLE onegrid_owner;
SAVEPOINT s;
UPDATE og.case SET unit_code = '$U1' WHERE case_id = 'fo-3';
ROLLBACK TO s;
UPDATE og.case SET unit_code = '$U1' WHERE case_id = 'fo-4';
COMMIT;
EOF
assert_eq "every committed row is in the feed: 2 moves, then 1 (the other rolled back)" 6 \
	"$(sql "$TEST_DB" "SELECT count(*) - $before FROM og.assignment")"
assert_eq "numbers without holes or repeats" t \
	"$(sql "$TEST_DB" "SELECT count(*) = max(seq) AND count(DISTINCT seq) = count(*) FROM og.assignment")"
assert_eq "nothing left waiting for a number" 0 "$(sql "$TEST_DB" "SELECT count(*) FROM og.assignment_pending")"
