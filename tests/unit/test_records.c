/* Unit tests for daemons/archive/records.c: the digests of a ledger row and of an event key
 * archive gives og.end_batch. The expected digests were computed by PostgreSQL 15 with the
 * expressions og.district_records hashes (og.ns netstrings, encode(body, 'hex'), sha256()),
 * not with the code under test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "records.h"
#include "util.h"

static void assert_digest(const uint8_t d[OG_RECORD_DIGEST_BYTES], const char *hex)
{
    char got[2 * OG_RECORD_DIGEST_BYTES + 1];
    assert_string_equal(og_hex(d, OG_RECORD_DIGEST_BYTES, got), hex);
}

static void ledger_rows(void **state)
{
    struct og_records *r = *state;
    uint8_t d[OG_RECORD_DIGEST_BYTES], body[1000];
    assert_int_equal(og_ledger_digest(r, d, 7, 1764547200000000, 1, "650203", "event",
                                      "650203-00000001", "12345", "e-1", "report",
                                      "{\"a\": \"中\"}", (const uint8_t *)"\x00\xff\x10", 3),
                     0);
    assert_digest(d, "fbaf17cbd6db618f1e5c07d5b808e9887e7da9ffc9a33c85743d168e56fdbe5e");
    /* NULLs ('-'); an empty body is "0:," */
    assert_int_equal(og_ledger_digest(r, d, 8, 1764547200000001, 1, "650203", "decision", NULL,
                                      "12345", "e-1", NULL, NULL, (const uint8_t *)"", 0),
                     0);
    assert_digest(d, "4921e6070e02e6813b770e88f64f1b556135c23ee57a22a4d5ed99d5b93d3895");
    /* A body longer than one piece of hex */
    for (size_t i = 0; i < sizeof(body); i++)
        body[i] = (uint8_t)i;
    assert_int_equal(og_ledger_digest(r, d, 9, 0, 2, "650203", "event", "c", "s", "i", "t", "{}",
                                      body, sizeof(body)),
                     0);
    assert_digest(d, "bd86152ecd296d30519f993ccbdccec30483b025e6d9ae89ef0c6648dd909eba");
}

static void event_keys(void **state)
{
    struct og_records *r = *state;
    uint8_t d[OG_RECORD_DIGEST_BYTES];
    assert_int_equal(
        og_event_key_digest(r, d, "12345", "e-1", "650203", "650203-00000001", 7, 1764547200000000),
        0);
    assert_digest(d, "20886b458e8e2bd294fb83e30e48ed89a47d19198876375b04655b8828f6d62e");
    assert_int_equal(og_event_key_digest(r, d, "12345", "e-1", "650203", NULL, -9, -1), 0);
    assert_digest(d, "1cb0b1baa468412ecb7cafbc9f9930c59ccc9e9b7942c9577d6c3ee59a775c03");
}

static int setup(void **state)
{
    *state = og_records_new();
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    og_records_free(*state);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(ledger_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(event_keys, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
