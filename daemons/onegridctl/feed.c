/* `onegridctl feed`: a handling unit's assignments (feed.assignments, deploy/sql/current) after a
 * sequence number, as JSON Lines; with --follow it then waits (LISTEN) and prints new ones
 * as they are committed. A subscriber that remembers the last seq it processed and starts
 * again with --after it misses nothing: the numbers are given at commit, in commit order
 * (013), so no row becomes visible after one with a higher seq. That is what makes reading
 * "seq > last" in pages, each statement with a snapshot of its own, safe. A login reads
 * only the units granted to it. */
#include <errno.h>
#include <getopt.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

#include "db.h"
#include "onegridctl.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

/* Each line's keys are the view's columns, in its order (feed.sh checks them). */
static const char SQL_AFTER[] =
    "SELECT seq, json_build_object('seq', seq, 'unit_code', unit_code, 'kind', kind, "
    "'case_id', case_id, 'state', state, 'deadline_at', deadline_at, 'recorded_at', "
    "recorded_at, 'category_code', category_code, 'area_code', area_code, 'title', title, "
    "'latitude', latitude, 'longitude', longitude, 'contacts', contacts) "
    "FROM feed.assignments WHERE unit_code = $1 AND seq > $2 ORDER BY seq LIMIT 1000";

/* 1 if the login may read unit's assignments (feed.my_units), 0 if not, -1 on error;
 * err says why for 0 and -1. feed.assignments would simply show such a login nothing. */
static int may_read(PGconn *c, const char *unit, char *err, size_t errlen)
{
    const char *params[] = {unit};
    PGresult *r = PQexecParams(c,
                               "SELECT current_user, EXISTS (SELECT 1 FROM feed.my_units "
                               "WHERE unit_code = $1), pg_has_role('onegrid_auditor', 'USAGE') "
                               "OR pg_has_role('onegrid_owner', 'USAGE')",
                               1, NULL, params, NULL, NULL, 0);
    int rc;
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        og_db_error(c, r, err, errlen);
        PQclear(r);
        return -1;
    }
    rc = PQgetvalue(r, 0, 1)[0] == 't';
    /* feed.my_units lists every registered unit to auditors and the owner: for them a unit
     * not there is not registered (a feed login is not told whether one is). */
    if (!rc && PQgetvalue(r, 0, 2)[0] == 't')
        snprintf(err, errlen,
                 "no handling unit \"%s\" is registered (og.handling_unit; feed.my_units lists "
                 "them)",
                 unit);
    else if (!rc)
        snprintf(err, errlen,
                 "login \"%s\" may not read the feed of unit \"%s\" (feed.my_units lists "
                 "the units it may read; operators grant them with og.feed_grant)",
                 PQgetvalue(r, 0, 0), unit);
    PQclear(r);
    return rc;
}

/* Prints what follows *after; advances it. Returns rows printed, or -1. */
static int print_after(PGconn *c, const char *unit, long long *after)
{
    char buf[32];
    const char *params[] = {unit, buf};
    int n = 0;
    for (;;) {
        snprintf(buf, sizeof(buf), "%lld", *after);
        PGresult *r = PQexecParams(c, SQL_AFTER, 2, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            char err[1024];
            og_db_error(c, r, err, sizeof(err));
            if (PQstatus(c) != CONNECTION_BAD) /* a lost connection: reconnect says so */
                fprintf(stderr, "onegridctl feed: %s\n", err);
            PQclear(r);
            return -1;
        }
        for (int i = 0; i < PQntuples(r); i++) {
            printf("%s\n", PQgetvalue(r, i, 1));
            *after = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        }
        n += PQntuples(r);
        fflush(stdout);
        int more = PQntuples(r) == 1000;
        PQclear(r);
        if (!more)
            return n;
    }
}

/* Sleeps ms milliseconds, or less when a signal ends it. */
static void pause_ms(long ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    select(0, NULL, NULL, NULL, &tv);
}

/* s on one line: libpq's messages go on after a line break ("...\n\tIs the server
 * running ..."). */
static char *one_line(char *s)
{
    char *w = s;
    for (const char *r = s; *r; r++) {
        if (*r == '\n' || *r == '\t' || *r == '\r') {
            if (w > s && w[-1] != ' ')
                *w++ = ' ';
        } else {
            *w++ = *r;
        }
    }
    while (w > s && w[-1] == ' ')
        w--;
    *w = '\0';
    return s;
}

/* Connects again after *c was lost, after 1, 2, 4 ... 30 s, saying so, until it connects,
 * may still read unit and listens: 1 with *c the new connection; 0 when interrupted; -1
 * when the login may no longer read the unit (as at start: exit status 1). */
