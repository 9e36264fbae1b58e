# shellcheck shell=bash
# Assertions and scaffolding for the bash integration tests (tests/integration/*.sh).
#
#   #!/usr/bin/env bash
#   set -euo pipefail
#   source "$(dirname "$0")/../lib/testlib.sh"
#   test_begin "sample events are stored"
#   test_createdb                    # $TEST_DB: migrated, login roles, sample registry
#   og_write_config "$TEST_DIR" "$TEST_DB"
#   og_start_all "$TEST_DIR"
#   assert_eq "cases stored" 3 "$(sql "$TEST_DB" 'SELECT count(*) FROM og.case')"
#
# Output is TAP-like: "ok - WHAT" per passed check; at the first failure "not ok - WHAT",
# diagnostics on "# " lines (expected/actual, the tail of every daemon log and of the
# PostgreSQL log), and exit 1. An unexpected failure (set -e, a signal) is reported the
# same way, naming the command that failed.
#
# On every exit: on_exit handlers (last registered first), then the daemons of $TEST_DIR
# are stopped (a daemon that crashed, or did not exit 0 on SIGTERM, fails the test), the
# database is dropped and $TEST_DIR removed. OG_KEEP=1 keeps the directory and database.
#
# The cluster is the one PGHOST/PGPORT name (tests/run starts one per run and exports
# it). Run standalone without PGHOST, a test gets a private cluster in $TEST_DIR/pg.
#
# Also sources pgcluster.sh and daemons.sh, so tests need only this file.

[[ -n ${_ONEGRID_TESTLIB_SH:-} ]] && return 0
_ONEGRID_TESTLIB_SH=1

# errtrace: the ERR trap below must also see failures inside functions.
set -euo pipefail -o errtrace

_tl_lib=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/pgcluster.sh
source "$_tl_lib/pgcluster.sh"
# shellcheck source=tests/lib/daemons.sh
source "$_tl_lib/daemons.sh"

TEST_NAME=${TEST_NAME:-$(basename "$0")}
TEST_DIR=
TEST_DB=
_tl_handlers=()
_tl_failed=0
_tl_passed=0
_tl_db_created=0
_tl_pgdir=
_tl_err_cmd=
_tl_err_where=

# Prints each line of its arguments as a "# " diagnostic.
_tl_diag() {
	local line
	while IFS= read -r line; do
		echo "#   $line"
	done <<<"$(printf '%s\n' "$@")"
}

# test_pglog: prints the path of the test cluster's server log (the private cluster's, or
# tests/run's); false when there is none this test can read.
test_pglog() {
	local dir=${_tl_pgdir:-${OG_PGCLUSTER_DIR:-}}
	[[ -n $dir && -r $dir/log/postgresql.log ]] || return 1
	echo "$dir/log/postgresql.log"
}

# Everything that helps explain a failure: daemon logs, then the server's log.
_tl_dump() {
	[[ -n $TEST_DIR && -d $TEST_DIR ]] && og_dump_logs "$TEST_DIR" 30
	local pglog
	if pglog=$(test_pglog); then
		echo "# ---- last 15 lines of $pglog"
		tail -n 15 "$pglog" | sed 's/^/#   /'
	fi
	return 0
}

pass() {
	_tl_passed=$((_tl_passed + 1))
	echo "ok - $*"
}

fail() {
	echo "not ok - $*"
	_tl_failed=1
	_tl_dump
	# Note: inside $(...) this only leaves the subshell; call checks at the top level.
	exit 1
}

# Fails check $1 with diagnostic lines $2...
_tl_not_ok() {
	local what=$1
	shift
	echo "not ok - $what"
	_tl_diag "$@"
	_tl_failed=1
	_tl_dump
	exit 1
}

