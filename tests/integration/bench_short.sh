#!/usr/bin/env bash
# The benches in short form, so they keep working: tests/bench/volume with 2,000 cases
# and tests/bench/throughput with 3,000 events. Each must print one well-formed JSON object
# whose figures are all there and positive. No time is asserted: the full forms are run by
# hand (README.md, "Benchmarks").
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"

test_begin "bench_short"
# One cluster for both benches and the checks (tests/run's, or a private one).
test_createdb --no-registry
[[ -n ${OG_PGCLUSTER_DIR:-} ]] || export OG_PGCLUSTER_DIR=$TEST_DIR/pg
BENCH=$ONEGRID_REPO/tests/bench

# check_json NAME JSON KEY...: JSON is one object with each KEY a number > 0.
check_json() {
	local name=$1 json=$2 bad
	shift 2
	[[ $json == \{*\} && $json != *$'\n'* ]] || fail "$name prints one JSON object on one line: $json"
	bad=$(sql "$TEST_DB" "SELECT coalesce(string_agg(k, ' '), '') FROM unnest(string_to_array('$*', ' ')) k
	                      WHERE jsonb_typeof('$json'::jsonb -> k) IS DISTINCT FROM 'number'
	                         OR ('$json'::jsonb ->> k)::numeric <= 0") ||
		fail "$name prints well-formed JSON: $json"
	assert_eq "$name: $* are positive numbers" "" "$bad"
}

out=$(bash "$BENCH/volume" --cases 2000 --runs 1 --json 2>"$TEST_DIR/volume.err") ||
	fail "tests/bench/volume --cases 2000 --runs 1 --json: $(tail -n 20 "$TEST_DIR/volume.err")"
check_json volume "$out" cases fill_ms kpi_ms overdue_ms timeline_ms dispatch_start_ms \
	dispatch_rss_mib verify_rows_per_s ledger_mib
assert_eq "volume filled 2000 cases" 2000 "$(sql "$TEST_DB" "SELECT '$out'::jsonb ->> 'cases'")"
# Both say whether the server kept its shared memory in huge pages, as the cluster does.
huge=$(pgcluster_huge_pages) || fail "ask the cluster whether it uses huge pages"
assert_eq "volume says whether the server used huge pages" "$huge" "$(sql "$TEST_DB" "SELECT '$out'::jsonb ->> 'huge_pages'")"

out=$(bash "$BENCH/throughput" --events 3000 --naive-events 300 --rounds 2 --json 2>"$TEST_DIR/throughput.err") ||
	fail "tests/bench/throughput --events 3000 --rounds 2 --json: $(tail -n 20 "$TEST_DIR/throughput.err")"
check_json throughput "$out" events_per_s copy_events_per_s naive_events_per_s ratio_copy updates_per_s \
	ratio_naive p50_ms p99_ms ratio_copy_min ratio_copy_max cpu_us_per_event copy_cpu_us_per_event \
	daemons_cpu_us_per_event ratio_cpu p99_ms_min p99_ms_max latency_cpu_us_per_event \
	latency_daemons_cpu_us_per_event latency_answer_gap_ms latency_answer_gap_ms_max \
	db_cpu_us_per_event latency_db_cpu_us_per_event latency_events_per_batch \
	latency_events_per_check
assert_eq "throughput ran 2 rounds, and each median lies between its rounds' lowest and highest" "2|t|t" \
	"$(sql "$TEST_DB" "SELECT j ->> 'rounds', (j ->> 'ratio_copy_min')::numeric <= (j ->> 'ratio_copy')::numeric
	                          AND (j ->> 'ratio_copy')::numeric <= (j ->> 'ratio_copy_max')::numeric,
	                          (j ->> 'p99_ms_min')::numeric <= (j ->> 'p99_ms')::numeric
	                          AND (j ->> 'p99_ms')::numeric <= (j ->> 'p99_ms_max')::numeric
	                     FROM (SELECT '$out'::jsonb AS j) x")"
# The server's share of the CPU: its processes were found (the postmaster's children), and
# did the storing; a latency round's batches and dispatch's inbox checks were counted.
assert_eq "throughput counts PostgreSQL's CPU in both phases, the events a batch and a check" \
	"t|t|t|t" \
	"$(sql "$TEST_DB" "SELECT (j ->> 'db_cpu_us_per_event')::numeric > 0,
	                          (j ->> 'latency_db_cpu_us_per_event')::numeric > 0,
	                          (j ->> 'latency_events_per_batch')::numeric >= 1,
	                          (j ->> 'latency_events_per_check')::numeric >= 1
	                     FROM (SELECT '$out'::jsonb AS j) x")"
assert_eq "throughput says whether the server used huge pages" "$huge" "$(sql "$TEST_DB" "SELECT '$out'::jsonb ->> 'huge_pages'")"
# archive's slow commits during the latency rounds: counted (0 on a quiet machine), and the
# rounds' lines say how many batches each committed.
assert_eq "throughput counts archive's commits over 25 ms in the latency rounds" "number|t" \
	"$(sql "$TEST_DB" "SELECT jsonb_typeof(j -> 'latency_slow_commits'), (j ->> 'latency_slow_commits')::numeric >= 0
	                     FROM (SELECT '$out'::jsonb AS j) x")"
# The statements over 25 ms in the server's log and the checkpoints, during the latency
# rounds: counted (0 on a quiet machine), no more COMMITs than statements, and named in
# each round's line.
assert_eq "throughput counts the slow statements and checkpoints of the latency rounds" \
	"number|number|number|t" \
	"$(sql "$TEST_DB" "SELECT jsonb_typeof(j -> 'latency_slow_statements'), jsonb_typeof(j -> 'latency_slow_commit_statements'),
	                          jsonb_typeof(j -> 'latency_checkpoints'),
	                          (j ->> 'latency_slow_commit_statements')::int BETWEEN 0 AND (j ->> 'latency_slow_statements')::int
	                          AND (j ->> 'latency_checkpoints')::int >= 0
	                     FROM (SELECT '$out'::jsonb AS j) x")"
assert_eq "each latency round's line names its slow statements and checkpoints" 2 \
	"$(grep -cE '^#   round [0-9]+: p50 .*; statements over 25 ms in the server.s log: (none|[A-Za-z0-9_.:]+ [0-9]+ \((longest )?[0-9.]+ ms\)(, [A-Za-z0-9_.:]+ [0-9]+ \((longest )?[0-9.]+ ms\))*); checkpoints begun during it: [0-9]+;' "$TEST_DIR/throughput.err")"
assert_eq "each latency round's line names its batches" 2 \
	"$(grep -c '^#   round [0-9]*: p50 .*, CPU [0-9]* µs/event (daemons [0-9]*, PostgreSQL [0-9]*; [0-9.]* events a batch, [0-9.]* a check of dispatch.s inbox), longest time without an answer [0-9.]* ms; [0-9]* answered in over 25 ms (by intake.s clock, from its receipt: [0-9]*); [0-9]* batches, of which [0-9]* committed in over 25 ms.*; dispatch.s passes for overdue cases over [0-9]* open: [0-9]*, [0-9]* ms in all, in [0-9]* steps, of which [0-9]* took over 2 ms' "$TEST_DIR/throughput.err")"

# --huge-pages starts the bench's own cluster: refused beside one given (exit 2, at once).
rc=0
bash "$BENCH/volume" --huge-pages --cases 10 >"$TEST_DIR/huge.out" 2>&1 || rc=$?
assert_eq "volume --huge-pages is refused with OG_PGCLUSTER_DIR set" 2 "$rc"

# PGCLUSTER_HUGE_PAGES=1 (what --huge-pages sets): the cluster reserves the huge pages its
# server needs, keeps its shared memory in them, and gives them back when stopped.
before=$(</proc/sys/vm/nr_hugepages)
mkdir "$TEST_DIR/hp"
on_exit "pgcluster_stop '$TEST_DIR/hp' || true"
(
	unset PGHOST PGPORT PGUSER
	PGCLUSTER_HUGE_PAGES=1 pgcluster_start "$TEST_DIR/hp" || exit 1
	echo "reserved $(($(</proc/sys/vm/nr_hugepages) - before)) of $(pgcluster_huge_pages_reserved "$TEST_DIR/hp") $(pgcluster_huge_pages)"
	pgcluster_stop "$TEST_DIR/hp"
) >"$TEST_DIR/hp.out" 2>&1 || fail "a cluster in huge pages: $(cat "$TEST_DIR/hp.out")"
read -r _ got _ need used <"$TEST_DIR/hp.out"
assert_eq "it reserved what its server needs, and used them" "$need on" "$got $used"
assert_eq "and gave them back" "$before" "$(</proc/sys/vm/nr_hugepages)"

# A caller killed with SIGKILL cannot give its pages back. The next cluster to reserve
# names its cluster while that still runs, and whichever reserves or gives back pages once
# it has stopped gives back its pages too.
mkdir "$TEST_DIR/hp2" "$TEST_DIR/hp3"
on_exit "pgcluster_stop '$TEST_DIR/hp2' || true; pgcluster_stop '$TEST_DIR/hp3' || true"
hp_as() { # hp_as DIR COMMAND: runs COMMAND (pgcluster's) on DIR in a shell of its own
	env -u PGHOST -u PGPORT -u PGUSER PGCLUSTER_HUGE_PAGES=1 \
		bash -c "source '$ONEGRID_REPO/tests/lib/pgcluster.sh' && $2 '$1' && echo done" 2>&1
}
# Killed right after its cluster started: its pages stay reserved.
{ env -u PGHOST -u PGPORT -u PGUSER PGCLUSTER_HUGE_PAGES=1 \
	bash -c "source '$ONEGRID_REPO/tests/lib/pgcluster.sh' && pgcluster_start '$TEST_DIR/hp2' && kill -KILL \$\$" \
	>"$TEST_DIR/hp2.out" 2>&1; } 2>/dev/null || true
need2=$(pgcluster_huge_pages_reserved "$TEST_DIR/hp2")
assert_eq "a killed caller's cluster keeps its pages reserved" "$((before + need2)) t" \
	"$(</proc/sys/vm/nr_hugepages) $( ((need2 > 0)) && echo t)"
out=$(hp_as "$TEST_DIR/hp3" pgcluster_start)
assert_match "the next cluster names the killed caller's, still running" \
	"cluster in \"$TEST_DIR/hp2\" still holds $need2 huge pages, and the process that started it \([0-9]+\) has gone: stop it with: .*pgcluster_stop '$TEST_DIR/hp2'.*done" "$out"
need3=$(pgcluster_huge_pages_reserved "$TEST_DIR/hp3")
# Its server stopped by other means than pgcluster_stop (pg_ctl by hand, a crash).
runuser -u "$(stat -c %U "$TEST_DIR/hp2/data")" -- "$PG_BIN/pg_ctl" -D "$TEST_DIR/hp2/data" -m fast -w stop >/dev/null 2>&1 ||
	fail "stop the killed caller's cluster with pg_ctl"
out=$(hp_as "$TEST_DIR/hp3" pgcluster_stop)
assert_match "stopping another cluster gives back the pages of the one that stopped" \
	"gave back the $need2 huge pages reserved for the cluster in \"$TEST_DIR/hp2\", which no longer runs.*done" "$out"
assert_eq "all of both clusters' pages are back ($need2 and $need3)" "$before 0 0" \
	"$(</proc/sys/vm/nr_hugepages) $(pgcluster_huge_pages_reserved "$TEST_DIR/hp2") $(pgcluster_huge_pages_reserved "$TEST_DIR/hp3")"

# A caller still alive may be starting its cluster (its record comes before pg_ctl start):
# whoever sweeps leaves its pages reserved until that caller has gone (review: a parallel
# test's pgcluster_stop took them).
mkdir "$TEST_DIR/hp4"
bash -c "source '$ONEGRID_REPO/tests/lib/pgcluster.sh' && _pgc_hugepages_reserve '$TEST_DIR/hp4' 1 && echo reserved && exec sleep 600" \
	>"$TEST_DIR/hp4.out" 2>&1 &
starter=$!
on_exit "kill $starter 2>/dev/null || true"
for _ in $(seq 300); do grep -q reserved "$TEST_DIR/hp4.out" && break; sleep 0.1; done
grep -q reserved "$TEST_DIR/hp4.out" || fail "reserve a page for a cluster about to start: $(cat "$TEST_DIR/hp4.out")"
hp_as "$TEST_DIR/hp3" pgcluster_stop >/dev/null
assert_eq "a sweep leaves the pages of a cluster whose caller is alive" "1 $((before + 1))" \
	"$(pgcluster_huge_pages_reserved "$TEST_DIR/hp4") $(</proc/sys/vm/nr_hugepages)"
kill "$starter"
wait "$starter" 2>/dev/null || true
hp_as "$TEST_DIR/hp3" pgcluster_stop >/dev/null
assert_eq "and gives them back once it has gone" "0 $before" \
	"$(pgcluster_huge_pages_reserved "$TEST_DIR/hp4") $(</proc/sys/vm/nr_hugepages)"

# A record of an earlier boot is forgotten, its pages not counted off this boot's.
mkdir "$TEST_DIR/hp5"
bash -c "source '$ONEGRID_REPO/tests/lib/pgcluster.sh' && _pgc_hugepages_reserve '$TEST_DIR/hp5' 1" ||
	fail "reserve a page"
record=$(bash -c "source '$ONEGRID_REPO/tests/lib/pgcluster.sh' && _pgc_hp_record '$TEST_DIR/hp5'")
sed -i 's/^\([0-9]* [0-9]* [0-9]*\) [^ ]* /\1 00000000-0000-0000-0000-000000000000 /' "$record"
echo $((before + 1)) >/proc/sys/vm/nr_hugepages # as the boot's own sysctl would have it
hp_as "$TEST_DIR/hp3" pgcluster_stop >/dev/null
assert_eq "a record of another boot is forgotten, and what this boot reserved stays" "0 $((before + 1))" \
	"$(pgcluster_huge_pages_reserved "$TEST_DIR/hp5") $(</proc/sys/vm/nr_hugepages)"
echo "$before" >/proc/sys/vm/nr_hugepages
