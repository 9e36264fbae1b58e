-- og.store_rejection: records one refused event in the batch, once per (publisher, bytes,
-- reason): a resent refused event is recorded once. p_raw is a bounded copy of the bytes
-- received (up to max_rejected_bytes), p_raw_size the size of the whole frame and
-- p_raw_sha256 its digest when p_raw is only its first part (NULL: sha256(p_raw)).
-- Returns 'stored' or 'duplicate'.

CREATE OR REPLACE FUNCTION og.store_rejection(p_received_at timestamptz, p_publisher text,
                                              p_source text, p_event_id text, p_reason text,
                                              p_detail text, p_raw bytea, p_raw_size integer,
                                              p_raw_sha256 bytea) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
BEGIN
  INSERT INTO og.rejection (batch_id, received_at, publisher, source_system, source_event_id,
                            reason, detail, raw, raw_size, raw_sha256)
    VALUES (currval('og.batch_id_seq'), p_received_at, p_publisher, p_source, p_event_id,
            p_reason, p_detail, p_raw, p_raw_size, coalesce(p_raw_sha256, sha256(p_raw)))
    ON CONFLICT DO NOTHING;
  RETURN CASE WHEN FOUND THEN 'stored' ELSE 'duplicate' END;
END $$;

REVOKE ALL ON FUNCTION og.store_rejection(timestamptz, text, text, text, text, text, bytea, integer,
                                          bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION og.store_rejection(timestamptz, text, text, text, text, text, bytea,
                                             integer, bytea)
  TO onegrid_writer;
