/* `onegridctl keygen`: CURVE key pairs for publishers and for onegrid-intake, and reading
 * them back for `onegridctl publish`; Ed25519 key pairs that onegrid-archive signs the
 * chain links with (`keygen --signing`). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "chainsig.h"
#include "onegridctl.h"
#include "util.h"
#include "zsock.h"

int og_read_key(const char *arg, bool secret, char key[41], char *err, size_t errlen)
{
    if (og_curve_key_check(arg) == 0) {
        /* A secret on the command line is seen by every user of the host (ps,
         * /proc/PID/cmdline) and kept in shell histories. */
        if (secret) {
            snprintf(err, errlen,
                     "a secret key is read from a file only (mode 0600, as `onegridctl keygen "
                     "--out FILE` writes it), never given on the command line");
            return -1;
        }
        memcpy(key, arg, 41); /* a public key may be given itself */
        return 0;
    }
    return secret ? og_curve_key_read(arg, key, err, errlen)
                  : og_curve_public_key_read(arg, key, err, errlen);
}

static int write_file(const char *path, mode_t mode, const char *text, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
    size_t len = strlen(text);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (write(fd, text, len) != (ssize_t)len || fsync(fd) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    return close(fd) == 0 ? 0 : -1;
}

/* PREFIX.sign.secret (the seed in hex, mode 0600) and PREFIX.sign.public (the public key
 * in hex); prints the public key. */
static int keygen_signing(const char *prefix)
{
    uint8_t pk[OG_CHAINSIG_PUBLIC_BYTES], sk[OG_CHAINSIG_SECRET_BYTES];
    char pk_hex[2 * sizeof(pk) + 1], seed_hex[2 * crypto_sign_SEEDBYTES + 1];
    char text[512], err[512], secret[4096], public[4096];
    int rc = OG_EXIT_FAIL;

    if (sodium_init() < 0) {
        fprintf(stderr, "onegridctl keygen: libsodium could not be initialised\n");
        return OG_EXIT_FAIL;
    }
    if ((size_t)snprintf(secret, sizeof(secret), "%s.sign.secret", prefix) >= sizeof(secret) ||
        (size_t)snprintf(public, sizeof(public), "%s.sign.public", prefix) >= sizeof(public)) {
        fprintf(stderr, "onegridctl keygen: \"%s\" is too long\n", prefix);
        return OG_EXIT_USAGE;
    }
    crypto_sign_keypair(pk, sk);
    og_hex(pk, sizeof(pk), pk_hex);
    og_hex(sk, crypto_sign_SEEDBYTES, seed_hex); /* libsodium's secret key starts with it */
    snprintf(text, sizeof(text),
             "%s\n# onegrid chain-signing secret key (Ed25519 seed), for onegrid-archive only "
             "([archive] signing_key); its public key: %s\n",
             seed_hex, pk_hex);
    if (write_file(secret, 0600, text, err, sizeof(err)) < 0)
        goto fail;
    snprintf(text, sizeof(text), "%s\n", pk_hex);
    if (write_file(public, 0644, text, err, sizeof(err)) < 0) {
        unlink(secret);
        goto fail;
    }
    printf("%s\n", pk_hex);
    rc = OG_EXIT_OK;
    goto done;
fail:
    fprintf(stderr, "onegridctl keygen: %s\n", err);
done:
    sodium_memzero(sk, sizeof(sk));
    sodium_memzero(seed_hex, sizeof(seed_hex));
    sodium_memzero(text, sizeof(text));
    return rc;
}

int og_cmd_keygen(int argc, char **argv)
{
    static const struct option opts[] = {{"out", required_argument, NULL, 'o'},
                                         {"signing", required_argument, NULL, 's'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *usage =
        "usage: onegridctl keygen --out FILE\n"
        "       onegridctl keygen --signing PREFIX\n"
        "  --out      makes a CURVE key pair: FILE holds the secret key (mode 0600; give it\n"
        "             to the publisher or to onegrid-intake only), FILE.pub the public key,\n"
        "             which is also printed.\n"
        "  --signing  makes the Ed25519 key pair onegrid-archive signs the hash chains with:\n"
        "             PREFIX.sign.secret (mode 0600; for onegrid-archive's [archive]\n"
        "             signing_key only) and PREFIX.sign.public (for auditors: `audit verify\n"
        "             --public-key`); the public key is also printed.\n"
        "  No file may exist yet.\n";
    const char *out = NULL, *signing = NULL;
    char pub[41], sec[41], text[256], err[512], path[4096];
    int c, rc = OG_EXIT_FAIL;

    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        if (c == 'o')
            out = optarg;
        else if (c == 's')
            signing = optarg;
        else {
            fputs(usage, c == 'h' ? stdout : stderr);
            return c == 'h' ? OG_EXIT_OK : OG_EXIT_USAGE;
        }
    }
    if (!out == !signing || optind != argc) {
        fputs(usage, stderr);
        return OG_EXIT_USAGE;
    }
    /* An empty name would write hidden ".sign.secret" files, or "" and ".pub", into the
     * working directory. */
    if (!*(out ? out : signing)) {
        fprintf(stderr, "onegridctl keygen: %s: give a file name, not an empty one\n",
                out ? "--out" : "--signing");
        return OG_EXIT_USAGE;
    }
    if (signing)
        return keygen_signing(signing);
    if (zmq_curve_keypair(pub, sec) != 0) {
        fprintf(stderr, "onegridctl keygen: %s (libzmq without CURVE?)\n", zmq_strerror(errno));
        return OG_EXIT_FAIL;
    }
    snprintf(text, sizeof(text), "%s\n# onegrid CURVE secret key; its public key: %s\n", sec, pub);
    if (write_file(out, 0600, text, err, sizeof(err)) < 0)
        goto fail;
    snprintf(path, sizeof(path), "%s.pub", out);
    snprintf(text, sizeof(text), "%s\n", pub);
    if (write_file(path, 0644, text, err, sizeof(err)) < 0) {
        unlink(out);
        goto fail;
    }
    printf("%s\n", pub);
    rc = OG_EXIT_OK;
    goto done;
fail:
    fprintf(stderr, "onegridctl keygen: %s\n", err);
done:
    sodium_memzero(sec, sizeof(sec));
    sodium_memzero(text, sizeof(text));
    return rc;
}
