/* Unit tests for daemons/common/db.c: the parameters a daemon's connection is made with
 * (og_db_conn_params), read back from a real libpq connection object as libpq resolved
 * them. The connection goes to a Unix socket that does not exist: libpq resolves every
 * option before it tries, so no server is needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "db.h"

/* What libpq will use for keyword `key` when connecting with conninfo as onegrid does. */
static char *resolved(const char *conninfo, const char *key)
{
    const char *keys[OG_DB_CONN_PARAMS], *vals[OG_DB_CONN_PARAMS];
    char *v = NULL;
    size_t n = og_db_conn_params(conninfo, "onegrid-test", keys, vals);

    assert_true(n < OG_DB_CONN_PARAMS);
    assert_null(keys[n]);
    PGconn *c = PQconnectStartParams(keys, vals, 1);
    assert_non_null(c);
    PQconninfoOption *opts = PQconninfo(c);
    assert_non_null(opts);
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, key) == 0 && o->val)
            v = strdup(o->val);
    PQconninfoFree(opts);
    PQfinish(c);
    return v ? v : strdup("(unset)");
}

static void expect(const char *conninfo, const char *key, const char *want)
{
    char *got = resolved(conninfo, key);
    if (strcmp(got, want) != 0)
        fail_msg("%s with \"%s\": \"%s\", expected \"%s\"", key, conninfo, got, want);
    free(got);
}

#define NOWHERE "host=/nonexistent/onegrid dbname=onegrid"

/* A network that drops everything must end a connection in bounded time: without a
 * conninfo of its own, a connection carries keepalives and a user timeout. */
static void test_lost_network_defaults(void **state)
{
    (void)state;
    expect(NOWHERE, "tcp_user_timeout", "30000");
    expect(NOWHERE, "keepalives", "1");
    expect(NOWHERE, "keepalives_idle", "15");
    expect(NOWHERE, "keepalives_interval", "5");
    expect(NOWHERE, "keepalives_count", "3");
    expect(NOWHERE, "connect_timeout", "5");
}

/* The operator's conninfo wins over those defaults, in either form. */
static void test_conninfo_overrides_defaults(void **state)
{
    (void)state;
    expect(NOWHERE " tcp_user_timeout=0 keepalives_idle=60", "tcp_user_timeout", "0");
    expect(NOWHERE " tcp_user_timeout=0 keepalives_idle=60", "keepalives_idle", "60");
    expect(NOWHERE " connect_timeout=20", "connect_timeout", "20");
    expect("postgresql:///onegrid?host=/nonexistent/onegrid&tcp_user_timeout=10000",
           "tcp_user_timeout", "10000");
    expect("postgresql:///onegrid?host=/nonexistent/onegrid&tcp_user_timeout=10000", "dbname",
           "onegrid");
    /* A bare database name is a database name, with the defaults. */
    expect("onegrid", "dbname", "onegrid");
    expect("onegrid", "tcp_user_timeout", "30000");
}

/* What onegrid relies on is not the conninfo's to change: the application name that
 * pg_stat_activity and the tests find a daemon's session by, and UTF-8. */
static void test_onegrid_settings_win(void **state)
{
    (void)state;
    expect(NOWHERE " application_name=other client_encoding=LATIN1", "application_name",
           "onegrid-test");
    expect(NOWHERE " application_name=other client_encoding=LATIN1", "client_encoding", "UTF8");
    expect(NOWHERE, "host", "/nonexistent/onegrid");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lost_network_defaults),
        cmocka_unit_test(test_conninfo_overrides_defaults),
        cmocka_unit_test(test_onegrid_settings_win),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
