# shellcheck shell=bash
# Generates valid events for integration tests from the registry in a database, so that
# tests need no fixture files that could drift from the sample registry.

[[ -n ${_ONEGRID_EVENTS_SH:-} ]] && return 0
_ONEGRID_EVENTS_SH=1

# og_gen_reports DB N PREFIX: N report events as JSON Lines on stdout, ids PREFIX-000001...,
# each from a (source, grid id) pair of the crosswalk and a category of the catalogue,
# timed within the last hour.
og_gen_reports() {
	local db=${1:?usage: og_gen_reports DB N PREFIX} n=${2:?} prefix=${3:?}
	local now
	now=$(date -u +%s)
	sql "$db" "SELECT x.source_system, x.source_grid_id, c.code
	           FROM og.grid_crosswalk x CROSS JOIN og.category c
	           ORDER BY md5(x.source_system || x.source_grid_id || c.code)" |
		awk -F'|' -v n="$n" -v prefix="$prefix" -v now="$now" '
		{ src[NR] = $1; grid[NR] = $2; cat[NR] = $3 }
		END {
			if (NR == 0) { print "og_gen_reports: empty registry" > "/dev/stderr"; exit 1 }
			for (i = 1; i <= n; i++) {
				k = (i - 1) % NR + 1
				t = now - 3600 + (i % 3000)
				ch = (src[k] == "12345") ? "CHANNEL_HOTLINE" : (src[k] == "iot") ? "CHANNEL_SENSOR" : "CHANNEL_GRID_PATROL"
				printf "{\"id\":\"%s-%06d\",\"source\":\"%s\",\"type\":\"report\",", prefix, i, src[k]
				printf "\"time\":\"%s\",", strftime("%Y-%m-%dT%H:%M:%SZ", t, 1)
				printf "\"subject\":\"%s\",\"report\":{\"category\":\"%s\",", grid[k], cat[k]
				printf "\"title\":\"测试事件 %d\",\"description\":\"生成的测试事件\",\"channel\":\"%s\"}}\n", i, ch
			}
		}'
}

# og_unit_source DB UNIT: the source system UNIT's status updates come from
# (og.unit_source: its grant in og.source_unit_grant), "" when none speaks for it.
og_unit_source() {
	local db=${1:?usage: og_unit_source DB UNIT} unit=${2:?usage: og_unit_source DB UNIT}
	sql "$db" "SELECT coalesce(og.unit_source('$unit'), '')"
}

# og_checking_unit DB CASE: the unit that checks, closes and voids CASE (og.checking_unit:
# a supervisor of its district, street or community that does not hold it).
og_checking_unit() {
	sql "${1:?usage: og_checking_unit DB CASE}" "SELECT og.checking_unit('${2:?}')"
}

# og_status_unit DB CASE STATUS HOLDER: the unit a status update STATUS of CASE comes from:
# HOLDER, or for a check, close or void (STATUS_CHECKED_OK, STATUS_CHECK_FAILED,
# STATUS_CLOSED, STATUS_VOIDED) the unit that checks and closes it (og_checking_unit), which
# as a supervisor of the case also decides its extensions (STATUS_EXTENDED).
og_status_unit() {
	case ${3:?usage: og_status_unit DB CASE STATUS HOLDER} in
	STATUS_CHECKED_OK | STATUS_CHECK_FAILED | STATUS_CLOSED | STATUS_VOIDED | STATUS_EXTENDED)
		og_checking_unit "$1" "$2"
		;;
	*) echo "${4-}" ;;
	esac
}

# og_close_events DB CASE TIME PREFIX: as JSON Lines on stdout, the status updates that
# take an assigned case to closed: accepted and resolved from the source that speaks for
# its unit; checked when its category needs a check, and closed, by the unit that checks
# and closes it (og_checking_unit: a unit never checks or closes its own case); ids
# PREFIX-acc, PREFIX-res, PREFIX-chk, PREFIX-clo, all at TIME.
og_close_events() {
	local db=${1:?usage: og_close_events DB CASE TIME PREFIX} case=${2:?} time=${3:?} prefix=${4:?}
	local unit src centre csrc check s by bysrc
	unit=$(sql "$db" "SELECT unit_code FROM og.case WHERE case_id = '$case'")
	src=$(og_unit_source "$db" "$unit")
	centre=$(og_checking_unit "$db" "$case")
	csrc=$(og_unit_source "$db" "$centre")
	check=$(sql "$db" "SELECT check_required FROM og.case JOIN og.category ON code = category_code
	                   WHERE case_id = '$case'")
	for s in acc:STATUS_ACCEPTED res:STATUS_RESOLVED chk:STATUS_CHECKED_OK clo:STATUS_CLOSED; do
		[[ ${s%%:*} == chk && $check != t ]] && continue
		by=$unit bysrc=$src
		[[ ${s%%:*} == chk || ${s%%:*} == clo ]] && by=$centre bysrc=$csrc
		printf '{"id":"%s-%s","source":"%s","type":"status","time":"%s","status":{"case_id":"%s","status":"%s","unit":"%s"}}\n' \
			"$prefix" "${s%%:*}" "$bysrc" "$time" "$case" "${s#*:}" "$by"
	done
}

# og_refuse_contact_trigger DB: an operator's constraint trigger on og.reporter_contact
# that refuses (SQLSTATE 23514, check_violation) a contact named "REFUSE-ME": the
# database refusing a record for its own content.
og_refuse_contact_trigger() {
	local db=${1:?usage: og_refuse_contact_trigger DB}
	sql "$db" <<-'SQL'
		CREATE FUNCTION public.refuse_me() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
		  IF NEW.name = 'REFUSE-ME' THEN RAISE EXCEPTION 'contact "REFUSE-ME" refused by test trigger' USING ERRCODE = 'check_violation'; END IF;
		  RETURN NEW;
		END $$;
		CREATE TRIGGER refuse_me BEFORE INSERT ON og.reporter_contact FOR EACH ROW EXECUTE FUNCTION public.refuse_me();
	SQL
}

# og_publish_named DIR NAME: publishes DIR/NAME.jsonl to the intake of DIR (answers in
# DIR/NAME.out, its output in DIR/NAME.txt), waiting up to 120 s for an answer; returns
# onegridctl publish's exit status.
og_publish_named() {
	local dir=${1:?usage: og_publish_named DIR NAME} name=${2:?}
	"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$dir/intake.sock" --timeout 120 \
		--results "$dir/$name.out" "$dir/$name.jsonl" >"$dir/$name.txt" 2>&1
}

# og_case_of DIR ID: the case the newest answer to event ID in DIR/*.out names.
og_case_of() {
	grep -h "\"id\":\"${2:?usage: og_case_of DIR ID}\"" "${1:?}"/*.out | tail -1 |
		grep -o '"case_id":"[^"]*"' | cut -d'"' -f4
}

# og_gas_alert ID TIME GRID: an iot sensor's gas alarm (hazard.gas, severe: 2 hours) at
# GRID, as one JSON line.
og_gas_alert() {
	printf '{"id":"%s","source":"iot","type":"sensor_alert","time":"%s","subject":"%s","sensor_alert":{"category":"hazard.gas","sensor_id":"GAS-%s","title":"燃气浓度超限","urgency":"URGENCY_IMMEDIATE","severity":"SEVERITY_SEVERE","certainty":"CERTAINTY_OBSERVED","reading":"CH4 2.3 %%LEL"}}\n' \
		"${1:?usage: og_gas_alert ID TIME GRID}" "${2:?}" "${3:?}" "$1"
}
