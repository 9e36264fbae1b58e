-- 001: roles, the registry, the ledger, case projection, rejections, dispatch fencing.
--
-- Applied by `onegridctl migrate` inside one transaction, as a role that may create
-- roles (first install) or as a member of onegrid_owner (later migrations). Every object
-- is owned by onegrid_owner. The daemons log in as users that are members of:
--   onegrid_writer  (archive)   EXECUTE on the og.store_* functions, nothing else
--   onegrid_reader  (dispatch)  SELECT on the registry and cases, og.take_epoch()
--   onegrid_auditor             the documented views in schema audit only

DO $$
DECLARE r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['onegrid_owner', 'onegrid_writer', 'onegrid_reader', 'onegrid_auditor'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN', r);
    END IF;
  END LOOP;
  EXECUTE format('GRANT CONNECT, CREATE, TEMPORARY ON DATABASE %I TO onegrid_owner', current_database());
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO onegrid_writer, onegrid_reader, onegrid_auditor',
                 current_database());
END $$;

SET LOCAL ROLE onegrid_owner;

CREATE SCHEMA og;
CREATE SCHEMA audit;
REVOKE ALL ON SCHEMA og, audit FROM PUBLIC;

-- Registry ---------------------------------------------------------------------------

-- The unified hierarchy. Codes extend the GB/T 2260 county code: city and district
-- 6 digits (650200, 650204), street 9 (650204001), community 12, grid 15.
CREATE TABLE og.area (
  code          text PRIMARY KEY CHECK (code ~ '^[0-9]{6}([0-9]{3}){0,3}$'),
  level         text NOT NULL CHECK (level IN ('city', 'district', 'street', 'community', 'grid')),
  parent_code   text REFERENCES og.area (code),
  name          text NOT NULL,
  district_code text NOT NULL,
  CHECK ((level = 'city') = (parent_code IS NULL)),
  CHECK (length(code) = CASE level WHEN 'city' THEN 6 WHEN 'district' THEN 6 WHEN 'street' THEN 9
                                   WHEN 'community' THEN 12 ELSE 15 END)
);
CREATE INDEX ON og.area (parent_code);

-- The grid systems that publish to onegrid.
CREATE TABLE og.source_system (
  code text PRIMARY KEY CHECK (code ~ '^[a-z0-9][a-z0-9_.-]{0,31}$'),
  name text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('governance', 'police', 'urban', 'party', 'emergency',
                                     'hotline', 'sensor', 'community', 'other'))
);

-- 多网合一: each source system's own grid ids, mapped to one unified area (usually a
-- grid; a hotline may only know the community).
CREATE TABLE og.grid_crosswalk (
  source_system  text NOT NULL REFERENCES og.source_system (code),
  source_grid_id text NOT NULL CHECK (length(source_grid_id) BETWEEN 1 AND 64),
  area_code      text NOT NULL REFERENCES og.area (code),
  PRIMARY KEY (source_system, source_grid_id)
);

-- Category catalogue: 部件/事件 major and minor classes plus community demands.
CREATE TABLE og.category (
  code           text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$'),
  name           text NOT NULL,
  major          text NOT NULL,
  minor          text NOT NULL,
  kind           text NOT NULL CHECK (kind IN ('part', 'event', 'demand', 'hazard', 'dispute', 'policy')),
  unit_level     text NOT NULL CHECK (unit_level IN ('grid', 'community', 'street', 'district')),
  time_limit     integer NOT NULL CHECK (time_limit > 0),
  time_unit      text NOT NULL CHECK (time_unit IN ('working_hours', 'working_days', 'hours')),
  check_required boolean NOT NULL DEFAULT true
);

CREATE TABLE og.handling_unit (
  code          text PRIMARY KEY CHECK (code ~ '^[A-Za-z0-9_.-]{1,64}$'),
  name          text NOT NULL,
  kind          text NOT NULL CHECK (kind IN ('community', 'street', 'district_dept', 'city_dept',
                                              'property', 'volunteer', 'social_org', 'utility')),
  area_code     text NOT NULL REFERENCES og.area (code),
  district_code text NOT NULL
);

