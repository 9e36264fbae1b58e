-- og.extension_asked(case, area): the units to tell that the case's pending extension
-- request (申请延期) lapsed or ended: the units the assignment feed told of it, its
-- extension_requested rows (this transaction's, not yet numbered, included). Those are the
-- units whose work lists hold the request, even when an operator has since changed the
-- supervisors registered for the case's community, street or district: the replaced unit
-- hears that the request is no longer waiting for it, and a new one is not told of an end
-- it never heard requested.
--
-- The pending request's rows are the case's last extension_requested rows (one decision's:
-- its ledger id), if they come after the case's last extension_lapsed or extension_ended
-- row; none when the pending request was told to no one (its only supervisor holds the
-- case), so its end is not told to the units of an older request. A case with no
-- extension_* row at all was asked before the feed told of requests (migration 011): then
-- the supervisors registered now, as before migration 031. For og.feed_case_change
-- (owner's rights); index assignment_extension.

CREATE OR REPLACE FUNCTION og.extension_asked(p_case_id text, p_area_code text)
  RETURNS SETOF text
LANGUAGE sql STABLE SET search_path = pg_catalog, og, pg_temp AS $$
  WITH ext AS (
    -- In the order the feed gives them: numbered rows by seq, then this transaction's.
    SELECT a.unit_code, a.kind, a.ledger_id, false AS pending, a.seq AS pos FROM og.assignment a
     WHERE a.case_id = p_case_id
       AND a.kind IN ('extension_requested', 'extension_lapsed', 'extension_ended')
    UNION ALL
    SELECT p.unit_code, p.kind, p.ledger_id, true, p.n FROM og.pending_rows(p_case_id) p
     WHERE p.kind IN ('extension_requested', 'extension_lapsed', 'extension_ended')
  ), last_end AS (
    SELECT e.pending, e.pos FROM ext e WHERE e.kind <> 'extension_requested'
     ORDER BY e.pending DESC, e.pos DESC LIMIT 1
  )
  SELECT e.unit_code FROM ext e
   WHERE e.kind = 'extension_requested'
     AND e.ledger_id = (SELECT max(r.ledger_id) FROM ext r WHERE r.kind = 'extension_requested')
     AND NOT EXISTS (SELECT 1 FROM last_end l WHERE (e.pending, e.pos) <= (l.pending, l.pos))
  UNION
  SELECT v.unit_code FROM og.supervisor v
   WHERE NOT EXISTS (SELECT 1 FROM ext)
     AND v.area_code IN (left(p_area_code, 12), left(p_area_code, 9), left(p_area_code, 6))
$$;

REVOKE ALL ON FUNCTION og.extension_asked(text, text) FROM PUBLIC;
