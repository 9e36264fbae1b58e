/* Unit tests for daemons/common/chainsig.c: the signed message (expected texts written by
 * hand from the netstring rule, not with the code under test), the key files (RFC 8032's
 * first Ed25519 test vector), and the refusal of a secret key file others may read. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "chainsig.h"

/* RFC 8032, section 7.1, TEST 1. */
static const char SEED[] = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
static const char PUBLIC[] = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

static char dir[] = "/tmp/test_chainsig.XXXXXX";

static int setup(void **state)
{
    (void)state;
    return sodium_init() < 0 || !mkdtemp(dir) ? -1 : 0;
}

static int teardown(void **state)
{
    char cmd[64];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Writes text to dir/name with mode; returns the path (static buffer). */
static const char *file(const char *name, const char *text, mode_t mode)
{
    static char path[128];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    unlink(path);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

static void message(void **state)
{
    uint8_t hash[32];
    char out[OG_CHAINSIG_MESSAGE_MAX];
    static const char want[] =
        "21:onegrid.chain.head.v1,6:650203,1:2,1:2,1:2,"
        "64:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f,";
    static const char want2[] =
        "21:onegrid.chain.head.v1,10:shard:6502,2:12,16:9007199254740993,1:2,"
        "64:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff,";
    char long_chain[OG_CHAINSIG_CHAIN_MAX + 2];
    int n;

    (void)state;
    for (int i = 0; i < 32; i++)
        hash[i] = (uint8_t)i;
    n = og_chainsig_message("650203", 2, 2, 2, hash, out);
    assert_int_equal(n, (int)strlen(want));
    assert_memory_equal(out, want, strlen(want));
    memset(hash, 0xff, sizeof(hash));
    n = og_chainsig_message("shard:6502", 12, 9007199254740993LL, 2, hash, out);
    assert_int_equal(n, (int)strlen(want2));
    assert_memory_equal(out, want2, strlen(want2));

    /* The longest chain name fits; one byte more is refused. */
    memset(long_chain, 'x', sizeof(long_chain) - 1);
    long_chain[OG_CHAINSIG_CHAIN_MAX] = '\0';
    assert_true(og_chainsig_message(long_chain, INT64_MAX, INT64_MAX, 2, hash, out) > 0);
    long_chain[OG_CHAINSIG_CHAIN_MAX] = 'x';
    long_chain[OG_CHAINSIG_CHAIN_MAX + 1] = '\0';
    assert_int_equal(og_chainsig_message(long_chain, 1, 1, 2, hash, out), -ENAMETOOLONG);
}

static void secret_key(void **state)
{
    uint8_t sk[64], pk[32], want_pk[32], sig[64];
    char err[512], text[256], msg[OG_CHAINSIG_MESSAGE_MAX];
    const char *path;
    int n;

    (void)state;
    assert_int_equal(sodium_hex2bin(want_pk, 32, PUBLIC, 64, NULL, NULL, NULL), 0);
    snprintf(text, sizeof(text), "%s\n# a comment as keygen writes it\n", SEED);
    path = file("k.sign.secret", text, 0600);
    assert_int_equal(og_chainsig_secret_read(path, sk, pk, err, sizeof(err)), 0);
    assert_memory_equal(pk, want_pk, 32);
    /* What archive signs, verify accepts; a changed byte it does not. */
    n = og_chainsig_message("650203", 1, 1, 2, want_pk, msg);
    crypto_sign_detached(sig, NULL, (const uint8_t *)msg, (unsigned long long)n, sk);
    assert_int_equal(
        crypto_sign_verify_detached(sig, (const uint8_t *)msg, (unsigned long long)n, pk), 0);
    msg[30] ^= 1;
    assert_int_not_equal(
        crypto_sign_verify_detached(sig, (const uint8_t *)msg, (unsigned long long)n, pk), 0);

    path = file("k.sign.secret", text, 0400);
    assert_int_equal(og_chainsig_secret_read(path, sk, pk, err, sizeof(err)), 0);

    path = file("k.sign.secret", text, 0640);
    assert_int_equal(og_chainsig_secret_read(path, sk, pk, err, sizeof(err)), -EPERM);
    assert_non_null(strstr(err, "is open to its group or others (mode 0640)"));
    path = file("k.sign.secret", text, 0604);
    assert_int_equal(og_chainsig_secret_read(path, sk, pk, err, sizeof(err)), -EPERM);
    path = file("k.sign.secret", text, 0620);
    assert_int_equal(og_chainsig_secret_read(path, sk, pk, err, sizeof(err)), -EPERM);

    path = file("k.sign.secret", "not a key\n", 0600);
    assert_int_equal(og_chainsig_secret_read(path, sk, pk, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "the first line is not a secret key"));
    path = file("k.sign.secret", "9d61b19deffd5a60\n", 0600); /* too short */
    assert_int_equal(og_chainsig_secret_read(path, sk, pk, err, sizeof(err)), -EINVAL);
    assert_int_equal(og_chainsig_secret_read(dir, sk, pk, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "is not a regular file"));
    unlink(path);
    assert_int_equal(og_chainsig_secret_read(path, sk, pk, err, sizeof(err)), -ENOENT);
}

static void public_key(void **state)
{
    uint8_t pk[32], want[32];
    char err[512], text[128];

    (void)state;
    assert_int_equal(sodium_hex2bin(want, 32, PUBLIC, 64, NULL, NULL, NULL), 0);
    assert_int_equal(og_chainsig_public_read(PUBLIC, pk, err, sizeof(err)), 0);
    assert_memory_equal(pk, want, 32);
    snprintf(text, sizeof(text), "%s\n", PUBLIC);
    assert_int_equal(
        og_chainsig_public_read(file("k.sign.public", text, 0644), pk, err, sizeof(err)), 0);
    assert_memory_equal(pk, want, 32);
    assert_int_equal(
        og_chainsig_public_read(file("k.sign.public", "d75a98\n", 0644), pk, err, sizeof(err)),
        -EINVAL);
    assert_int_equal(og_chainsig_public_read("/nonexistent/k.sign.public", pk, err, sizeof(err)),
                     -ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(message),
        cmocka_unit_test(secret_key),
        cmocka_unit_test(public_key),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
