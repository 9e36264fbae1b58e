/* flood: a test tool that tries to make onegrid-intake hold memory it should not, for
 * tests/integration/flood.sh. Each mode is one attack seen from outside; each prints one
 * line when it ends ("dropped after N bytes" or "held N bytes for S s").
 *
 *   flood handshake ENDPOINT CONNECTIONS SIZE [--curve] [--hold S]
 *       CONNECTIONS raw connections that send a ZMTP 3.0 greeting (mechanism NULL, or
 *       CURVE) and then one command frame declaring SIZE bytes, and send all of it but the
 *       last byte: no handshake ever completes, and every frame stays half-received.
 *   flood conns ENDPOINT CONNECTIONS [--hold S]
 *       CONNECTIONS raw connections that complete the handshake (mechanism NULL) and then
 *       send nothing.
 *   flood parts ENDPOINT SIZE [--hold S] [--max BYTES]
 *       one raw connection (mechanism NULL: a server without CURVE) that completes the
 *       handshake and then sends frames of SIZE bytes, each flagged "more": one message
 *       that never ends. Stops at BYTES sent (default: never) or when dropped.
 *   flood fill ENDPOINT CONNECTIONS SIZE [--from ADDRESS] [--hold S]
 *       CONNECTIONS raw connections (mechanism NULL), each sending one-frame messages of
 *       SIZE bytes, each different, for as long as intake takes them: against an intake
 *       that does not read (dispatch stopped), every connection full. --from: the local
 *       address to connect from (127.0.0.2 and on are this host too).
 *   flood big ENDPOINT SIZE COUNT [--curve SERVER-PUBLIC-KEY-FILE KEY-FILE] [--hold S]
 *       a ZeroMQ DEALER (a publisher, with CURVE when given keys) that sends COUNT
 *       one-frame messages of SIZE bytes, each different, as fast as they are taken (a
 *       send that waits 2 s ends it) and never reads an answer, then stays connected for
 *       S seconds (default 0) and disconnects.
 *
 * ENDPOINT is tcp://HOST:PORT or ipc://PATH. --hold S: after sending, keep the
 * connections open S seconds (default 60 for handshake and parts), or until stdin is
 * closed when S is 0. The tool exits 0 whether or not intake dropped it: the test judges
 * intake by its memory and its log. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "zsock.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "flood: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* The local address tcp:// connections are made from (--from), or NULL. */
static const char *from_address;

/* A connected stream socket to ENDPOINT, or -1. */
static int dial(const char *ep)
{
    int fd;
    if (strncmp(ep, "ipc://", 6) == 0) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", ep + 6);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
            die(ep);
        return fd;
    }
    char host[256];
    const char *colon = strrchr(ep, ':');
    if (strncmp(ep, "tcp://", 6) != 0 || !colon || colon - ep - 6 >= (long)sizeof(host)) {
        fprintf(stderr, "flood: \"%s\": expected tcp://HOST:PORT or ipc://PATH\n", ep);
        exit(2);
    }
    snprintf(host, sizeof(host), "%.*s", (int)(colon - ep - 6), ep + 6);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "flood: \"%s\": an IPv4 address is needed\n", host);
        exit(2);
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && from_address) {
        struct sockaddr_in local = {.sin_family = AF_INET};
        if (inet_pton(AF_INET, from_address, &local.sin_addr) != 1 ||
            bind(fd, (struct sockaddr *)&local, sizeof(local)) != 0)
            die(from_address);
    }
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        die(ep);
    return fd;
}

/* Writes all of buf, waiting while the peer's window is full. false once the peer
 * dropped the connection. */
static bool drain(int fd);

/* Sends all of buf; false once the peer closed the connection. Never blocks for ever: a
 * server that stops reading and then says goodbye (shutdown, a FIN) would leave a blocking
 * send waiting with a full buffer, never to see the FIN (seen under ASan, quiet machine). */
static bool put(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pf = {fd, POLLOUT | POLLIN | POLLRDHUP, 0};
            if (poll(&pf, 1, 1000) < 0 && errno != EINTR)
                return false;
            if ((pf.revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR)) && !drain(fd))
                return false;
            continue;
        }
        return false;
    }
    return true;
}

