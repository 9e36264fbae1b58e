-- audit.rejected_events: every refused event, without its bytes (they may hold personal
-- data): the digest and size of what was received, and the batch that recorded it (shard
-- chains cover them).

CREATE OR REPLACE VIEW audit.rejected_events AS
  SELECT rejection_id, received_at, recorded_at, publisher, source_system, source_event_id,
         reason, detail, raw_size, encode(raw_sha256, 'hex') AS raw_sha256, batch_id
    FROM og.rejection;

GRANT SELECT ON audit.rejected_events TO onegrid_auditor;
