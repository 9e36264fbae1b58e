-- 018 baseline: the schema migrations 001 to 018 made, squashed into one file that holds
-- what a versioned migration holds: roles, schemas, tables, columns, indexes, the first
-- rows, grants on schemas and tables, and the triggers attached to tables. The functions
-- and views those migrations defined, and redefined, are in current/, one file per object,
-- as they are now (see README.md).
--
-- A new database starts here: `onegridctl migrate` applies this file, then the versioned
-- migrations after 018, then current/. A database made by the migrations 001 to 018 has
-- all of this already: migrate recognises it by public.onegrid_migration (it recorded
-- version 18, 018_erase_rejections.sql) and does not apply this file. A database at an
-- older version must be brought to 018 first (README.md, "Databases made before the
-- baseline").
--
-- Applied inside one transaction, as a role that may create roles. Every object is owned
-- by onegrid_owner. The daemons log in as users that are members of:
--   onegrid_writer  (archive)   EXECUTE on the og.store_* functions, nothing else
--   onegrid_reader  (dispatch)  SELECT on the registry and cases, og.take_epoch()
--   onegrid_auditor             the documented views in schema audit only
--   onegrid_feed                a handling unit's system: its own rows of feed.assignments
--
-- A versioned migration: never edited. Lines `--@current NAME` apply current/NAME.sql at
-- that point (a trigger function before the triggers that name it).

-- Roles --------------------------------------------------------------------------------

DO $$
DECLARE r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['onegrid_owner', 'onegrid_writer', 'onegrid_reader', 'onegrid_auditor',
                           'onegrid_feed'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN', r);
    END IF;
  END LOOP;
  EXECUTE format('GRANT CONNECT, CREATE, TEMPORARY ON DATABASE %I TO onegrid_owner', current_database());
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO onegrid_writer, onegrid_reader, onegrid_auditor',
                 current_database());
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO onegrid_feed', current_database());
  -- og.feed_grant (owner's rights) makes a login a member of onegrid_feed.
  IF NOT pg_has_role('onegrid_owner', 'onegrid_feed', 'MEMBER WITH ADMIN OPTION') THEN
    GRANT onegrid_feed TO onegrid_owner WITH ADMIN OPTION;
  END IF;
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

-- Fencing: a starting dispatch takes epoch + 1 for its shard before it loads state
-- (og.take_epoch); archive commits a batch only while its epoch is the current one
-- (og.begin_batch).
CREATE TABLE og.dispatch_epoch (
  shard    text PRIMARY KEY,
  epoch    bigint NOT NULL,
  holder   text NOT NULL,
  taken_at timestamptz NOT NULL
);

-- 督办 (supervision): who supervises each area: the unit an overdue case escalates to at
-- that area's level. An open case past its deadline escalates one level up the hierarchy
-- (grid -> community -> street -> district), and keeps escalating while it stays open:
-- level k is due at the deadline plus (k - 1) times the case's time limit.
CREATE TABLE og.supervisor (
  area_code text PRIMARY KEY REFERENCES og.area (code),
  unit_code text NOT NULL REFERENCES og.handling_unit (code)
);

-- A hazard's CAP severity (SensorAlert.severity, NewReport.severity) can set its time
-- limit: where the catalogue lists a limit for the category at that severity, it applies
-- instead of the category's own. Severity numbers are those of onegrid.v1.SensorAlert:
-- 1 extreme, 2 severe, 3 moderate, 4 minor.
CREATE TABLE og.severity_limit (
  category_code text NOT NULL REFERENCES og.category (code),
  severity      integer NOT NULL CHECK (severity BETWEEN 1 AND 4),
  time_limit    integer NOT NULL CHECK (time_limit > 0),
  time_unit     text NOT NULL CHECK (time_unit IN ('working_hours', 'working_days', 'hours')),
  PRIMARY KEY (category_code, severity)
);

-- Grid boundaries. Where the boundary of a grid is known, dispatch can place a report
-- whose source knows only the community (a 12345 call: `RX-沁苑`) on the grid whose
-- boundary contains the report's WGS 84 position. It only ever narrows the area the
-- crosswalk gave, never moves a case out of it: the source's grid id stays authoritative
-- (og_registry_locate in daemons/dispatch/registry.c).
-- One simple polygon per grid: vertices is a two-dimensional array of [longitude, latitude]
-- pairs in WGS 84 degrees (the order of GeoJSON), e.g. '{{84.8700,45.5950},{84.8760,45.5950},
-- {84.8760,45.5975}}'. The ring closes by itself; repeating the first vertex at the end, as
-- GeoJSON does, is allowed and changes nothing. Every grid has a 15-digit code and only
-- grids have one (og.area ties the code's length to the level), so the format check and
-- the foreign key together admit grids only.
-- dispatch loads every row into memory at start and on SIGHUP (array_to_string(vertices,
-- ' ') gives it the numbers in order), so keep boundaries to what a grid needs: tens or a
-- few hundred vertices, not a surveyed line with thousands.
CREATE TABLE og.grid_boundary (
  area_code text PRIMARY KEY REFERENCES og.area (code) CHECK (area_code ~ '^[0-9]{15}$'),
  vertices  double precision[] NOT NULL CHECK (
    array_ndims(vertices) = 2 AND array_lower(vertices, 1) = 1 AND array_lower(vertices, 2) = 1
    AND array_length(vertices, 2) = 2 AND array_length(vertices, 1) >= 3
    -- IS TRUE: a NULL element makes the comparison NULL, which a CHECK would let pass; NaN
    -- and infinity compare out of range.
    AND (-180 <= ALL (vertices[:][1:1]) AND 180 >= ALL (vertices[:][1:1])
         AND -90 <= ALL (vertices[:][2:2]) AND 90 >= ALL (vertices[:][2:2])) IS TRUE)
);

-- Who may send what. The authenticated source system (the CURVE key's source, never a
-- payload field) decides what an event may do. A status update is accepted only from a
-- source granted the unit it speaks for (og.source_unit_grant); evaluations, joint-meeting
-- decisions, splits, mediation outcomes and decisions on extension requests only from a
-- source granted that action (og.source_action_grant). Anything else is refused
-- REASON_UNAUTHORISED_SOURCE and recorded. Reports and sensor alerts need only a
-- registered source. dispatch loads both tables at start and on reload.
CREATE TABLE og.source_unit_grant (
  source_system text NOT NULL REFERENCES og.source_system (code),
  -- a handling unit's code, or a prefix of codes ending in '*' ("CGJ-*")
  unit_pattern  text NOT NULL CHECK (unit_pattern ~ '^[A-Za-z0-9_.-]{1,64}$'
                                     OR unit_pattern ~ '^[A-Za-z0-9_.-]{0,63}\*$'),
  note          text,
  PRIMARY KEY (source_system, unit_pattern)
);

CREATE TABLE og.source_action_grant (
  source_system text NOT NULL REFERENCES og.source_system (code),
  action        text NOT NULL CHECK (action IN ('evaluation', 'meeting_decision', 'split',
                                                'mediation', 'extension_decision')),
  note          text,
  PRIMARY KEY (source_system, action)
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
-- month it was recorded (og.ensure_ledger_partition). body holds the canonical protobuf
-- bytes (an Envelope without the reporter's contact, or a Decision); detail is the same
-- as JSON for people.
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
CREATE INDEX ON og.ledger (source_system, source_event_id);

-- The current state of each case: a projection of the ledger, written from dispatch's
-- decisions (each decision carries the whole resulting case, so replaying is harmless;
-- og.case_rebuilt rebuilds it from the ledger alone).
--   escalation_level, supervisor_unit  督办: how far up it escalated, and to whom
--   latitude, longitude                the position of the report that opened it, for
--                                      merging (最多跑一次) after a restart
--   severity                           the CAP severity it was filed with, so every new
--                                      clock (after a return, a reopening, a meeting's
--                                      assignment) uses the same limit as the first
--   paused_at, extension_days          an extension request (申请延期) pending: the clock
--                                      is paused
--   returned_units                     every unit that returned it (退回); it is never
--                                      routed back to any of them
CREATE TABLE og.case (
  case_id          text PRIMARY KEY,
  shard            text NOT NULL,
  district_code    text NOT NULL,
  area_code        text NOT NULL,
  category_code    text NOT NULL,
  state            text NOT NULL,
  unit_code        text,
  rule_id          bigint,
  rule_version     integer,
  title            text NOT NULL,
  channel          text NOT NULL,
  source_system    text NOT NULL,
  source_event_id  text NOT NULL,
  occurred_at      timestamptz NOT NULL,
  opened_at        timestamptz NOT NULL,
  deadline_at      timestamptz,
  closed_at        timestamptz,
  contacts         integer NOT NULL DEFAULT 1,
  updated_at       timestamptz NOT NULL,
  last_ledger_id   bigint NOT NULL,
  escalation_level integer NOT NULL DEFAULT 0 CHECK (escalation_level BETWEEN 0 AND 3),
  supervisor_unit  text,
  latitude         double precision,
  longitude        double precision,
  severity         integer CHECK (severity BETWEEN 1 AND 4),
  paused_at        timestamptz,
  extension_days   integer CHECK (extension_days BETWEEN 1 AND 30),
  returned_units   text[] NOT NULL DEFAULT '{}'
);
CREATE INDEX ON og.case (district_code, state);

-- Reporters' personal data, kept apart from the ledger so it can be erased
-- (og.erase_contact).
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
-- og.end_batch finds a batch's rejections by batch.
CREATE INDEX ON og.rejection (batch_id);

-- Every report of every case: the one that opened it, those merged into it (最多跑一次),
-- and those split off into a case of their own (拆分). A projection of the ledger, like
-- og.case; it keeps every report's own facts (area, time, position, severity) and the
-- case it belongs to now, so dispatch can split a report off after a restart.
CREATE TABLE og.case_report (
  source_system   text NOT NULL,
  source_event_id text NOT NULL,
  case_id         text NOT NULL,
  joined          text NOT NULL CHECK (joined IN ('opened', 'merged', 'split')),
  area_code       text NOT NULL,
  occurred_at     timestamptz NOT NULL,
  latitude        double precision,
  longitude       double precision,
  severity        integer,
  ledger_id       bigint NOT NULL, -- the decision that put the report where it is
  PRIMARY KEY (source_system, source_event_id)
);
CREATE INDEX ON og.case_report (case_id);

-- Hash chains (og.end_batch, og.chain_link): the head of each chain, and its links. A
-- chain is a district's (named by its code) or a dispatch shard's ('shard:' and the
-- shard). The head is locked while a link is added, so two archives never fork a chain.
CREATE TABLE og.chain_head (
  district_code text PRIMARY KEY,
  seq           bigint NOT NULL,
  hash          bytea NOT NULL
);

-- format: how the link was made, 1 (og.ledger_canonical, before migration 015) or 2
-- (og.chain_link). rows, first_ledger_id, last_ledger_id: the ledger rows it covers (none
-- for a shard's link); records: how many records its hash covers (ledger rows and event
-- keys; or the batch row, rejections and district links), NULL for format 1.
CREATE TABLE og.chain (
  district_code   text NOT NULL,
  seq             bigint NOT NULL CHECK (seq > 0),
  batch_id        bigint NOT NULL,
  prev_hash       bytea NOT NULL,
  hash            bytea NOT NULL,
  rows            integer NOT NULL,
  first_ledger_id bigint,
  last_ledger_id  bigint,
  created_at      timestamptz NOT NULL DEFAULT now(),
  format          smallint NOT NULL CHECK (format IN (1, 2)),
  records         integer,
  PRIMARY KEY (district_code, seq),
  UNIQUE (batch_id, district_code)
);
COMMENT ON COLUMN og.chain.district_code IS
  'the chain: a district code, or ''shard:'' and a dispatch shard (batches and rejections)';

-- archive's Ed25519 signature of each link (og.sign_link).
CREATE TABLE og.chain_signature (
  district_code text NOT NULL,
  seq           bigint NOT NULL,
  public_key    bytea NOT NULL CHECK (octet_length(public_key) = 32),
  signature     bytea NOT NULL CHECK (octet_length(signature) = 64),
  signed_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (district_code, seq)
);

-- The assignment feed ---------------------------------------------------------------------

-- Outbound assignments. Every time a case is given to a unit, a unit is asked to supervise
-- it, or something changes for a unit that holds or supervises it, a row is appended here
-- in the same transaction as the decision (og.feed_case_change), numbered at commit, in
-- commit order (og.assignment_number). A handling unit's system reads the rows for its
-- unit after the last seq it has seen (feed.assignments, `onegridctl feed`), so one that
-- was offline catches up without missing anything, and can LISTEN on channel
-- "onegrid_assignment" to hear of new ones at once.
CREATE TABLE og.assignment (
  seq         bigint PRIMARY KEY,
  unit_code   text NOT NULL,
  case_id     text NOT NULL,
  kind        text NOT NULL CHECK (kind IN (
    'assigned', 'withdrawn', 'supervise', 'finished', 'reopened', 'deadline_changed',
    'supervision_ended', 'extension_requested')),
  state       text NOT NULL,
  deadline_at timestamptz,
  ledger_id   bigint NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON og.assignment (unit_code, seq);
COMMENT ON COLUMN og.assignment.seq IS
  'given at commit, in commit order (og.assignment_number); readers read seq > the last one seen';

-- The last seq given. One row: its row lock orders the numbering.
CREATE TABLE og.assignment_counter (
  one      boolean PRIMARY KEY DEFAULT true CHECK (one),
  last_seq bigint NOT NULL
);
INSERT INTO og.assignment_counter (last_seq) VALUES (0);

-- Feed rows of transactions not yet committed. Every row leaves within its own
-- transaction, so nothing here outlives a crash that matters: UNLOGGED spares the WAL.
CREATE UNLOGGED TABLE og.assignment_pending (
  xact          xid8 NOT NULL DEFAULT pg_current_xact_id(),
  n             bigint GENERATED ALWAYS AS IDENTITY,  -- order within the transaction
  first_of_xact boolean NOT NULL,
  unit_code     text NOT NULL,
  case_id       text NOT NULL,
  kind          text NOT NULL,
  state         text NOT NULL,
  deadline_at   timestamptz,
  ledger_id     bigint NOT NULL,
  recorded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON og.assignment_pending (xact);

-- Which login may read which unit's assignments (og.feed_grant, og.feed_revoke). Role
-- names, as pg_hba.conf has them: a login dropped and made again under the same name keeps
-- its units (revoke them first).
CREATE TABLE og.feed_subscriber (
  role_name  text NOT NULL,
  unit_code  text NOT NULL REFERENCES og.handling_unit (code),
  granted_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (role_name, unit_code)
);

-- What subscribers read: feed.assignments, feed.my_units.
CREATE SCHEMA feed;
REVOKE ALL ON SCHEMA feed FROM PUBLIC;

-- Triggers ------------------------------------------------------------------------------

-- Append-only. Row triggers on the partitioned ledger apply to every partition; TRUNCATE
-- of a single partition does not fire the parent's statement trigger, so each partition
-- gets one (og.ensure_ledger_partition gives it to the monthly ones it makes).
--@current og.refuse_change
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON og.ledger
  FOR EACH ROW EXECUTE FUNCTION og.refuse_change();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON og.ledger
  FOR EACH STATEMENT EXECUTE FUNCTION og.refuse_change();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON og.ledger_default
  FOR EACH STATEMENT EXECUTE FUNCTION og.refuse_change();
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON og.event_key
  FOR EACH ROW EXECUTE FUNCTION og.refuse_change();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON og.event_key
  FOR EACH STATEMENT EXECUTE FUNCTION og.refuse_change();
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON og.batch
  FOR EACH ROW EXECUTE FUNCTION og.refuse_change();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON og.batch
  FOR EACH STATEMENT EXECUTE FUNCTION og.refuse_change();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON og.rejection
  FOR EACH STATEMENT EXECUTE FUNCTION og.refuse_change();
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON og.chain
  FOR EACH ROW EXECUTE FUNCTION og.refuse_change();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON og.chain
  FOR EACH STATEMENT EXECUTE FUNCTION og.refuse_change();
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON og.chain_signature
  FOR EACH ROW EXECUTE FUNCTION og.refuse_change();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON og.chain_signature
  FOR EACH STATEMENT EXECUTE FUNCTION og.refuse_change();
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON og.assignment
  FOR EACH ROW EXECUTE FUNCTION og.refuse_change();

-- og.rejection stays append-only but for erasing the raw copy of a refusal.
--@current og.rejection_erasure_only
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON og.rejection
  FOR EACH ROW EXECUTE FUNCTION og.rejection_erasure_only();

-- The ledger's partitions of last month and the next three.
--@current og.ensure_ledger_partition
DO $$ BEGIN
  PERFORM og.ensure_ledger_partition(now() + make_interval(months => i)) FROM generate_series(-1, 3) i;
END $$;

-- The assignment feed: rows for each change of a case, numbered at commit. WHEN is
-- evaluated as the row is inserted (not deferred): one queued firing per transaction, or
-- one per statement that adds rows after an immediate numbering.
--@current og.feed_case_change
CREATE TRIGGER feed AFTER INSERT OR UPDATE ON og.case
  FOR EACH ROW EXECUTE FUNCTION og.feed_case_change();
--@current og.assignment_number
CREATE CONSTRAINT TRIGGER number_at_commit AFTER INSERT ON og.assignment_pending
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW WHEN (NEW.first_of_xact) EXECUTE FUNCTION og.assignment_number();

-- Grants on schemas and tables (those on functions and views are in their files) ----------

GRANT USAGE ON SCHEMA og TO onegrid_writer, onegrid_reader;
GRANT SELECT ON og.dispatch_epoch TO onegrid_writer, onegrid_reader;
GRANT SELECT ON og.area, og.source_system, og.grid_crosswalk, og.category, og.handling_unit,
                og.routing_rule, og.calendar_day, og.case, og.event_key
  TO onegrid_reader;
GRANT USAGE ON SCHEMA audit TO onegrid_auditor;
GRANT SELECT ON og.supervisor TO onegrid_reader;
GRANT SELECT ON og.severity_limit TO onegrid_reader;
GRANT USAGE ON SCHEMA feed TO onegrid_feed, onegrid_auditor;
GRANT SELECT ON og.case_report TO onegrid_reader;
GRANT SELECT ON og.grid_boundary TO onegrid_reader;
GRANT SELECT ON og.source_unit_grant, og.source_action_grant TO onegrid_reader;