/* Reads and drops whatever the peer sent; false once it closed the connection. */
static bool drain(int fd)
{
    uint8_t buf[4096];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0)
            continue;
        if (n == 0)
            return false;
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    }
}

static void greeting(int fd, const char *mechanism)
{
    uint8_t g[64] = {0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0};
    memcpy(g + 12, mechanism, strlen(mechanism));
    if (!put(fd, g, sizeof(g)))
        die("greeting");
}

/* A frame header: flags (0x01 more, 0x04 command) and the body's size. */
static size_t frame_header(uint8_t *h, uint8_t flags, uint64_t size)
{
    if (size < 256) {
        h[0] = flags;
        h[1] = (uint8_t)size;
        return 2;
    }
    h[0] = flags | 0x02;
    for (int i = 0; i < 8; i++)
        h[1 + i] = (uint8_t)(size >> (56 - 8 * i));
    return 9;
}

/* Waits until hold seconds passed (0: until stdin closes) or every connection in fds[]
 * was dropped (fds[i] set to -1 then); returns how many are still open. */
static int hold(int *fds, int n, double hold_s)
{
    double until = now_s() + hold_s;
    for (;;) {
        int open = 0;
        for (int i = 0; i < n; i++) {
            if (fds[i] >= 0 && !drain(fds[i])) {
                close(fds[i]);
                fds[i] = -1;
            }
            open += fds[i] >= 0;
        }
        if (!open)
            return 0;
        if (hold_s > 0 && now_s() >= until)
            return open;
        struct pollfd p = {hold_s > 0 ? -1 : 0, POLLIN, 0};
        poll(&p, 1, 50);
        if (hold_s <= 0 && (p.revents & (POLLIN | POLLHUP))) {
            char c;
            if (read(0, &c, 1) <= 0)
                return open;
        }
    }
}

static int handshake(const char *ep, int conns, uint64_t size, bool curve, double hold_s)
{
    int *fds = calloc((size_t)conns, sizeof(int));
    uint8_t *junk = calloc(1, 65536), h[9];
    uint64_t sent = 0;
    int dropped = 0;

    if (!fds || !junk || size < 2)
        return 2;
    memset(junk, 'x', 65536);
    for (int i = 0; i < conns; i++) {
        fds[i] = dial(ep);
        greeting(fds[i], curve ? "CURVE" : "NULL");
        /* A command frame ("HELLO" or "READY" by its first bytes) far too large. */
        size_t hl = frame_header(h, 0x04, size);
        bool ok = put(fds[i], h, hl) && put(fds[i], curve ? "\x05HELLO" : "\x05READY", 6);
        for (uint64_t left = size - 6 - 1; ok && left;) {
            size_t chunk = left < 65536 ? (size_t)left : 65536;
            ok = put(fds[i], junk, chunk);
            left -= chunk;
            sent += chunk;
        }
        if (!ok) {
            close(fds[i]);
            fds[i] = -1;
            dropped++;
        }
    }
    int open = hold(fds, conns, hold_s);
    printf("handshake: %d connections, %d dropped while sending, %d dropped later, %d held; "
           "%llu bytes sent\n",
           conns, dropped, conns - dropped - open, open, (unsigned long long)sent);
    free(fds);
    free(junk);
    return 0;
}

/* A raw connection that did the NULL mechanism's handshake as a DEALER, or -1. */
static int null_dealer(const char *ep)
{
    static const uint8_t ready[] = {0x04, 28,  5,   'R', 'E', 'A', 'D', 'Y', 11,  'S',
                                    'o',  'c', 'k', 'e', 't', '-', 'T', 'y', 'p', 'e',
                                    0,    0,   0,   6,   'D', 'E', 'A', 'L', 'E', 'R'};
    uint8_t in[512];
    size_t got = 0;
    int fd = dial(ep);

    /* A connection refused at once (intake keeps too many) fails here. */
    uint8_t g[64] = {0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0, 'N', 'U', 'L', 'L'};
    if (!put(fd, g, sizeof(g)) || !put(fd, ready, sizeof(ready))) {
        close(fd);
        return -1;
    }
    /* Frames that arrive before the server's READY went out are taken for handshake
     * commands: wait for it. */
    while (got < 64 + 8 || !memmem(in + 64, got - 64, "READY", 5)) {
        ssize_t n = recv(fd, in + got, sizeof(in) - got, 0);
        if (n <= 0 || got + (size_t)n == sizeof(in)) {
            close(fd);
            return -1;
        }
        got += (size_t)n;
    }
    return fd;
}

