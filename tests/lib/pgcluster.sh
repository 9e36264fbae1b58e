# shellcheck shell=bash
# Private, throw-away PostgreSQL 15 clusters for tests and the quickstart.
#
# Source this file, then:
#   pgcluster_start DIR              initdb + start a cluster in DIR (an existing, empty
#                                    directory, normally from mktemp -d); exports PGHOST,
#                                    PGPORT, PGUSER and writes them to DIR/env
#   pgcluster_stop DIR               fast shutdown; fine if it is not running
#   pgcluster_restart_immediate DIR  crash it (immediate stop) and start it again
#   pgcluster_createdb NAME [--no-registry]
#                                    create database NAME in the cluster PGHOST/PGPORT
#                                    name, migrate it, make the login roles, load the
#                                    sample registry
#
#   pgcluster_login_roles DB         make the tests' login roles (onegrid_archive,
#                                    onegrid_dispatch, onegrid_audit) through DB
#   pgcluster_huge_pages             prints whether the server PGHOST/PGPORT name keeps
#                                    its shared memory in huge pages: on, off or unknown
#   pgcluster_huge_pages_reserved DIR
#                                    prints how many huge pages pgcluster_start reserved
#                                    for the cluster in DIR (0: none)
#
# PGCLUSTER_LISTEN (e.g. "127.0.0.1"), when set, is the cluster's listen_addresses: it then
# takes TCP connections too (trust from 127.0.0.1, initdb's pg_hba.conf).
# PGCLUSTER_HUGE_PAGES=1: the cluster keeps its shared memory in huge pages (huge_pages =
# on), as docs/operating.md recommends for a database at volume; pgcluster_start reserves
# as many as the server needs (vm.nr_hugepages: root only) and pgcluster_stop gives them
# back. Without it the cluster runs as initdb made it (huge_pages = try, which finds none
# on a machine that reserved none).
#
# Layout: DIR/data (PGDATA), DIR/sock (the only socket; no TCP), DIR/log/postgresql.log,
# DIR/env (sourceable exports). The server refuses to run as root, so the cluster belongs
# to the `postgres` system user (or `onegrid-pg`, created on demand); local connections
# use trust authentication, so any OS user may connect as any role. Durability settings
# stay on (fsync, synchronous_commit): the tests check that acknowledged events survive
# a crash, which would prove nothing otherwise.
#
# Functions return non-zero on failure and say why on stderr; they do not exit, so a
# caller's own traps and `set -e` decide what happens next.

