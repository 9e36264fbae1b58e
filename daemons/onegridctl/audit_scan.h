/* The one pass of `onegridctl audit verify` over the whole record (audit_scan.c): every
 * audit view it needs read once, streamed, and the hash of every chain link recomputed from
 * it, so that the walk in audit.c looks each link's result up instead of querying per link.
 * The scan owns its results; og_audit_scan_free releases them. */
#ifndef OG_AUDIT_SCAN_H
#define OG_AUDIT_SCAN_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct og_audit_scan;

/* What the scan found for one link: the hash it recomputed and the records it covers. */
struct og_audit_scan_link {
    uint8_t hash[32];
    long rows;       /* ledger rows (a district's link) */
    long keys;       /* event keys (a district's link) */
    long batch;      /* batch rows (a shard's link) */
    long rejections; /* (a shard's link) */
    long links;      /* district links of the batch (a shard's link) */
};

/* Runs the pass on c, which must be in a REPEATABLE READ transaction (its snapshot is
 * exported to one more connection made with conninfo, so both read the same record).
 * Returns the results, or NULL with err filled. */
struct og_audit_scan *og_audit_scan_run(PGconn *c, const char *conninfo, char *err, size_t errlen);
/* The result for link seq of chain (made for batch, in format): true with *out filled, or
 * false when s is NULL or the pass could not settle the link (one it does not know, two
 * links with the same number or batch, rows that came after the link looked complete):
 * recompute it then. */
bool og_audit_scan_link(const struct og_audit_scan *s, const char *chain, long long seq,
                        long long batch, int format, struct og_audit_scan_link *out);
/* Ledger rows of no link, and event keys that name no stored event: how many the pass saw. */
long og_audit_scan_stray_rows(const struct og_audit_scan *s);
long og_audit_scan_stray_keys(const struct og_audit_scan *s);
void og_audit_scan_free(struct og_audit_scan **s);

#endif
