#include "link_keys.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "zap.h"
#include "zsock.h"

/* Checks each endpoint of a comma-separated list: ipc:// or tcp:// only. Sets *tcp when
 * one is tcp://. */
static int check_endpoints(const char *section, const char *key, const char *list, bool *tcp,
                           char *err, size_t errlen)
{
    const char *p = list;
    *tcp = false;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        size_t n = strcspn(p, ",");
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n > 6 && strncmp(p, "tcp://", 6) == 0)
            *tcp = true;
        else if (!(n > 6 && strncmp(p, "ipc://", 6) == 0)) {
            snprintf(err, errlen,
                     "[%s] %s: \"%.*s\" is not an ipc:// or tcp:// endpoint (links between the "
                     "daemons use only these)",
                     section, key, (int)(n > 200 ? 200 : n), p);
            return -EINVAL;
        }
        p += strcspn(p, ",");
    }
    return 0;
}

int og_link_keys_read(const struct og_config *cfg, const char *section, const char *listen,
                      const char *next, const char *next_endpoint, struct og_link_keys *k,
                      char *err, size_t errlen)
{
    char key[64], why[400];
    bool listen_tcp = false, next_tcp = false;

    memset(k, 0, sizeof(*k));
    if (listen && check_endpoints(section, "listen", listen, &listen_tcp, err, errlen) < 0)
        return -EINVAL;
    if (next && check_endpoints(section, next, next_endpoint, &next_tcp, err, errlen) < 0)
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
        if (!secret_file != !clients) {
            snprintf(err, errlen,
                     "[%s] link_secret_key_file and link_clients_file go together: the "
                     "daemons that connect to listen are let in by their keys",
                     section);
            goto fail;
        }
        if (listen_tcp && !clients) {
            snprintf(err, errlen,
                     "[%s] listen \"%s\": a link on tcp:// needs CURVE: set link_secret_key_file "
                     "and link_clients_file (docs/operating.md, \"Links between hosts\"), or use "
                     "ipc://",
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
        if (next_tcp && !server_file) {
            snprintf(err, errlen,
                     "[%s] %s \"%s\": a link on tcp:// needs CURVE: set link_secret_key_file and "
                     "%s (docs/operating.md, \"Links between hosts\"), or use ipc://",
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
