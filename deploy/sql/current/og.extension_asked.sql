-- og.extension_asked(case, area): the units to tell that the case's pending extension
-- request (申请延期) lapsed or ended: the units the assignment feed told of it, its
-- extension_requested rows (this transaction's, not yet numbered, included). Those are the
-- units whose work lists hold the request, even when an operator has since changed the
-- supervisors registered for the case's community, street or district: the replaced unit
-- hears that the request is no longer waiting for it, and a new one is not told of an end
-- it never heard requested. A request made before the feed told of requests (migration
-- 011) has no such rows: then the supervisors registered now, as before migration 031.
-- For og.feed_case_change (owner's rights); index assignment_extension_requested.

CREATE OR REPLACE FUNCTION og.extension_asked(p_case_id text, p_area_code text)
  RETURNS SETOF text
LANGUAGE sql STABLE SET search_path = pg_catalog, og, pg_temp AS $$
  WITH told AS (
    SELECT a.unit_code, a.ledger_id FROM og.assignment a
     WHERE a.case_id = p_case_id AND a.kind = 'extension_requested'
    UNION ALL
    SELECT p.unit_code, p.ledger_id FROM og.assignment_pending p
     WHERE p.xact = pg_current_xact_id() AND p.case_id = p_case_id
       AND p.kind = 'extension_requested'
  )
  SELECT t.unit_code FROM told t WHERE t.ledger_id = (SELECT max(m.ledger_id) FROM told m)
  UNION
  SELECT v.unit_code FROM og.supervisor v
   WHERE NOT EXISTS (SELECT 1 FROM told)
     AND v.area_code IN (left(p_area_code, 12), left(p_area_code, 9), left(p_area_code, 6))
$$;

REVOKE ALL ON FUNCTION og.extension_asked(text, text) FROM PUBLIC;
