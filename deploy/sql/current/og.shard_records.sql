-- og.shard_records(batch): what the link of batch `batch`'s shard chain covers
-- (og.chain_link: the batch's og.batch row, the rejections it recorded by rejection_id,
-- then the links it appended to district chains by chain name, byte order): the records'
-- digests in that order, and how many there are. og.end_batch reads it after appending the
-- district links. Inlined into its callers (SQL, STABLE).

CREATE OR REPLACE FUNCTION og.shard_records(p_batch bigint)
  RETURNS TABLE (digests bytea, records integer)
LANGUAGE sql STABLE AS $$
  WITH r (section, id, name, digest) AS (
    SELECT 1, b.batch_id, '',
           sha256(convert_to(og.ns('batch') || og.ns(b.batch_id::text) || og.ns(b.shard)
                             || og.ns(b.epoch::text) || og.ns(b.archive)
                             || og.ns(((extract(epoch FROM b.committed_at) * 1000000)::bigint)::text),
                             'UTF8'))
      FROM og.batch b
     WHERE b.batch_id = p_batch
    UNION ALL
    SELECT 2, j.rejection_id, '',
           sha256(convert_to(og.ns('rejection') || og.ns(j.rejection_id::text)
                             || og.ns(j.batch_id::text) || og.ns(x.received) || og.ns(x.recorded)
                             || og.ns(j.publisher) || og.ns(j.source_system)
                             || og.ns(j.source_event_id) || og.ns(j.reason) || og.ns(j.detail)
                             || og.ns(j.raw_size::text) || og.ns(encode(j.raw_sha256, 'hex')),
                             'UTF8'))
      FROM og.rejection j,
           LATERAL (SELECT ((extract(epoch FROM j.received_at) * 1000000)::bigint)::text,
                           ((extract(epoch FROM j.recorded_at) * 1000000)::bigint)::text
                    OFFSET 0) x(received, recorded)
     WHERE j.batch_id = p_batch
    UNION ALL
    SELECT 3, 0, c.district_code,
           sha256(convert_to(og.ns('chain_link') || og.ns(c.district_code) || og.ns(c.seq::text)
                             || og.ns(encode(c.hash, 'hex')), 'UTF8'))
      FROM og.chain c
     WHERE c.batch_id = p_batch AND c.district_code NOT LIKE 'shard:%'
  )
  SELECT coalesce(string_agg(r.digest, ''::bytea ORDER BY r.section, r.id, r.name COLLATE "C"),
                  ''::bytea),
         count(*)::integer
    FROM r
$$;

REVOKE ALL ON FUNCTION og.shard_records(bigint) FROM PUBLIC;
