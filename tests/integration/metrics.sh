#!/usr/bin/env bash
# Prometheus metrics and `onegridctl status` (issue 12, items 3 and 4). The three daemons
# serve /metrics on loopback ports the test picks; after 20 events stored, one refused by
# intake (too old) and one refused by dispatch (unknown grid), each daemon's counters say
# so, every scrape passes `promtool check metrics`, anything but GET /metrics and
# /health is refused, a non-loopback metrics_listen is refused at start (and by
# --check-config, which binds nothing), and `onegridctl status` exits 0 with all up,
# then 2 (and names what is down) once dispatch is killed.
set -euo pipefail
source "$(dirname "$0")/../lib/testlib.sh"
source "$(dirname "$0")/../lib/events.sh"
source "$(dirname "$0")/../lib/faults.sh"

command -v promtool >/dev/null || fail "promtool not found (Debian package prometheus; deploy/install-deps)"
command -v curl >/dev/null || fail "curl not found"

test_begin "metrics"
test_createdb
og_write_config "$TEST_DIR" "$TEST_DB"

declare -A port
read -r 'port[intake]' 'port[dispatch]' 'port[archive]' < <(og_free_tcp_ports 3)
conf=$TEST_DIR/onegrid.conf

# Not loopback: refused at start, unless metrics_allow_remote = yes.
cp "$conf" "$TEST_DIR/remote.conf"
sed -i "/^\[intake\]/a metrics_listen = 0.0.0.0:${port[intake]}" "$TEST_DIR/remote.conf"
rc=0
"$ONEGRID_BIN/onegrid-intake" -c "$TEST_DIR/remote.conf" >"$TEST_DIR/remote.log" 2>&1 || rc=$?
assert_eq "intake refuses a non-loopback metrics_listen (78: a configuration error)" 78 "$rc"
assert_match "and says why" "metrics_listen: \"0.0.0.0:[0-9]+\" is not a loopback address" \
	"$(cat "$TEST_DIR/remote.log")"

for d in intake dispatch archive; do
	sed -i "/^\[$d\]/a metrics_listen = 127.0.0.1:${port[$d]}" "$conf"
done
og_start_all "$TEST_DIR"

# A configuration check binds nothing: it passes while the daemons hold their ports, and
# refuses a non-loopback address without starting anything.
for d in intake dispatch archive; do
	rc=0
	"$ONEGRID_BIN/onegrid-$d" --check-config -c "$conf" >"$TEST_DIR/check-$d.log" 2>&1 || rc=$?
	assert_eq "onegrid-$d --check-config passes while it runs ($(tr '\n' ' ' <"$TEST_DIR/check-$d.log"))" 0 "$rc"
done
rc=0
"$ONEGRID_BIN/onegrid-intake" --check-config -c "$TEST_DIR/remote.conf" >"$TEST_DIR/check-remote.log" 2>&1 || rc=$?
assert_eq "--check-config refuses a non-loopback metrics_listen" 78 "$rc"

scrape() { curl -sS --max-time 5 "http://127.0.0.1:${port[$1]}/metrics"; }
# value NAME{LABELS} FILE: the sample's value, or "absent".
value() {
	awk -v s="$1" '$1 == s { print $2; found = 1 } END { if (!found) print "absent" }' "$2"
}

# Status before any event: every daemon healthy.
rc=0
"$ONEGRID_BIN/onegridctl" status --config "$conf" >"$TEST_DIR/status0.txt" 2>&1 || rc=$?
assert_eq "onegridctl status exits 0 with all up" 0 "$rc"
assert_match "status names each daemon healthy" \
	"intake +healthy.*dispatch +healthy.*archive +healthy" "$(tr '\n' ' ' <"$TEST_DIR/status0.txt")"
assert_match "status checks the whole path" \
	"path: intake -> dispatch up, dispatch -> archive up, archive -> database up" \
	"$(cat "$TEST_DIR/status0.txt")"

og_gen_reports "$TEST_DB" 20 mt >"$TEST_DIR/events.jsonl"
# Too old for intake (max_event_age_days = 30), and a grid no source has.
sed -n 1p "$TEST_DIR/events.jsonl" |
	sed -e 's/"id":"mt-000001"/"id":"mt-old"/' -e 's/"time":"[^"]*"/"time":"2020-01-01T00:00:00Z"/' \
		>>"$TEST_DIR/events.jsonl"
sed -n 1p "$TEST_DIR/events.jsonl" |
	sed -e 's/"id":"mt-000001"/"id":"mt-nogrid"/' -e 's/"subject":"[^"]*"/"subject":"no-such-grid"/' \
		>>"$TEST_DIR/events.jsonl"
rc=0
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" \
	"$TEST_DIR/events.jsonl" >"$TEST_DIR/publish.txt" 2>&1 || rc=$?
