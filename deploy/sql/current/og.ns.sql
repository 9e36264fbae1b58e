-- og.ns(v): a field of a format-2 canonical text (og.chain_link) as a netstring (its
-- length in bytes, ':', its bytes, ','), or '-' for NULL. Inlined into its callers.

CREATE OR REPLACE FUNCTION og.ns(v text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN v IS NULL THEN '-' ELSE octet_length(v)::text || ':' || v || ',' END
$$;