static int reconnect(PGconn **c, const char *conninfo, const char *unit)
{
    char err[1024];
    long wait_ms = 1000;

    snprintf(err, sizeof(err), "%s", PQerrorMessage(*c));
    fprintf(stderr, "onegridctl feed: the connection was lost (%s); connecting again\n",
            one_line(err));
    PQfinish(*c);
    *c = NULL;
    while (!stop) {
        pause_ms(wait_ms);
        if (stop)
            break;
        int may = -1;
        if ((*c = og_db_connect(conninfo, "onegridctl feed", err, sizeof(err))) &&
            (may = may_read(*c, unit, err, sizeof(err))) == 1 &&
            og_db_exec(*c, "LISTEN onegrid_assignment", err, sizeof(err)) == 0) {
            fprintf(stderr, "onegridctl feed: connected again\n");
            return 1;
        }
        PQfinish(*c);
        *c = NULL;
        if (may == 0) {
            fprintf(stderr, "onegridctl feed: %s\n", err);
            return -1;
        }
        wait_ms = wait_ms < 15000 ? wait_ms * 2 : 30000;
        fprintf(stderr, "onegridctl feed: %s; trying again in %ld s\n", one_line(err),
                wait_ms / 1000);
    }
    return 0;
}

int og_cmd_feed(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},    {"unit", required_argument, NULL, 'u'},
        {"after", required_argument, NULL, 'a'}, {"follow", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
    static const char usage[] =
        "usage: onegridctl feed --db CONNINFO --unit UNIT [--after SEQ] [--follow]\n"
        "  prints UNIT's assignments after sequence number SEQ (default 0) as JSON Lines;\n"
        "  --follow keeps waiting for new ones until interrupted, connecting again when\n"
        "  the connection is lost\n";
    const char *conninfo = NULL, *unit = NULL;
    long long after = 0;
    bool follow = false;
    char err[1024];
    PGconn *c;
    int ch, rc = OG_EXIT_FAIL;

    optind = 1;
    while ((ch = getopt_long(argc, argv, "d:u:a:fh", opts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            conninfo = optarg;
            break;
        case 'u':
            unit = optarg;
            break;
        case 'a':
            if (og_cli_integer("feed", "--after", optarg, 0, INT64_MAX, &after) < 0)
                return OG_EXIT_USAGE;
            break;
        case 'f':
            follow = true;
            break;
        case 'h':
            printf("%s", usage);
            return OG_EXIT_OK;
        default:
            fprintf(stderr, "%s", usage);
            return OG_EXIT_USAGE;
        }
    }
    if (!conninfo || !unit || optind != argc) {
        fprintf(stderr, "%s", usage);
        return OG_EXIT_USAGE;
    }
    c = og_db_connect(conninfo, "onegridctl feed", err, sizeof(err));
    if (!c) {
        fprintf(stderr, "onegridctl feed: %s\n", err);
        return OG_EXIT_FAIL;
    }
    if (may_read(c, unit, err, sizeof(err)) != 1) {
        fprintf(stderr, "onegridctl feed: %s\n", err);
        goto out;
    }
    /* LISTEN before the first read: nothing committed in between can be missed. */
    if (follow && og_db_exec(c, "LISTEN onegrid_assignment", err, sizeof(err)) < 0) {
        fprintf(stderr, "onegridctl feed: %s\n", err);
        goto out;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (print_after(c, unit, &after) < 0) {
        if (PQstatus(c) == CONNECTION_BAD)
            fprintf(stderr, "onegridctl feed: %s", PQerrorMessage(c));
        goto out;
    }
    while (follow && !stop) {
        fd_set fds;
        struct timeval tv = {5, 0}; /* also poll now and then: a lost notification costs 5 s */
        int sock = PQsocket(c);
        PGnotify *n;
        FD_ZERO(&fds);
        FD_SET(sock, &fds);
        if (select(sock + 1, &fds, NULL, NULL, &tv) < 0 && errno != EINTR)
            break;
        bool ok = PQconsumeInput(c);
        if (ok) {
            while ((n = PQnotifies(c)))
                PQfreemem(n);
            ok = print_after(c, unit, &after) >= 0;
        } else if (PQstatus(c) != CONNECTION_BAD) {
            fprintf(stderr, "onegridctl feed: %s", PQerrorMessage(c));
        }
        /* A lost connection (the server restarted, the network broke) is taken up again
         * where it left off: what follows the last seq printed, nothing missed or twice;
         * lost again before that was read, again. Any other failure ends it (said). */
        while (!ok) {
            if (PQstatus(c) != CONNECTION_BAD)
                goto out;
            int again = reconnect(&c, conninfo, unit);
            if (again < 0)
                goto out;
            if (again == 0)
                goto done; /* interrupted while connecting */
            ok = print_after(c, unit, &after) >= 0;
        }
    }
done:
    rc = OG_EXIT_OK;
out:
    PQfinish(c);
    return rc;
}
