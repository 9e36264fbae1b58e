# shellcheck shell=bash
# Runs the three onegrid daemons out of one private directory, for tests and the
# quickstart.
#
# Source this file, then:
#   og_write_config DIR DB [ENDPOINT...]  write DIR/onegrid.conf (ipc:// sockets under
#                                        DIR, database DB of the cluster PGHOST/PGPORT
#                                        name); extra ENDPOINTs are added to intake's
#                                        listen list (e.g. tcp://127.0.0.1:7300)
#   og_start NAME DIR     start onegrid-NAME, wait for its "<5>ready" line
#   og_stop NAME DIR      SIGTERM, wait for a clean exit
#   og_kill NAME DIR      SIGKILL (crash it)
#   og_wait_exit NAME DIR [S]  wait for a daemon to exit on its own
#   og_restart_at NAME DIR TIME  restart it with its clock set to TIME (faketime)
#   og_start_all DIR / og_stop_all DIR
#   og_dump_logs DIR [LINES]
#   og_free_tcp_port      print a TCP port nobody listens on
#   og_free_tcp_ports N   print N different such ports on one line
#   og_metric PORT SERIES     print the value of a series (its name and labels, as the
#                             daemon with metrics_listen = 127.0.0.1:PORT prints it; 0
#                             when absent); og_metric_at_least PORT SERIES MIN for og_poll
#
# Files in DIR: onegrid.conf, NAME.log (stdout+stderr, appended across restarts),
# NAME.pid (the daemon's pid, present while we believe it runs), NAME.exit (its exit
# status, once it ended), intake.sock, dispatch.sock, archive.sock.
#
# Environment: ONEGRID_BIN (default <repo>/build/bin); ONEGRID_WRAPPER, a command put in
# front of each daemon (e.g. "valgrind --error-exitcode=99 --leak-check=full
# --soname-synonyms=somalloc=*mimalloc*": dispatch and archive allocate with mimalloc);
# OG_START_TIMEOUT (20 s) and OG_STOP_TIMEOUT (15 s), to be raised under slow wrappers.
#
# Functions return non-zero on failure and say why on stderr; they never exit.

[[ -n ${_ONEGRID_DAEMONS_SH:-} ]] && return 0
_ONEGRID_DAEMONS_SH=1

