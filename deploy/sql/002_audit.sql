-- 002: the record as evidence: an append-only ledger, a hash chain per district, and the
-- audit schema, the one thing the auditor role may read.
--
-- Hash chain. Each archive batch appends, for every district whose ledger rows it
-- inserted, one link to that district's chain (og.chain), in the same transaction:
--   row digest  = SHA-256 of the row's canonical text (og.ledger_canonical below):
--                 ledger_id, recorded_at in microseconds since the epoch, batch_id,
--                 district_code, kind, case_id ('' if none), source_system,
--                 source_event_id, event_type, detail as jsonb text, body in lowercase
--                 hex, joined by U+001F
--   link hash   = SHA-256(previous link's hash || the row digests of the batch's rows
--                 of that district in ledger_id order); the first link's previous hash is
--                 32 zero bytes.
-- The head of each chain (og.chain_head) is locked while a link is added, so two
-- archives never fork a chain, and districts never wait for each other.
-- `onegridctl audit verify` recomputes every link from the ledger rows as they are now,
-- without trusting any function stored in the database.

SET LOCAL ROLE onegrid_owner;

-- Append-only ---------------------------------------------------------------------------

CREATE FUNCTION og.refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '%.% is append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'OG003';
END $$;

-- Row triggers on the partitioned ledger apply to every partition; TRUNCATE of a single
-- partition does not fire the parent's statement trigger, so each partition gets one.
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON og.ledger
  FOR EACH ROW EXECUTE FUNCTION og.refuse_change();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON og.ledger
  FOR EACH STATEMENT EXECUTE FUNCTION og.refuse_change();
