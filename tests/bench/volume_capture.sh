# shellcheck shell=bash
# Part of tests/bench/volume: records the storage calls archive makes for a set of case
# stories, played by the real daemons, so the volume fill can repeat them.
#
#   bench_capture DIR DB PER_STORY OUT
#
# DB (migrated, sample registry) gets wrappers around og.store_event and og.store_decision
# that keep each stored call's arguments in bench.calls (og.store_opened and og.store_moved,
# replaced, call the og.store_event wrapper for each of their events); the daemons of DIR (their config
# written here) play PER_STORY cases of each story below, with intake's and dispatch's
# clocks set by faketime to four points in time (T0, a Monday 10:00 in China three weeks
# ago, then +1, +2 and +9 days), so deadlines, lateness and escalations are dispatch's own.
# Writes the calls, one story case after another, to OUT as the template rows the fill
# reads (bench.tpl, see volume.sql): each JSON argument cut at its timestamps into a
# format string and the timestamps' offsets from the case's filing.
#
# Stories (kind: closed, open, fresh):
#   S1 closed  handled and closed the next day, evaluated satisfied
#   S2 closed  untouched until day 9 (late), then handled, closed, evaluated acceptable
#   S3 closed  returned (退回) by its unit on day 1, re-routed, handled by the new unit
#   S4 closed  check failed (返工) on day 1, closed day 2, evaluated unsatisfied (reopened),
#              handled again and closed on day 9, evaluated satisfied
#   S5 closed  extension (延期) asked on day 1, granted by the street on day 2, closed day 9
#   S6 open    accepted and in progress since day 1; escalated while overdue
#   S7 open    never touched; escalated while overdue
#   S8 fresh   filed on day 9 (the fill files it within the last days: mostly not overdue)

[[ -n ${_ONEGRID_BENCH_CAPTURE_SH:-} ]] && return 0
_ONEGRID_BENCH_CAPTURE_SH=1

