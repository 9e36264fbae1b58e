# shellcheck shell=bash
# Fault injection against PostgreSQL and the daemons, for tests/integration/db_faults.sh
# and tests/chaos/run. Source it after pgcluster.sh / daemons.sh (testlib.sh sources both).
#
#   og_poll SECONDS CMD...           run CMD every 0.1 s until it succeeds; false after
#                                    SECONDS (no fixed sleeps: wait for the condition)
#   og_backend_pids DB APP           pids of DB's backends whose application_name is APP
#   og_backend_waiting DB APP        true when one of them waits for a lock
#   og_backend_lock_wait DB APP      prints "PID WAITSTART" of one of them waiting for a
#                                    lock (nothing if none): a new value is a new wait
#   og_backend_cancel DB APP         pg_cancel_backend on each; prints how many
#   og_backend_terminate DB APP      pg_terminate_backend on each; prints how many
#   og_cancel_pid DB PID             pg_cancel_backend(PID)
#   og_lock_take DB NAME TABLE MODE  a session named NAME takes LOCK TABLE TABLE IN MODE
#                                    MODE and holds it (in the background) until released
#   og_lock_release DB NAME          ends that session (and with it the lock)
#   og_vmhwm PID                     the process's peak resident set (VmHWM) in kB, 0 if gone
#   og_xact_rollbacks DB             DB's rolled-back transactions so far (pg_stat_database;
#                                    the statistics lag by up to a second)
#   og_fs_mount DIR MB               a filesystem of its own on DIR (root only): ext4 in a
#                                    sparse image DIR.img on a loop device, else tmpfs (at
#                                    most 512 MB: it is memory); og_fs_umount DIR undoes it
#   og_fs_fill DIR / og_fs_free DIR  fill it up (files DIR/filler.*) / free that again
#   og_netns_enter SCRIPT ARGS...    (first thing in a test) runs the test again in a network
#                                    namespace of its own (root only): only its loopback
#   og_net_drop ADDRESS / og_net_pass  (in that namespace) drop every packet sent from
#                                    ADDRESS (127.x) on loopback (a client's side of a cut
#                                    link: nothing comes back, no RST, no ICMP; call again
#                                    for more addresses) / pass every packet again
#
# The daemons name their sessions onegrid-archive, onegrid-dispatch (application_name).
# Functions return non-zero on failure and never exit.

[[ -n ${_ONEGRID_FAULTS_SH:-} ]] && return 0
_ONEGRID_FAULTS_SH=1

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

_fl_psql() {
	local db=$1
	shift
	"$PG_BIN/psql" -XAtq -v ON_ERROR_STOP=1 -d "$db" "$@"
}

og_poll() {
	local secs=${1:?usage: og_poll SECONDS CMD...}
	shift
	local deadline=$((SECONDS + secs))
	while ! "$@"; do
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
}

og_backend_pids() {
	local db=${1:?usage: og_backend_pids DB APP} app=${2:?}
	_fl_psql "$db" -c "SELECT pid FROM pg_stat_activity WHERE datname = current_database()
	                   AND application_name = '$app' AND backend_type = 'client backend' ORDER BY pid"
}

