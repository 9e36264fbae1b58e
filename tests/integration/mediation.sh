#!/usr/bin/env bash
# The seed's water-leak dispute in 光明鸿雁社区: 小刘's floor soaked by the flat upstairs,
# reported at the volunteer reception desk, mediated by the desk to a written agreement.
# The resolving status update records the agreement (two parties, the SHA-256 of the
# signed document, its date, a follow-up visit in 7 days); the follow-up visit is the
# evaluation. Mediation on a case that is not a dispute, or with a malformed fingerprint,
# is refused.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"

test_begin "mediation"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"
og_start_all "$TEST_DIR"
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
read -r GRID < <(sql "$TEST_DB" "SELECT x.source_grid_id FROM og.grid_crosswalk x JOIN og.area a
                                 ON a.code = left(x.area_code, 12) WHERE a.name = '光明鸿雁社区'
                                 AND x.source_system = 'zongzhi' ORDER BY 1 LIMIT 1")
n=0
send() {
	n=$((n + 1))
	printf '%s\n' "$@" >"$TEST_DIR/$n.jsonl"
	rc=0
	"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" \
		--results "$TEST_DIR/$n.out" "$TEST_DIR/$n.jsonl" >/dev/null 2>&1 || rc=$?
}
case_of() { grep -h "\"id\":\"$1\"" "$TEST_DIR"/*.out | grep -o '"case_id":"[^"]*"' | head -1 | cut -d'"' -f4; }
# A unit's status update comes from the system that unit works in (og.source_unit_grant).
status() { # status ID CASE STATUS [EXTRA-JSON]: from $UNIT, or the centre (og_status_unit)
	local u
	u=$(og_status_unit "$TEST_DB" "$2" "$3" "$UNIT")
	echo "{\"id\":\"$1\",\"source\":\"$(og_unit_source "$TEST_DB" "$u")\",\"type\":\"status\",\"time\":\"$NOW\",\"status\":{\"case_id\":\"$2\",\"status\":\"$3\",\"unit\":\"$u\"${4:-}}}"
}

send "{\"id\":\"leak-1\",\"source\":\"zongzhi\",\"type\":\"report\",\"time\":\"$NOW\",\"subject\":\"$GRID\",\"report\":{\"category\":\"dispute.water_leak\",\"title\":\"楼上卫生间跑水泡坏地板\",\"description\":\"双方对维修价格有争议\",\"channel\":\"CHANNEL_WALK_IN\"}}" \
	"{\"id\":\"lamp-1\",\"source\":\"zongzhi\",\"type\":\"report\",\"time\":\"$NOW\",\"subject\":\"$GRID\",\"report\":{\"category\":\"facility.streetlight\",\"title\":\"路灯不亮\",\"channel\":\"CHANNEL_GRID_PATROL\"}}"
LEAK=$(case_of leak-1) LAMP=$(case_of lamp-1)
send "{\"id\":\"leak-2\",\"source\":\"zongzhi\",\"type\":\"report\",\"time\":\"$NOW\",\"subject\":\"$GRID\",\"report\":{\"category\":\"dispute.neighbour\",\"title\":\"楼道堆物纠纷\",\"channel\":\"CHANNEL_WALK_IN\"}}"
LEAK2=$(case_of leak-2)
UNIT=$(sql "$TEST_DB" "SELECT unit_code FROM og.case WHERE case_id = '$LEAK'")
AGREEMENT=$(printf '调解协议书：楼上住户承担地板维修费用的百分之六十，双方签字确认。' | sha256sum | cut -d' ' -f1)
MEDIATION=",\"mediation\":{\"parties\":2,\"agreement_sha256\":\"$AGREEMENT\",\"agreement_date\":\"$NOW\",\"follow_up_days\":7,\"mediator\":\"红色家园居民自治接待站\"}"

send "$(status m1 "$LEAK" STATUS_ACCEPTED)" "$(status m2 "$LEAK" STATUS_RESOLVED "$MEDIATION")"
assert_eq "the dispute resolved with its written agreement" 0 "$rc"
UNIT_LAMP=$(sql "$TEST_DB" "SELECT unit_code FROM og.case WHERE case_id = '$LAMP'")
# The streetlight's unit works in the 城管 system, which records no mediations in the
# sample registry: without a grant the outcome is refused as unauthorised ...
send "$(UNIT=$UNIT_LAMP status l0 "$LAMP" STATUS_RESOLVED "$MEDIATION")"
assert_match "a mediation from a source not granted mediation: refused" \
	"REASON_UNAUTHORISED_SOURCE.*may not send mediation" "$(cat "$TEST_DIR/$n.out")"
# ... and with the grant, as no dispute.
sql "$TEST_DB" "INSERT INTO og.source_action_grant VALUES ('$(og_unit_source "$TEST_DB" "$UNIT_LAMP")', 'mediation', 'test')"
kill -HUP "$(<"$TEST_DIR/dispatch.pid")"
for ((i = 0; i < 300; i++)); do
	grep -q "registry reloaded" "$TEST_DIR/dispatch.log" && break
	sleep 0.1
done
assert_match "dispatch reloaded the grants" "registry reloaded" "$(cat "$TEST_DIR/dispatch.log")"
UNIT=$UNIT_LAMP send "$(UNIT=$UNIT_LAMP status l1 "$LAMP" STATUS_ACCEPTED)" \
	"$(UNIT=$UNIT_LAMP status l2 "$LAMP" STATUS_RESOLVED "$MEDIATION")"
assert_match "mediation on a streetlight: refused" "REASON_INVALID_FIELD.*is a part, not a dispute" "$(cat "$TEST_DIR/$n.out")"
UNIT2=$(sql "$TEST_DB" "SELECT unit_code FROM og.case WHERE case_id = '$LEAK2'")
send "$(UNIT=$UNIT2 status n1 "$LEAK2" STATUS_ACCEPTED)" \
	"$(UNIT=$UNIT2 status n2 "$LEAK2" STATUS_RESOLVED ",\"mediation\":{\"parties\":2,\"agreement_sha256\":\"xyz\",\"agreement_date\":\"$NOW\",\"follow_up_days\":7}")"
assert_match "a malformed fingerprint: refused" "REASON_INVALID_FIELD.*agreement_sha256: 64 lowercase hex digits" "$(cat "$TEST_DIR/$n.out")"
send "$(UNIT=$UNIT2 status n3 "$LEAK2" STATUS_RESOLVED ",\"mediation\":{\"parties\":2,\"agreement_sha256\":\"$AGREEMENT\",\"agreement_date\":\"2031-01-01T00:00:00Z\",\"follow_up_days\":7}")"
assert_match "an agreement dated in the future: refused" "REASON_INVALID_FIELD.*agreement_date: in the future" "$(cat "$TEST_DIR/$n.out")"
# Year 1 (a year 0 was stored once, and every read of audit.mediations failed on it).
send "$(UNIT=$UNIT2 status n3b "$LEAK2" STATUS_RESOLVED ",\"mediation\":{\"parties\":2,\"agreement_sha256\":\"$AGREEMENT\",\"agreement_date\":\"0001-01-01T00:00:00Z\",\"follow_up_days\":7}")"
assert_match "an agreement dated before 2000: refused" "REASON_INVALID_FIELD.*agreement_date: before 2000-01-01" "$(cat "$TEST_DIR/$n.out")"
send "$(status m3 "$LEAK" STATUS_CHECKED_OK "$MEDIATION")"
assert_match "a mediation with another status: refused" "REASON_INVALID_FIELD.*only with STATUS_RESOLVED" "$(cat "$TEST_DIR/$n.out")"

assert_eq "the agreement is on record, follow-up due in 7 days, not yet visited" \
	"2|$AGREEMENT|红色家园居民自治接待站|7 days||" \
	"$("$PG_BIN/psql" -XAtq -d "$TEST_DB" -U onegrid_audit -c \
		"SELECT parties, agreement_sha256, mediator, follow_up_due - agreement_date, followed_up_at, follow_up_result
		 FROM audit.\"调解记录\" WHERE case_id = '$LEAK'")"
send "$(status m4 "$LEAK" STATUS_CHECKED_OK)" "$(status m5 "$LEAK" STATUS_CLOSED)" \
	"{\"id\":\"visit-1\",\"source\":\"zongzhi\",\"type\":\"evaluation\",\"time\":\"$NOW\",\"evaluation\":{\"case_id\":\"$LEAK\",\"result\":\"RESULT_SATISFIED\",\"comment\":\"回访：双方满意，已和解\"}}"
assert_eq "checked, closed and visited" 0 "$rc"
assert_eq "the follow-up visit shows against the agreement" "RESULT_SATISFIED|evaluated" \
	"$("$PG_BIN/psql" -XAtq -d "$TEST_DB" -U onegrid_audit -c \
		"SELECT follow_up_result, state FROM audit.mediations WHERE case_id = '$LEAK'")"
assert_eq "the record verifies" 0 \
	"$("$ONEGRID_BIN/onegridctl" audit verify --db "dbname=$TEST_DB user=onegrid_audit" >/dev/null; echo $?)"
