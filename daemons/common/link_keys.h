/* The CURVE keys of the links between the daemons (intake -> dispatch -> archive), read
 * from a daemon's section of the config (docs/operating.md, "Links between hosts"). Each
 * daemon has its own key pair (link_secret_key_file); a daemon that listens for a link
 * lets in only the client keys of its link_clients_file; a daemon that connects checks
 * the next hop's key (<next>_public_key_file). A link endpoint on tcp:// without keys is
 * refused: whoever reaches it could inject events that skip intake's checks. The struct
 * holds copies of what it read; nothing here logs. */
#ifndef OG_LINK_KEYS_H
#define OG_LINK_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

#define OG_LINK_ZAP_DOMAIN "onegrid-link"

struct og_link_keys {
    char secret[41];        /* this daemon's secret key (Z85), "" without one */
    char public_key[41];    /* its public key, derived from the secret */
    char server_public[41]; /* the next hop's public key, "" when that link is plain */
    char clients_file[512]; /* who may connect to listen; "" when listen is plain */
};

/* Reads section's link keys. listen: the daemon's link endpoints (a comma-separated list),
 * or NULL when it listens for no link (intake); next: the name of the daemon it connects
 * to ("dispatch", "archive"), or NULL (archive), and next_endpoint its address. Every
 * endpoint must be ipc:// or tcp://, and one on tcp:// needs keys: otherwise -EINVAL with
 * err saying which key is missing. 0 on success. */
int og_link_keys_read(const struct og_config *cfg, const char *section, const char *listen,
                      const char *next, const char *next_endpoint, struct og_link_keys *k,
                      char *err, size_t errlen);
/* Whether the daemon's listening socket does CURVE (and needs a ZAP handler). */
bool og_link_keys_server(const struct og_link_keys *k);
/* Whether its connection to the next hop does. */
bool og_link_keys_client(const struct og_link_keys *k);
/* Wipes the secret. */
void og_link_keys_clear(struct og_link_keys *k);

#endif
