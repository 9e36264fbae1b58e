-- og.apply_case(case_id, p_case, ledger_id): sets the case columns a decision carries
-- (p_case, absolute values: see og.store_event) on an existing case, and its updated_at and
-- last_ledger_id. SQLSTATE OG002 when the case does not exist. Called by og.store_event and
-- og.store_decision.

CREATE OR REPLACE FUNCTION og.apply_case(cid text, p_case jsonb, p_ledger_id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
DECLARE
  r og.case := jsonb_populate_record(NULL::og.case, p_case);
BEGIN
  UPDATE og.case c SET state = r.state, unit_code = r.unit_code, rule_id = r.rule_id,
                       rule_version = r.rule_version, deadline_at = r.deadline_at,
                       closed_at = r.closed_at, contacts = coalesce(r.contacts, c.contacts),
                       escalation_level = coalesce(r.escalation_level, 0),
                       supervisor_unit = r.supervisor_unit, severity = r.severity,
                       paused_at = r.paused_at, extension_days = r.extension_days,
                       returned_units = coalesce(r.returned_units, '{}'),
                       updated_at = now(), last_ledger_id = p_ledger_id
    WHERE c.case_id = cid;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'case "%" does not exist', cid USING ERRCODE = 'OG002';
  END IF;
END $$;

REVOKE ALL ON FUNCTION og.apply_case(text, jsonb, bigint) FROM PUBLIC;