# The wrappers: same signatures, the real functions renamed. Only calls that stored
# something are kept (a refused step simply is not part of the story).
_bc_wrappers() {
	sql "$1" >/dev/null <<-'SQL'
		CREATE SCHEMA bench;
		CREATE TABLE bench.calls (seq bigserial PRIMARY KEY, fn text NOT NULL, source text, event_id text,
		  type text, district text, event_detail jsonb, event_body bytea, decision_detail jsonb,
		  decision_body bytea, opens boolean, contact jsonb);
		GRANT USAGE ON SCHEMA bench TO onegrid_writer;
		ALTER FUNCTION og.store_event(text, text, text, text, jsonb, bytea, jsonb, bytea, boolean, jsonb)
		  RENAME TO store_event_captured;
		ALTER FUNCTION og.store_decision(text, text, text, text, jsonb, bytea)
		  RENAME TO store_decision_captured;
		CREATE FUNCTION og.store_event(p_source text, p_event_id text, p_type text, p_district text,
		                               p_event_detail jsonb, p_event_body bytea, p_decision_detail jsonb,
		                               p_decision_body bytea, p_opens boolean, p_contact jsonb,
		                               OUT outcome text, OUT case_id text)
		LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
		DECLARE
		  n bigint := (SELECT count(*) FROM og.ledger);
		BEGIN
		  SELECT s.outcome, s.case_id INTO outcome, case_id
		    FROM og.store_event_captured(p_source, p_event_id, p_type, p_district, p_event_detail,
		                                 p_event_body, p_decision_detail, p_decision_body, p_opens,
		                                 p_contact) s;
		  IF (SELECT count(*) FROM og.ledger) > n THEN
		    INSERT INTO bench.calls (fn, source, event_id, type, district, event_detail, event_body,
		                             decision_detail, decision_body, opens, contact)
		      VALUES ('event', p_source, p_event_id, p_type, p_district, p_event_detail, p_event_body,
		              p_decision_detail, p_decision_body, p_opens, p_contact);
		  END IF;
		END $$;
		CREATE FUNCTION og.store_decision(p_source text, p_event_id text, p_type text, p_district text,
		                                  p_decision_detail jsonb, p_decision_body bytea)
		  RETURNS text
		LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
		DECLARE
		  r text := og.store_decision_captured(p_source, p_event_id, p_type, p_district, p_decision_detail,
		                                       p_decision_body);
		BEGIN
		  IF r = 'stored' THEN
		    INSERT INTO bench.calls (fn, source, event_id, type, district, decision_detail, decision_body)
		      VALUES ('decision', p_source, p_event_id, p_type, p_district, p_decision_detail, p_decision_body);
		  END IF;
		  RETURN r;
		END $$;
		GRANT EXECUTE ON FUNCTION
		  og.store_event(text, text, text, text, jsonb, bytea, jsonb, bytea, boolean, jsonb),
		  og.store_decision(text, text, text, text, jsonb, bytea) TO onegrid_writer;
	SQL
	# archive stores the events of a batch that open cases with one og.store_opened call, and
	# those that each move a case with one og.store_moved call: here each of their events
	# goes through the og.store_event above instead, and is kept as its call.
	local fn opens
	for fn in store_opened:true store_moved:false; do
		opens=${fn#*:} fn=${fn%:*}
		sql "$1" >/dev/null <<-SQL || return 1
			DROP FUNCTION og.$fn(text[], text[], text[], text[], jsonb[], bytea[], jsonb[], bytea[],
			                     jsonb[]);
			CREATE FUNCTION og.$fn(p_source text[], p_event_id text[], p_type text[],
			                       p_district text[], p_event_detail jsonb[], p_event_body bytea[],
			                       p_decision_detail jsonb[], p_decision_body bytea[],
			                       p_contact jsonb[])
			  RETURNS TABLE (i integer, outcome text, case_id text, ledger_id bigint,
			                 decision_ledger_id bigint)
			LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS \$\$
			BEGIN
			  -- No ledger ids: archive gives og.end_batch no digest of these rows.
			  FOR k IN 1 .. cardinality(p_source) LOOP
			    RETURN QUERY SELECT k, s.outcome, s.case_id, NULL::bigint, NULL::bigint
			      FROM og.store_event(p_source[k], p_event_id[k], p_type[k], p_district[k],
			                          p_event_detail[k], p_event_body[k], p_decision_detail[k],
			                          p_decision_body[k], $opens, p_contact[k]) s;
			  END LOOP;
			END \$\$;
			GRANT EXECUTE ON FUNCTION og.$fn(text[], text[], text[], text[], jsonb[], bytea[], jsonb[],
			                                 bytea[], jsonb[]) TO onegrid_writer;
		SQL
	done
}

_bc_at() { # _bc_at EPOCH: intake and dispatch restarted with their clocks at EPOCH
	local d
	_bc_time=$1
	for d in intake dispatch; do
		og_restart_at "$d" "$_bc_dir" "$(date -u -d "@$1" '+%F %T')" || return 1
	done
}

# _bc_publish FILE: publishes one round (at most one event per case), in order.
_bc_publish() {
	[[ -s $1 ]] || return 0
	"$ONEGRID_BIN/onegridctl" publish --endpoint "ipc://$_bc_dir/intake.sock" --results "$1.out" \
		"$1" >"$1.txt" 2>&1 || true
}

# Lines "case|unit|unit's source|check required|street supervisor|checking unit" for the
# cases of $@ (tags), as they are now.
_bc_cases() {
	local tags
	tags=$(printf "'%s'," "$@")
	sql "$_bc_db" "SELECT k.source_event_id, c.case_id, c.unit_code,
	                      coalesce(og.unit_source(c.unit_code), 'zongzhi'), g.check_required,
	                      (SELECT unit_code FROM og.supervisor s WHERE s.area_code = left(c.area_code, 9)),
	                      og.checking_unit(c.case_id)
	                 FROM og.case c JOIN og.category g ON g.code = c.category_code
	                 JOIN og.case_report k ON k.case_id = c.case_id AND k.joined = 'opened'
	                WHERE k.source_event_id IN (${tags%,}) ORDER BY 1"
}

_bc_ts() { date -u -d "@$_bc_time" +%FT%TZ; }

# _bc_status TAG STEP STATUS [UNIT [DAYS]]: a status update of case TAG from its unit (or
# UNIT, from zongzhi, which speaks for the supervisors' extension decisions and for the
# centre that checks and closes).
_bc_status() {
	local tag=$1 step=$2 st=$3 unit=${4:-} days=${5:-} src
	if [[ -z $unit ]]; then
		unit=${_bc_unit[$tag]}
		src=${_bc_src[$tag]}
	else
		src=zongzhi
	fi
	[[ -n $days ]] && days=",\"extension_working_days\":$days"
	printf '{"id":"%s-%s","source":"%s","type":"status","time":"%s","status":{"case_id":"%s","status":"%s","unit":"%s","note":"处置情况说明"%s}}\n' \
		"$tag" "$step" "$src" "$(_bc_ts)" "${_bc_case[$tag]}" "$st" "$unit" "$days"
}

_bc_eval() { # _bc_eval TAG STEP RESULT
	printf '{"id":"%s-%s","source":"12345","type":"evaluation","time":"%s","evaluation":{"case_id":"%s","result":"%s"}}\n' \
		"$1" "$2" "$(_bc_ts)" "${_bc_case[$1]}" "$3"
}

declare -gA _bc_case _bc_unit _bc_src _bc_chk _bc_sup _bc_centre
_bc_refresh() { # reloads case, unit, source, check flag, supervisor and checking unit of every tag filed
	local tag cid unit src chk sup centre
	while IFS='|' read -r tag cid unit src chk sup centre; do
		_bc_case[$tag]=$cid _bc_unit[$tag]=$unit _bc_src[$tag]=$src _bc_chk[$tag]=$chk _bc_sup[$tag]=$sup
		_bc_centre[$tag]=$centre
	done < <(_bc_cases "${_bc_tags[@]}")
}

# _bc_handle TAG accept|noaccept: accepted (unless noaccept), resolved, checked where the
# category requires it, closed: one step per round file, in order. _bc_last is the round
# after the last step.
_bc_handle() {
	local tag=$1 accept=$2 r=1
	if [[ $accept == accept ]]; then
		_bc_status "$tag" "a$_bc_point" STATUS_ACCEPTED >>"$_bc_round$r"
		r=$((r + 1))
	fi
	_bc_status "$tag" "r$_bc_point" STATUS_RESOLVED >>"$_bc_round$r"
	r=$((r + 1))
	if [[ ${_bc_chk[$tag]} == t ]]; then
		_bc_status "$tag" "k$_bc_point" STATUS_CHECKED_OK "${_bc_centre[$tag]}" >>"$_bc_round$r"
		r=$((r + 1))
	fi
	_bc_status "$tag" "c$_bc_point" STATUS_CLOSED "${_bc_centre[$tag]}" >>"$_bc_round$r"
	_bc_last=$((r + 1))
}

_bc_rounds() { # publishes this point's round files in order, removes them, reloads the cases
	local r
	for r in 1 2 3 4 5 6 7; do
		_bc_publish "$_bc_round$r"
		rm -f "$_bc_round$r" "$_bc_round$r.out" "$_bc_round$r.txt"
	done
	_bc_refresh
}

# _bc_reports STORY N: N reports for story STORY (ids STORY001-f...), each from another
# (source, grid, category) of the registry, a third with the reporter's contact; S5's
# from categories counted in working days (an extension is asked before the deadline).
_bc_reports() {
	local story=$1 n=$2 where=
	[[ $story == S5 ]] && where="WHERE c.time_unit = 'working_days'"
	sql "$_bc_db" "SELECT x.source_system, x.source_grid_id, c.code
	                 FROM og.grid_crosswalk x CROSS JOIN og.category c $where
	                ORDER BY md5('$story' || x.source_system || x.source_grid_id || c.code) LIMIT $n" |
		awk -F'|' -v story="$story" -v ts="$(_bc_ts)" '{
			ch = ($1 == "12345") ? "CHANNEL_HOTLINE" : ($1 == "iot") ? "CHANNEL_SENSOR" : "CHANNEL_GRID_PATROL"
			contact = (NR % 3 == 0) ? ",\"contact\":{\"name\":\"王秀兰\",\"phone\":\"13899001234\"}" : ""
			printf "{\"id\":\"%s%03d-f\",\"source\":\"%s\",\"type\":\"report\",\"time\":\"%s\",", story, NR, $1, ts
			printf "\"subject\":\"%s\",\"report\":{\"category\":\"%s\",\"title\":\"楼道扶手松动 %s%03d\",", $2, $3, story, NR
			printf "\"description\":\"居民反映单元门前扶手松动, 老人出行不便, 请尽快处理\",\"channel\":\"%s\"%s}}\n", ch, contact
		}'
}