static int conns(const char *ep, int n, double hold_s)
{
    int *fds = calloc((size_t)n, sizeof(int)), refused = 0;
    if (!fds)
        return 2;
    for (int i = 0; i < n; i++) {
        fds[i] = null_dealer(ep);
        refused += fds[i] < 0;
    }
    int open = hold(fds, n, hold_s);
    printf("conns: %d connections, %d refused at once, %d dropped later, %d held\n", n, refused,
           n - refused - open, open);
    free(fds);
    return 0;
}

static int parts(const char *ep, size_t size, uint64_t max, double hold_s)
{
    uint8_t *frame = malloc(size + 9);
    uint64_t sent = 0;
    double t0 = now_s();
    int fd = null_dealer(ep);

    if (!frame)
        return 2;
    if (fd < 0) {
        printf("parts: no handshake (dropped at once)\n");
        return 0;
    }
    size_t hl = frame_header(frame, 0x01, size);
    memset(frame + hl, 'y', size);
    bool ok = true;
    while (ok && (!max || sent < max)) {
        ok = put(fd, frame, hl + size) && drain(fd);
        if (ok)
            sent += hl + size;
    }
    if (!ok) {
        printf("parts: dropped after %llu bytes in %.1f s\n", (unsigned long long)sent,
               now_s() - t0);
        free(frame);
        return 0;
    }
    int open = hold(&fd, 1, hold_s);
    printf("parts: %s after %llu bytes\n", open ? "held" : "dropped while holding",
           (unsigned long long)sent);
    if (fd >= 0)
        close(fd);
    free(frame);
    return 0;
}

/* Sends messages on every connection, round and round, until none took a byte for 2 s. */
static int fill(const char *ep, int n, size_t size, double hold_s)
{
    int *fds = calloc((size_t)n, sizeof(int)), refused = 0;
    size_t *off = calloc((size_t)n, sizeof(size_t));
    uint8_t *msg = malloc(size + 9);
    uint64_t sent = 0;

    if (!fds || !off || !msg)
        return 2;
    for (int i = 0; i < n; i++) {
        fds[i] = null_dealer(ep);
        refused += fds[i] < 0;
    }
    size_t hl = frame_header(msg, 0x00, size), len = hl + size;
    memset(msg + hl, 'f', size);
    double idle_since = now_s();
    while (now_s() - idle_since < 2) {
        bool moved = false;
        for (int i = 0; i < n; i++) {
            if (fds[i] < 0)
                continue;
            if (!drain(fds[i])) {
                close(fds[i]);
                fds[i] = -1;
                continue;
            }
            if (off[i] == 0) /* a new message: each one differs */
                memcpy(msg + hl, &sent, size < sizeof(sent) ? size : sizeof(sent));
            ssize_t k = send(fds[i], msg + off[i], len - off[i], MSG_NOSIGNAL | MSG_DONTWAIT);
            if (k > 0) {
                moved = true;
                off[i] += (size_t)k;
                if (off[i] == len) {
                    off[i] = 0;
                    sent++;
                }
            } else if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                close(fds[i]);
                fds[i] = -1;
            }
        }
        if (moved)
            idle_since = now_s();
        else
            usleep(10000);
    }
    int open = 0;
    for (int i = 0; i < n; i++)
        open += fds[i] >= 0;
    printf("fill: %d connections, %d refused at once, %d dropped while sending; %llu messages "
           "of %zu bytes sent\n",
           n, refused, n - refused - open, (unsigned long long)sent, size);
    open = hold(fds, n, hold_s);
    printf("fill: %d held\n", open);
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
    free(off);
    free(msg);
    return 0;
}