[[ -n ${_ONEGRID_PGCLUSTER_SH:-} ]] && return 0
_ONEGRID_PGCLUSTER_SH=1

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
ONEGRID_REPO=${ONEGRID_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
ONEGRID_BIN=${ONEGRID_BIN:-$ONEGRID_REPO/build/bin}

_pgc_err() { echo "pgcluster: $*" >&2; }

# The OS user that owns and runs private clusters. Prints its name.
_pgc_os_user() {
	if ((EUID != 0)); then
		# Not root: the server runs as whoever we are.
		id -un
	elif getent passwd postgres >/dev/null; then
		echo postgres
	else
		if ! getent passwd onegrid-pg >/dev/null; then
			useradd --system --user-group --no-create-home --home-dir /nonexistent \
				--shell /usr/sbin/nologin --comment "onegrid test PostgreSQL" onegrid-pg ||
				return 1
		fi
		echo onegrid-pg
	fi
}

# Huge pages reserved for private clusters. vm.nr_hugepages is one number for the whole
# machine, so each reservation is also written down, one file per cluster in _PGC_HP_DIR:
# "PAGES PID START BOOT DIR", PAGES reserved for the cluster in DIR by the process PID
# (START: its start time, field 22 of /proc/PID/stat, so a reused pid is not taken for it)
# during the boot BOOT (/proc/sys/kernel/random/boot_id: a reboot resets vm.nr_hugepages,
# and /run need not be a tmpfs that a reboot empties). A caller killed with SIGKILL cannot
# give its pages back; the next reservation or release does, once that caller has gone
# and its cluster's server has stopped, and names a cluster still running whose caller
# has gone.
_PGC_HUGEPAGES=/proc/sys/vm/nr_hugepages
_PGC_HP_DIR=/run/onegrid-pgcluster-hugepages
_PGC_BOOT_ID=/proc/sys/kernel/random/boot_id
_pgc_hp_fd=

# Takes and drops the lock over vm.nr_hugepages and the records: clusters starting and
# stopping at once would otherwise undo each other's count.
_pgc_hp_lock() {
	mkdir -p "$_PGC_HP_DIR" && exec {_pgc_hp_fd}>>"$_PGC_HP_DIR/lock" && flock "$_pgc_hp_fd"
}
_pgc_hp_unlock() {
	[[ -n $_pgc_hp_fd ]] && exec {_pgc_hp_fd}>&-
	_pgc_hp_fd=
}

# Under the lock: reserves $1 more huge pages, or releases them (-$1). Fails, reserving
# none, when the kernel does not give them all.
_pgc_hp_adjust() {
	local n=$1 cur got
	cur=$(<"$_PGC_HUGEPAGES") || return 1
	((cur + n >= 0)) || n=$((-cur))
	if ! echo $((cur + n)) 2>/dev/null >"$_PGC_HUGEPAGES"; then
		_pgc_err "cannot set vm.nr_hugepages to $((cur + n)) (root only)"
		return 1
	fi
	if ((n > 0)); then
		got=$(<"$_PGC_HUGEPAGES")
		if ((got < cur + n)); then
			echo "$cur" >"$_PGC_HUGEPAGES"
			_pgc_err "the kernel gave $((got - cur)) of the $n huge pages asked for (memory too fragmented or too small)"
			return 1
		fi
	fi
}

# The record of the cluster in directory $1 (an absolute path).
_pgc_hp_record() {
	local sum
	sum=$(printf '%s' "$1" | sha256sum) || return 1
	echo "$_PGC_HP_DIR/${sum:0:16}"
}

# Prints the start time of process $1 (field 22 of its stat; the name, field 2, may hold
# spaces and parentheses, so count from the last ')'). Fails if there is no such process.
_pgc_proc_start() {
	local stat f
	stat=$(<"/proc/$1/stat") 2>/dev/null || return 1
	read -ra f <<<"${stat##*) }"
	echo "${f[19]}"
}

# True if the server of the cluster in $1 runs: its postmaster.pid names a live postgres.
_pgc_running() {
	local pid
	pid=$(head -n 1 "$1/data/postmaster.pid" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ && $(cat "/proc/$pid/comm" 2>/dev/null) == postgres ]]
}

# Under the lock: forgets the records of an earlier boot (their pages went with it); gives
# back the pages of every record whose caller has gone and whose cluster no longer runs
# (a caller still alive may be starting its cluster); names the clusters still running
# whose caller has gone.
_pgc_hp_sweep() {
	local f pages pid start boot dir now_boot
	now_boot=$(<"$_PGC_BOOT_ID") || return 1
	for f in "$_PGC_HP_DIR"/*; do
		[[ -f $f && ${f##*/} =~ ^[0-9a-f]{16}$ ]] || continue
		read -r pages pid start boot dir <"$f" || continue
		[[ $pages =~ ^[0-9]+$ ]] || continue
		if [[ $boot != "$now_boot" ]]; then
			rm -f "$f"
		elif [[ $(_pgc_proc_start "$pid" 2>/dev/null) == "$start" ]]; then
			continue
		elif ! _pgc_running "$dir"; then
			_pgc_hp_adjust "-$pages" && rm -f "$f" &&
				_pgc_err "gave back the $pages huge pages reserved for the cluster in \"$dir\", which no longer runs (its caller was killed)"
		else
			_pgc_err "the cluster in \"$dir\" still holds $pages huge pages, and the process that started it ($pid) has gone: stop it with: source '$ONEGRID_REPO/tests/lib/pgcluster.sh' && pgcluster_stop '$dir'"
		fi
	done
}

