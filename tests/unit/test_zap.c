/* Unit tests for the ZAP handler (daemons/common/zap.c) over real CURVE sockets in a
 * private directory: a listed key gets in under its name; an unlisted key does not; and a
 * listed key does not get into another CURVE socket of the same process that asks under
 * another ZAP domain (the handler used to answer every domain alike). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include <cmocka.h>

#include "util.h"
#include "zap.h"
#include "zsock.h"

struct fixture {
    char dir[64], file[128], ep_intake[128], ep_other[128];
    char server_public[41], server_secret[41], listed_public[41], listed_secret[41];
    void *ctx, *intake, *other;
    struct og_zap *zap;
    void *client;            /* the test's client, closed by teardown even after a failure */
    struct og_zmonitor *mon; /* its monitor */
    char logged[512];        /* the handler's last refusal line */
    int n_logged;
};

static void log_line(void *arg, const char *line)
{
    struct fixture *fx = arg;
    snprintf(fx->logged, sizeof(fx->logged), "%s", line);
    fx->n_logged++;
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    char err[256];
    FILE *f;

    snprintf(fx->dir, sizeof(fx->dir), "/tmp/og-zap-XXXXXX");
    if (!fx || !mkdtemp(fx->dir))
        return -1;
    snprintf(fx->file, sizeof(fx->file), "%s/publishers", fx->dir);
    snprintf(fx->ep_intake, sizeof(fx->ep_intake), "ipc://%s/intake.sock", fx->dir);
    snprintf(fx->ep_other, sizeof(fx->ep_other), "ipc://%s/other.sock", fx->dir);
    zmq_curve_keypair(fx->server_public, fx->server_secret);
    zmq_curve_keypair(fx->listed_public, fx->listed_secret);
    if (!(f = fopen(fx->file, "w")))
        return -1;
    fprintf(f, "%s zongzhi zz-app\n", fx->listed_public);
    fclose(f);
    fx->ctx = zmq_ctx_new();
    struct og_zap_opts zo = {.keys_file = fx->file,
                             .domain = "onegrid",
                             .peer = "publisher",
                             .log = log_line,
                             .log_arg = fx};
    fx->zap = og_zap_new(fx->ctx, &zo, err, sizeof(err));
    fx->intake = fx->zap ? og_router_new_curve(fx->ctx, fx->ep_intake, 1 << 20, fx->server_secret,
                                               "onegrid", err, sizeof(err))
                         : NULL;
    /* Another CURVE server of the same process, under a ZAP domain of its own. */
    fx->other = fx->intake ? og_router_new_curve(fx->ctx, fx->ep_other, 1 << 20, fx->server_secret,
                                                 "elsewhere", err, sizeof(err))
                           : NULL;
    if (!fx->other) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    char path[160];
    og_zmonitor_destroy(&fx->mon, fx->client);
    if (fx->client)
        zmq_close(fx->client);
    zmq_close(fx->intake);
    zmq_close(fx->other);
    og_zap_destroy(&fx->zap);
    zmq_ctx_term(fx->ctx);
    unlink(fx->file);
    snprintf(path, sizeof(path), "%s/intake.sock", fx->dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/other.sock", fx->dir);
    unlink(path);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

/* A CURVE client with the given secret key, connected to endpoint, and its monitor
 * (fx->client, fx->mon). */
static void *client(struct fixture *fx, const char *endpoint, const char *secret,
                    struct og_zmonitor **mon)
{
    char public[41], err[256];
    assert_int_equal(zmq_curve_public(public, secret), 0);
    fx->client =
        og_dealer_new_curve(fx->ctx, endpoint, fx->server_public, public, secret, err, sizeof(err));
    assert_non_null(fx->client);
    fx->mon = og_zmonitor_new_events(
        fx->ctx, fx->client, ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH, err,
        sizeof(err));
    assert_non_null(fx->mon);
    *mon = fx->mon;
    return fx->client;
}

/* Runs the handler until the client's monitor reports its handshake's end (5 s at most);
 * returns the event: ZMQ_EVENT_HANDSHAKE_SUCCEEDED, or _FAILED_AUTH with *status set. */
static unsigned handshake(struct fixture *fx, struct og_zmonitor *mon, uint32_t *status)
{
    int64_t until = og_mono_us() + 5000000;
    struct og_zevent ev;
    while (og_mono_us() < until) {
        zmq_pollitem_t items[2] = {{og_zap_socket(fx->zap), 0, ZMQ_POLLIN, 0},
                                   {og_zmonitor_socket(mon), 0, ZMQ_POLLIN, 0}};
        zmq_poll(items, 2, 50);
        og_zap_handle(fx->zap, og_mono_us());
        if (og_zmonitor_next(mon, &ev)) {
            *status = ev.value;
            return ev.event;
        }
    }
    fail_msg("no handshake result within 5 s");
    return 0;
}

static void test_listed_key_in_its_domain(void **state)
{
    struct fixture *fx = *state;
    struct og_zmonitor *mon;
    uint32_t status;
    void *c = client(fx, fx->ep_intake, fx->listed_secret, &mon);

    assert_int_equal(handshake(fx, mon, &status), ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
    /* Its messages carry the name the publishers file gives it. */
    int64_t until = og_mono_us() + 5000000;
    struct og_zmsg m;
    int rc = -EAGAIN;
    assert_int_equal(zmq_send(c, "hi", 2, 0), 2);
    while (rc < 0 && og_mono_us() < until) {
        zmq_pollitem_t item = {fx->intake, 0, ZMQ_POLLIN, 0};
        zmq_poll(&item, 1, 50);
        rc = og_zrecv(fx->intake, &m);
    }
    assert_int_equal(rc, 0);
    assert_string_equal(m.user_id, "zz-app");
    assert_string_equal(og_zap_source(fx->zap, m.user_id), "zongzhi");
    og_zmsg_close(&m);
}

static void test_unlisted_key(void **state)
{
    struct fixture *fx = *state;
    char public[41], secret[41];
    struct og_zmonitor *mon;
    uint32_t status;

    zmq_curve_keypair(public, secret);
    void *c = client(fx, fx->ep_intake, secret, &mon);
    assert_int_equal(handshake(fx, mon, &status), ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
    assert_int_equal(status, 400);
    /* The refusal reaches the caller's log, naming the key and the file it is not in. */
    assert_int_equal(fx->n_logged, 1);
    assert_non_null(strstr(fx->logged, "refusing a publisher from "));
    assert_non_null(strstr(fx->logged, public));
    assert_non_null(strstr(fx->logged, fx->file));
    (void)c;
}

static void test_listed_key_other_domain(void **state)
{
    struct fixture *fx = *state;
    struct og_zmonitor *mon;
    uint32_t status;
    void *c = client(fx, fx->ep_other, fx->listed_secret, &mon);

    assert_int_equal(handshake(fx, mon, &status), ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
    assert_int_equal(status, 400);
    (void)c;
}

static void test_bad_domain_argument(void **state)
{
    struct fixture *fx = *state;
    char err[256];
    struct og_zap_opts zo = {.keys_file = fx->file, .domain = ""};
    assert_null(og_zap_new(fx->ctx, &zo, err, sizeof(err)));
    assert_non_null(strstr(err, "ZAP domain"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_listed_key_in_its_domain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unlisted_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listed_key_other_domain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_domain_argument, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
