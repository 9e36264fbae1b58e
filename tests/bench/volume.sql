-- Part of tests/bench/volume: the fill. Loaded into the bench database after bench.calls
-- holds the storage calls archive made for the captured case stories (volume_capture.sh).
-- Every filled case repeats one captured case's calls through the real storage functions
-- (og.begin_batch, og.store_opened, og.store_moved, og.end_batch, as archive calls them;
-- og.store_event and og.store_decision for any other call), with its own case id, event
-- ids and times: the hash chain, the case projection, the feed and whatever else those
-- functions maintain are filled exactly as archive fills them.
--
-- What is the same as in the capture: the source systems, grids, categories, units, rules
-- and the protobuf bodies (their bytes still carry the captured ids and times: nothing
-- reads them back but a person; they keep their width). What changes: case ids and event
-- ids (rewritten in the JSON) and every timestamp in the JSON, shifted so the case is filed
-- at its own time.

SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS bench;

-- The calls as captured (COPY of volume_capture.sh's bench.calls).
CREATE TABLE bench.calls (seq bigserial PRIMARY KEY, fn text NOT NULL, source text, event_id text,
  type text, district text, event_detail jsonb, event_body bytea, decision_detail jsonb,
  decision_body bytea, opens boolean, contact jsonb);

-- A JSON value cut at its timestamps: a format() string with %s where each one was, and
-- each one's offset in seconds from t0, and whether it had a fraction of a second.
CREATE TYPE bench.cut AS (fmt text, offs double precision[], frac boolean[]);

CREATE FUNCTION bench.cut(j jsonb, t0 timestamptz) RETURNS bench.cut
LANGUAGE sql IMMUTABLE AS $$
  WITH t AS (SELECT replace(j::text, '%', '%%') AS txt),
       m AS (SELECT x[1] AS ts, n FROM t, regexp_matches(t.txt,
               '"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)"', 'g') WITH ORDINALITY r(x, n))
  SELECT CASE WHEN j IS NULL THEN NULL ELSE ROW(
           regexp_replace(t.txt, '"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z"', '"%s"', 'g'),
           coalesce((SELECT array_agg(extract(epoch FROM m.ts::timestamptz - t0)::double precision
                                      ORDER BY n) FROM m), '{}'),
           coalesce((SELECT array_agg(m.ts LIKE '%.%' ORDER BY n) FROM m), '{}'))::bench.cut END
    FROM t
$$;

-- bench.tpl: a captured case's calls, ready to be repeated. story: S1..S8 (see
-- volume_capture.sh); kind: closed, open (filed a while ago, left open) or fresh (filed in
-- the last days). bench.cap: the captured cases, their story, kind and the time from
-- filing to their last call. Made by bench.prepare() once bench.calls is loaded.
CREATE PROCEDURE bench.prepare()
LANGUAGE plpgsql AS $$
BEGIN
  DROP TABLE IF EXISTS bench.tpl, bench.cap;
  CREATE TABLE bench.tpl AS
    WITH c AS (
      SELECT k.*, k.decision_detail ->> 'case_id' AS cap_case
        FROM bench.calls k
    ), o AS (
      SELECT cap_case, left(event_id, 2) AS story, split_part(event_id, '-', 1) AS cap_tag,
             (decision_detail ->> 'decided')::timestamptz AS t0
        FROM c WHERE opens
    )
    SELECT o.story, CASE WHEN o.story IN ('S6', 'S7') THEN 'open'
                         WHEN o.story = 'S8' THEN 'fresh' ELSE 'closed' END AS kind,
           dense_rank() OVER (ORDER BY o.cap_case) AS cap_no, o.cap_case, o.cap_tag,
           row_number() OVER (PARTITION BY o.cap_case ORDER BY c.seq) AS step,
           c.fn, c.source, c.event_id, c.type, c.district,
           bench.cut(c.event_detail, o.t0) AS ev, c.event_body,
           bench.cut(c.decision_detail, o.t0) AS de, c.decision_body,
           c.opens, c.contact,
           extract(epoch FROM (c.decision_detail ->> 'decided')::timestamptz - o.t0) AS at
      FROM c JOIN o USING (cap_case);
  -- span: from filing to the last decision (not to the latest time named: a deadline is
  -- in the future of the decision that set it).
  CREATE TABLE bench.cap AS
    SELECT cap_no, story, kind, cap_case, cap_tag, max(at) AS span, count(*) AS calls
      FROM bench.tpl GROUP BY 1, 2, 3, 4, 5;
