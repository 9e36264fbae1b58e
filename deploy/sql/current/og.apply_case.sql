-- og.apply_case(case_id, p_case, ledger_id, p_decision, p_evaluation): moves one existing
-- case by one decision, as og.apply_cases does for each element of its arrays (the case
-- columns the decision carries, updated_at, last_ledger_id, the auditor's facts). SQLSTATE
-- OG002 when the case does not exist. Called by og.store_event and og.store_decision.

DROP FUNCTION IF EXISTS og.apply_case(text, jsonb, bigint);

CREATE OR REPLACE FUNCTION og.apply_case(cid text, p_case jsonb, p_ledger_id bigint,
                                         p_decision jsonb, p_evaluation jsonb) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
BEGIN
  IF og.apply_cases(ARRAY[cid], ARRAY[p_case], ARRAY[p_ledger_id], ARRAY[p_decision],
                    ARRAY[p_evaluation]) = 0 THEN
    RAISE EXCEPTION 'case "%" does not exist', cid USING ERRCODE = 'OG002';
  END IF;
END $$;

REVOKE ALL ON FUNCTION og.apply_case(text, jsonb, bigint, jsonb, jsonb) FROM PUBLIC;