# Reserves $2 huge pages for the cluster in $1, after giving back those of clusters that
# have gone.
_pgc_hugepages_reserve() {
	# The process that calls pgcluster_start, a subshell's own (not $$, its parent's).
	local dir=$1 n=$2 me=$BASHPID record start boot rc=0
	record=$(_pgc_hp_record "$dir") || return 1
	start=$(_pgc_proc_start "$me") || return 1
	boot=$(<"$_PGC_BOOT_ID") || return 1
	_pgc_hp_lock || return 1
	_pgc_hp_sweep
	_pgc_hp_adjust "$n" || rc=1
	if ((rc == 0)) && ! echo "$n $me $start $boot $dir" >"$record"; then
		_pgc_hp_adjust "-$n"
		rc=1
	fi
	_pgc_hp_unlock
	return "$rc"
}

# Gives back the huge pages pgcluster_start reserved for the cluster in $1, if any, and
# those of clusters that have gone (best effort: a caller that is not root and reserved
# none may not take the lock).
_pgc_hugepages_release() {
	local dir record pages rc=0
	[[ -d $_PGC_HP_DIR ]] || return 0
	dir=$(cd "$1" 2>/dev/null && pwd) || dir=$1
	record=$(_pgc_hp_record "$dir") || return 1
	if [[ ! -f $record ]]; then
		_pgc_hp_lock 2>/dev/null && _pgc_hp_sweep
		_pgc_hp_unlock
		return 0
	fi
	_pgc_hp_lock || return 1
	if read -r pages _ <"$record" 2>/dev/null; then
		_pgc_hp_adjust "-$pages" && rm -f "$record" || rc=1
	fi
	_pgc_hp_sweep
	_pgc_hp_unlock
	return "$rc"
}

# Prints how many huge pages are reserved for the cluster in $1 (0: none).
pgcluster_huge_pages_reserved() {
	local record pages=0
	record=$(_pgc_hp_record "$(cd "${1:?usage: pgcluster_huge_pages_reserved DIR}" && pwd)") || return 1
	[[ -f $record ]] && read -r pages _ <"$record"
	echo "$pages"
}

pgcluster_huge_pages() {
	local setting ddir pid
	setting=$("$PG_BIN/psql" -XAtq -d postgres -c "SHOW huge_pages") || return 1
	case $setting in
	on | off) echo "$setting"; return 0 ;;
	esac
	# "try": the server used them if it found them. Its shared memory is a mapping of
	# /anon_hugepage when it did (as root, or as its owner, the postmaster's maps say).
	ddir=$("$PG_BIN/psql" -XAtq -d postgres -c "SHOW data_directory") || return 1
	pid=$(head -n 1 "$ddir/postmaster.pid" 2>/dev/null) || pid=
	if [[ -z $pid || ! -r /proc/$pid/maps ]]; then
		echo unknown
	elif grep -q '/anon_hugepage' "/proc/$pid/maps"; then
		echo on
	else
		echo off
	fi
}

# Runs a command as the cluster's OS user $1 (directly if that is us).
_pgc_as() {
	local user=$1
	shift
	if [[ $user == "$(id -un)" ]]; then
		"$@"
	else
		# runuser, not su/sudo: it needs no PAM session or password and comes with
		# util-linux (Essential on Debian). Environment is kept, so PG* variables of
		# the caller reach pg_ctl unchanged. The subshell leaves a working directory
		# the user may not enter (/root), which initdb and psql complain about.
		(cd / && runuser -u "$user" -- "$@")
	fi
}