og_backend_waiting() {
	local db=${1:?usage: og_backend_waiting DB APP} app=${2:?}
	[[ $(_fl_psql "$db" -c "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
	                        AND application_name = '$app' AND wait_event_type = 'Lock'") -gt 0 ]]
}

og_backend_lock_wait() {
	local db=${1:?usage: og_backend_lock_wait DB APP} app=${2:?}
	# waitstart can be NULL for a moment after the wait began (PostgreSQL's docs).
	_fl_psql "$db" -c "SELECT l.pid || ' ' || l.waitstart FROM pg_locks l JOIN pg_stat_activity a USING (pid)
	                   WHERE a.datname = current_database() AND a.application_name = '$app'
	                   AND NOT l.granted AND l.waitstart IS NOT NULL ORDER BY l.waitstart LIMIT 1"
}

og_cancel_pid() {
	_fl_psql "${1:?usage: og_cancel_pid DB PID}" -c "SELECT pg_cancel_backend(${2:?})" >/dev/null
}

og_backend_cancel() {
	local db=${1:?usage: og_backend_cancel DB APP} app=${2:?}
	_fl_psql "$db" -c "SELECT count(*) FILTER (WHERE pg_cancel_backend(pid)) FROM pg_stat_activity
	                   WHERE datname = current_database() AND application_name = '$app'"
}

og_backend_terminate() {
	local db=${1:?usage: og_backend_terminate DB APP} app=${2:?}
	_fl_psql "$db" -c "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
	                   WHERE datname = current_database() AND application_name = '$app'"
}

# The lock holder is a psql in the background whose one statement string takes the lock
# and then sleeps: the lock lasts until the session ends (og_lock_release terminates it).
og_lock_take() {
	local db=${1:?usage: og_lock_take DB NAME TABLE MODE} name=${2:?} table=${3:?} mode=${4:?}
	local log=${OG_FAULTS_LOG:-/dev/null}
	PGAPPNAME=$name "$PG_BIN/psql" -XAtq -d "$db" \
		-c "LOCK TABLE $table IN $mode MODE; SELECT pg_sleep(3600)" >>"$log" 2>&1 &
	# Granted, not merely asked for: the LOCK itself may wait for a transaction in flight.
	og_poll 30 _fl_lock_granted "$db" "$name" "$table" || {
		echo "faults: session \"$name\" did not get its lock on $table within 30 s" >&2
		og_lock_release "$db" "$name" >/dev/null
		return 1
	}
}

_fl_lock_granted() {
	[[ $(_fl_psql "$1" -c "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
	                       WHERE a.datname = current_database() AND a.application_name = '$2' AND l.granted
	                       AND l.relation = '$3'::regclass") -gt 0 ]]
}

_fl_no_backend() {
	[[ -z $(og_backend_pids "$1" "$2") ]]
}

og_lock_release() {
	local db=${1:?usage: og_lock_release DB NAME} name=${2:?}
	og_backend_terminate "$db" "$name" >/dev/null || return 1
	og_poll 30 _fl_no_backend "$db" "$name"
}

og_vmhwm() {
	local kb
	kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/${1:?usage: og_vmhwm PID}/status" 2>/dev/null) || true
	echo "${kb:-0}"
}

og_xact_rollbacks() {
	_fl_psql "${1:?usage: og_xact_rollbacks DB}" \
		-c "SELECT xact_rollback FROM pg_stat_database WHERE datname = current_database()"
}

og_fs_mount() {
	local dir=${1:?usage: og_fs_mount DIR MB} mb=${2:?}
	mkdir -p "$dir" || return 1
	if truncate -s "${mb}M" "$dir.img" 2>/dev/null && mkfs.ext4 -q -m 0 "$dir.img" 2>/dev/null &&
		mount -o loop "$dir.img" "$dir" 2>/dev/null; then
		return 0
	fi
	rm -f "$dir.img"
	((mb <= 512)) || mb=512
	mount -t tmpfs -o "size=${mb}m" onegrid-test "$dir"
}

og_fs_umount() {
	local dir=${1:?usage: og_fs_umount DIR}
	umount "$dir" 2>/dev/null || umount -l "$dir" || return 1
	rm -f "$dir.img"
}

# Allocates what is free (fallocate: no data written), then writes into whatever is left.
og_fs_fill() {
	local dir=${1:?usage: og_fs_fill DIR} avail
	avail=$(df --output=avail -B1 "$dir" | tail -1)
	if ((avail > 8 << 20)); then
		fallocate -l $((avail - (4 << 20))) "$dir/filler.1" 2>/dev/null || true
	fi
	dd if=/dev/zero of="$dir/filler.2" bs=64k status=none 2>/dev/null || true # until ENOSPC
}

og_fs_free() {
	rm -f "${1:?usage: og_fs_free DIR}"/filler.*
}

og_netns_enter() {
	if [[ -n ${OG_IN_NETNS:-} ]]; then
		# Only ever in a namespace of our own: og_net_drop and og_net_pass change lo's
		# traffic control, which on the host's lo would be everyone's.
		[[ $(readlink /proc/self/ns/net) != "$(readlink /proc/1/ns/net)" ]] ||
			{ echo "og_netns_enter: OG_IN_NETNS is set in the host's network namespace" >&2 && exit 1; }
		return 0
	fi
	exec unshare --net -- env OG_IN_NETNS=1 bash -c 'ip link set lo up && exec bash "$@"' bash "$@"
}

# Traffic control on lo: an htb root whose default class passes everything, and a class
# for the packets sent from ADDRESS whose queue holds nothing (pfifo limit 0), so each is
# dropped. Only that way: what a client sends to ADDRESS still arrives, but no answer, no
# acknowledgement and no reset comes back, which is what a client sees of a cut link. (A
# packet the client's own stack fails to queue is reported to its TCP as local
# congestion, which ends the connection within seconds whatever its settings: not a
# black hole.) The kernels seen here have no drop action for tc filters, nor netem; htb
# and pfifo they have.
og_net_drop() {
	local addr=${1:?usage: og_net_drop ADDRESS}
	[[ -n ${OG_IN_NETNS:-} ]] || { echo "og_net_drop: not in a network namespace of the test's own" >&2 && return 1; }
	if [[ $(tc qdisc show dev lo) != *'qdisc htb 1: root'* ]]; then
		tc qdisc add dev lo root handle 1: htb default 10 &&
			tc class add dev lo parent 1: classid 1:10 htb rate 10gbit &&
			tc class add dev lo parent 1: classid 1:20 htb rate 10gbit &&
			tc qdisc add dev lo parent 1:20 handle 20: pfifo limit 0 || return 1
	fi
	tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip src "$addr/32" flowid 1:20
}

og_net_pass() {
	[[ -n ${OG_IN_NETNS:-} ]] || return 0
	tc qdisc del dev lo root 2>/dev/null || true
}