bench_capture() {
	local dir=$1 db=$2 per=$3 out=$4 t0 s i tag
	_bc_dir=$dir _bc_db=$db _bc_round=$dir/round
	mkdir -p "$dir"
	og_write_config "$dir" "$db" || return 1
	sed -i 's/^\[dispatch\]$/[dispatch]\nescalation_scan_ms = 100/' "$dir/onegrid.conf"
	_bc_wrappers "$db"
	og_start archive "$dir" || return 1
	# Monday 02:00 UTC (10:00 in China) of the week three weeks ago.
	t0=$(($(date -u -d "$(date -u -d '21 days ago' +%F) -$(($(date -u -d '21 days ago' +%u) - 1)) days" +%s) + 7200))
	_bc_at "$t0" || return 1
	_bc_tags=()
	_bc_point=0
	for s in S1 S2 S3 S4 S5 S6 S7; do
		_bc_reports "$s" "$per" >>"${_bc_round}1"
		for ((i = 1; i <= per; i++)); do _bc_tags+=("$(printf '%s%03d-f' "$s" "$i")"); done
	done
	_bc_rounds
	local -a t1=() t2=() t3=() t4=() t5=() t6=()
	for tag in "${_bc_tags[@]}"; do
		case $tag in
		S1*) t1+=("$tag") ;; S2*) t2+=("$tag") ;; S3*) t3+=("$tag") ;;
		S4*) t4+=("$tag") ;; S5*) t5+=("$tag") ;; S6*) t6+=("$tag") ;;
		esac
	done

	# Day 1.
	_bc_at $((t0 + 86400)) || return 1
	_bc_point=1
	for tag in "${t1[@]}"; do
		_bc_handle "$tag" accept
		_bc_eval "$tag" e1 RESULT_SATISFIED >>"$_bc_round$_bc_last"
	done
	for tag in "${t3[@]}"; do _bc_status "$tag" t1 STATUS_RETURNED >>"${_bc_round}1"; done
	for tag in "${t4[@]}"; do
		_bc_status "$tag" a1 STATUS_ACCEPTED >>"${_bc_round}1"
		_bc_status "$tag" r1 STATUS_RESOLVED >>"${_bc_round}2"
		_bc_status "$tag" x1 STATUS_CHECK_FAILED "${_bc_centre[$tag]}" >>"${_bc_round}3"
	done
	for tag in "${t5[@]}"; do
		_bc_status "$tag" a1 STATUS_ACCEPTED >>"${_bc_round}1"
		_bc_status "$tag" q1 STATUS_EXTENSION_REQUESTED "" 3 >>"${_bc_round}2"
	done
	for tag in "${t6[@]}"; do
		_bc_status "$tag" a1 STATUS_ACCEPTED >>"${_bc_round}1"
		_bc_status "$tag" p1 STATUS_IN_PROGRESS >>"${_bc_round}2"
	done
	_bc_rounds

	# Day 2.
	_bc_at $((t0 + 2 * 86400)) || return 1
	_bc_point=2
	for tag in "${t3[@]}"; do _bc_handle "$tag" accept; done
	for tag in "${t4[@]}"; do
		_bc_handle "$tag" noaccept
		_bc_eval "$tag" e2 RESULT_UNSATISFIED >>"$_bc_round$_bc_last"
	done
	for tag in "${t5[@]}"; do
		_bc_status "$tag" g2 STATUS_EXTENDED "${_bc_sup[$tag]}" 2 >>"${_bc_round}1"
	done
	_bc_rounds

	# Day 9: past most deadlines; the open cases escalate.
	_bc_at $((t0 + 9 * 86400)) || return 1
	_bc_point=9
	for tag in "${t2[@]}"; do
		_bc_handle "$tag" accept
		_bc_eval "$tag" e9 RESULT_ACCEPTABLE >>"$_bc_round$_bc_last"
	done
	for tag in "${t4[@]}"; do
		_bc_handle "$tag" accept
		_bc_eval "$tag" e9 RESULT_SATISFIED >>"$_bc_round$_bc_last"
	done
	for tag in "${t5[@]}"; do _bc_handle "$tag" noaccept; done
	_bc_reports S8 "$per" >>"${_bc_round}1"
	for ((i = 1; i <= per; i++)); do _bc_tags+=("$(printf 'S8%03d-f' "$i")"); done
	_bc_rounds

	# Escalations come from dispatch's scan (every 100 ms): wait until the open cases
	# overdue at day 9 have theirs.
	local n=0 prev=-1 same=0
	while ((same < 10)); do
		n=$(sql "$db" "SELECT count(*) FROM bench.calls")
		if [[ $n == "$prev" ]]; then same=$((same + 1)); else same=0; fi
		prev=$n
		sleep 0.1
	done
	og_stop_all "$dir" || return 1
	sql "$db" "COPY (SELECT * FROM bench.calls ORDER BY seq) TO STDOUT" >"$out"
}