ONEGRID_REPO=${ONEGRID_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
ONEGRID_BIN=${ONEGRID_BIN:-$ONEGRID_REPO/build/bin}

# Start order: each daemon connects to the next one down the pipeline, so the
# receiving end is up first. Stop order is the reverse: no new input while draining.
OG_DAEMONS=(archive dispatch intake)

_og_err() { echo "daemons: $*" >&2; }

# Quotes a libpq conninfo value if it needs it (spaces, quotes, backslashes, empty).
_og_conninfo_value() {
	local v=$1
	if [[ -z $v || $v =~ [[:space:]\'\\] ]]; then
		v=${v//\\/\\\\}
		v=${v//\'/\\\'}
		printf "'%s'" "$v"
	else
		printf '%s' "$v"
	fi
}

og_write_config() {
	local dir=${1:?usage: og_write_config DIR DB [ENDPOINT...]} db=${2:?usage: og_write_config DIR DB}
	shift 2
	local listen ep base longest=/dispatch.sock
	if [[ -z ${PGHOST:-} || -z ${PGPORT:-} ]]; then
		_og_err "PGHOST/PGPORT are not set: start or source a cluster first"
		return 1
	fi
	dir=$(cd "$dir" && pwd) || return 1
	# A unix socket path must fit in sun_path (108 bytes, with the NUL).
	if ((${#dir} + ${#longest} > 107)); then
		_og_err "\"$dir\" is too long for ipc:// socket paths; use a shorter directory"
		return 1
	fi
	listen="ipc://$dir/intake.sock"
	for ep in "$@"; do
		listen+=", $ep"
	done
	base="host=$(_og_conninfo_value "$PGHOST") port=$PGPORT dbname=$(_og_conninfo_value "$db")"

	# Only whole-line comments: libinih treats " ;" inside a value as a comment start
	# and an indented line as the continuation of the previous value.
	cat >"$dir/onegrid.conf" <<-EOF || return 1
		; Written by tests/lib/daemons.sh for a private test run; see deploy/conf/onegrid.conf.

		[database]
		; Default for any daemon without its own conninfo: the read-only role.
		conninfo = $base user=onegrid_dispatch

		[intake]
		listen = $listen
		dispatch = ipc://$dir/dispatch.sock
		max_event_bytes = 65536
		max_event_age_days = 30

		[dispatch]
		listen = ipc://$dir/dispatch.sock
		archive = ipc://$dir/archive.sock
		shard = 6502
		; Merging (最多跑一次) off: most tests count one case per report. Tests of merging
		; and the quickstart turn it on.
		merge_window_hours = 0
		conninfo = $base user=onegrid_dispatch

		[archive]
		listen = ipc://$dir/archive.sock
		conninfo = $base user=onegrid_archive
		batch_max = 1000
		batch_wait_ms = 0
	EOF
}

# True if pid $1 is a live process (a zombie does not count).
_og_alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) } # the command name in parentheses may contain spaces
	[[ ${stat%% *} != Z ]]
}

# Waits for the dead daemon $1 in DIR $2 to have its exit status written by its keeper
# (see og_start), sets _og_rc to it ("?" if unknown) and removes the pid and exit files.
_og_rc=
_og_collect() {
	local name=$1 dir=$2 i
	_og_rc='?'
	for ((i = 0; i < 50; i++)); do
		if [[ -s $dir/$name.exit ]]; then
			_og_rc=$(<"$dir/$name.exit")
			break
		fi
		sleep 0.02
	done
	rm -f "$dir/$name.pid" "$dir/$name.exit"
}

# Describes an exit status the way a person reads it (143 = SIGTERM, 134 = SIGABRT).
_og_status_text() {
	local rc=$1
	if [[ $rc == '?' ]]; then
		echo "exit status unknown"
	elif ((rc > 128)); then
		echo "killed by signal $((rc - 128)) ($(kill -l "$((rc - 128))" 2>/dev/null || echo '?'))"
	else
		echo "exit status $rc"
	fi
}

# Prints a TCP port in 20000-31999 with no listener on it (below Linux's ephemeral range,
# so outgoing connections do not take it either), for a daemon endpoint whose number a
# test or an operator must know in advance. Another process can still take it before
# the daemon binds: the daemon then fails to start and says so.
og_free_tcp_port() {
	local i port hex
	for ((i = 0; i < 1000; i++)); do
		port=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
		hex=$(printf '%04X' "$port")
		# /proc/net/tcp{,6}: column 2 is local address:port in hex, column 4 the state
		# (0A = LISTEN).
		if ! awk -v p=":$hex" 'NR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { f = 1 }
			END { exit !f }' /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	_og_err "no free TCP port found in 20000-31999"
	return 1
}

# Prints N different free ports (og_free_tcp_port) on one line, for several endpoints at
# once: read -r a b c < <(og_free_tcp_ports 3).
og_free_tcp_ports() {
	local n=${1:?usage: og_free_tcp_ports N} ports=" " p
	while ((n > 0)); do
		p=$(og_free_tcp_port) || return 1
		[[ $ports == *" $p "* ]] && continue
		ports+="$p "
		n=$((n - 1))
	done
	ports=${ports# }
	echo "${ports% }"
}

og_dump_logs() {
	local dir=${1:?usage: og_dump_logs DIR [LINES]} lines=${2:-30} f
	for f in "$dir"/*.log; do
		[[ -s $f ]] || continue
		echo "# ---- last $lines lines of $f"
		tail -n "$lines" "$f" | sed 's/^/#   /'
	done
}

og_start() {
	local name=${1:?usage: og_start NAME DIR} dir=${2:?usage: og_start NAME DIR}
	local bin=$ONEGRID_BIN/onegrid-$name log=$dir/$name.log pidfile=$dir/$name.pid
	local timeout=${OG_START_TIMEOUT:-20} offset pid keeper deadline
	local -a wrapper=()
	if [[ ! -x $bin ]]; then
		_og_err "\"$bin\" not found (build first, or set ONEGRID_BIN)"
		return 1
	fi
	if [[ ! -r $dir/onegrid.conf ]]; then
		_og_err "\"$dir/onegrid.conf\" not found (call og_write_config first)"
		return 1
	fi
	if [[ -f $pidfile ]] && _og_alive "$(<"$pidfile")"; then
		_og_err "onegrid-$name already runs in \"$dir\" (pid $(<"$pidfile"))"
		return 1
	fi
	[[ -n ${ONEGRID_WRAPPER:-} ]] && read -ra wrapper <<<"$ONEGRID_WRAPPER"

	# The log is appended to across restarts (a crash test wants the whole story), so
	# remember where this run starts and look for "ready" only after that.
	# Each step checks its own failure: callers use `og_start ... || ...`, which turns
	# set -e off inside the function.
	touch "$log" || return 1
	offset=$(stat -c %s "$log") || return 1
	echo "# ---- $(date -u +%FT%TZ) starting onegrid-$name" >>"$log"
	rm -f "$pidfile" "$dir/$name.exit" || return 1

	# A keeper subshell starts the daemon, records its pid and, when it ends, its exit
	# status in NAME.exit. Why not start the daemon as our own background job: bash
	# then prints "Killed" into the test's output whenever one is crashed on purpose,
	# and only the starting shell could learn the exit status (the quickstart's stop
	# script is another shell). Signals go straight to the daemon's pid.
	#
	# The daemons see only the config: PG* variables of the test (PGUSER=postgres, a
	# superuser that bypasses row-level security and every grant) would otherwise fill
	# in what a conninfo leaves out and hide privilege bugs.
	(
		unset PGHOST PGPORT PGUSER PGDATABASE PGSERVICE PGPASSWORD PGOPTIONS
		"${wrapper[@]}" "$bin" -c "$dir/onegrid.conf" </dev/null &
		echo "$!" >"$pidfile"
		rc=0
		wait "$!" || rc=$?
		echo "$rc" >"$dir/$name.exit"
	) >>"$log" 2>&1 &
	keeper=$!
	while [[ ! -s $pidfile ]]; do
		if ! kill -0 "$keeper" 2>/dev/null; then
			_og_err "could not start onegrid-$name (see $log)"
			return 1
		fi
		sleep 0.01
	done
	pid=$(<"$pidfile")

	deadline=$((SECONDS + timeout))
	while :; do
		# `|| true`: grep -q quits at the first match and tail's SIGPIPE would otherwise
		# fail the pipeline under pipefail.
		if { tail -c +"$((offset + 1))" "$log" || true; } | grep -q '^<5>ready'; then
			return 0
		fi
		if ! _og_alive "$pid"; then
			_og_collect "$name" "$dir"
			_og_err "onegrid-$name exited before it was ready ($(_og_status_text "$_og_rc")):"
			tail -c +"$((offset + 1))" "$log" | tail -n 30 >&2
			return 1
		fi
		if ((SECONDS >= deadline)); then
			# Do not leave a half-started daemon behind for the next test to trip over.
			kill -KILL "$pid" 2>/dev/null || true
			while _og_alive "$pid"; do sleep 0.02; done
			_og_collect "$name" "$dir"
			_og_err "onegrid-$name not ready after ${timeout}s; killed it. Its log:"
			tail -c +"$((offset + 1))" "$log" | tail -n 30 >&2
			return 1
		fi
		sleep 0.1
	done
}

# _og_stacks NAME PID: says on stderr where each thread of a daemon that does not stop is
# (before it is killed): the kernel's wait channel and system call of each, and their
# stacks if gdb is there. A daemon stuck in a blocking call says so nowhere else.
_og_stacks() {
	local name=$1 pid=$2 t
	for t in /proc/"$pid"/task/*; do
		[[ -d $t ]] || continue
		_og_err "onegrid-$name thread ${t##*/} ($(cat "$t/comm" 2>/dev/null)): wchan $(cat "$t/wchan" 2>/dev/null || echo ?), syscall $(cut -d' ' -f1 "$t/syscall" 2>/dev/null || echo ?)"
	done
	if command -v gdb >/dev/null; then
		timeout 30 gdb -p "$pid" -batch -nx -ex 'thread apply all bt 25' 2>/dev/null |
			grep -E '^(Thread|#)' | head -n 150 | sed "s/^/daemons: onegrid-$name: /" >&2 || true
	fi
}

og_stop() {
	local name=${1:?usage: og_stop NAME DIR} dir=${2:?usage: og_stop NAME DIR}
	local pidfile=$dir/$name.pid timeout=${OG_STOP_TIMEOUT:-15} pid deadline
	# No pid file: never started, or already stopped or killed on purpose.
	[[ -f $pidfile ]] || return 0
	pid=$(<"$pidfile")
	if ! _og_alive "$pid"; then
		# It died on its own while it was supposed to be running: that is a failure
		# the caller must hear about, even if it only shows up at cleanup.
		_og_collect "$name" "$dir"
		_og_err "onegrid-$name had already exited ($(_og_status_text "$_og_rc"))"
		return 1
	fi
	kill -TERM "$pid" 2>/dev/null || true
	deadline=$((SECONDS + timeout))
	while _og_alive "$pid"; do
		if ((SECONDS >= deadline)); then
			_og_stacks "$name" "$pid"
			kill -KILL "$pid" 2>/dev/null || true
			while _og_alive "$pid"; do sleep 0.02; done
			_og_collect "$name" "$dir"
			_og_err "onegrid-$name did not exit within ${timeout}s of SIGTERM; killed it"
			return 1
		fi
		sleep 0.1
	done
	_og_collect "$name" "$dir"
	# "SIGTERM: drain and exit 0". Anything else (a sanitizer abort at exit, a leak
	# report with an error exit code) is a failure.
	if [[ $_og_rc != 0 && $_og_rc != '?' ]]; then
		_og_err "onegrid-$name stopped with $(_og_status_text "$_og_rc")"
		return 1
	fi
}

og_kill() {
	local name=${1:?usage: og_kill NAME DIR} dir=${2:?usage: og_kill NAME DIR}
	local pidfile=$dir/$name.pid pid
	if [[ ! -f $pidfile ]]; then
		_og_err "onegrid-$name is not running in \"$dir\""
		return 1
	fi
	pid=$(<"$pidfile")
	kill -KILL "$pid" 2>/dev/null || true
	# SIGKILL cannot be ignored, but delivery is asynchronous: wait until it is gone so
	# the caller can restart it at once (its ipc:// socket file is then free to rebind).
	while _og_alive "$pid"; do sleep 0.02; done
	_og_collect "$name" "$dir"
	echo "# ---- $(date -u +%FT%TZ) onegrid-$name killed with SIGKILL" >>"$dir/$name.log"
}

# og_wait_exit NAME DIR [SECONDS]: waits (default 10 s) for a daemon to exit on its own,
# as one does when it is fenced or must reload; true when it did.
og_wait_exit() {
	local name=${1:?usage: og_wait_exit NAME DIR [SECONDS]} dir=${2:?} secs=${3:-10} i
	local pid
	pid=$(<"$dir/$name.pid") || return 1
	for ((i = 0; i < secs * 10; i++)); do
		_og_alive "$pid" || return 0
		sleep 0.1
	done
	return 1
}

# og_restart_while NAME DIR PID: until process PID ends, starts daemon NAME again whenever
# it has exited, as systemd's Restart= would (a dispatch that must reload its state exits).
og_restart_while() {
	local name=${1:?usage: og_restart_while NAME DIR PID} dir=${2:?} pid=${3:?}
	while kill -0 "$pid" 2>/dev/null; do
		if ! _og_alive "$(<"$dir/$name.pid")"; then
			og_stop "$name" "$dir" 2>/dev/null || true
			og_start "$name" "$dir" || return 1
		fi
		sleep 0.1
	done
}

# og_sanitized: true if the daemons of ONEGRID_BIN are built with AddressSanitizer.
# (grep reads all of ldd's output: with -q it could stop at the match while ldd still
# wrote, and pipefail took ldd's SIGPIPE for "not sanitized".)
og_sanitized() {
	ldd "$ONEGRID_BIN/onegrid-intake" | grep libasan >/dev/null
}

# og_restart_at NAME DIR "YYYY-MM-DD HH:MM:SS": restarts a daemon whose wall clock starts
# at that UTC time (libfaketime, from Debian's faketime package) and runs on from there;
# monotonic time is left alone for libzmq. For tests of deadlines, KPIs and escalation.
OG_FAKETIME_LIB=${OG_FAKETIME_LIB:-/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1}
og_restart_at() {
	local name=${1:?usage: og_restart_at NAME DIR TIME} dir=${2:?} at=${3:?}
	if [[ ! -r $OG_FAKETIME_LIB ]]; then
		_og_err "libfaketime is missing: deploy/install-deps installs the faketime package"
		return 1
	fi
	og_stop "$name" "$dir" || return 1
	FAKETIME="@$at" FAKETIME_DONT_FAKE_MONOTONIC=1 \
		ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" \
		ONEGRID_WRAPPER="env LD_PRELOAD=$OG_FAKETIME_LIB" og_start "$name" "$dir"
}

og_start_all() {
	local dir=${1:?usage: og_start_all DIR} name
	for name in "${OG_DAEMONS[@]}"; do
		og_start "$name" "$dir" || return 1
	done
}

og_stop_all() {
	local dir=${1:?usage: og_stop_all DIR} i rc=0
	# Stop every daemon even if one fails, and report failure if any did.
	for ((i = ${#OG_DAEMONS[@]} - 1; i >= 0; i--)); do
		og_stop "${OG_DAEMONS[i]}" "$dir" || rc=1
	done
	return "$rc"
}

# og_metric PORT SERIES...: each series' value (0 when absent), a line each, from one
# scrape of the daemon's /metrics: values read together agree with each other (a histogram's
# buckets and count).
og_metric() {
	local port=${1:?usage: og_metric PORT SERIES...}
	shift
	(($# > 0)) || { _og_err "usage: og_metric PORT SERIES..."; return 2; }
	curl -sS --max-time 5 "http://127.0.0.1:$port/metrics" |
		awk 'BEGIN { n = ARGC - 1; for (i = 1; i <= n; i++) want[ARGV[i]] = i; ARGC = 1 }
		     $1 in want { v[want[$1]] = $2 }
		     END { for (i = 1; i <= n; i++) print v[i] + 0 }' "$@"
}

og_metric_at_least() {
	local v
	v=$(og_metric "$1" "$2") || return 1
	awk -v v="$v" -v n="${3:?usage: og_metric_at_least PORT SERIES MIN}" 'BEGIN { exit !(v >= n) }'
}
