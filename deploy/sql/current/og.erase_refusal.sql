-- og.erase_refusal(rejection_id): empties the raw copy of one refusal (og.rejection.raw,
-- the bytes intake received, which may hold a reporter's name and phone), for a data
-- subject's request that og.erase_contact cannot reach: bytes that did not decode have no
-- source or event id to name them by (the operator finds them by content, see
-- docs/operating.md). The digest, the size and the rest of the refusal stay, and so does
-- the chain (og.rejection_erasure_only). The owner's function. Returns true when the copy
-- was emptied now, false when it was empty already, NULL for no such refusal.

CREATE OR REPLACE FUNCTION og.erase_refusal(p_rejection_id bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
BEGIN
  UPDATE og.rejection SET raw = ''::bytea WHERE rejection_id = p_rejection_id AND raw <> ''::bytea;
  IF FOUND THEN
    RETURN true;
  END IF;
  RETURN CASE WHEN EXISTS (SELECT 1 FROM og.rejection WHERE rejection_id = p_rejection_id)
              THEN false END;
END $$;

REVOKE ALL ON FUNCTION og.erase_refusal(bigint) FROM PUBLIC;