assert_match "20 stored, 2 rejected" "stored 20, duplicate 0, rejected 2, unanswered 0" \
	"$(cat "$TEST_DIR/publish.txt")"

# Answers reach intake's counters as they are sent; the gauges follow each loop turn.
for d in intake dispatch archive; do
	scrape "$d" >"$TEST_DIR/$d.prom"
done
for ((i = 0; i < 100; i++)); do
	[[ $(value 'onegrid_link_in_flight{side="client",peer="dispatch"}' "$TEST_DIR/intake.prom") == 0 &&
		$(value 'onegrid_intake_waiting_submits' "$TEST_DIR/intake.prom") == 0 ]] && break
	sleep 0.1
	scrape intake >"$TEST_DIR/intake.prom"
done

I=$TEST_DIR/intake.prom D=$TEST_DIR/dispatch.prom A=$TEST_DIR/archive.prom
assert_eq "intake: 22 received" 22 "$(value onegrid_intake_received_total "$I")"
assert_eq "intake: 20 answered stored" 20 "$(value 'onegrid_intake_answers_total{outcome="stored"}' "$I")"
assert_eq "intake: 1 answered rejected, invalid_time" 1 \
	"$(value 'onegrid_intake_answers_total{outcome="rejected",reason="invalid_time"}' "$I")"
assert_eq "intake: 1 answered rejected, unknown_grid" 1 \
	"$(value 'onegrid_intake_answers_total{outcome="rejected",reason="unknown_grid"}' "$I")"
assert_eq "intake: refused 1 itself (invalid_time)" 1 \
	"$(value 'onegrid_intake_refused_total{reason="invalid_time"}' "$I")"
assert_eq "intake: refused no unknown_grid itself (dispatch did)" 0 \
	"$(value 'onegrid_intake_refused_total{reason="unknown_grid"}' "$I")"
assert_eq "intake: link to dispatch up" 1 \
	"$(value 'onegrid_link_connected{side="client",peer="dispatch"}' "$I")"
assert_eq "intake: link to dispatch sent 22" 22 \
	"$(value 'onegrid_link_sent_total{side="client",peer="dispatch"}' "$I")"
# How long each of the 22 waited for its answer: all within the 10 s bucket, none in no
# time (the histogram is cumulative; the sum is in seconds).
assert_eq "intake: 22 answers timed, all under 10 s" "22|22" \
	"$(value onegrid_intake_answer_seconds_count "$I")|$(value 'onegrid_intake_answer_seconds_bucket{le="10"}' "$I")"
assert_eq "intake: their times add up to more than nothing" 1 \
	"$(awk -v v="$(value onegrid_intake_answer_seconds_sum "$I")" 'BEGIN { print (v > 0) }')"
assert_match "intake: build info names the version" \
	"onegrid_build_info\\{daemon=\"intake\",version=\"$("$ONEGRID_BIN/onegrid-intake" --version | cut -d' ' -f2)\"\\} 1" \
	"$(cat "$I")"
assert_ge "intake: resident memory above 1 MB" 1000000 "$(value process_resident_memory_bytes "$I")"

assert_eq "dispatch: 20 accepted" 20 "$(value 'onegrid_dispatch_decisions_total{outcome="accepted"}' "$D")"
assert_eq "dispatch: 1 refused, unknown_grid" 1 \
	"$(value 'onegrid_dispatch_decisions_total{outcome="refused",reason="unknown_grid"}' "$D")"
assert_eq "dispatch: 1 refused, invalid_time (intake's, recorded)" 1 \
	"$(value 'onegrid_dispatch_decisions_total{outcome="refused",reason="invalid_time"}' "$D")"
assert_eq "dispatch: database up" 1 "$(value onegrid_database_up "$D")"
assert_eq "dispatch: 20 cases open" 20 "$(value onegrid_dispatch_cases_open "$D")"
assert_eq "dispatch: no escalation" 0 "$(value 'onegrid_dispatch_escalations_total{level="1"}' "$D")"

assert_eq "archive: 20 stored" 20 "$(value 'onegrid_archive_records_total{outcome="stored"}' "$A")"
assert_eq "archive: 1 refused, unknown_grid" 1 \
	"$(value 'onegrid_archive_records_total{outcome="refused",reason="unknown_grid"}' "$A")"
assert_eq "archive: 1 refused, invalid_time" 1 \
	"$(value 'onegrid_archive_records_total{outcome="refused",reason="invalid_time"}' "$A")"
assert_eq "archive: stored agrees with the database" \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.event_key")" \
	"$(value 'onegrid_archive_records_total{outcome="stored"}' "$A")"
assert_eq "archive: refusals agree with the database" \
	"$(sql "$TEST_DB" "SELECT count(*) FROM og.rejection")" 2