# True if PostgreSQL port $1 is taken anywhere on this host: a socket file named
# .s.PGSQL.$1 (any directory; another cluster's lock and shared memory key derive from
# the port) or a TCP listener on it.
_pgc_port_in_use() {
	local port=$1 hex
	hex=$(printf '%04X' "$port")
	# /proc/net/unix lists bound unix sockets with their path in the last column.
	if grep -q "/\.s\.PGSQL\.$port\$" /proc/net/unix 2>/dev/null; then
		return 0
	fi
	# /proc/net/tcp{,6}: column 2 is local address:port in hex, column 4 the state; 0A is
	# LISTEN.
	if awk -v p=":$hex" 'NR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { f = 1 }
		END { exit !f }' /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
		return 0
	fi
	return 1
}

# Prints a free port in 15432-25432, starting at a random point so parallel callers
# rarely collide (a collision makes pg_ctl start fail, it cannot corrupt anything).
_pgc_free_port() {
	local dir=$1 i port
	for ((i = 0; i < 10000; i++)); do
		port=$((15432 + (RANDOM * 32768 + RANDOM + i) % 10001))
		[[ -e $dir/sock/.s.PGSQL.$port ]] && continue
		_pgc_port_in_use "$port" && continue
		echo "$port"
		return 0
	done
	_pgc_err "no free port in 15432-25432"
	return 1
}

pgcluster_start() {
	local dir=${1:?usage: pgcluster_start DIR}
	local user port locale
	if [[ ! -d $dir ]]; then
		_pgc_err "directory \"$dir\" does not exist (create it with mktemp -d)"
		return 1
	fi
	dir=$(cd "$dir" && pwd)
	if [[ -e $dir/data ]]; then
		_pgc_err "\"$dir/data\" already exists; use a fresh directory"
		return 1
	fi
	user=$(_pgc_os_user) || return 1

	# Each step checks its own failure: callers use `pgcluster_start DIR || ...`, which
	# turns set -e off inside the function.
	mkdir -p "$dir/data" "$dir/sock" "$dir/log" || return 1
	# The server user must own its directories; others (root callers, the daemons under
	# test running as other users) need to reach the socket, so DIR and DIR/sock are
	# world-searchable. The data directory stays private (initdb insists on 0700/0750).
	chmod 0755 "$dir" "$dir/sock" "$dir/log" || return 1
	chmod 0700 "$dir/data" || return 1
	if [[ $user != "$(id -un)" ]]; then
		chown "$user:" "$dir" "$dir/data" "$dir/sock" "$dir/log" || return 1
	fi
	if ! _pgc_as "$user" test -w "$dir/data"; then
		_pgc_err "user \"$user\" cannot reach \"$dir\" (is a parent directory private?)"
		return 1
	fi

	# UTF-8 throughout: the registry and the events are Chinese text. C.UTF-8 sorts by
	# code point and exists on every Debian 12; fall back to no locale if stripped.
	if locale -a 2>/dev/null | grep -ix 'c\.utf-\?8' >/dev/null; then
		locale=(--locale=C.UTF-8)
	else
		locale=(--no-locale)
	fi
	if ! _pgc_as "$user" "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust \
		--encoding=UTF8 "${locale[@]}" >"$dir/log/initdb.log" 2>&1; then
		_pgc_err "initdb failed:"
		tail -n 20 "$dir/log/initdb.log" >&2
		return 1
	fi

	port=$(_pgc_free_port "$dir") || return 1
	# Appended settings override initdb's earlier lines (last one wins). Must not fail
	# silently: the defaults would put the socket in /var/run/postgresql.
	_pgc_as "$user" tee -a "$dir/data/postgresql.conf" >/dev/null <<-EOF || return 1

		# --- onegrid private test cluster (tests/lib/pgcluster.sh) ---
		listen_addresses = '${PGCLUSTER_LISTEN:-}'
		port = $port
		unix_socket_directories = '$dir/sock'
		fsync = on
		synchronous_commit = on
		full_page_writes = on
		log_line_prefix = '%m [%p] %q%u@%d '
	EOF
	if [[ ${PGCLUSTER_HUGE_PAGES:-0} == 1 ]]; then
		local pages
		# What the server will ask for, computed from the configuration (a stopped
		# server can say it).
		if ! pages=$(_pgc_as "$user" "$PG_BIN/postgres" -D "$dir/data" -C shared_memory_size_in_huge_pages) ||
			[[ ! $pages =~ ^[0-9]+$ ]]; then
			_pgc_err "could not learn how many huge pages the server needs: \"$pages\""
			return 1
		fi
		_pgc_hugepages_reserve "$dir" "$pages" || return 1
		echo "huge_pages = on" | _pgc_as "$user" tee -a "$dir/data/postgresql.conf" >/dev/null || return 1
	fi

	if ! _pgc_as "$user" "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/log/postgresql.log" \
		-w -t 60 start >"$dir/log/pg_ctl.log" 2>&1; then
		_pgc_err "could not start the cluster in \"$dir\":"
		tail -n 20 "$dir/log/postgresql.log" "$dir/log/pg_ctl.log" >&2
		if [[ ${PGCLUSTER_HUGE_PAGES:-0} == 1 ]]; then
			# Who held the huge pages reserved for it: the kernel's count and the
			# reservations on record ("PAGES PID START BOOT DIR").
			_pgc_err "huge pages when it failed: $(grep -h '^HugePages_' /proc/meminfo | tr -s ' \n' ' ')"
			for f in "$_PGC_HP_DIR"/*; do
				[[ -f $f && ${f##*/} =~ ^[0-9a-f]{16}$ ]] && _pgc_err "reserved: $(<"$f")"
			done
		fi
		_pgc_hugepages_release "$dir"
		return 1
	fi

	export PGHOST=$dir/sock PGPORT=$port PGUSER=postgres
	{
		printf 'export PGHOST=%q\n' "$PGHOST"
		printf 'export PGPORT=%q\n' "$PGPORT"
		printf 'export PGUSER=%q\n' "$PGUSER"
	} >"$dir/env" || return 1
}

