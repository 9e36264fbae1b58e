# shellcheck shell=bash
# What tests/bench/throughput and tests/bench/volume share. Each sources it once its
# options are read, with json=1 for --json and huge=1 for --huge-pages:
# - With --json everything else (progress, checks, the report) goes to stderr, and the
#   JSON object alone to stdout (fd 3).
# - A bench runs against tests/run's cluster when OG_PGCLUSTER_DIR names one (tests/run
#   exports PGHOST with it), else it starts its own.
# - --huge-pages: the bench's own cluster keeps its shared memory in huge pages
#   (huge_pages = on), as docs/operating.md recommends for a database at volume; it
#   reserves them (vm.nr_hugepages, root only) and gives them back at the end
#   (tests/lib/pgcluster.sh; a bench killed with SIGKILL leaves them to the next cluster
#   to give back once its own has stopped). Refused with a cluster of tests/run's, whose
#   own setting holds.
# Then bench_huge_pages, once the database is up, sets huge_pages to what the server
# used (on, off or unknown, as the JSON reports it) and says so.

# shellcheck disable=SC2154 # json and huge: the bench's options
[[ -n ${OG_PGCLUSTER_DIR:-} ]] || unset PGHOST PGPORT PGUSER PGDATABASE
if ((huge)); then
	[[ -z ${OG_PGCLUSTER_DIR:-} ]] ||
		{ echo "$(basename "$0"): --huge-pages starts the bench's own cluster; OG_PGCLUSTER_DIR names one" >&2; exit 2; }
	export PGCLUSTER_HUGE_PAGES=1
fi
if ((json)); then exec 3>&1 1>&2; else exec 3>&1; fi
# shellcheck source=tests/lib/testlib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/testlib.sh"

say() { echo "$*"; }
now_ms() { date +%s%3N; }
# CPU the whole machine has spent, in clock ticks: user, nice, system, irq and softirq
# of /proc/stat's first line (not idle, iowait or steal; guest time is within user).
machine_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8; exit }' /proc/stat; }
# KiB the machine has read from its block devices (/proc/vmstat's pgpgin): whether a phase
# found its data in memory or waited for the disk.
disk_read_kib() { awk '$1 == "pgpgin" { print $2; exit }' /proc/vmstat; }

bench_huge_pages() {
	huge_pages=$(pgcluster_huge_pages) || fail "ask the server whether it uses huge pages"
	say "# PostgreSQL's shared memory in huge pages: $huge_pages"
}