assert_eq "archive: the batch-size histogram counts every batch" \
	"$(value onegrid_archive_batches_total "$A")" "$(value onegrid_archive_batch_size_count "$A")"
assert_eq "archive: its records add up to 22" 22 "$(value onegrid_archive_batch_size_sum "$A")"
assert_eq "archive: every commit timed" \
	"$(value onegrid_archive_batches_total "$A")" \
	"$(value onegrid_archive_commit_duration_seconds_count "$A")"
assert_eq "archive: database up" 1 "$(value onegrid_database_up "$A")"
assert_eq "archive grants dispatch its credit (2000)" 2000 \
	"$(value 'onegrid_link_credit{side="server",peer="dispatch"}' "$A")"
assert_eq "dispatch was granted that credit" 2000 \
	"$(value 'onegrid_link_credit{side="client",peer="archive"}' "$D")"

for d in intake dispatch archive; do
	rc=0
	promtool check metrics <"$TEST_DIR/$d.prom" >"$TEST_DIR/$d.promtool" 2>&1 || rc=$?
	assert_eq "promtool check metrics passes for $d ($(tr '\n' ' ' <"$TEST_DIR/$d.promtool"))" 0 "$rc"
done

# The Grafana dashboard asks for metrics that exist, and the auditor login runs its SQL
# (Grafana's $__timeFilter macro written out).
dash=$ONEGRID_REPO/deploy/grafana/onegrid.json
missing=
for m in $(grep '"expr"' "$dash" | grep -oE '(onegrid|process)_[a-z_]+' | sort -u); do
	grep -qE "^$m[{ ]" "$I" "$D" "$A" || missing+=" $m"
done
assert_eq "every metric of the dashboard is served" "" "$missing"
python3 -c '
import json, re, sys
for p in json.load(open(sys.argv[1]))["panels"]:
    for t in p.get("targets", []):
        if "rawSql" in t:
            print(re.sub(r"\$__timeFilter\(([a-z_]+)\)", r"\1 IS NOT NULL", t["rawSql"]).replace("\n", " ") + ";")
' "$dash" >"$TEST_DIR/dashboard.sql"
assert_eq "the dashboard has its SQL panels" 5 "$(wc -l <"$TEST_DIR/dashboard.sql")"
rc=0
"$PG_BIN/psql" -XAtq -v ON_ERROR_STOP=1 -d "$TEST_DB" -U onegrid_audit -f "$TEST_DIR/dashboard.sql" \
	>"$TEST_DIR/dashboard.out" 2>&1 || rc=$?
assert_eq "the auditor login runs the dashboard's SQL ($(head -c 300 "$TEST_DIR/dashboard.out"))" 0 "$rc"

# Only GET (and HEAD) of /metrics and /health.
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }
assert_eq "unknown path: 404" 404 "$(code "http://127.0.0.1:${port[archive]}/nope")"
assert_eq "POST: 405" 405 "$(code -X POST -d x "http://127.0.0.1:${port[archive]}/metrics")"
assert_eq "HEAD: 200" 200 "$(code -I "http://127.0.0.1:${port[archive]}/metrics")"
assert_eq "content type of the exposition format 0.0.4" \
	"text/plain; version=0.0.4; charset=utf-8" \
	"$(curl -s -o /dev/null -w '%{content_type}' "http://127.0.0.1:${port[intake]}/metrics")"
assert_match "/health names the daemon" '"daemon":"dispatch"' \
	"$(curl -sS --max-time 5 "http://127.0.0.1:${port[dispatch]}/health")"

rc=0
"$ONEGRID_BIN/onegridctl" status --config "$conf" --json >"$TEST_DIR/status1.json" || rc=$?
assert_eq "status --json exits 0" 0 "$rc"
assert_eq "status --json: overall healthy" healthy \
	"$(python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])' <"$TEST_DIR/status1.json")"
assert_eq "status --json: archive's database up" up \
	"$(python3 -c 'import json,sys; print(json.load(sys.stdin)["daemons"][2]["database"])' \
		<"$TEST_DIR/status1.json")"

# The database away from archive: its session ended and new ones refused in this database
# (nothing cluster-wide). The next batch fails, reconnecting fails: archive says
# database down with the error, status says degraded (1); then it comes back.
sql "$TEST_DB" "REVOKE CONNECT ON DATABASE $TEST_DB FROM PUBLIC, onegrid_writer"
og_backend_terminate "$TEST_DB" onegrid-archive >/dev/null
og_gen_reports "$TEST_DB" 1 mt-db >"$TEST_DIR/db.jsonl"
"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$TEST_DIR/intake.sock" --timeout 120 \
	"$TEST_DIR/db.jsonl" >"$TEST_DIR/db-publish.txt" 2>&1 &
