#!/usr/bin/env bash
# Which malloc each daemon runs with (CMakeLists.txt, ONEGRID_JEMALLOC): dispatch and archive
# with jemalloc, which took a fifth to a quarter of their CPU per event off what glibc's
# free lists cost them (docs/operating.md, known limits); intake with glibc's, whose
# malloc_trim its memory bound relies on (daemons/intake/peers.c). A build with the
# sanitizers keeps their allocator in all three. Read from the running daemons' mappings,
# after they stored events: what the binaries were linked with is what they run.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"

test_begin "allocator"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
og_start_all "$TEST_DIR"

og_gen_reports "$TEST_DB" 200 al >"$TEST_DIR/e.jsonl"
rc=0
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 30 \
	"$TEST_DIR/e.jsonl" >"$TEST_DIR/p.txt" 2>&1 || rc=$?
assert_eq "200 reports stored" "0|200" "$rc|$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key")"

# maps_has NAME LIB: whether the running daemon NAME has a file named LIB* mapped.
maps_has() {
	local pid
	pid=$(<"$TEST_DIR/$1.pid")
	if grep -q "/$2[^/]*\$" "/proc/$pid/maps"; then echo yes; else echo no; fi
}
if [[ $(maps_has intake libasan) == yes ]]; then
	for d in intake dispatch archive; do
		assert_eq "a sanitizer build: onegrid-$d runs without jemalloc" no "$(maps_has "$d" libjemalloc)"
	done
else
	assert_eq "onegrid-intake runs with glibc's malloc" no "$(maps_has intake libjemalloc)"
	for d in dispatch archive; do
		assert_eq "onegrid-$d runs with jemalloc" yes "$(maps_has "$d" libjemalloc)"
	done
fi
