/* How often a daemon says the same thing about the same peer: a refused client reconnects
 * every few hundred milliseconds, and an attacker can try a new key or address each time.
 * The table is the caller's; nothing here logs. */
#ifndef OG_RATELIMIT_H
#define OG_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct og_ratelimit;
/* At most max_keys keys remembered, each logged at most once per interval, and at most
 * burst lines per interval in all. NULL on ENOMEM. */
struct og_ratelimit *og_ratelimit_new(size_t max_keys, size_t burst, int64_t interval_us);
void og_ratelimit_destroy(struct og_ratelimit **rl);
/* Whether to log now what happened about key. When true, *repeats says how often key came
 * since its last line without being logged, and *dropped how many lines about any key the
 * budget held back since the last line logged. */
bool og_ratelimit_allow(struct og_ratelimit *rl, const char *key, int64_t now_us, uint64_t *repeats,
                        uint64_t *dropped);
/* Keys remembered. */
size_t og_ratelimit_count(const struct og_ratelimit *rl);

#endif
