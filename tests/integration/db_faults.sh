#!/usr/bin/env bash
# Database faults are not refusals (issue 9, items 1 and 2). With the real daemons, each
# section injects one kind of fault into archive's database work while events are being
# published, and then checks: every event answered "stored" (once: no duplicate, none
# rejected, none unanswered), no REASON_STORAGE_REFUSED row, each event stored once (one
# event key, two ledger rows), and onegrid-archive still the process it was.
#
#   cancel   a session holds a lock archive needs — og.event_key (og.store_event), og.batch
#            (og.begin_batch), og.chain_head (og.end_batch) — and each time archive's
#            session waits for it, that wait is cancelled (pg_cancel_backend, what an
#            operator does to a stuck query); then the lock goes. One event and one cancel
#            per statement (the issue's measurement), then 20 events and 6 cancels.
#   timeout  archive's role gets statement_timeout or lock_timeout in this database, its
#            session is ended so that it reconnects with the setting, and a held lock makes
#            its statements time out (57014, 55P03) again and again before it goes
#   disk     the database lives in a tablespace on a small tmpfs, filled while events are
#            published (relations cannot grow: 53100), then freed again
#   poison   one record the database refuses (a test trigger: 23514 on its event key) whose
#            refusal record is refused too (22023 on og.rejection while the row carries the
#            event's bytes): archive must not loop, recurse or exit, the others are stored,
#            and that one ends answered rejected with one (minimal) refusal row
#
# OG_DB_FAULTS=cancel,timeout,disk,poison (the default) picks sections, and
# OG_DB_FAULT_ROUNDS=REGEX rounds of cancel and timeout by tag (key1|batch1|chain1|key,
# stmt1|lock1|stmt). disk needs root (a tmpfs mount) and is skipped without it. Conditions
# are polled, never slept for.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"
source "$(dirname "$0")/../lib/faults.sh"

sections=${OG_DB_FAULTS:-cancel,timeout,disk,poison}
want() { [[ ,$sections, == *,$1,* ]]; }
want_round() { [[ -z ${OG_DB_FAULT_ROUNDS:-} || $1 =~ ^(${OG_DB_FAULT_ROUNDS})$ ]]; }

test_begin "db_faults"
test_createdb
export OG_FAULTS_LOG=$TEST_DIR/faults.log