pub=$!
on_exit "kill $pub 2>/dev/null || true"
db_down() { [[ $(value onegrid_database_up <(scrape archive)) == 0 ]]; }
og_poll 60 db_down || fail "archive's onegrid_database_up did not go to 0"
pass "archive: database down while it cannot connect"
rc=0
"$ONEGRID_BIN/onegridctl" status --config "$conf" >"$TEST_DIR/status-db.txt" 2>&1 || rc=$?
assert_eq "onegridctl status exits 1 (degraded) with archive's database away ($(tr '\n' ' ' <"$TEST_DIR/status-db.txt"))" 1 "$rc"
assert_match "status: archive degraded, database down, the error shown" \
	"archive +degraded.*database unavailable.*database down.*last error [0-9T:-]+Z: [^ ]" \
	"$(tr '\n' ' ' <"$TEST_DIR/status-db.txt")"
assert_match "status: the path stops at the database" "archive -> database DOWN" \
	"$(cat "$TEST_DIR/status-db.txt")"
sql "$TEST_DB" "GRANT CONNECT ON DATABASE $TEST_DB TO PUBLIC, onegrid_writer"
rc=0
wait "$pub" || rc=$?
assert_eq "the event published meanwhile is stored" 0 "$rc"
db_up() { [[ $(value onegrid_database_up <(scrape archive)) == 1 ]]; }
og_poll 30 db_up || fail "archive's onegrid_database_up did not come back to 1"
scrape archive >"$A"
assert_ge "archive: database faults counted" 1 "$(value onegrid_database_faults_total "$A")"
assert_ge "archive: the last error's time is set" 1 "$(value onegrid_last_error_timestamp_seconds "$A")"
assert_eq "archive: 21 stored" 21 "$(value 'onegrid_archive_records_total{outcome="stored"}' "$A")"
promtool check metrics <"$A" >"$TEST_DIR/archive2.promtool" 2>&1 ||
	fail "promtool check metrics after the faults: $(cat "$TEST_DIR/archive2.promtool")"
rc=0
"$ONEGRID_BIN/onegridctl" status --config "$conf" >/dev/null 2>&1 || rc=$?
assert_eq "onegridctl status exits 0 again" 0 "$rc"

og_kill dispatch "$TEST_DIR"
rc=0
"$ONEGRID_BIN/onegridctl" status --config "$conf" >"$TEST_DIR/status2.txt" 2>&1 || rc=$?
assert_eq "onegridctl status exits 2 with dispatch down" 2 "$rc"
assert_match "status names dispatch down" "dispatch +down" "$(cat "$TEST_DIR/status2.txt")"
assert_match "overall down" "overall: down" "$(cat "$TEST_DIR/status2.txt")"
# intake notices its next hop is gone (the link loses its credit).
for ((i = 0; i < 100; i++)); do
	[[ $(value 'onegrid_link_connected{side="client",peer="dispatch"}' <(scrape intake)) == 0 ]] && break
	sleep 0.1
done
rc=0
"$ONEGRID_BIN/onegridctl" status --config "$conf" >"$TEST_DIR/status3.txt" 2>&1 || rc=$?
assert_match "intake degraded: no credit from dispatch" \
	"intake +degraded.*no credit from dispatch" "$(tr '\n' ' ' <"$TEST_DIR/status3.txt")"

# Another program on a daemon's metrics port, whose /health has JSON nulls where strings
# belong: status says what it read, and does not crash (review: SIGSEGV in --json).
cat >"$TEST_DIR/fake_health.py" <<'PY'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (b'{"daemon":"intake","version":null,"last_error":null,"last_error_time":1}'
                if self.path == "/health" else b"onegrid_database_up 1\n")
        self.send_response(200); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_port, flush=True)
s.serve_forever()
PY
coproc FAKE { exec python3 "$TEST_DIR/fake_health.py"; }
on_exit "kill $FAKE_PID 2>/dev/null || true"
read -r fake_port <&"${FAKE[0]}"
printf '[intake]\nmetrics_listen = 127.0.0.1:%s\n' "$fake_port" >"$TEST_DIR/fake.conf"
for mode in --json ""; do
	rc=0
	# shellcheck disable=SC2086 # no mode: the text report
	"$ONEGRID_BIN/onegridctl" status --config "$TEST_DIR/fake.conf" $mode >"$TEST_DIR/fake.out" 2>&1 || rc=$?
	assert_eq "status ${mode:-(text)} of a /health with nulls: an answer, not a crash ($(head -c 300 "$TEST_DIR/fake.out"))" \
		t "$( ((rc < 3)) && echo t)"
done
assert_match "and the nulls read as nothing" "version , pid 0.*last error 1970-01-01T00:00:01Z: " "$(tr "\n" " " <"$TEST_DIR/fake.out")"

echo "# passed: $_tl_passed checks"