# Prints the OS user that owns the cluster in DIR (so stop/restart need no state).
_pgc_owner() {
	stat -c %U "$1/data"
}

pgcluster_stop() {
	local dir=${1:?usage: pgcluster_stop DIR} user rc=0
	[[ -d $dir/data ]] || return 0
	user=$(_pgc_owner "$dir") || return 1
	# pg_ctl status: 0 running, 3 not running, 4 no usable data directory.
	_pgc_as "$user" "$PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1 || rc=$?
	if ((rc != 3 && rc != 4)) && ! _pgc_as "$user" "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop \
		>>"$dir/log/pg_ctl.log" 2>&1; then
		_pgc_err "could not stop the cluster in \"$dir\":"
		tail -n 20 "$dir/log/pg_ctl.log" >&2
		return 1
	fi
	_pgc_hugepages_release "$dir"
}

# Simulates a crash of the database server (no shutdown checkpoint, crash recovery on
# start): what a power cut does to PostgreSQL, as far as our data is concerned.
pgcluster_restart_immediate() {
	local dir=${1:?usage: pgcluster_restart_immediate DIR} user
	user=$(_pgc_owner "$dir") || return 1
	if ! _pgc_as "$user" "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w -t 60 stop \
		>>"$dir/log/pg_ctl.log" 2>&1; then
		_pgc_err "immediate stop of the cluster in \"$dir\" failed:"
		tail -n 20 "$dir/log/pg_ctl.log" >&2
		return 1
	fi
	if ! _pgc_as "$user" "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/log/postgresql.log" \
		-w -t 120 start >>"$dir/log/pg_ctl.log" 2>&1; then
		_pgc_err "could not restart the cluster in \"$dir\":"
		tail -n 20 "$dir/log/postgresql.log" >&2
		return 1
	fi
}