DO $$
DECLARE p regclass;
BEGIN
  FOR p IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'og.ledger'::regclass LOOP
    EXECUTE format('CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON %s
                    FOR EACH STATEMENT EXECUTE FUNCTION og.refuse_change()', p);
  END LOOP;
END $$;

CREATE OR REPLACE FUNCTION og.ensure_ledger_partition(ts timestamptz) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og AS $$
DECLARE
  m date := date_trunc('month', ts AT TIME ZONE 'UTC')::date;
  t text := format('ledger_%s', to_char(m, 'YYYYMM'));
BEGIN
  IF to_regclass('og.' || t) IS NULL THEN
    EXECUTE format('CREATE TABLE og.%I PARTITION OF og.ledger FOR VALUES FROM (%L) TO (%L)',
                   t, (m::timestamp AT TIME ZONE 'UTC'),
                   ((m + interval '1 month')::timestamp AT TIME ZONE 'UTC'));
    EXECUTE format('CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON og.%I
                    FOR EACH STATEMENT EXECUTE FUNCTION og.refuse_change()', t);
  END IF;
END $$;

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['og.event_key', 'og.batch', 'og.rejection'] LOOP
    EXECUTE format('CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON %s
                    FOR EACH ROW EXECUTE FUNCTION og.refuse_change()', t);
    EXECUTE format('CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON %s
                    FOR EACH STATEMENT EXECUTE FUNCTION og.refuse_change()', t);
  END LOOP;
END $$;

-- Hash chain -------------------------------------------------------------------------

CREATE TABLE og.chain_head (
  district_code text PRIMARY KEY,
  seq           bigint NOT NULL,
  hash          bytea NOT NULL
);

CREATE TABLE og.chain (
  district_code   text NOT NULL,
  seq             bigint NOT NULL CHECK (seq > 0),
  batch_id        bigint NOT NULL,
  prev_hash       bytea NOT NULL,
  hash            bytea NOT NULL,
  rows            integer NOT NULL,
  first_ledger_id bigint NOT NULL,
  last_ledger_id  bigint NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (district_code, seq),
  UNIQUE (batch_id, district_code)
);
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON og.chain
  FOR EACH ROW EXECUTE FUNCTION og.refuse_change();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON og.chain
  FOR EACH STATEMENT EXECUTE FUNCTION og.refuse_change();

-- The canonical text of a ledger row (see the top of this file). verify does not call
-- this: it builds the same text itself.
CREATE FUNCTION og.ledger_canonical(l og.ledger) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT concat_ws(E'\x1f', l.ledger_id, (extract(epoch FROM l.recorded_at) * 1000000)::bigint,
                   l.batch_id, l.district_code, l.kind, coalesce(l.case_id, ''), l.source_system,
                   l.source_event_id, l.event_type, l.detail::text, encode(l.body, 'hex'))
$$;

-- Called by archive last in each batch, before COMMIT: one link per district touched.
CREATE FUNCTION og.end_batch() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og AS $$
DECLARE
  bid bigint := currval('og.batch_id_seq');
  d text;
  head og.chain_head;
  links integer := 0;
  digest bytea;
  n integer;
  lo bigint;
  hi bigint;
BEGIN
  FOR d IN SELECT DISTINCT district_code FROM og.ledger WHERE batch_id = bid ORDER BY 1 LOOP
    INSERT INTO og.chain_head VALUES (d, 0, '\x0000000000000000000000000000000000000000000000000000000000000000')
      ON CONFLICT DO NOTHING;
    -- Locks the head: a concurrent batch of the same district waits here, then sees the
    -- head this one leaves (READ COMMITTED re-reads the updated row).
    SELECT * INTO head FROM og.chain_head WHERE district_code = d FOR UPDATE;
    SELECT sha256(head.hash || string_agg(sha256(convert_to(og.ledger_canonical(l), 'UTF8')),
                                          ''::bytea ORDER BY l.ledger_id)),
           count(*), min(l.ledger_id), max(l.ledger_id)
      INTO digest, n, lo, hi
      FROM og.ledger l WHERE l.batch_id = bid AND l.district_code = d;
    INSERT INTO og.chain VALUES (d, head.seq + 1, bid, head.hash, digest, n, lo, hi, now());
    UPDATE og.chain_head SET seq = head.seq + 1, hash = digest WHERE district_code = d;
    links := links + 1;
  END LOOP;
  RETURN links;
END $$;

REVOKE ALL ON FUNCTION og.end_batch() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION og.end_batch() TO onegrid_writer;

-- Erasing a reporter's personal data (a data subject's request): the case, the ledger
-- and the chain stay as they are; they never held the contact.
CREATE FUNCTION og.erase_contact(p_source text, p_event_id text) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, og AS $$
  UPDATE og.reporter_contact SET name = NULL, phone = NULL, erased_at = now()
   WHERE source_system = p_source AND source_event_id = p_event_id AND erased_at IS NULL
  RETURNING true
$$;
REVOKE ALL ON FUNCTION og.erase_contact(text, text) FROM PUBLIC;

CREATE INDEX ON og.ledger (source_system, source_event_id);

-- The case projection rebuilt from the ledger alone: each case from the event that
-- opened it and its last decision (decisions carry the case's absolute state).
-- `onegridctl rebuild-cases` compares it with og.case, or replaces og.case with it.
CREATE VIEW og.case_rebuilt AS
  WITH last AS (
    SELECT DISTINCT ON (case_id) case_id, detail, source_system, source_event_id
      FROM og.ledger WHERE kind = 'decision' AND case_id IS NOT NULL
     ORDER BY case_id, ledger_id DESC
  ), opened AS (
    SELECT d.case_id, d.detail AS dd, d.source_system, d.source_event_id, d.batch_id
      FROM og.ledger d WHERE d.kind = 'decision' AND d.detail ->> 'kind' = 'KIND_OPEN_CASE'
  )
  SELECT o.case_id, b.shard, o.dd ->> 'district' AS district_code, o.dd ->> 'grid' AS area_code,
         o.dd ->> 'category' AS category_code, last.detail ->> 'state' AS state,
         last.detail ->> 'unit' AS unit_code, (last.detail ->> 'rule_id')::bigint AS rule_id,
         (last.detail ->> 'rule_version')::integer AS rule_version,
         coalesce(oe.detail #>> '{report,title}', oe.detail #>> '{sensor_alert,title}') AS title,
         coalesce(oe.detail #>> '{report,channel}', 'CHANNEL_SENSOR') AS channel,
         o.source_system, o.source_event_id, (oe.detail ->> 'time')::timestamptz AS occurred_at,
         (o.dd ->> 'opened')::timestamptz AS opened_at,
         (last.detail ->> 'deadline')::timestamptz AS deadline_at,
         (last.detail ->> 'closed')::timestamptz AS closed_at,
         coalesce((last.detail ->> 'contacts')::integer, 1) AS contacts,
         le.recorded_at AS updated_at, le.ledger_id AS last_ledger_id
    FROM opened o
    JOIN og.batch b ON b.batch_id = o.batch_id
    JOIN last ON last.case_id = o.case_id
    JOIN og.ledger oe ON oe.kind = 'event' AND oe.source_system = o.source_system
                     AND oe.source_event_id = o.source_event_id
    JOIN og.ledger le ON le.kind = 'event' AND le.source_system = last.source_system
                     AND le.source_event_id = last.source_event_id;

-- Audit views --------------------------------------------------------------------------
-- Owned by onegrid_owner, so they read the og tables on the auditor's behalf; the
-- auditor role reads these and nothing else. No view shows reporters' contacts.

GRANT USAGE ON SCHEMA audit TO onegrid_auditor;

-- The ledger itself (no contact data is ever in it), for audit verify.
CREATE VIEW audit.ledger AS
  SELECT ledger_id, recorded_at, batch_id, district_code, kind, case_id, source_system,
         source_event_id, event_type, detail, body
    FROM og.ledger;
CREATE VIEW audit.chain AS
  SELECT district_code, seq, batch_id, prev_hash, hash, rows, first_ledger_id, last_ledger_id,
         created_at
    FROM og.chain;
CREATE VIEW audit.chain_heads AS
  SELECT district_code, seq, encode(hash, 'hex') AS hash FROM og.chain_head;

-- Areas, with the names of the levels above.
CREATE VIEW audit.areas AS
  SELECT a.code, a.level, a.name, a.parent_code, a.district_code,
         (SELECT name FROM og.area WHERE code = a.district_code) AS district_name
    FROM og.area a;

-- Every case as it stands, without any personal data.
CREATE VIEW audit.cases AS
  SELECT c.case_id, c.district_code, left(c.area_code, 9) AS street_code,
         left(c.area_code, 12) AS community_code, c.area_code, c.category_code, c.state,
         c.unit_code, c.rule_id, c.rule_version, c.title, c.channel, c.source_system,
         c.source_event_id, c.occurred_at, c.opened_at, c.deadline_at, c.closed_at,
         c.contacts, c.updated_at
    FROM og.case c;

-- Each case's full timeline: every event and every decision, in the order recorded.
CREATE VIEW audit.case_timeline AS
  SELECT l.case_id, l.ledger_id, l.recorded_at, l.kind, l.event_type, l.source_system,
         l.source_event_id,
         l.detail ->> 'state' AS state, l.detail ->> 'previous_state' AS previous_state,
         l.detail ->> 'unit' AS unit, (l.detail ->> 'rule_id')::bigint AS rule_id,
         (l.detail ->> 'rule_version')::integer AS rule_version,
         (l.detail ->> 'decided')::timestamptz AS decided_at,
         (l.detail ->> 'deadline')::timestamptz AS deadline_at,
         l.detail
    FROM og.ledger l
   WHERE l.case_id IS NOT NULL;

-- What the KPIs are computed from: per case, facts taken from its decisions.
CREATE VIEW audit.case_facts AS
  WITH d AS (
    SELECT l.case_id, l.ledger_id, l.detail ->> 'state' AS state,
           l.detail ->> 'previous_state' AS previous_state,
           coalesce((l.detail ->> 'decided')::timestamptz, l.recorded_at) AS decided_at,
           (l.detail ->> 'deadline')::timestamptz AS deadline_at
      FROM og.ledger l WHERE l.kind = 'decision' AND l.case_id IS NOT NULL
  ), e AS (
    SELECT l.case_id, l.detail #>> '{evaluation,result}' AS result, l.ledger_id
      FROM og.ledger l WHERE l.kind = 'event' AND l.event_type = 'evaluation'
  )
  SELECT c.case_id, c.district_code, left(c.area_code, 9) AS street_code,
         left(c.area_code, 12) AS community_code, c.unit_code, c.category_code, c.state,
         c.opened_at, c.deadline_at, c.contacts,
         r.decided_at AS first_resolved_at, r.deadline_at AS deadline_when_resolved,
         k.decided_at AS first_closed_at, k.deadline_at AS deadline_when_closed,
         EXISTS (SELECT 1 FROM d WHERE d.case_id = c.case_id AND d.state = 'returned') AS returned,
         (SELECT count(*) FROM d WHERE d.case_id = c.case_id
             AND ((d.previous_state = 'resolved' AND d.state = 'in_progress')
               OR (d.previous_state = 'closed' AND d.state = 'dispatched'))) AS reworks,
         (SELECT e.result FROM e WHERE e.case_id = c.case_id ORDER BY e.ledger_id DESC LIMIT 1)
           AS last_evaluation,
         c.state NOT IN ('resolved', 'checked', 'closed', 'evaluated', 'voided') AS open
    FROM og.case c
    LEFT JOIN LATERAL (SELECT * FROM d WHERE d.case_id = c.case_id AND d.state = 'resolved'
                        ORDER BY d.ledger_id LIMIT 1) r ON true
    LEFT JOIN LATERAL (SELECT * FROM d WHERE d.case_id = c.case_id AND d.state = 'closed'
                        ORDER BY d.ledger_id LIMIT 1) k ON true;

-- Open cases past their deadline (超期未处置), oldest first.
CREATE VIEW audit.overdue_cases AS
  SELECT case_id, district_code, street_code, community_code, unit_code, category_code, state,
         opened_at, deadline_at, now() - deadline_at AS overdue_by
    FROM audit.case_facts
   WHERE open AND deadline_at < now()
   ORDER BY deadline_at;

-- The KPIs per month of filing and per district, street, community and handling unit.
-- Rates are NULL where their denominator is 0.
CREATE VIEW audit.kpi AS
  SELECT CASE WHEN GROUPING(district_code) = 0 THEN 'district'
              WHEN GROUPING(street_code) = 0 THEN 'street'
              WHEN GROUPING(community_code) = 0 THEN 'community'
              ELSE 'unit' END AS level,
         coalesce(district_code, street_code, community_code, unit_code) AS code,
         month,
         count(*) AS filed,                                                      -- 立案数
         round(count(*) FILTER (WHERE first_resolved_at <= deadline_when_resolved)::numeric
               / nullif(count(first_resolved_at), 0), 4) AS on_time_handling_rate, -- 按期处置率
         count(*) FILTER (WHERE open AND deadline_at < now()) AS overdue_open,   -- 超期未处置
         round(count(first_closed_at)::numeric / count(*), 4) AS closure_rate,   -- 结案率
         round(count(*) FILTER (WHERE first_closed_at <= deadline_when_closed)::numeric
               / count(*), 4) AS on_time_closure_rate,                           -- 按期结案率
         round(count(*) FILTER (WHERE reworks > 0)::numeric
               / nullif(count(first_resolved_at), 0), 4) AS rework_rate,         -- 返工率
         round(count(*) FILTER (WHERE NOT returned)::numeric / count(*), 4)
           AS accurate_dispatch_rate,                                            -- 准确派遣率
         round(count(*) FILTER (WHERE returned)::numeric / count(*), 4) AS return_rate, -- 退回率
         round(count(*) FILTER (WHERE last_evaluation IN ('RESULT_SATISFIED', 'RESULT_ACCEPTABLE'))::numeric
               / nullif(count(last_evaluation), 0), 4) AS satisfaction_rate,     -- 满意率
         round((avg(extract(epoch FROM first_resolved_at - opened_at)) / 3600)::numeric, 2)
           AS mean_handling_hours,                                               -- 平均处置时长
         round(avg(contacts), 2) AS contacts_per_case
    FROM (SELECT *, to_char(opened_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') AS month
            FROM audit.case_facts) f
   GROUP BY GROUPING SETS ((district_code, month), (street_code, month),
                           (community_code, month), (unit_code, month));

-- Refused events by publisher and reason (no bytes: they may hold personal data).
CREATE VIEW audit.rejections AS
  SELECT publisher, source_system, reason, count(*) AS events, min(received_at) AS first_at,
         max(received_at) AS last_at
    FROM og.rejection
   GROUP BY publisher, source_system, reason;
CREATE VIEW audit.rejected_events AS
  SELECT rejection_id, received_at, recorded_at, publisher, source_system, source_event_id,
         reason, detail, raw_size, encode(raw_sha256, 'hex') AS raw_sha256
    FROM og.rejection;

-- Cases whose live projection differs from the one rebuilt from the ledger (expected:
-- none). side 'ledger' is the rebuilt row, 'live' the row in og.case.
CREATE VIEW audit.projection_differences AS
  (SELECT 'ledger' AS side, * FROM (SELECT * FROM og.case_rebuilt EXCEPT SELECT * FROM og.case) a)
  UNION ALL
  (SELECT 'live', * FROM (SELECT * FROM og.case EXCEPT SELECT * FROM og.case_rebuilt) b);

-- The same views under their Chinese names.
CREATE VIEW audit."案件" AS SELECT * FROM audit.cases;
CREATE VIEW audit."案件时间线" AS SELECT * FROM audit.case_timeline;
CREATE VIEW audit."超期未处置案件" AS SELECT * FROM audit.overdue_cases;
CREATE VIEW audit."考核指标" AS SELECT * FROM audit.kpi;
CREATE VIEW audit."退件统计" AS SELECT * FROM audit.rejections;
CREATE VIEW audit."链头" AS SELECT * FROM audit.chain_heads;

COMMENT ON VIEW audit.cases IS '案件: every case as it stands, without personal data';
COMMENT ON VIEW audit.case_timeline IS '案件时间线: every event and decision of each case';
COMMENT ON VIEW audit.overdue_cases IS '超期未处置案件: open cases past their deadline';
COMMENT ON VIEW audit.kpi IS '考核指标: 立案数, 按期处置率, 超期未处置, 结案率, 按期结案率, 返工率, 准确派遣率, 退回率, 满意率, 平均处置时长, contacts per case';
COMMENT ON VIEW audit.rejections IS '退件统计: refused events by publisher and reason';
COMMENT ON VIEW audit.chain_heads IS '链头: the head of each district''s hash chain, for anchoring';

GRANT SELECT ON ALL TABLES IN SCHEMA audit TO onegrid_auditor;