END $$;

CREATE FUNCTION bench.render(c bench.cut, base timestamptz, cap_case text, new_case text,
                             cap_tag text, new_tag text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT replace(replace(format((c).fmt, VARIADIC coalesce(
           (SELECT array_agg(to_char(base + make_interval(secs => o),
                               CASE WHEN f THEN 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'
                                    ELSE 'YYYY-MM-DD"T"HH24:MI:SS"Z"' END) ORDER BY i)
              FROM unnest((c).offs, (c).frac) WITH ORDINALITY u(o, f, i)), '{}')),
         cap_case, new_case), cap_tag, new_tag)::jsonb
$$;

-- The plan: which captured case each filled case k repeats, and when it is filed (base).
-- closed: filed in the last 12 months, its last call at least a day ago; open: filed in
-- the last 60 days, its last call in the past; fresh: filed in the last 7 days.
-- Deterministic for (n, open_fraction): the same plan on every run.
CREATE TABLE bench.plan (k integer PRIMARY KEY, cap_no bigint NOT NULL, base timestamptz NOT NULL,
                         new_case text NOT NULL, new_tag text NOT NULL);

CREATE PROCEDURE bench.plan(n integer, open_fraction double precision, t_now timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
  n_fresh integer := (SELECT count(*) FROM bench.cap WHERE kind = 'fresh');
BEGIN
  PERFORM setseed(0.42);
  -- Which: open or not by open_fraction; among the open, a quarter fresh; among the closed,
  -- the plain story S1 half of the time, the others (late, returned, reworked, extended)
  -- shared by the rest.
  INSERT INTO bench.plan
  SELECT k, p.cap_no,
         CASE p.kind
           WHEN 'closed' THEN t_now - make_interval(secs => p.span) - interval '1 day'
                                    - random() * (interval '364 days' - make_interval(secs => p.span))
           WHEN 'open' THEN t_now - make_interval(secs => p.span) - random() * interval '50 days'
           ELSE t_now - make_interval(secs => p.span) - random() * interval '7 days' END,
         p.district || '-' || lpad((10000000 + k)::text, 8, '0'),
         'V' || lpad(k::text, 7, '0')
    FROM (SELECT k, random() AS r1, random() AS r2, random() AS r3 FROM generate_series(1, n) k) g
    CROSS JOIN LATERAL (
      SELECT c.cap_no, c.kind, c.span, left(c.cap_case, 6) AS district
        FROM bench.cap c
       WHERE c.kind = CASE WHEN g.r1 >= open_fraction THEN 'closed'
                           WHEN g.r1 < open_fraction / 4 AND n_fresh > 0 THEN 'fresh'
                           ELSE 'open' END
         AND (c.kind <> 'closed' OR (c.story = 'S1') = (g.r2 < 0.5))
       ORDER BY md5(c.cap_case || g.k) LIMIT 1) p;
END $$;

-- Stores the planned cases k in [k_from, k_to) through the real storage path as archive
-- takes it, a chunk of `per_batch` cases at a time (archive's batch_max is 1000): each
-- chunk's calls are rendered once, then stored in waves, one batch (one transaction) per
-- wave, wave s holding step s of every case of the chunk. A case thus comes at most once
-- in a batch, so, as archive does (daemons/archive/store.c, set_items), the events that
-- open a case go to og.store_opened in one call, those that move one (a status update, an
-- evaluation, an escalation, a merged report) to og.store_moved in one call, and anything
-- else, in order after them, to og.store_event or og.store_decision one by one. Each step
-- of a case is stored in a later transaction than the one before it, as when it really
-- happened.
-- Run with the session's timezone UTC (the timestamps are written as ...Z).
CREATE PROCEDURE bench.fill(k_from integer, k_to integer, per_batch integer)
LANGUAGE plpgsql AS $$
DECLARE
  lo integer := k_from;
  hi integer;
  s bigint;
  r record;
  res text;
  bad bigint;
  how text;
BEGIN
  -- Not DROP TABLE IF EXISTS: without a temporary schema yet it says so in a NOTICE, one a
  -- call.
  IF to_regclass('pg_temp.fill_call') IS NOT NULL THEN
    DROP TABLE pg_temp.fill_call;
  END IF;
  CREATE TEMP TABLE fill_call (k integer, step bigint, fn text, source text,
    event_id text, type text, district text, event_detail jsonb, event_body bytea,
    decision_detail jsonb, decision_body bytea, opens boolean, contact jsonb, how text);
  WHILE lo < k_to LOOP
    hi := least(lo + per_batch, k_to);
    TRUNCATE fill_call;
    INSERT INTO fill_call
    SELECT x.k, x.step, x.fn, x.source, x.event_id, x.type, x.district, x.event_detail,
           x.event_body, x.decision_detail, x.decision_body, x.opens, x.contact,
           CASE WHEN x.fn <> 'event' OR NOT x.decision_detail ? 'case_id' THEN 'one'
                     -- an event with further decisions (a joint meeting's): archive stores
                     -- it one by one, as it does them
                     WHEN EXISTS (SELECT 1 FROM bench.tpl d
                                   WHERE d.cap_no = x.cap_no AND d.fn = 'decision'
                                     AND d.event_id = x.cap_event_id) THEN 'one'
                     WHEN x.opens AND x.decision_detail ->> 'kind' = 'KIND_OPEN_CASE'
                          AND NOT x.decision_detail ? 'split_from' THEN 'opened'
                     WHEN NOT x.opens
                          AND x.decision_detail ->> 'kind' IN ('KIND_UPDATE_CASE', 'KIND_ESCALATE',
                                                               'KIND_MERGE')
                          AND NOT x.decision_detail ? 'split_from'
                          AND NOT x.decision_detail ? 'split_to' THEN 'moved'
                     ELSE 'one' END
      FROM (SELECT p.k, t.step, t.fn, t.source, t.cap_no, t.event_id,
                   replace(replace(t.event_id, t.cap_tag, p.new_tag), t.cap_case, p.new_case),
                   t.type, t.district,
                   bench.render(t.ev, p.base, t.cap_case, p.new_case, t.cap_tag, p.new_tag), t.event_body,
                   bench.render(t.de, p.base, t.cap_case, p.new_case, t.cap_tag, p.new_tag),
                   t.decision_body, t.opens, t.contact
              FROM bench.plan p JOIN bench.tpl t USING (cap_no)
             WHERE p.k >= lo AND p.k < hi)
             x(k, step, fn, source, cap_no, cap_event_id, event_id, type, district, event_detail,
               event_body, decision_detail, decision_body, opens, contact);
    FOR s IN SELECT DISTINCT c.step FROM fill_call c ORDER BY 1 LOOP
      PERFORM og.begin_batch('6502', (SELECT epoch FROM og.dispatch_epoch WHERE shard = '6502'), 'bench-volume');
      -- og.store_opened, then og.store_moved, each given its events of the wave in one call.
      FOREACH how IN ARRAY ARRAY['opened', 'moved'] LOOP
        EXECUTE format($q$
          SELECT (SELECT count(*) FROM fill_call c WHERE c.step = $1 AND c.how = %L)
                 - count(*) FILTER (WHERE o.outcome = 'stored')
            FROM (SELECT array_agg(c.source ORDER BY c.k) a1, array_agg(c.event_id ORDER BY c.k) a2,
                         array_agg(c.type ORDER BY c.k) a3, array_agg(c.district ORDER BY c.k) a4,
                         array_agg(c.event_detail ORDER BY c.k) a5, array_agg(c.event_body ORDER BY c.k) a6,
                         array_agg(c.decision_detail ORDER BY c.k) a7,
                         array_agg(c.decision_body ORDER BY c.k) a8, array_agg(c.contact ORDER BY c.k) a9
                    FROM fill_call c WHERE c.step = $1 AND c.how = %L HAVING count(*) > 0) a,
                 og.%I(a.a1, a.a2, a.a3, a.a4, a.a5, a.a6, a.a7, a.a8, a.a9) o$q$,
          how, how, 'store_' || how) INTO bad USING s;
        IF bad <> 0 THEN
          RAISE EXCEPTION 'og.store_% did not store % events of step %', how, bad, s;
        END IF;
      END LOOP;
      FOR r IN SELECT * FROM fill_call c WHERE c.step = s AND c.how = 'one' ORDER BY c.k LOOP
        IF r.fn = 'event' THEN
          PERFORM og.store_event(r.source, r.event_id, r.type, r.district, r.event_detail,
                                 r.event_body, r.decision_detail, r.decision_body, r.opens, r.contact);
        ELSE
          res := og.store_decision(r.source, r.event_id, r.type, r.district, r.decision_detail,
                                   r.decision_body);
        END IF;
      END LOOP;
      PERFORM og.end_batch();
      COMMIT;
    END LOOP;
    lo := hi;
  END LOOP;
END $$;
