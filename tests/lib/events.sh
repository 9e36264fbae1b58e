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