assert_eq() {
	(($# == 3)) || fail "assert_eq needs WHAT EXPECTED ACTUAL, got $# arguments"
	if [[ $2 == "$3" ]]; then
		pass "$1"
	else
		_tl_not_ok "$1" "expected: $2" "actual:   $3"
	fi
}

# _tl_bound WHAT BOUND ACTUAL OP KIND: integer ACTUAL OP BOUND (OP >= or <=; KIND
# "least" or "most", for the message).
_tl_bound() {
	local what=$1 bound=$2 actual=$3 op=$4 kind=$5
	if [[ ! $bound =~ ^-?[0-9]+$ || ! $actual =~ ^-?[0-9]+$ ]]; then
		_tl_not_ok "$what" "not integers: bound \"$bound\", actual \"$actual\""
	elif ((actual $op bound)); then
		pass "$what"
	else
		_tl_not_ok "$what" "expected at $kind: $bound" "actual: $actual"
	fi
}

# assert_ge WHAT MIN ACTUAL: integer ACTUAL >= MIN.
assert_ge() {
	(($# == 3)) || fail "assert_ge needs WHAT MIN ACTUAL, got $# arguments"
	_tl_bound "$1" "$2" "$3" ">=" least
}

# assert_le WHAT MAX ACTUAL: integer ACTUAL <= MAX.
assert_le() {
	(($# == 3)) || fail "assert_le needs WHAT MAX ACTUAL, got $# arguments"
	_tl_bound "$1" "$2" "$3" "<=" most
}

# assert_match WHAT REGEX ACTUAL: ACTUAL matches the extended regular expression.
assert_match() {
	(($# == 3)) || fail "assert_match needs WHAT REGEX ACTUAL, got $# arguments"
	if [[ $3 =~ $2 ]]; then
		pass "$1"
	else
		_tl_not_ok "$1" "expected to match: $2" "actual: $3"
	fi
}

# sql DB QUERY: unaligned, tuples only, stop at the first error. Without QUERY the SQL
# is read from stdin (for here-documents).
sql() {
	local db=${1:?usage: sql DB [QUERY]}
	if (($# >= 2)); then
		"$PG_BIN/psql" -XAtq -v ON_ERROR_STOP=1 -d "$db" -c "$2"
	else
		"$PG_BIN/psql" -XAtq -v ON_ERROR_STOP=1 -d "$db" -f -
	fi
}

# on_exit CMD...: with one argument, shell code to eval; with several, a command and
# its arguments (quoted as given). Handlers run last-registered first, even on failure.
on_exit() {
	local cmd
	if (($# == 1)); then
		cmd=$1
	else
		printf -v cmd '%q ' "$@"
	fi
	_tl_handlers+=("$cmd")
}

# test_begin NAME: private $TEST_DIR and a private database name $TEST_DB (not yet
# created: see test_createdb).
test_begin() {
	TEST_NAME=${1:?usage: test_begin NAME}
	local slug parent
	slug=${TEST_NAME,,}
	slug=${slug//[^a-z0-9_]/_}
	# tests/run puts every test directory under OG_TEST_TMPDIR so it can find and stop
	# daemons a killed test left behind. Kept short: ipc:// paths must fit in 107 bytes.
	parent=${OG_TEST_TMPDIR:-${TMPDIR:-/tmp}}
	mkdir -p "$parent"
	TEST_DIR=$(mktemp -d "$parent/${slug:0:20}.XXXXXX")
	# Searchable by others: a private cluster in it runs as another user.
	chmod 0755 "$TEST_DIR"
	TEST_DB="t_${slug:0:40}_$$"
	export TEST_NAME TEST_DIR TEST_DB
	echo "# $TEST_NAME: directory $TEST_DIR, database $TEST_DB"
}

# test_createdb [--no-registry]: creates and migrates $TEST_DB (see pgcluster_createdb).
test_createdb() {
	[[ -n $TEST_DB ]] || fail "test_createdb called before test_begin"
	if [[ -z ${PGHOST:-} ]]; then
		_tl_pgdir=$TEST_DIR/pg
		mkdir "$_tl_pgdir"
		pgcluster_start "$_tl_pgdir" || fail "start a private PostgreSQL cluster"
	fi
	pgcluster_createdb "$TEST_DB" "$@" || fail "create database $TEST_DB"
	_tl_db_created=1
}

# test_old_layout DIR [PATH...]: extracts into DIR, from git, the tree (or only the PATHs
# of it) of commit 8285e23, the last of the old SQL layout: deploy/sql with the numbered
# migrations 001 to 019 (018_baseline.sql now stands for 001 to 018) and the onegridctl
# migrate that applied them. Sets TEST_OLD_COMMIT to its id.
TEST_OLD_COMMIT=
test_old_layout() {
	local dir=${1:?usage: test_old_layout DIR [PATH...]}
	shift
	git -C "$ONEGRID_REPO" rev-parse --git-dir >/dev/null 2>&1 ||
		fail "\"$ONEGRID_REPO\" is not a git checkout: the old SQL layout comes from its history"
	TEST_OLD_COMMIT=$(git -C "$ONEGRID_REPO" rev-parse --verify -q "8285e23^{commit}") ||
		fail "commit 8285e23 is not in the history of \"$ONEGRID_REPO\" (a shallow clone?)"
	mkdir -p "$dir"
	git -C "$ONEGRID_REPO" archive "$TEST_OLD_COMMIT" "$@" | tar -x -C "$dir" ||
		fail "extract commit $TEST_OLD_COMMIT into \"$dir\""
}

_tl_on_exit() {
	local rc=$? i
	trap - ERR
	set +e
	if ((rc != 0 && !_tl_failed)); then
		echo "not ok - ${TEST_NAME}: unexpected exit status $rc"
		[[ -n $_tl_err_cmd ]] && _tl_diag "failed command: $_tl_err_cmd" "at: $_tl_err_where"
		_tl_failed=1
		_tl_dump
	fi
	for ((i = ${#_tl_handlers[@]} - 1; i >= 0; i--)); do
		eval "${_tl_handlers[i]}" || echo "# cleanup failed: ${_tl_handlers[i]}"
	done
	if [[ -n $TEST_DIR && -d $TEST_DIR ]]; then
		# A daemon that crashed during the test or did not exit 0 on SIGTERM (a
		# sanitizer report at exit, say) fails a test whose checks all passed.
		if ! og_stop_all "$TEST_DIR" && ((rc == 0)); then
			echo "not ok - daemons exited cleanly"
			_tl_dump
			rc=1
		fi
		if [[ ${OG_KEEP:-0} == 1 ]]; then
			[[ -n $_tl_pgdir ]] && pgcluster_stop "$_tl_pgdir"
			echo "# kept $TEST_DIR and database $TEST_DB (OG_KEEP=1)"
		else
			if ((_tl_db_created)) && [[ -z $_tl_pgdir ]]; then
				"$PG_BIN/psql" -XAtq -d postgres \
					-c "DROP DATABASE IF EXISTS $TEST_DB WITH (FORCE)" ||
					echo "# could not drop database $TEST_DB"
			fi
			[[ -n $_tl_pgdir ]] && pgcluster_stop "$_tl_pgdir"
			rm -rf "$TEST_DIR"
		fi
	fi
	((rc == 0)) && echo "# $TEST_NAME: $_tl_passed checks passed"
	exit "$rc"
}

# Remembers the last failed command and where it ran (innermost call first), so an
# unexpected exit under set -e can say what failed.
_tl_record_err() {
	local i
	_tl_err_cmd=$2
	_tl_err_where="${BASH_SOURCE[1]##*/}:$1"
	for ((i = 2; i < ${#BASH_SOURCE[@]}; i++)); do
		_tl_err_where+=" < ${BASH_SOURCE[i]##*/}:${BASH_LINENO[i - 1]}"
	done
}
trap '_tl_record_err "$LINENO" "$BASH_COMMAND"' ERR
trap _tl_on_exit EXIT
# Signals end the test through the EXIT trap, so cleanup runs (128 + signal number).
trap 'exit 130' INT
trap 'exit 143' TERM
