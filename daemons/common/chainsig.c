#include "chainsig.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

static const char PREFIX[] = "onegrid.chain.head.v1";

/* Appends s[0..len) as a netstring at out + *pos (the caller made room). */
static void netstring(char *out, size_t *pos, const char *s, size_t len)
{
    *pos += (size_t)sprintf(out + *pos, "%zu:", len);
    memcpy(out + *pos, s, len);
    *pos += len;
    out[(*pos)++] = ',';
}

int og_chainsig_message(const char *chain, int64_t seq, int64_t batch, int format,
                        const uint8_t hash[OG_CHAINSIG_HASH_BYTES],
                        char out[OG_CHAINSIG_MESSAGE_MAX])
{
    char num[24], hex[2 * OG_CHAINSIG_HASH_BYTES + 1];
    size_t pos = 0, chain_len = strlen(chain);

    /* 4 netstrings of at most 20 digits + the prefix + the chain + the hash: far below
     * the maximum for a chain of OG_CHAINSIG_CHAIN_MAX bytes. */
    if (chain_len > OG_CHAINSIG_CHAIN_MAX)
        return -ENAMETOOLONG;
    netstring(out, &pos, PREFIX, sizeof(PREFIX) - 1);
    netstring(out, &pos, chain, chain_len);
    netstring(out, &pos, num, (size_t)snprintf(num, sizeof(num), "%" PRId64, seq));
    netstring(out, &pos, num, (size_t)snprintf(num, sizeof(num), "%" PRId64, batch));
    netstring(out, &pos, num, (size_t)snprintf(num, sizeof(num), "%d", format));
    netstring(out, &pos, og_hex(hash, OG_CHAINSIG_HASH_BYTES, hex), 2 * OG_CHAINSIG_HASH_BYTES);
    return (int)pos;
}

/* The first line of fd, without its end of line, into line (size > 0). */
static int first_line(int fd, char *line, size_t size)
{
    ssize_t n = read(fd, line, size - 1);
    if (n < 0)
        return -errno;
    line[n] = '\0';
    line[strcspn(line, "\r\n")] = '\0';
    return 0;
}

/* 64 hex characters (and nothing else) into 32 bytes. */
static int unhex32(const char *s, uint8_t out[32])
{
    size_t len;
    if (strlen(s) != 64 || sodium_hex2bin(out, 32, s, 64, NULL, &len, NULL) != 0 || len != 32)
        return -EINVAL;
    return 0;
}

int og_chainsig_secret_read(const char *spec, uint8_t sk[OG_CHAINSIG_SECRET_BYTES],
                            uint8_t pk[OG_CHAINSIG_PUBLIC_BYTES], char *err, size_t errlen)
{
    char line[160], path[4096];
    uint8_t seed[crypto_sign_SEEDBYTES];
    struct stat st;
    int rc = og_secret_path(spec, path, sizeof(path), err, errlen);
    if (rc < 0)
        return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "could not open signing key file \"%s\": %s", path, strerror(-rc));
        return rc;
    }
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        snprintf(err, errlen, "could not stat signing key file \"%s\": %s", path, strerror(-rc));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = -EINVAL;
        snprintf(err, errlen, "signing key file \"%s\" is not a regular file", path);
        goto out;
    }
    if (!og_secret_mode_ok(spec, st.st_mode)) {
        rc = -EPERM;
        snprintf(err, errlen,
                 "signing key file \"%s\" is open to its group or others (mode %04o): "
                 "chmod 0600 it, or 0400",
                 path, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    rc = first_line(fd, line, sizeof(line));
    if (rc < 0) {
        snprintf(err, errlen, "could not read signing key file \"%s\": %s", path, strerror(-rc));
        goto out;
    }
    if (unhex32(line, seed) < 0) {
        rc = -EINVAL;
        snprintf(err, errlen,
                 "signing key file \"%s\": the first line is not a secret key (64 hex "
                 "characters, as `onegridctl keygen --signing` writes)",
                 path);
        goto out;
    }
    rc = crypto_sign_seed_keypair(pk, sk, seed) == 0 ? 0 : -EINVAL;
    if (rc < 0)
        snprintf(err, errlen, "signing key file \"%s\": not a usable key", path);
out:
    sodium_memzero(line, sizeof(line));
    sodium_memzero(seed, sizeof(seed));
    close(fd);
    return rc;
}

int og_chainsig_public_read(const char *arg, uint8_t pk[OG_CHAINSIG_PUBLIC_BYTES], char *err,
                            size_t errlen)
{
    char line[160];
    int fd, rc;

    if (unhex32(arg, pk) == 0) /* the key itself */
        return 0;
    fd = open(arg, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "could not open public key file \"%s\": %s", arg, strerror(-rc));
        return rc;
    }
    rc = first_line(fd, line, sizeof(line));
    close(fd);
    if (rc < 0) {
        snprintf(err, errlen, "could not read public key file \"%s\": %s", arg, strerror(-rc));
        return rc;
    }
    if (unhex32(line, pk) < 0) {
        snprintf(err, errlen,
                 "\"%s\": not a public key (64 hex characters, or a file whose first line "
                 "holds them, as `onegridctl keygen --signing` writes PREFIX.sign.public)",
                 arg);
        return -EINVAL;
    }
    return 0;
}