# Runs SQL on database $1 of the current cluster, stopping at the first error.
_pgc_psql() {
	local db=$1
	shift
	# Quiet NOTICEs ("already exists, skipping") so callers see only what matters.
	PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning" \
		"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"
}

# Makes the test login roles onegrid_archive, onegrid_dispatch and onegrid_audit, members
# of onegrid_writer, onegrid_reader and onegrid_auditor, through database $1. Login roles
# are cluster-wide and other tests may already have made them (or be making them right
# now: the exception handler covers that race). Membership is granted separately so a
# role left over without it is repaired.
pgcluster_login_roles() {
	local name=${1:?usage: pgcluster_login_roles DB}
	_pgc_psql "$name" <<-'EOF'
		DO $$
		DECLARE
		  login text[] := ARRAY['onegrid_archive', 'onegrid_dispatch', 'onegrid_audit'];
		  grp   text[] := ARRAY['onegrid_writer',  'onegrid_reader',   'onegrid_auditor'];
		BEGIN
		  FOR i IN 1 .. array_length(login, 1) LOOP
		    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = login[i]) THEN
		      BEGIN
		        EXECUTE format('CREATE ROLE %I LOGIN IN ROLE %I', login[i], grp[i]);
		      EXCEPTION WHEN duplicate_object OR unique_violation THEN
		        NULL;
		      END;
		    END IF;
		    IF NOT pg_has_role(login[i], grp[i], 'MEMBER') THEN
		      EXECUTE format('GRANT %I TO %I', grp[i], login[i]);
		    END IF;
		  END LOOP;
		END $$;
	EOF
}

pgcluster_createdb() {
	local name=${1:?usage: pgcluster_createdb NAME [--no-registry]} registry=1
	if [[ ${2:-} == --no-registry ]]; then
		registry=0
	elif [[ -n ${2:-} ]]; then
		_pgc_err "pgcluster_createdb: unknown option \"$2\""
		return 1
	fi
	if [[ -z ${PGHOST:-} || -z ${PGPORT:-} ]]; then
		_pgc_err "PGHOST/PGPORT are not set: call pgcluster_start or source DIR/env first"
		return 1
	fi
	if [[ ! $name =~ ^[a-z_][a-z0-9_]{0,62}$ ]]; then
		# Keeps conninfo strings and SQL free of quoting trouble.
		_pgc_err "database name \"$name\" must match ^[a-z_][a-z0-9_]{0,62}\$"
		return 1
	fi

	_pgc_psql postgres -c "CREATE DATABASE $name" || return 1

	# The schema comes from onegridctl, the same path an operator uses, so the tests
	# exercise the migration runner too. It connects as PGUSER (postgres, superuser),
	# which migration 001 needs to create the group roles.
	if [[ ! -x $ONEGRID_BIN/onegridctl ]]; then
		_pgc_err "\"$ONEGRID_BIN/onegridctl\" not found (build first, or set ONEGRID_BIN)"
		return 1
	fi
	if ! "$ONEGRID_BIN/onegridctl" migrate --db "dbname=$name" \
		--sql-dir "$ONEGRID_REPO/deploy/sql" >/dev/null; then
		_pgc_err "onegridctl migrate of database \"$name\" failed"
		return 1
	fi

	pgcluster_login_roles "$name" || return 1

	if ((registry)); then
		local reg=$ONEGRID_REPO/deploy/sample/karamay-registry.sql
		if [[ ! -r $reg ]]; then
			_pgc_err "\"$reg\" not found (or pass --no-registry)"
			return 1
		fi
		# No -1: the file has its own BEGIN/COMMIT; ON_ERROR_STOP still stops it at the
		# first error and the caller discards a database that failed to load.
		_pgc_psql "$name" -f "$reg" >/dev/null || {
			_pgc_err "loading \"$reg\" into \"$name\" failed"
			return 1
		}
	fi
}
