#!/usr/bin/env bash
# Every Submit gets exactly one answer (docs/integrating.md, "Transport"):
# 1. Twenty copies of one new event in flight at once from one connection (ten identical
#    Submits, ten more under other tags) get twenty answers: the first Submit and its
#    resends (the same tag) "stored", the others "duplicate" (intake kept 8 waiters per
#    event and never answered the 9th; and it answered a resend "duplicate").
# 2. A publisher that connects again under the routing id it chose (ZMQ_ROUTING_ID) while
#    its old connection is still open is let in at once, and the answers to what it sent
#    on the old connection come to the new one (intake's ROUTER ignored the new
#    connection until the old one died).
# dispatch is frozen (SIGSTOP) while the Submits arrive, so that they are all in flight
# together; intake's log says when it has read them (a refused message logs a line, and
# intake reads one connection's messages in order).
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"

test_begin "answers"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
og_start_all "$TEST_DIR"
RAW=$ONEGRID_BIN/rawsend
EP="ipc://$TEST_DIR/intake.sock"
DISPATCH_PID=$(<"$TEST_DIR/dispatch.pid")
on_exit 'kill -CONT "$DISPATCH_PID" 2>/dev/null || true'

hex() { printf '%s' "$1" | od -An -tx1 -v | tr -d ' \n'; }
varint() { # protobuf varint of $1, in hex
	local n=$1 out=
	while ((n >= 128)); do
		out+=$(printf '%02x' $((n % 128 + 128)))
		n=$((n / 128))
	done
	printf '%s%02x' "$out" "$n"
}
# submit TAG_HEX ENVELOPE_HEX: a Submit{tag, event} in hex.
submit() { printf '0a%s%s12%s%s' "$(varint $((${#1} / 2)))" "$1" "$(varint $((${#2} / 2)))" "$2"; }
# log_mark: remembers how long intake's log is; wait_log WHAT TEXT polls until a line
# containing TEXT follows.
log_mark() { LOG_FROM=$(wc -l <"$TEST_DIR/intake.log"); }
wait_log() {
	local deadline=$((SECONDS + 30))
	# `|| true`: grep -q quits at the first match; tail's SIGPIPE must not fail the test.
	until { tail -n +"$((LOG_FROM + 1))" "$TEST_DIR/intake.log" || true; } | grep -qF -- "$2"; do
		((SECONDS < deadline)) || _tl_not_ok "$1" "intake did not log \"$2\" within 30 s"
		sleep 0.05
	done
	pass "$1"
}
count() { grep -c -- "$1" "$2" || true; }

# A valid Envelope, canonical as the ledger keeps it; new events are copies of it under
# new ids of the same length.
og_gen_reports "$TEST_DB" 1 an >"$TEST_DIR/e.jsonl"
"$ONEGRID_BIN/onegridctl" publish --endpoint "$EP" "$TEST_DIR/e.jsonl" >/dev/null
ENV=$(sql "$TEST_DB" "SELECT encode(body, 'hex') FROM og.ledger WHERE kind = 'event'")
with_id() { printf '%s' "${ENV/$(hex an-000001)/$(hex "$1")}"; }
E1=$(with_id an-900001)
[[ $E1 != "$ENV" ]] || fail "the event id is in the Envelope's bytes"

# 1. Twenty copies of one event in flight.
msgs=()
for ((i = 0; i < 10; i++)); do msgs+=("$(submit aa "$E1")"); done
for ((i = 1; i <= 10; i++)); do msgs+=("$(submit "$(printf '%02x' "$i")" "$E1")"); done
log_mark
kill -STOP "$DISPATCH_PID"
"$RAW" --timeout 20 --then "$(submit ff "$ENV")" "$EP" "${msgs[@]}" "0a01c1|00" \
	>"$TEST_DIR/copies.out" 2>&1 &
raw=$!
on_exit 'kill "$raw" 2>/dev/null || true'
wait_log "intake read 21 messages while dispatch is frozen" "one Submit, not 2"
kill -CONT "$DISPATCH_PID"
rc=0
wait "$raw" || rc=$?
assert_eq "every copy answered in time (rawsend: $(tail -n 1 "$TEST_DIR/copies.out"))" 0 "$rc"
out=$TEST_DIR/copies.out
assert_eq "ten answers to the ten identical Submits" 10 "$(count '^tag=aa ' "$out")"
for ((i = 1; i <= 10; i++)); do
	t=$(printf '%02x' "$i")
	[[ $(count "^tag=$t " "$out") == 1 ]] || fail "one answer to the Submit tagged $t"
done
pass "one answer to each of the ten Submits under other tags"
# The first Submit is the one stored; its resends (the same tag) are answered as it is,
# the ten under other tags are other submissions: duplicates.
assert_eq "the ten Submits tagged aa (one and its resends) stored" 10 \
	"$(count '^tag=aa outcome=stored case=6502' "$out")"
assert_eq "the ten under other tags duplicates, with the case" 10 \
	"$(grep -v '^tag=ff ' "$out" | grep -v '^tag=aa ' | grep -c 'outcome=duplicate case=6502' || true)"
assert_eq "the refused marker answered once" 1 "$(count '^tag= outcome=rejected' "$out")"
assert_eq "no answer too many: the next event's answer came next" "22 tag=ff" \
	"$(wc -l <"$out") $(tail -n 1 "$out" | cut -d' ' -f1)"
assert_eq "the event stored once" 1 \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key WHERE source_event_id = 'an-900001'")"

# 2. The same routing id on a new connection while the old one is still open.
E2=$(with_id an-900002)
E3=$(with_id an-900003)
mkfifo "$TEST_DIR/go"
log_mark
kill -STOP "$DISPATCH_PID"
"$RAW" --id "answers-publisher-1" --timeout 20 --reconnect "0a01b1|00|00" \
	--then "$(submit fe "$ENV")" "$EP" "$(submit b1 "$E2")" "$(submit b2 "$E3")" \
	"$(submit b3 "$E2")" "0a01a1|00" <"$TEST_DIR/go" >"$TEST_DIR/handover.out" 2>&1 &
raw=$!
exec 3>"$TEST_DIR/go"
wait_log "intake read the first connection's messages" "one Submit, not 2"
echo reconnect >&3
exec 3>&-
wait_log "the new connection is heard at once, the old one still open" "one Submit, not 3"
kill -CONT "$DISPATCH_PID"
rc=0
wait "$raw" || rc=$?
out=$TEST_DIR/handover.out
assert_eq "all answers on the new connection (rawsend: $(tail -n 1 "$out"))" 0 "$rc"
assert_match "sent on the old connection, stored, answered on the new one" "^tag=b1 outcome=stored case=6502" \
	"$(grep '^tag=b1 ' "$out")"
assert_match "another event likewise" "^tag=b2 outcome=stored case=6502" \
	"$(grep '^tag=b2 ' "$out")"
assert_match "the copy: duplicate" "^tag=b3 outcome=duplicate case=6502" "$(grep '^tag=b3 ' "$out")"
assert_eq "both refused messages answered" 2 "$(count '^tag= outcome=rejected' "$out")"
assert_eq "no answer too many: the next event's answer came next" "6 tag=fe" "$(wc -l <"$out") $(tail -n 1 "$out" | cut -d' ' -f1)"
