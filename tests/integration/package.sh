#!/usr/bin/env bash
# The Debian packages (debian/) build, install, work and purge cleanly.
#
# 1. Builds onegrid, libonegrid0 and libonegrid-dev with dpkg-buildpackage -b from a
#    copy of the source tree (the files git knows, as they are in the working tree; in
#    CI a clean clone), without the unit tests: DEB_BUILD_OPTIONS="nocheck parallel=2".
#    That takes 12 to 45 s here (2 cores), the whole test 25 to 60 s.
# 2. Installs them with dpkg -i and checks each package's files (dpkg -L) against the
#    lists below, the conffile, the onegrid user (sysusers), every binary's --version
#    against the package's version, `systemd-analyze verify` of the installed units, the
#    man pages (found by name, rendered without warnings, every command, option and
#    configuration key the binaries know documented) and the bash completion.
# 3. Builds docs/integrating.md's publish_one.c, as installed with libonegrid-dev,
#    against the installed onegrid.pc and event.proto; migrates a database with the
#    installed onegridctl and SQL; runs the installed daemons as the onegrid user with
#    the configuration in /etc/onegrid/onegrid.conf (by hand: PID 1 need not be systemd
#    here); publishes one event with publish_one: stored, then duplicate.
# 4. Purges the packages (on exit too, whatever happened) and checks that nothing of
#    them is left. The onegrid user is deleted again if this test made it.
#
# Needs root (dpkg -i). Exits 77, which CTest counts as skipped, when not root or when
# an onegrid package is already installed: it must never replace or remove an
# operator's installation. The lines starting "# $ " and "#   " are the transcript
# docs/operating.md ("Install from packages") shows.
set -euo pipefail

packages=(onegrid libonegrid0 libonegrid-dev)
if ((EUID != 0)); then
	echo "# package: skipped: dpkg -i needs root"
	exit 77
fi
# What dpkg knows of package $1: "" (nothing), "installed", or another state
# ("config-files": removed, not purged).
dpkg_state() {
	local s
	s=$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)
	[[ $s == not-installed ]] && s=
	echo "$s"
}
for p in "${packages[@]}"; do
	if [[ -n $(dpkg_state "$p") ]]; then
		echo "# package: skipped: $p is on this machine ($(dpkg_state "$p")), and this test would purge it"
		exit 77
	fi
done

# shellcheck source=tests/lib/testlib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/testlib.sh"

test_begin "package"

# Shows a command and its output as transcript lines.
show() {
	local out rc=0
	echo "# \$ $*"
	out=$("$@" 2>&1) || rc=$?
	[[ -n $out ]] && sed 's/^/#   /' <<<"$out"
	return "$rc"
}

for tool in dpkg-buildpackage dh scdoc protoc-c pkg-config systemd-analyze man setpriv; do
	command -v "$tool" >/dev/null || fail "$tool is installed (deploy/install-deps)"
done

# --- 1. build ------------------------------------------------------------------------
src=$TEST_DIR/src
mkdir "$src"
if git -C "$ONEGRID_REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# Tracked and new files as they are now, not the build directories (.gitignore); a
	# file deleted but not yet committed is skipped.
	(cd "$ONEGRID_REPO" && git ls-files -z -co --exclude-standard |
		while IFS= read -r -d '' f; do
			[[ -e $f || -L $f ]] && printf '%s\0' "$f"
		done | tar -cf - --null -T -) | tar -xf - -C "$src"
else
	tar -cf - -C "$ONEGRID_REPO" --exclude='./build*' . | tar -xf - -C "$src"
fi
[[ -x $src/debian/rules ]] || fail "the copy of the tree has debian/rules"

start=$SECONDS
if ! (cd "$src" && DEB_BUILD_OPTIONS="nocheck parallel=2" dpkg-buildpackage -us -uc -b) \
	>"$TEST_DIR/build.out" 2>&1; then
	tail -n 40 "$TEST_DIR/build.out" | sed 's/^/#   /'
	fail "dpkg-buildpackage -us -uc -b (log above)"
fi
build_s=$((SECONDS - start))
pass "dpkg-buildpackage built the packages in ${build_s} s"

