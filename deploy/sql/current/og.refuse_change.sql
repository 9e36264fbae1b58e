-- og.refuse_change(): the append-only trigger. Attached (versioned migrations) BEFORE
-- UPDATE OR DELETE for each row, and BEFORE TRUNCATE for each statement, to og.ledger
-- (and to each of its partitions for TRUNCATE, see og.ensure_ledger_partition),
-- og.event_key, og.batch, og.chain, og.chain_signature, og.assignment, and for TRUNCATE
-- to og.rejection (whose rows og.rejection_erasure_only guards). SQLSTATE OG003.
-- Triggers do not stop the table's owner or a superuser (they can disable them): the
-- hash chains and archive's signatures are what shows such a change.

CREATE OR REPLACE FUNCTION og.refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '%.% is append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'OG003';
END $$;