# The disk section's tablespace: the whole database moves onto a tmpfs before any daemon
# connects (WAL stays on the cluster's own disk, so a full tmpfs is an error, not a PANIC).
TS=
TSNAME=${TEST_DB}_ts
cleanup_ts() {
	rm -f "$TS/filler"
	[[ ${OG_KEEP:-0} == 1 ]] && { echo "# kept the tmpfs mounted on $TS (OG_KEEP=1)"; return 0; }
	og_stop_all "$TEST_DIR" || true
	"$PG_BIN/psql" -XAtq -d postgres -c "DROP DATABASE IF EXISTS $TEST_DB WITH (FORCE)" || true
	"$PG_BIN/psql" -XAtq -d postgres -c "DROP TABLESPACE IF EXISTS $TSNAME" || true
	umount "$TS" 2>/dev/null || umount -l "$TS"
}
if want disk; then
	if ((EUID == 0)) && mkdir "$TEST_DIR/ts" &&
		mount -t tmpfs -o size=64m,mode=0700 onegrid-test "$TEST_DIR/ts"; then
		TS=$TEST_DIR/ts
		on_exit cleanup_ts
		chown "$(stat -c %U "$(sql postgres 'SHOW data_directory')"):" "$TS"
		sql postgres "CREATE TABLESPACE $TSNAME LOCATION '$TS'"
		sql postgres "ALTER DATABASE $TEST_DB SET TABLESPACE $TSNAME"
	else
		echo "# db_faults: the disk section needs root and a tmpfs mount: skipped"
		sections=${sections//disk/}
	fi
fi

og_write_config "$TEST_DIR" "$TEST_DB"
og_start_all "$TEST_DIR"
ARCHIVE_PID=$(<"$TEST_DIR/archive.pid")
RSS_START=$(og_vmhwm "$ARCHIVE_PID")

SECTION=
PUB=
PUB_NAME=
ALLOW_DISPATCH_EXIT=0
DISPATCH_RESTARTS=0
on_exit '[[ -n $PUB ]] && kill $PUB 2>/dev/null; og_lock_release "$TEST_DB" df-lock >/dev/null 2>&1; true'

# sql_retry QUERY: while the disk is full a new session may fail to start (it writes the
# relation cache's init file into the database's directory): try again for up to 30 s.
sql_retry() {
	local i out
	for ((i = 0; i < 300; i++)); do
		out=$(sql "$TEST_DB" "$1" 2>/dev/null) && { echo "$out"; return 0; }
		sleep 0.1
	done
	sql "$TEST_DB" "$1"
}

# What the database and the answers say so far, for a failure's diagnostics.
explain() {
	echo "# refusals recorded so far:"
	{ sql_retry "SELECT source_event_id || ' ' || reason || ': ' || left(detail, 160) FROM og.rejection
	             ORDER BY rejection_id LIMIT 5" || echo "(the database did not answer)"; } | sed 's/^/#   /'
	if [[ -n $PUB_NAME && -s $TEST_DIR/$PUB_NAME.out ]]; then
		echo "# answers other than stored:"
		grep -v -m 5 '"outcome":"stored"' "$TEST_DIR/$PUB_NAME.out" | sed 's/^/#   /'
	fi
	[[ -n $PUB_NAME && -s $TEST_DIR/$PUB_NAME.txt ]] && sed 's/^/# publish: /' "$TEST_DIR/$PUB_NAME.txt"
	return 0
}

# Fails unless every daemon still runs; in the poison section a dispatch that exited to
# reload its state after a refusal (by design) is started again, a few times at most.
daemons_ok() {
	local d pid
	for d in archive dispatch intake; do
		pid=$(cat "$TEST_DIR/$d.pid" 2>/dev/null || true)
		[[ -n $pid ]] && _og_alive "$pid" && continue
		if [[ $d == dispatch ]] && ((ALLOW_DISPATCH_EXIT && DISPATCH_RESTARTS < 3)); then
			og_stop dispatch "$TEST_DIR" 2>/dev/null || true
			og_start dispatch "$TEST_DIR" || fail "$SECTION: onegrid-dispatch starts again"
			DISPATCH_RESTARTS=$((DISPATCH_RESTARTS + 1))
			continue
		fi
		explain
		fail "$SECTION: onegrid-$d keeps running"
	done
}

# publish NAME N: N new events NAME-000001... published in the background.
publish() {
	PUB_NAME=$1
	og_gen_reports "$TEST_DB" "$2" "$1" >"$TEST_DIR/$1.jsonl"
	"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --window 200 \
		--timeout 300 --results "$TEST_DIR/$1.out" "$TEST_DIR/$1.jsonl" >"$TEST_DIR/$1.txt" 2>&1 &
	PUB=$!
}

# Waits for the publisher to end (every event answered), checking the daemons meanwhile.
wait_publish() {
	local deadline=$((SECONDS + ${1:-240}))
	while _og_alive "$PUB"; do
		daemons_ok
		((SECONDS < deadline)) || { explain; fail "$SECTION: every event answered within ${1:-240} s"; }
		sleep 0.1
	done
	PUB_RC=0
	wait "$PUB" || PUB_RC=$?
	PUB=
}

# Waits until archive's session starts a new lock wait (not the one in $LAST_WAIT).
LAST_WAIT=
next_wait() {
	local deadline=$((SECONDS + 60)) w
	while :; do
		w=$(og_backend_lock_wait "$TEST_DB" onegrid-archive)
		[[ -n $w && $w != "$LAST_WAIT" ]] && break
		daemons_ok
		if ! _og_alive "$PUB"; then
			explain
			fail "$SECTION: the publisher still waits while archive cannot commit (it was answered)"
		fi
		((SECONDS < deadline)) || { explain; fail "$SECTION: archive's session waits for the lock (again) within 60 s"; }
		sleep 0.05
	done
	LAST_WAIT=$w
}

# check NAME N WHAT: the section's events all answered stored and stored once.
check() {
	local name=$1 n=$2 what=$3 summary
	summary=$(head -1 "$TEST_DIR/$name.txt")
	[[ $summary == "published $n events: stored $n, duplicate 0, rejected 0, unanswered 0" ]] || explain
	assert_eq "$what: every event answered stored, once" \
		"published $n events: stored $n, duplicate 0, rejected 0, unanswered 0" "$summary"
	assert_eq "$what: publish exits 0" 0 "$PUB_RC"
	assert_eq "$what: each event stored once" "$n|$((2 * n))" \
		"$(sql "$TEST_DB" "SELECT (SELECT count(*) FROM og.event_key WHERE source_event_id LIKE '$name-%') || '|' ||
		                          (SELECT count(*) FROM og.ledger WHERE source_event_id LIKE '$name-%')")"
	assert_eq "$what: nothing recorded as REASON_STORAGE_REFUSED" 0 \
		"$(sql "$TEST_DB" "SELECT count(*) FROM og.rejection WHERE reason = 'REASON_STORAGE_REFUSED'")"
	assert_eq "$what: onegrid-archive is the process it was" "$ARCHIVE_PID" \
		"$(cat "$TEST_DIR/archive.pid" 2>/dev/null)"
}

section_begin() {
	SECTION=$1
	SECTION_T0=$SECONDS
	LAST_WAIT=
	echo "# ---- $SECTION"
}
section_end() {
	echo "# $SECTION: $((SECONDS - SECTION_T0)) s"
}

if want cancel; then
	# One event and one cancel per statement (og.store_event, og.begin_batch, og.end_batch);
	# then twenty events and six cancels, more than halving a batch of twenty down to one
	# record takes.
	for round in "key1 og.event_key 1 1" "batch1 og.batch 1 1" "chain1 og.chain_head 1 1" \
		"key og.event_key 20 6"; do
		read -r tag table n cancels <<<"$round"
		want_round "$tag" || continue
		section_begin "cancel: $cancels cancel(s) of archive's wait for $table, $n event(s)"
		og_lock_take "$TEST_DB" df-lock "$table" SHARE || fail "$SECTION: a session takes the lock"
		publish "cancel-$tag" "$n"
		for ((c = 0; c < cancels; c++)); do
			next_wait
			og_cancel_pid "$TEST_DB" "${LAST_WAIT%% *}"
		done
		og_lock_release "$TEST_DB" df-lock
		wait_publish
		check "cancel-$tag" "$n" "$SECTION"
		section_end
	done
fi

if want timeout; then
	# Waits ended by the timeout alone (nothing else cancels here): as many as the cancels
	# above, for the same reasons.
	for round in "stmt1 statement_timeout 300ms og.event_key 1 2" "lock1 lock_timeout 200ms og.chain_head 1 2" \
		"stmt statement_timeout 300ms og.event_key 20 6"; do
		read -r tag guc value table n waits <<<"$round"
		want_round "$tag" || continue
		section_begin "timeout: $guc = $value for archive's role, a lock on $table held past it $waits times, $n event(s)"
		sql "$TEST_DB" "ALTER ROLE onegrid_archive IN DATABASE $TEST_DB SET $guc = '$value'"
		# Its session keeps the old value: end it, archive connects again when it next commits.
		og_backend_terminate "$TEST_DB" onegrid-archive >/dev/null
		og_lock_take "$TEST_DB" df-lock "$table" SHARE || fail "$SECTION: a session takes the lock"
		publish "timeout-$tag" "$n"
		for ((k = 0; k < waits; k++)); do
			next_wait
		done
		og_lock_release "$TEST_DB" df-lock
		wait_publish
		sql "$TEST_DB" "ALTER ROLE onegrid_archive IN DATABASE $TEST_DB RESET $guc"
		og_backend_terminate "$TEST_DB" onegrid-archive >/dev/null
		check "timeout-$tag" "$n" "$SECTION"
		section_end
	done
fi

stored_of() { sql_retry "SELECT count(*) FROM og.event_key WHERE source_event_id LIKE '$1-%'"; }
rollbacks() { sql_retry "SELECT xact_rollback FROM pg_stat_database WHERE datname = current_database()"; }
archive_hit_full_disk() {
	daemons_ok
	_og_alive "$PUB" || { explain; fail "$SECTION: the events were all answered before the disk was full"; }
	# ENOSPC, or a short write ("wrote only 4096 of 8192 bytes"): both SQLSTATE 53100.
	{ tail -c +"$((LOG_AT + 1))" "$TEST_DIR/archive.log" || true; } |
		grep -q 'No space left on device\|SQLSTATE 53100\|could not extend file'
}
rollbacks_since() { daemons_ok; (($(rollbacks) >= $1 + 3)); }
some_stored() { daemons_ok; (($(stored_of disk) >= 200)); }

if want disk; then
	section_begin "disk: the database's filesystem filled under load, then freed"
	publish disk 4000
	og_poll 120 some_stored || fail "$SECTION: events are stored before the disk fills"
	LOG_AT=$(stat -c %s "$TEST_DIR/archive.log")
	dd if=/dev/zero of="$TS/filler" bs=1M status=none 2>/dev/null || true
	echo "# $(df -h --output=size,used,avail "$TS" | tail -1 | tr -s ' ') (size used available) with $(stored_of disk) stored"
	og_poll 60 archive_hit_full_disk || { explain; fail "$SECTION: archive meets the full disk within 60 s"; }
	# Let it fail a few more times (each failed batch is a rollback) before there is room.
	rb=$(rollbacks)
	og_poll 60 rollbacks_since "$rb" || { explain; fail "$SECTION: archive tries again while the disk is full"; }
	echo "# $(stored_of disk) stored when the disk was freed"
	rm -f "$TS/filler"
	wait_publish
	check disk 4000 "$SECTION"
	section_end
fi

if want poison; then
	section_begin "poison: a record refused by the database whose refusal is refused too"
	BAD=poison-000015
	sql "$TEST_DB" <<-SQL
		CREATE FUNCTION public.df_poison_event() RETURNS trigger LANGUAGE plpgsql AS \$\$
		BEGIN
		  IF NEW.source_event_id = '$BAD' THEN
		    RAISE EXCEPTION 'test trigger: this event is refused' USING ERRCODE = 'check_violation';
		  END IF;
		  RETURN NEW;
		END \$\$;
		CREATE TRIGGER df_poison BEFORE INSERT ON og.event_key
		  FOR EACH ROW EXECUTE FUNCTION public.df_poison_event();
		-- Refuses the refusal while it carries the event's bytes or names the event in its
		-- text: what is left is the minimal row (reason, digest, size, no free text).
		CREATE FUNCTION public.df_poison_rejection() RETURNS trigger LANGUAGE plpgsql AS \$\$
		BEGIN
		  IF position(convert_to('$BAD', 'UTF8') IN NEW.raw) > 0 OR position('$BAD' IN NEW.detail) > 0 THEN
		    RAISE EXCEPTION 'test trigger: this refusal record is refused too'
		      USING ERRCODE = 'invalid_parameter_value';
		  END IF;
		  RETURN NEW;
		END \$\$;
		CREATE TRIGGER df_poison BEFORE INSERT ON og.rejection
		  FOR EACH ROW EXECUTE FUNCTION public.df_poison_rejection();
	SQL
	ALLOW_DISPATCH_EXIT=1
	rss_before=$(og_vmhwm "$ARCHIVE_PID")
	dispatch_log_at=$(stat -c %s "$TEST_DIR/dispatch.log")
	publish poison 30
	wait_publish 120
	# dispatch held the refused record's case in memory: it exits to reload (storage_refused.sh)
	# and daemons_ok starts it again. Wait until each dispatch that said so has done so.
	exits_announced() {
		{ tail -c +"$((dispatch_log_at + 1))" "$TEST_DIR/dispatch.log" || true; } | grep -c 'then exiting' || true
	}
	all_exited() { daemons_ok; (($(exits_announced) <= DISPATCH_RESTARTS)); }
	if ! og_poll 30 all_exited; then
		pid=$(cat "$TEST_DIR/dispatch.pid" 2>/dev/null || echo none)
		echo "# dispatch pid $pid: $(ps -o stat=,etime=,wchan:32= -p "$pid" 2>&1 || true)"
		fail "$SECTION: each dispatch that said it exits to reload its state does so within 30 s"
	fi
	ALLOW_DISPATCH_EXIT=0
	rss_after=$(og_vmhwm "$ARCHIVE_PID")
	echo "# archive's peak RSS: $rss_before kB before, $rss_after kB after; dispatch restarted $DISPATCH_RESTARTS time(s)"
	assert_eq "$SECTION: onegrid-archive never exited" "$ARCHIVE_PID" "$(cat "$TEST_DIR/archive.pid" 2>/dev/null)"
	assert_eq "$SECTION: the others stored, that one answered rejected" \
		"published 30 events: stored 29, duplicate 0, rejected 1, unanswered 0" "$(head -1 "$TEST_DIR/poison.txt")"
	assert_match "$SECTION: answered REASON_STORAGE_REFUSED" '"outcome":"rejected".*"REASON_STORAGE_REFUSED"' \
		"$(grep "\"$BAD\"" "$TEST_DIR/poison.out")"
	assert_eq "$SECTION: 29 stored once each, not that one" "29|58|0" \
		"$(sql "$TEST_DB" "SELECT (SELECT count(*) FROM og.event_key WHERE source_event_id LIKE 'poison-%') || '|' ||
		                          (SELECT count(*) FROM og.ledger WHERE source_event_id LIKE 'poison-%') || '|' ||
		                          (SELECT count(*) FROM og.event_key WHERE source_event_id = '$BAD')")"
	assert_eq "$SECTION: one refusal row, REASON_STORAGE_REFUSED" "1|REASON_STORAGE_REFUSED" \
		"$(sql "$TEST_DB" "SELECT count(*) || '|' || string_agg(DISTINCT reason, ',') FROM og.rejection")"
	# Recursion shows as growth; 64 MB is far above what one batch of 30 needs.
	assert_eq "$SECTION: archive's peak RSS grew by less than 64 MB" 1 "$(((rss_after - rss_before) < 65536))"
	sql "$TEST_DB" "DROP TRIGGER df_poison ON og.event_key; DROP TRIGGER df_poison ON og.rejection"
	section_end
fi

rc=0
"$ONEGRID_BIN/onegridctl" audit verify --db "dbname=$TEST_DB user=onegrid_audit" >"$TEST_DIR/verify.txt" 2>&1 || rc=$?
assert_eq "the hash chain verifies after the faults" 0 "$rc"
echo "# archive's peak RSS: $RSS_START kB at start, $(og_vmhwm "$ARCHIVE_PID") kB at the end"
og_stop_all "$TEST_DIR" || fail "every daemon stops cleanly"
pass "every daemon stops cleanly"