version=$(cd "$src" && dpkg-parsechangelog -S Version)
cmake_version=$(sed -n 's/^project(onegrid VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
assert_eq "debian/changelog's version is CMakeLists.txt's project version" \
	"$cmake_version" "${version%%-*}"
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
debs=()
for p in "${packages[@]}"; do
	deb=$TEST_DIR/${p}_${version}_${arch}.deb
	[[ -f $deb ]] || fail "$deb was built"
	debs+=("$deb")
done
pass "built ${packages[*]} $version"

# --- 2. install and check ----------------------------------------------------------
had_user=0
getent passwd onegrid >/dev/null && had_user=1

purge() {
	local p present=()
	og_stop_all "$TEST_DIR" || true
	for p in "${packages[@]}"; do
		[[ -n $(dpkg_state "$p") ]] && present+=("$p")
	done
	# All in one command: dpkg orders them (libonegrid-dev before libonegrid0).
	if ((${#present[@]})); then
		dpkg --purge "${present[@]}" >>"$TEST_DIR/purge.out" 2>&1 ||
			echo "# could not purge ${present[*]}: $(tail -n 5 "$TEST_DIR/purge.out")"
	fi
	if ((!had_user)) && getent passwd onegrid >/dev/null; then
		userdel onegrid || echo "# could not delete the user onegrid"
		if getent group onegrid >/dev/null; then groupdel onegrid || true; fi
	fi
}
on_exit purge

show dpkg -i "${debs[@]}" || fail "dpkg -i of the packages"
for p in "${packages[@]}"; do
	assert_eq "$p is installed" installed "$(dpkg_state "$p")"
done

# Files and symbolic links of package $1, sorted. Directories are not listed, nor
# /lib, which Debian 12's merged /usr makes a link to usr/lib.
files_of() {
	local f
	dpkg -L "$1" | while IFS= read -r f; do
		[[ -d $f ]] || echo "$f"
	done | LC_ALL=C sort
}

# The schema as CMakeLists.txt installs it: migrations, current/ with its ORDER, README.md.
sql_files=$(cd "$src/deploy/sql" && find . -type f \( -name '*.sql' -o -name ORDER -o -name README.md \) |
	sed 's|^\./|/usr/share/onegrid/sql/|')
headers=$(cd "$src/include/onegrid" && find . -name '*.h' | sed 's|^\./|/usr/include/onegrid/|')
expected_onegrid=$(sort <<-EOF
	/etc/onegrid/onegrid.conf
	/lib/systemd/system/onegrid-archive.service
	/lib/systemd/system/onegrid-dispatch.service
	/lib/systemd/system/onegrid-intake.service
	/lib/systemd/system/onegrid.target
	/usr/bin/onegrid-archive
	/usr/bin/onegrid-dispatch
	/usr/bin/onegrid-intake
	/usr/bin/onegridctl
	/usr/lib/sysusers.d/onegrid.conf
	/usr/share/bash-completion/completions/onegridctl
	/usr/share/doc/onegrid/auditing.md.gz
	/usr/share/doc/onegrid/changelog.gz
	/usr/share/doc/onegrid/copyright
	/usr/share/doc/onegrid/operating.md.gz
	/usr/share/man/man1/onegridctl.1.gz
	/usr/share/man/man5/onegrid.conf.5.gz
	/usr/share/man/man8/onegrid-archive.8.gz
	/usr/share/man/man8/onegrid-dispatch.8.gz
	/usr/share/man/man8/onegrid-intake.8.gz
	/usr/share/onegrid/grafana/onegrid.json
	$sql_files
EOF
)
expected_libonegrid0=$(sort <<-EOF
	/usr/lib/$ma/libonegrid.so.0
	/usr/lib/$ma/libonegrid.so.$cmake_version
	/usr/share/doc/libonegrid0/changelog.gz
	/usr/share/doc/libonegrid0/copyright
EOF
)
expected_libonegrid_dev=$(sort <<-EOF
	$headers
	/usr/lib/$ma/libonegrid.so
	/usr/lib/$ma/pkgconfig/onegrid.pc
	/usr/share/doc/libonegrid-dev/changelog.gz
	/usr/share/doc/libonegrid-dev/copyright
	/usr/share/doc/libonegrid-dev/integrating.md.gz
	/usr/share/onegrid/proto/onegrid/v1/event.proto
EOF
)
for p in "${packages[@]}"; do
	var=expected_${p//-/_}
	actual=$(files_of "$p")
	if [[ $actual == "${!var}" ]]; then
		pass "dpkg -L $p: the expected $(wc -l <<<"$actual") files"
		sed 's/^/#   /' <<<"$actual"
	else
		_tl_not_ok "dpkg -L $p: the expected files" "differences (< expected, > installed):" \
			"$(diff <(echo "${!var}") <(echo "$actual") | grep '^[<>]')"
	fi
done
assert_match "libonegrid.so.0 is the library's soname" "SONAME +libonegrid\.so\.0$" \
	"$(objdump -p "/usr/lib/$ma/libonegrid.so.$cmake_version" | grep SONAME)"
assert_match "/etc/onegrid/onegrid.conf is a conffile" "^ /etc/onegrid/onegrid.conf [0-9a-f]{32}$" \
	"$(dpkg-query -W -f='${Conffiles}\n' onegrid | grep onegrid.conf)"
assert_eq "the shipped onegrid.conf is deploy/conf/onegrid.conf" \
	"$(sha256sum <"$src/deploy/conf/onegrid.conf")" "$(sha256sum </etc/onegrid/onegrid.conf)"
assert_match "postinst made the user onegrid (systemd-sysusers)" \
	"^onegrid:x:[0-9]+:[0-9]+:onegrid daemons:/nonexistent:/usr/sbin/nologin$" \
	"$(getent passwd onegrid)"

for b in onegrid-intake onegrid-dispatch onegrid-archive onegridctl; do
	assert_eq "$b --version" "$b $cmake_version" "$(/usr/bin/"$b" --version)"
done

for u in onegrid-archive.service onegrid-dispatch.service onegrid-intake.service onegrid.target; do
	rc=0
	out=$(env -u SYSTEMD_LOG_LEVEL systemd-analyze verify --man=no "/lib/systemd/system/$u" 2>&1) || rc=$?
	assert_eq "systemd-analyze verify of the installed $u: no output, exit 0" "0:" "$rc:$out"
done
assert_eq "the units are not enabled by the installation" "" \
	"$(find /etc/systemd/system -name 'onegrid*' 2>/dev/null)"

# The man pages: found by name; rendered without a warning; every command and option the
# binaries print in --help, and every key the daemons accept, is in them.
man_text() { # man_text NAME SECTION: the rendered page, one long line per paragraph
	LC_ALL=C.UTF-8 MANWIDTH=1000 man "$2" "$1" 2>/dev/null | col -bx
}
for page in onegrid-intake:8 onegrid-dispatch:8 onegrid-archive:8 onegridctl:1 onegrid.conf:5; do
	name=${page%:*} section=${page#*:}
	path=/usr/share/man/man$section/$name.$section.gz
	assert_eq "man -w $section $name" "$path" "$(man -w "$section" "$name")"
	assert_eq "man $section $name renders without warnings" "" \
		"$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings "$section" "$name" 2>&1 >/dev/null)"
done
undocumented=()
for b in onegrid-intake onegrid-dispatch onegrid-archive; do
	text=$(man_text "$b" 8)
	for opt in $(/usr/bin/"$b" --help | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u); do
		grep -qF -- "$opt" <<<"$text" || undocumented+=("$b(8): $opt")
	done
done
text=$(man_text onegridctl 1)
for cmd in $(/usr/bin/onegridctl --help | sed -n 's/^  \([a-z][a-z0-9-]*\).*/\1/p' | sort -u); do
	grep -qE "^ +onegridctl $cmd( |$)" <<<"$text" || undocumented+=("onegridctl(1): command $cmd")
	for opt in $(/usr/bin/onegridctl "$cmd" --help 2>&1 | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u); do
		grep -qF -- "$opt" <<<"$text" || undocumented+=("onegridctl(1): $cmd $opt")
	done
done
text=$(man_text onegrid.conf 5)
for d in intake dispatch archive; do
	# The keys the daemon accepts: its known_keys[] in daemons/NAME/main.c.
	keys=$(sed -n '/known_keys\[\] = {/,/NULL}/p' "$src/daemons/$d/main.c" | grep -oE '"[a-z_0-9]+"' | tr -d '"')
	[[ -n $keys ]] || fail "found the keys of [$d] in daemons/$d/main.c"
	# From the heading "[NAME]" to the next heading (any line not indented).
	section_text=$(awk -v s="[$d]" '/^[^ ]/ { on = ($1 == s) } on' <<<"$text")
	for k in $keys; do
		grep -qE "^ +$k = " <<<"$section_text" || undocumented+=("onegrid.conf(5): [$d] $k")
	done
done
if ((${#undocumented[@]} == 0)); then
	pass "the man pages document every command, option and key"
else
	_tl_not_ok "the man pages document every command, option and key" \
		"missing in docs/man/*.scd:" "${undocumented[@]}"
fi

# The completion, as bash-completion would load it.
completions() { # completions WORD...: what <TAB> offers after the words given
	bash -c 'source /usr/share/bash-completion/completions/onegridctl
		COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _onegridctl
		printf "%s\n" "${COMPREPLY[@]}"' completion "$@" | LC_ALL=C sort | tr '\n' ' '
}
all_cmds=$(/usr/bin/onegridctl --help | sed -n 's/^  \([a-z][a-z0-9-]*\).*/\1/p' |
	{ cat; printf '%s\n' --help --version; } | LC_ALL=C sort -u | tr '\n' ' ')
assert_eq "completion: onegridctl <TAB>" "$all_cmds" "$(completions onegridctl '')"
assert_eq "completion: onegridctl audit <TAB>" "definitions heads verify " "$(completions onegridctl audit '')"
assert_eq "completion: onegridctl publish --out<TAB>" "--outbox " "$(completions onegridctl publish --out)"
assert_eq "completion: onegridctl migrate --sql-dir /usr/share/onegrid/s<TAB>" \
	"/usr/share/onegrid/sql " "$(completions onegridctl migrate --sql-dir /usr/share/onegrid/s)"

# --- 3. use ---------------------------------------------------------------------------
# docs/integrating.md's program, as the installed guide shows it.
ex=$TEST_DIR/example
mkdir "$ex"
zcat /usr/share/doc/libonegrid-dev/integrating.md.gz |
	awk '!done && /^```c$/ { getline; if ($0 ~ /publish_one\.c/) { on = 1 } }
	     on && /^```$/ { on = 0; done = 1 } on { print }' >"$ex/publish_one.c"
assert_match "integrating.md holds publish_one.c" "og_publisher_new" "$(cat "$ex/publish_one.c")"
proto=$(pkg-config --variable=protodir onegrid)
# shellcheck disable=SC2046 # pkg-config's words are meant to split
(cd "$ex" && show protoc-c --c_out=. -I"$proto" "$proto/onegrid/v1/event.proto" &&
	show cc -std=c11 -Wall -Wextra -Werror -o publish_one publish_one.c onegrid/v1/event.pb-c.c \
		-I. $(pkg-config --cflags --libs onegrid libprotobuf-c)) ||
	fail "publish_one.c builds against the installed onegrid.pc"
assert_match "publish_one uses the installed libonegrid.so.0" \
	"libonegrid\.so\.0 => (/usr)?/lib/$ma/libonegrid\.so\.0 " "$(ldd "$ex/publish_one" | grep libonegrid)"

# A database, migrated by the installed onegridctl from the installed SQL, as the
# PostgreSQL superuser of the cluster (tests/run's, or a private one). Not
# test_createdb: it migrates from the source tree. _tl_pgdir and _tl_db_created tell
# testlib.sh's cleanup what to stop and drop.
if [[ -z ${PGHOST:-} ]]; then
	mkdir "$TEST_DIR/pg"
	_tl_pgdir=$TEST_DIR/pg
	pgcluster_start "$TEST_DIR/pg" || fail "start a private PostgreSQL cluster"
fi
"$PG_BIN/psql" -XAtq -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $TEST_DB"
_tl_db_created=1
out=$(unset ONEGRID_SQL_DIR && show /usr/bin/onegridctl migrate --db "dbname=$TEST_DB") ||
	fail "onegridctl migrate from /usr/share/onegrid/sql: $out"
echo "$out"
assert_match "onegridctl migrate brought the schema up to date" "schema up to date" "$out"
pgcluster_login_roles "$TEST_DB" || fail "make the login roles"
sql "$TEST_DB" <"$src/deploy/sample/karamay-registry.sql" >/dev/null
pass "database $TEST_DB: migrated, login roles, the sample registry"

# The configuration in /etc/onegrid/onegrid.conf (written for this test's cluster and
# sockets; the daemons read it through $TEST_DIR/onegrid.conf, where tests/lib/daemons.sh
# wants it), the daemons run as the user onegrid, which must be able to make its
# sockets in $TEST_DIR.
og_write_config "$TEST_DIR" "$TEST_DB"
declare -A mport
read -r 'mport[intake]' 'mport[dispatch]' 'mport[archive]' < <(og_free_tcp_ports 3)
for d in intake dispatch archive; do
	sed -i "/^\[$d\]$/a metrics_listen = 127.0.0.1:${mport[$d]}" "$TEST_DIR/onegrid.conf"
done
install -m 0644 "$TEST_DIR/onegrid.conf" /etc/onegrid/onegrid.conf
ln -sf /etc/onegrid/onegrid.conf "$TEST_DIR/onegrid.conf"
chown onegrid: "$TEST_DIR"
as_onegrid=(setpriv --reuid=onegrid --regid=onegrid --init-groups)
for d in intake dispatch archive; do
	show "${as_onegrid[@]}" onegrid-$d --check-config -c /etc/onegrid/onegrid.conf ||
		fail "onegrid-$d --check-config: the installed configuration is good"
done
pass "--check-config: the installed configuration is good for all three"
ONEGRID_BIN=/usr/bin ONEGRID_WRAPPER="${as_onegrid[*]}" \
	og_start_all "$TEST_DIR" || fail "the installed daemons start as the user onegrid"
for d in archive dispatch intake; do
	pid=$(<"$TEST_DIR/$d.pid")
	assert_eq "onegrid-$d runs as onegrid" "onegrid /usr/bin/onegrid-$d" \
		"$(ps -o user=,args= -p "$pid" | awk '{ print $1, $2 }')"
	grep -h '^<' "$TEST_DIR/$d.log" | sed 's/^/#   /'
done

out=$("$ex/publish_one" "ipc://$TEST_DIR/intake.sock" pkg-0001 2>&1) || fail "publish_one: $out"
echo "# \$ ./publish_one ipc://$TEST_DIR/intake.sock pkg-0001"
echo "#   $out"
assert_match "publish_one: stored" "^pkg-0001: stored, case 650204-[0-9]{8}$" "$out"
case_id=${out##* }
out=$("$ex/publish_one" "ipc://$TEST_DIR/intake.sock" pkg-0001 2>&1) || fail "publish_one: $out"
echo "#   $out"
assert_eq "publish_one again (another token): duplicate, same case" "pkg-0001: duplicate, case $case_id" "$out"
# Scrape: what Prometheus reads; the status an operator asks for.
out=$(curl -sf "http://127.0.0.1:${mport[archive]}/metrics") || fail "curl archive's /metrics"
echo "# \$ curl -s http://127.0.0.1:${mport[archive]}/metrics | grep -E '^onegrid_(archive_records_total|build_info|database_up)'"
grep -E '^onegrid_(archive_records_total|build_info|database_up)' <<<"$out" | sed 's/^/#   /' || true
assert_match "archive's metrics count the stored event" 'onegrid_archive_records_total\{outcome="stored"\} 1' "$out"
rc=0
show onegridctl status --config /etc/onegrid/onegrid.conf || rc=$?
assert_eq "onegridctl status: all three healthy" 0 "$rc"
og_stop_all "$TEST_DIR" || fail "the daemons stop cleanly"
pass "the installed daemons stopped cleanly"

# --- 4. purge ---------------------------------------------------------------------------
leftovers=$(printf '%s\n' "$expected_onegrid" "$expected_libonegrid0" "$expected_libonegrid_dev")
show dpkg --purge "${packages[@]}" || fail "dpkg --purge"
for p in "${packages[@]}"; do
	assert_eq "$p is purged" "" "$(dpkg_state "$p")"
done
left=()
while IFS= read -r f; do
	[[ -e $f || -L $f ]] && left+=("$f")
done <<<"$leftovers"
[[ -e /etc/onegrid ]] && left+=(/etc/onegrid)
[[ -e /usr/share/onegrid ]] && left+=(/usr/share/onegrid)
assert_eq "nothing of the packages is left" "" "${left[*]}"
echo "# package: build ${build_s} s, whole test $SECONDS s"
