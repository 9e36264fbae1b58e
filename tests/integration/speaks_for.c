/* speaks_for: a test tool that loads the registry as dispatch does (og_registry_load) and
 * prints, for each source system and handling unit of the database, one line
 * "SOURCE UNIT" when dispatch lets that source speak for that unit
 * (og_registry_speaks_for): the C side of grants.sh's comparison with og.unit_source.
 *
 *   speaks_for CONNINFO */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

#include "db.h"
#include "dispatch.h"

int main(int argc, char **argv)
{
    char err[512];
    int rc = 1;

    if (argc != 2) {
        fprintf(stderr, "usage: speaks_for CONNINFO\n");
        return 2;
    }
    PGconn *c = og_db_connect(argv[1], "speaks_for", err, sizeof(err));
    struct og_registry *reg = og_registry_new();
    if (!c || !reg || og_registry_load(reg, c, err, sizeof(err)) < 0) {
        fprintf(stderr, "speaks_for: %s\n", c ? err : "could not connect");
        goto out;
    }
    PGresult *r = og_db_query(c,
                              "SELECT s.code, u.code FROM og.source_system s, og.handling_unit u "
                              "ORDER BY 1, 2",
                              0, NULL, err, sizeof(err));
    if (!r) {
        fprintf(stderr, "speaks_for: %s\n", err);
        goto out;
    }
    for (int i = 0; i < PQntuples(r); i++)
        if (og_registry_speaks_for(reg, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1)))
            printf("%s %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
    PQclear(r);
    rc = 0;
out:
    og_registry_destroy(&reg);
    if (c)
        PQfinish(c);
    return rc;
}