-- Routing: by category (NULL = any) and unified-code prefix to a handling unit.
-- Effective-dated and versioned: a change closes the old row (valid_to) and adds a row
-- with the same rule_key and version + 1, so each case names the exact row it followed.
-- The most specific rule wins: longest prefix, then a named category, then priority.
CREATE TABLE og.routing_rule (
  rule_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  rule_key      text NOT NULL,
  version       integer NOT NULL DEFAULT 1 CHECK (version > 0),
  category_code text REFERENCES og.category (code),
  area_prefix   text NOT NULL CHECK (area_prefix ~ '^[0-9]{1,15}$'),
  unit_code     text NOT NULL REFERENCES og.handling_unit (code),
  priority      integer NOT NULL DEFAULT 0,
  valid_from    timestamptz NOT NULL DEFAULT '-infinity',
  valid_to      timestamptz NOT NULL DEFAULT 'infinity',
  note          text,
  UNIQUE (rule_key, version),
  CHECK (valid_from < valid_to)
);

-- Working-day calendar: only exceptions are listed. A date not listed is a working day
-- from Monday to Friday and a rest day on Saturday and Sunday.
CREATE TABLE og.calendar_day (
  day     date PRIMARY KEY,
  working boolean NOT NULL,  -- false: public holiday; true: make-up working day (调休)
  note    text NOT NULL
);

-- Fencing: a starting dispatch takes epoch + 1 for its shard before it loads state;
-- archive commits a batch only while its epoch is the current one.
CREATE TABLE og.dispatch_epoch (
  shard    text PRIMARY KEY,
  epoch    bigint NOT NULL,
  holder   text NOT NULL,
  taken_at timestamptz NOT NULL
);

-- Record ------------------------------------------------------------------------------

CREATE SEQUENCE og.batch_id_seq;
CREATE SEQUENCE og.ledger_id_seq;

-- One row per committed archive batch.
CREATE TABLE og.batch (
  batch_id     bigint PRIMARY KEY DEFAULT nextval('og.batch_id_seq'),
  shard        text NOT NULL,
  epoch        bigint NOT NULL,
  archive      text NOT NULL,
  committed_at timestamptz NOT NULL DEFAULT now()
);

-- The idempotency record: one row per stored event, ever.
CREATE TABLE og.event_key (
  source_system   text NOT NULL,
  source_event_id text NOT NULL,
  district_code   text NOT NULL,
  case_id         text,
  ledger_id       bigint NOT NULL,
  stored_at       timestamptz NOT NULL,
  PRIMARY KEY (source_system, source_event_id)
);

