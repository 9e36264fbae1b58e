#!/usr/bin/env bash
# Which malloc each daemon runs with (CMakeLists.txt, ONEGRID_MIMALLOC): dispatch and archive
# with mimalloc, which takes about a quarter off their CPU per event (glibc's free lists
# cost them a fifth to a quarter of it; docs/operating.md, known limits); intake with
# glibc's, whose malloc_trim its memory bound relies on (daemons/intake/peers.c). A build
# with the sanitizers keeps their allocator in all three. Read from the running daemons'
# mappings, after they stored events: what the binaries were linked with is what they run.
# Then dispatch and intake with their clocks set by libfaketime, as the quickstart and the
# clock tests run them: an allocator that asks the time while it starts (jemalloc) hangs
# there (libfaketime issue 130).
# And the allocator of archive's database backend, glibc's in PostgreSQL's server process:
# archive settles its thresholds when it connects (og_db_settle_backend_heap,
# daemons/common/db.c), so the heap a batch needs is kept for the next one, not given back
# and faulted in again page by page (in the throughput bench, 50,000 page faults a second
# and a tenth of the backend's CPU). strace watches the backend's brk calls while 10,000
# reports come in batches of up to 1,000: its heap may grow, never shrink.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"
source "$(dirname "$0")/../lib/faults.sh"

test_begin "allocator"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
og_start_all "$TEST_DIR"

# publish NAME COUNT: COUNT new reports; prints the publisher's exit status and how many
# of them are stored.
publish() {
	local rc=0
	og_gen_reports "$TEST_DB" "$2" "$1" >"$TEST_DIR/$1.jsonl"
	og_publish_named "$TEST_DIR" "$1" || rc=$?
	echo "$rc|$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key WHERE source_event_id LIKE '$1%'")"
}
assert_eq "200 reports stored" "0|200" "$(publish al 200)"

# maps_has NAME LIB: whether the running daemon NAME has a file named LIB* mapped.
maps_has() {
	local pid
	pid=$(<"$TEST_DIR/$1.pid")
	if grep -q "/$2[^/]*\$" "/proc/$pid/maps"; then echo yes; else echo no; fi
}
# What the build chose (tests/integration/CMakeLists.txt sets OG_MIMALLOC from
# ONEGRID_MIMALLOC); run by hand, what a default build chooses: mimalloc unless sanitized.
expect=${OG_MIMALLOC:-}
if [[ -z $expect ]]; then
	expect=ON
	og_sanitized && expect=OFF
fi
assert_eq "onegrid-intake runs with glibc's malloc" no "$(maps_has intake libmimalloc)"
for d in dispatch archive; do
	if [[ $expect == ON ]]; then
		assert_eq "onegrid-$d runs with mimalloc" yes "$(maps_has "$d" libmimalloc)"
	else
		assert_eq "a build without mimalloc (ONEGRID_MIMALLOC=OFF, or sanitized): onegrid-$d runs without it" \
			no "$(maps_has "$d" libmimalloc)"
	fi
done

# The backend archive stores through, and its brk calls while 10,000 reports come with
# 1,000 in flight (large batches, as at full load: each made the backend allocate and free
# 12 to 16 MiB).
command -v strace >/dev/null || fail "strace not found (deploy/install-deps installs it)"
apid=$(og_backend_pids "$TEST_DB" onegrid-archive)
[[ $apid =~ ^[0-9]+$ ]] || fail "find archive's database backend: \"$apid\""
strace -qq -e trace=brk -p "$apid" -o "$TEST_DIR/brk.trace" 2>"$TEST_DIR/strace.err" &
spid=$!
on_exit "kill $spid 2>/dev/null || true"
# Attached: the backend's tracer is a process (not 0, nor nothing: the backend gone).
traced() { [[ $(awk '$1 == "TracerPid:" { print $2 }' "/proc/$apid/status" 2>/dev/null) =~ ^[1-9] ]]; }
og_poll 30 traced ||
	fail "strace did not attach to archive's database backend ($apid; it needs CAP_SYS_PTRACE): $(cat "$TEST_DIR/strace.err")"
og_gen_reports "$TEST_DB" 10000 br >"$TEST_DIR/br.jsonl"
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 120 \
	--window 1000 --results "$TEST_DIR/br.out" "$TEST_DIR/br.jsonl" >"$TEST_DIR/br.txt" 2>&1 ||
	fail "publish 10,000 reports: $(tail -n 3 "$TEST_DIR/br.txt")"
kill -INT "$spid" 2>/dev/null || true
wait "$spid" || true
assert_eq "archive stored them all through the backend strace watched" "$apid" \
	"$(og_backend_pids "$TEST_DB" onegrid-archive)"
assert_eq "10,000 reports stored, in batches of up to 1,000" 10000 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key WHERE source_event_id LIKE 'br%'")"
assert_eq "archive's backend stored them in batches of over 100 events" t \
	"$(sql "$TEST_DB" "SELECT max(n) > 100 FROM (SELECT count(*) AS n FROM og.ledger
	                     WHERE source_event_id LIKE 'br%' AND kind = 'event' GROUP BY batch_id) b")"
# brk's answers in order: each the heap's end after the call; a lower one than the last
# gave memory back.
calls=0 shrinks=0 last=0
while read -r end; do
	if ((end < last)); then
		shrinks=$((shrinks + 1))
	fi
	last=$((end)) calls=$((calls + 1))
done < <(sed -n 's/^brk(.*) *= \(0x[0-9a-f]*\)$/\1/p' "$TEST_DIR/brk.trace")
# Its heap grew at least once: strace saw the batches' allocations.
((calls > 0)) || fail "strace saw no brk call of archive's database backend: $(head -c 300 "$TEST_DIR/brk.trace")"
assert_eq "archive's database backend kept its heap between batches (of $calls brk calls, those that shrank it)" \
	0 "$shrinks"

# A session that cannot run that query (here, no EXECUTE on repeat(); a statement_timeout
# shorter than it, or no memory for it, fail the same way) stores all the same: archive
# says so in its log, and goes on.
sql "$TEST_DB" "REVOKE EXECUTE ON FUNCTION pg_catalog.repeat(text, integer) FROM PUBLIC"
og_stop archive "$TEST_DIR" || fail "stop onegrid-archive"
og_start archive "$TEST_DIR" || fail "onegrid-archive starts when it cannot raise its backend's malloc thresholds"
assert_eq "with no EXECUTE on repeat(), 20 more reports stored" "0|20" "$(publish rp 20)"
said=no
grep -q "could not raise the malloc thresholds of the database's server process .*permission denied for function repeat" \
	"$TEST_DIR/archive.log" && said=yes
assert_eq "and archive's log says why its backend may give its heap back" yes "$said"
sql "$TEST_DB" "GRANT EXECUTE ON FUNCTION pg_catalog.repeat(text, integer) TO PUBLIC"

# Two days ahead: the reports are of the hour before now, so not from their future. They
# name the same grids and categories as the first 20: each opens a case of its own because
# og_write_config sets merge_window_hours = 0.
AHEAD=$(date -u -d '+2 days' '+%F %T')
for d in dispatch intake; do
	og_restart_at "$d" "$TEST_DIR" "$AHEAD" || fail "onegrid-$d starts with its clock set by libfaketime"
done
assert_eq "with their clocks set by libfaketime, 20 more reports stored" "0|20" "$(publish ft 20)"
assert_eq "and dispatch opened their cases at its clock's time" "20" \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.case WHERE source_event_id LIKE 'ft%'
	                     AND opened_at >= '$AHEAD+00'::timestamptz - interval '1 minute'")"
