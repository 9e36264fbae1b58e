-- audit.batches: every archive batch (og.batch), which shard chains cover, for audit verify.

CREATE OR REPLACE VIEW audit.batches AS
  SELECT batch_id, shard, epoch, archive, committed_at FROM og.batch;

GRANT SELECT ON audit.batches TO onegrid_auditor;
