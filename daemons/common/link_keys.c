#include "link_keys.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "zap.h"
#include "zsock.h"

/* Checks each endpoint of a list (split as og_router_bind splits it): ipc:// or tcp://
 * only. Sets *open when one may be reached by others than the onegrid user: tcp://, or an
 * abstract unix socket (ipc://@name: no file, no permissions). */
static int check_endpoints(const char *section, const char *key, const char *list, bool *open,
                           char *err, size_t errlen)
{
    const char *p = list;
    size_t n;
    *open = false;
    for (; (p = og_endpoint_next(p, &n)); p += n) {
        if (n > 6 && strncmp(p, "tcp://", 6) == 0)
            *open = true;
        else if (n > 7 && strncmp(p, "ipc://@", 7) == 0)
            *open = true;
        else if (!(n > 6 && strncmp(p, "ipc://", 6) == 0)) {
            snprintf(err, errlen,
                     "[%s] %s: \"%.*s\" is not an ipc:// or tcp:// endpoint (links between the "
                     "daemons use only these)",
                     section, key, (int)(n > 200 ? 200 : n), p);
            return -EINVAL;
        }
    }
    return 0;
}

int og_link_keys_read(const struct og_config *cfg, const char *section, const char *listen,
                      const char *next, const char *next_endpoint, struct og_link_keys *k,
                      char *err, size_t errlen)
{
    char key[64], why[400];
    bool listen_open = false, next_open = false;

    memset(k, 0, sizeof(*k));
    if (listen && check_endpoints(section, "listen", listen, &listen_open, err, errlen) < 0)
        return -EINVAL;
    if (next && check_endpoints(section, next, next_endpoint, &next_open, err, errlen) < 0)
        return -EINVAL;

    const char *secret_file = og_config_get(cfg, section, "link_secret_key_file");
    const char *clients = listen ? og_config_get(cfg, section, "link_clients_file") : NULL;
    snprintf(key, sizeof(key), "%s_public_key_file", next ? next : "");
    const char *server_file = next ? og_config_get(cfg, section, key) : NULL;

    if (secret_file && og_curve_key_read(secret_file, k->secret, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "[%s] link_secret_key_file %s", section, why);
        return -EINVAL;
    }
    if (*k->secret && zmq_curve_public(k->public_key, k->secret) != 0) {
        snprintf(err, errlen, "[%s] link_secret_key_file: %s", section, zmq_strerror(errno));
        og_link_keys_clear(k);
        return -EINVAL;
    }
    if (listen) {
        /* The key pair alone may be for the link to the next hop (dispatch: a plain
         * ipc:// listen, a tcp:// archive); a clients file needs it. */
        if (clients && !secret_file) {
            snprintf(err, errlen,
                     "[%s] link_clients_file needs link_secret_key_file: the daemons that "
                     "connect to listen are let in by their keys, and check this one's",
                     section);
            goto fail;
        }
        if (secret_file && !clients && !next) {
            snprintf(err, errlen,
                     "[%s] link_secret_key_file without link_clients_file: say which daemons' "
                     "keys may connect to listen",
                     section);
            goto fail;
        }
        if (listen_open && !clients) {
            snprintf(err, errlen,
                     "[%s] listen \"%s\": a link on tcp:// (or an abstract ipc://@ socket) needs "
                     "CURVE: set link_secret_key_file and link_clients_file (docs/operating.md, "
                     "\"Links between hosts\"), or use ipc:// with a path",
                     section, listen);
            goto fail;
        }
        if (clients && og_zap_keys_check(clients, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "[%s] link_clients_file: %s", section, why);
            goto fail;
        }
        if (clients)
            snprintf(k->clients_file, sizeof(k->clients_file), "%s", clients);
    }
    if (next) {
        if (server_file && !secret_file) {
            snprintf(err, errlen, "[%s] %s needs link_secret_key_file: the key %s lets in", section,
                     key, next);
            goto fail;
        }
        if (next_open && !server_file) {
            snprintf(err, errlen,
                     "[%s] %s \"%s\": a link on tcp:// (or an abstract ipc://@ socket) needs "
                     "CURVE: set link_secret_key_file and %s (docs/operating.md, \"Links between "
                     "hosts\"), or use ipc:// with a path",
                     section, next, next_endpoint, key);
            goto fail;
        }
        if (server_file &&
            og_curve_public_key_read(server_file, k->server_public, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "[%s] %s %s", section, key, why);
            goto fail;
        }
    }
    return 0;
fail:
    og_link_keys_clear(k);
    return -EINVAL;
}

bool og_link_keys_server(const struct og_link_keys *k)
{
    return *k->clients_file != '\0';
}

bool og_link_keys_client(const struct og_link_keys *k)
{
    return *k->server_public != '\0';
}

void og_link_keys_clear(struct og_link_keys *k)
{
    sodium_memzero(k, sizeof(*k));
}