static int big(const char *ep, size_t size, long count, const char *server_key_file,
               const char *key_file, double hold_s)
{
    char server[41], secret[41], public[41], err[256];
    void *ctx = zmq_ctx_new(), *s;
    uint8_t *buf = malloc(size ? size : 1);
    long sent = 0;
    double t0 = now_s();

    if (!buf)
        return 2;
    memset(buf, 'z', size);
    if (server_key_file) {
        if (og_curve_public_key_read(server_key_file, server, err, sizeof(err)) < 0 ||
            og_curve_key_read(key_file, secret, err, sizeof(err)) < 0 ||
            zmq_curve_public(public, secret) != 0) {
            fprintf(stderr, "flood: %s\n", err);
            return 2;
        }
    }
    s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0, hwm = 1000, to = 2000;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(s, ZMQ_SNDTIMEO, &to, sizeof(to));
    if (server_key_file) {
        zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server, 40);
        zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, public, 40);
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, secret, 40);
    }
    if (zmq_connect(s, ep) != 0)
        die(ep);
    /* Blocking sends with a timeout: as fast as intake (or TCP) takes them. Each message
     * differs (a counter in front), so that none is a copy of another to intake. */
    while (sent < count) {
        memcpy(buf, &sent, size < sizeof(sent) ? size : sizeof(sent));
        if (zmq_send(s, buf, size, 0) < 0)
            break;
        sent++;
    }
    printf("big: %ld of %ld messages of %zu bytes taken in %.1f s\n", sent, count, size,
           now_s() - t0);
    fflush(stdout);
    if (hold_s > 0) {
        double until = now_s() + hold_s;
        while (now_s() < until)
            usleep(50000);
    }
    zmq_close(s);
    zmq_ctx_term(ctx);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    double hold_s = -1;
    uint64_t max = 0;
    bool curve = false;
    const char *server_key = NULL, *key = NULL;
    char *pos[8];
    int npos = 0;

    signal(SIGPIPE, SIG_IGN);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--hold") == 0 && i + 1 < argc)
            hold_s = atof(argv[++i]);
        else if (strcmp(argv[i], "--from") == 0 && i + 1 < argc)
            from_address = argv[++i];
        else if (strcmp(argv[i], "--max") == 0 && i + 1 < argc)
            max = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--curve") == 0 && npos && strcmp(pos[0], "big") == 0 &&
                 i + 2 < argc) {
            server_key = argv[++i];
            key = argv[++i];
        } else if (strcmp(argv[i], "--curve") == 0)
            curve = true;
        else if (npos < 8)
            pos[npos++] = argv[i];
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (npos == 4 && strcmp(pos[0], "handshake") == 0)
        return handshake(pos[1], atoi(pos[2]), strtoull(pos[3], NULL, 10), curve,
                         hold_s < 0 ? 60 : hold_s);
    if (npos == 3 && strcmp(pos[0], "conns") == 0)
        return conns(pos[1], atoi(pos[2]), hold_s < 0 ? 60 : hold_s);
    if (npos == 3 && strcmp(pos[0], "parts") == 0)
        return parts(pos[1], strtoul(pos[2], NULL, 10), max, hold_s < 0 ? 60 : hold_s);
    if (npos == 4 && strcmp(pos[0], "fill") == 0)
        return fill(pos[1], atoi(pos[2]), strtoul(pos[3], NULL, 10), hold_s < 0 ? 60 : hold_s);
    if (npos == 4 && strcmp(pos[0], "big") == 0)
        return big(pos[1], strtoul(pos[2], NULL, 10), atol(pos[3]), server_key, key,
                   hold_s < 0 ? 0 : hold_s);
    fprintf(stderr, "usage: flood handshake ENDPOINT CONNECTIONS SIZE [--curve] [--hold S]\n"
                    "       flood conns ENDPOINT CONNECTIONS [--hold S]\n"
                    "       flood parts ENDPOINT SIZE [--max BYTES] [--hold S]\n"
                    "       flood fill ENDPOINT CONNECTIONS SIZE [--from ADDRESS] [--hold S]\n"
                    "       flood big ENDPOINT SIZE COUNT [--curve SERVER-KEY KEY] [--hold S]\n");
    return 2;
}
