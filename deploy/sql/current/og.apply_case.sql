-- og.apply_case(p_decision, ledger_id, p_evaluation): moves the existing case a decision
-- names (its detail as the ledger keeps it) by that decision, as og.apply_cases does for
-- each element of its arrays (the columns the decision sets, updated_at, last_ledger_id,
-- the auditor's facts). SQLSTATE OG002 when the case does not exist. Called by
-- og.store_event and og.store_decision.

DROP FUNCTION IF EXISTS og.apply_case(text, jsonb, bigint);
DROP FUNCTION IF EXISTS og.apply_case(text, jsonb, bigint, jsonb, jsonb);

CREATE OR REPLACE FUNCTION og.apply_case(p_decision jsonb, p_ledger_id bigint, p_evaluation jsonb)
  RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, og, pg_temp AS $$
BEGIN
  IF og.apply_cases(ARRAY[p_ledger_id], ARRAY[p_decision], ARRAY[p_evaluation]) = 0 THEN
    RAISE EXCEPTION 'case "%" does not exist', p_decision ->> 'case_id' USING ERRCODE = 'OG002';
  END IF;
END $$;

REVOKE ALL ON FUNCTION og.apply_case(jsonb, bigint, jsonb) FROM PUBLIC;