-- The ledger: every accepted event and every decision, append-only, partitioned by the
-- month it was recorded. body holds the canonical protobuf bytes (an Envelope without
-- the reporter's contact, or a Decision); detail is the same as JSON for people.
CREATE TABLE og.ledger (
  ledger_id       bigint NOT NULL,
  recorded_at     timestamptz NOT NULL,
  batch_id        bigint NOT NULL,
  district_code   text NOT NULL,
  kind            text NOT NULL CHECK (kind IN ('event', 'decision')),
  case_id         text,
  source_system   text NOT NULL,
  source_event_id text NOT NULL,
  event_type      text NOT NULL,
  detail          jsonb NOT NULL,
  body            bytea NOT NULL,
  PRIMARY KEY (ledger_id, recorded_at)
) PARTITION BY RANGE (recorded_at);
CREATE TABLE og.ledger_default PARTITION OF og.ledger DEFAULT;
CREATE INDEX ON og.ledger (case_id);
CREATE INDEX ON og.ledger (batch_id);

-- Makes sure the month containing ts has its own partition (owner's rights).
CREATE FUNCTION og.ensure_ledger_partition(ts timestamptz) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og AS $$
DECLARE
  m date := date_trunc('month', ts AT TIME ZONE 'UTC')::date;
  t text := format('ledger_%s', to_char(m, 'YYYYMM'));
BEGIN
  IF to_regclass('og.' || t) IS NULL THEN
    EXECUTE format('CREATE TABLE og.%I PARTITION OF og.ledger FOR VALUES FROM (%L) TO (%L)',
                   t, (m::timestamp AT TIME ZONE 'UTC'),
                   ((m + interval '1 month')::timestamp AT TIME ZONE 'UTC'));
  END IF;
END $$;
DO $$ BEGIN
  PERFORM og.ensure_ledger_partition(now() + make_interval(months => i)) FROM generate_series(-1, 3) i;
END $$;

-- The current state of each case: a projection of the ledger, written from dispatch's
-- decisions (each decision carries the whole resulting case, so replaying is harmless).
CREATE TABLE og.case (
  case_id         text PRIMARY KEY,
  shard           text NOT NULL,
  district_code   text NOT NULL,
  area_code       text NOT NULL,
  category_code   text NOT NULL,
  state           text NOT NULL,
  unit_code       text,
  rule_id         bigint,
  rule_version    integer,
  title           text NOT NULL,
  channel         text NOT NULL,
  source_system   text NOT NULL,
  source_event_id text NOT NULL,
  occurred_at     timestamptz NOT NULL,
  opened_at       timestamptz NOT NULL,
  deadline_at     timestamptz,
  closed_at       timestamptz,
  contacts        integer NOT NULL DEFAULT 1,
  updated_at      timestamptz NOT NULL,
  last_ledger_id  bigint NOT NULL
);
CREATE INDEX ON og.case (district_code, state);

-- Reporters' personal data, kept apart from the ledger so it can be erased.
CREATE TABLE og.reporter_contact (
  source_system   text NOT NULL,
  source_event_id text NOT NULL,
  case_id         text,
  name            text,
  phone           text,
  erased_at       timestamptz,
  PRIMARY KEY (source_system, source_event_id)
);

-- Every refused event: who sent it, why, and a bounded copy of its bytes. A resent
-- refused event (same publisher, same bytes, same reason) is recorded once.
CREATE TABLE og.rejection (
  rejection_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  batch_id        bigint NOT NULL,
  received_at     timestamptz NOT NULL,
  recorded_at     timestamptz NOT NULL DEFAULT now(),
  publisher       text NOT NULL,
  source_system   text NOT NULL,
  source_event_id text NOT NULL,
  reason          text NOT NULL,
  detail          text NOT NULL,
  raw             bytea NOT NULL,
  raw_size        integer NOT NULL,
  raw_sha256      bytea NOT NULL,
  UNIQUE (publisher, raw_sha256, reason)
);
CREATE INDEX ON og.rejection (received_at);

-- Writer functions (archive) ----------------------------------------------------------

-- Opens a batch: refuses a stale epoch (SQLSTATE OG001), and holds a share lock on the
-- epoch row until commit, so a dispatch taking a new epoch waits for this batch and then
-- loads state that includes it.
CREATE FUNCTION og.begin_batch(p_shard text, p_epoch bigint, p_archive text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og AS $$
DECLARE
  cur bigint;
  id bigint;
BEGIN
  SELECT epoch INTO cur FROM og.dispatch_epoch WHERE shard = p_shard FOR SHARE;
  IF cur IS NULL OR cur <> p_epoch THEN
    RAISE EXCEPTION 'stale dispatch epoch % for shard "%" (current %)', p_epoch, p_shard, cur
      USING ERRCODE = 'OG001';
  END IF;
  PERFORM og.ensure_ledger_partition(now());
  INSERT INTO og.batch (shard, epoch, archive) VALUES (p_shard, p_epoch, p_archive)
    RETURNING batch_id INTO id;
  RETURN id;
END $$;

-- Stores one accepted event with dispatch's decision and its effect on the case, once.
-- p_case: for an event that opens a case, the whole og.case row as JSON (without
-- updated_at and last_ledger_id); for one that moves a case, its case_id and the columns
-- that change (state, unit_code, rule_id, rule_version, deadline_at, closed_at, contacts);
-- NULL when no case is touched. Each decision carries absolute values, so storing the same
-- decision again changes nothing.
-- Returns ('stored', case_id) or ('duplicate', the case_id stored the first time).
CREATE FUNCTION og.store_event(p_source text, p_event_id text, p_type text, p_district text,
                               p_event_detail jsonb, p_event_body bytea,
                               p_decision_detail jsonb, p_decision_body bytea,
                               p_case jsonb, p_opens boolean, p_contact jsonb,
                               OUT outcome text, OUT case_id text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og AS $$
DECLARE
  lid bigint := nextval('og.ledger_id_seq');
  bid bigint := currval('og.batch_id_seq');
  cid text := p_case ->> 'case_id';
  r og.case;
BEGIN
  INSERT INTO og.event_key AS k (source_system, source_event_id, district_code, case_id, ledger_id, stored_at)
    VALUES (p_source, p_event_id, p_district, cid, lid, now())
    ON CONFLICT DO NOTHING;
  IF NOT FOUND THEN
    SELECT 'duplicate', k.case_id INTO outcome, case_id
      FROM og.event_key k WHERE k.source_system = p_source AND k.source_event_id = p_event_id;
    RETURN;
  END IF;
  INSERT INTO og.ledger VALUES
    (lid, now(), bid, p_district, 'event', cid, p_source, p_event_id, p_type, p_event_detail, p_event_body),
    (nextval('og.ledger_id_seq'), now(), bid, p_district, 'decision', cid, p_source, p_event_id, p_type,
     p_decision_detail, p_decision_body);
  IF cid IS NOT NULL THEN
    r := jsonb_populate_record(NULL::og.case, p_case);
    IF p_opens THEN
      r.updated_at := now();
      r.last_ledger_id := lid;
      INSERT INTO og.case SELECT r.*;
    ELSE
      UPDATE og.case c SET state = r.state, unit_code = r.unit_code, rule_id = r.rule_id,
                           rule_version = r.rule_version, deadline_at = r.deadline_at,
                           closed_at = r.closed_at, contacts = coalesce(r.contacts, c.contacts),
                           updated_at = now(), last_ledger_id = lid
        WHERE c.case_id = cid;
      IF NOT FOUND THEN
        RAISE EXCEPTION 'case "%" does not exist', cid USING ERRCODE = 'OG002';
      END IF;
    END IF;
  END IF;
  IF p_contact IS NOT NULL THEN
    INSERT INTO og.reporter_contact (source_system, source_event_id, case_id, name, phone)
      VALUES (p_source, p_event_id, cid, p_contact ->> 'name', p_contact ->> 'phone');
  END IF;
  outcome := 'stored';
  case_id := cid;
END $$;

-- Records one refused event, once per (publisher, bytes, reason). p_raw_sha256 is the
-- digest of the whole frame when p_raw is only its first part; NULL means sha256(p_raw).
CREATE FUNCTION og.store_rejection(p_received_at timestamptz, p_publisher text, p_source text,
                                   p_event_id text, p_reason text, p_detail text, p_raw bytea,
                                   p_raw_size integer, p_raw_sha256 bytea) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og AS $$
BEGIN
  INSERT INTO og.rejection (batch_id, received_at, publisher, source_system, source_event_id,
                            reason, detail, raw, raw_size, raw_sha256)
    VALUES (currval('og.batch_id_seq'), p_received_at, p_publisher, p_source, p_event_id,
            p_reason, p_detail, p_raw, p_raw_size, coalesce(p_raw_sha256, sha256(p_raw)))
    ON CONFLICT DO NOTHING;
  RETURN CASE WHEN FOUND THEN 'stored' ELSE 'duplicate' END;
END $$;

-- Reader functions (dispatch) ---------------------------------------------------------

-- Takes the next epoch for a shard. Waits for any batch of the old epoch still being
-- committed (its share lock), so the state loaded afterwards includes it.
CREATE FUNCTION og.take_epoch(p_shard text, p_holder text) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, og AS $$
  INSERT INTO og.dispatch_epoch AS d (shard, epoch, holder, taken_at)
    VALUES (p_shard, 1, p_holder, now())
    ON CONFLICT (shard) DO UPDATE SET epoch = d.epoch + 1, holder = excluded.holder,
                                      taken_at = excluded.taken_at
    RETURNING epoch
$$;

-- Grants ------------------------------------------------------------------------------

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA og FROM PUBLIC;
GRANT USAGE ON SCHEMA og TO onegrid_writer, onegrid_reader;
GRANT EXECUTE ON FUNCTION og.begin_batch(text, bigint, text),
                          og.store_event(text, text, text, text, jsonb, bytea, jsonb, bytea, jsonb, boolean, jsonb),
                          og.store_rejection(timestamptz, text, text, text, text, text, bytea, integer, bytea)
  TO onegrid_writer;
GRANT EXECUTE ON FUNCTION og.take_epoch(text, text) TO onegrid_reader;
GRANT SELECT ON og.dispatch_epoch TO onegrid_writer, onegrid_reader;
GRANT SELECT ON og.area, og.source_system, og.grid_crosswalk, og.category, og.handling_unit,
                og.routing_rule, og.calendar_day, og.case, og.event_key
  TO onegrid_reader;
