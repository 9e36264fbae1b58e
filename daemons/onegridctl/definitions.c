/* `onegridctl audit definitions`: what the database's schema of the record is made of, for
 * an auditor to compare with a database made from the release.
 *
 * audit verify proves the records; the views and functions that read and write them are
 * the database owner's to change (CREATE OR REPLACE VIEW audit.kpi ... shows other KPIs,
 * a trigger on og.ledger or a changed og.store_event writes another record than the one
 * dispatch decided, a grant lets another role write it), and verify does not read them.
 * This command lists every object of schemas og, audit and feed, the tables of other
 * schemas that inherit theirs, and each event trigger, with the SHA-256 of its definition
 * as the server deparses it from the catalog (which any login may read: it runs as the
 * auditor role), and with --expect compares the list with one taken from a database the
 * auditor made with `onegridctl migrate` of the same release (or taken earlier from this
 * one). It also lists who may act as onegrid's roles (their attributes, memberships and
 * settings, the roles that hold their rights, the superusers and CREATEROLE roles), this
 * database's owner, grants and settings, the default privileges new objects of the
 * record's would get, and the functions and relations of pg_catalog whose grants are not
 * initdb's: a login given onegrid_writer stores batches that verify. Table rows, sequence
 * values and the names of og.ledger's monthly partitions are not part of it, nor the
 * members of onegrid_feed (the units' systems, granted with the registry). Roles are the
 * server's: a reference made on another server names its own logins and superusers.
 *
 * The reference must come from the same PostgreSQL major version: the deparsed text of a
 * view can differ between versions. */
#include <errno.h>
#include <getopt.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "onegridctl.h"
#include "util.h"

/* One query in parts (C99 promises string literals of 4095 bytes): kind, SHA-256 in hex,
 * name, now(), version(), the text digested: one row per object (several for og.ledger's
 * monthly partitions when they are not all made alike). Names and deparsed texts with
 * search_path = pg_catalog, so every name is schema-qualified the same way whatever the
 * login's settings. */
static const char *const SQL_DEFINITIONS[] = {
    "WITH RECURSIVE ns AS (SELECT oid, nspname FROM pg_namespace WHERE nspname IN ('og', "
    "'audit', 'feed')),\n"
    /* onegrid's roles, and every role that holds the rights of one of them but
     * onegrid_feed (whose members are the units' systems, granted and revoked with the
     * registry: og.feed_grant), or of pg_write_all_data or pg_read_all_data, directly or
     * through another: a login of onegrid_writer's writes records that verify. Roles are
     * the cluster's, not the database's. */
    "grp AS (SELECT oid, rolname FROM pg_roles WHERE rolname IN ('onegrid_owner', "
    "'onegrid_writer', 'onegrid_reader', 'onegrid_auditor', 'onegrid_feed')),\n"
    "holder(roleid, member, admin_option) AS (\n"
    "  SELECT a.roleid, a.member, a.admin_option FROM pg_auth_members a JOIN pg_roles g ON g.oid "
    "= a.roleid\n"
    "   WHERE g.oid IN (SELECT oid FROM grp WHERE rolname <> 'onegrid_feed')\n"
    "      OR g.rolname IN ('pg_write_all_data', 'pg_read_all_data')\n"
    "  UNION\n"
    "  SELECT a.roleid, a.member, a.admin_option FROM pg_auth_members a JOIN holder h ON "
    "a.roleid = h.member),\n"
    /* A role's attributes, and its settings for this database or every one (ALTER ROLE ...
     * SET: session_replication_role = replica, say, turns the ledger's triggers off). */
    "roleinfo AS (\n"
    "  SELECT r.oid, r.rolname,\n"
    "         concat_ws(E'\\n', concat_ws(' ', CASE WHEN r.rolsuper THEN 'superuser' END,\n"
    "                                    CASE WHEN NOT r.rolinherit THEN 'noinherit' END,\n"
    "                                    CASE WHEN r.rolcreaterole THEN 'createrole' END,\n"
    "                                    CASE WHEN r.rolcreatedb THEN 'createdb' END,\n"
    "                                    CASE WHEN r.rolcanlogin THEN 'login' END,\n"
    "                                    CASE WHEN r.rolreplication THEN 'replication' END,\n"
    "                                    CASE WHEN r.rolbypassrls THEN 'bypassrls' END),\n"
    "                   (SELECT string_agg(CASE s.setdatabase WHEN 0 THEN 'in every database: '\n"
    "                                      ELSE 'in this database: ' END\n"
    "                                      || array_to_string(s.setconfig, ','), E'\\n'\n"
    "                                      ORDER BY s.setdatabase)\n"
    "                      FROM pg_db_role_setting s\n"
    "                     WHERE s.setrole = r.oid\n"
    "                       AND s.setdatabase IN (0, (SELECT oid FROM pg_database\n"
    "                                                 WHERE datname = current_database())))) AS "
    "attrs\n"
    "    FROM pg_roles r),\n",
    /* The functions and relations of pg_catalog whose grants are not initdb's (migration 027
     * took the advisory locks and large objects from PUBLIC; EXECUTE on pg_read_file given
     * to a login reads the server's files), compared as sets: a grant revoked again leaves
     * an ACL written out that equals the default. */
    "catalog_acl(item, name, owner, acl, init) AS (\n"
    "  SELECT 'proc ' || p.oid, 'pg_catalog.' || p.oid::regprocedure::text, p.proowner,\n"
    "         coalesce(p.proacl, acldefault('f', p.proowner)),\n"
    "         coalesce(i.initprivs, acldefault('f', p.proowner))\n"
    "    FROM pg_proc p LEFT JOIN pg_init_privs i\n"
    "         ON i.objoid = p.oid AND i.classoid = 'pg_proc'::regclass AND i.objsubid = 0\n"
    "   WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proacl IS DISTINCT FROM "
    "i.initprivs\n"
    "  UNION ALL\n"
    "  SELECT 'class ' || c.oid, 'pg_catalog.' || quote_ident(c.relname), c.relowner,\n"
    "         coalesce(c.relacl, acldefault('r', c.relowner)),\n"
    "         coalesce(i.initprivs, acldefault('r', c.relowner))\n"
    "    FROM pg_class c LEFT JOIN pg_init_privs i\n"
    "         ON i.objoid = c.oid AND i.classoid = 'pg_class'::regclass AND i.objsubid = 0\n"
    "   WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relacl IS DISTINCT FROM "
    "i.initprivs),\n"
    "catalog_changed AS (\n"
    "  SELECT k.* FROM catalog_acl k\n"
    "   WHERE (SELECT array_agg(a::text ORDER BY a::text) FROM unnest(k.acl) a)\n"
    "         IS DISTINCT FROM (SELECT array_agg(a::text ORDER BY a::text)\n"
    "                             FROM unnest(k.init) a)),\n"
    /* An ACL as "grantee privilege[ with grant option]" lines, its grantors left out, and
     * the object's owner and the database's as such, not by name: a bootstrap superuser is
     * called postgres on one server and otherwise on another. */
    "acl(item, acl) AS (\n"
    "  SELECT x.item, (SELECT string_agg(t, E'\\n' ORDER BY t)\n"
    "                    FROM (SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC'\n"
    "                                      WHEN a.grantee = x.owner THEN 'owner'\n"
    "                                      WHEN a.grantee = (SELECT datdba FROM pg_database\n"
    "                                                         WHERE datname = "
    "current_database())\n"
    "                                        THEN 'the database''s owner'\n"
    "                                      ELSE quote_ident(pg_get_userbyid(a.grantee)) END\n"
    "                                 || ' ' || a.privilege_type\n"
    "                                 || CASE WHEN a.is_grantable THEN ' with grant option' "
    "ELSE '' END\n"
    "                            FROM aclexplode(x.acl) a) e(t))\n"
    "    FROM (SELECT 'database', d.datdba, coalesce(d.datacl, acldefault('d', d.datdba))\n"
    "            FROM pg_database d WHERE d.datname = current_database()\n"
    "          UNION ALL\n"
    "          SELECT x.oid::text, x.defaclrole, x.defaclacl FROM pg_default_acl x\n"
    "          UNION ALL\n"
    "          SELECT k.item, k.owner, k.acl FROM catalog_changed k) x(item, owner, acl)),\n"
    "rel AS (\n"
    "  SELECT c.*, n.nspname,\n"
    "         n.nspname = 'og' AND c.relispartition AND c.relkind = 'r'\n"
    "           AND c.relname ~ '^ledger_[0-9]{6}$'\n"
    "           AND EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid\n"
    "                        AND i.inhparent = (SELECT l.oid FROM pg_class l JOIN ns ON ns.oid = "
    "l.relnamespace\n"
    "                                              WHERE ns.nspname = 'og' AND l.relname = "
    "'ledger')) AS month\n"
    "    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace\n"
    /* A table of another schema that inherits one of the record's (a partition of the
     * ledger, a child whose rows the parent's readers see) is part of it too. */
    "   WHERE n.oid IN (SELECT oid FROM ns)\n"
    "      OR EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent\n"
    "                  WHERE i.inhrelid = c.oid AND p.relnamespace IN (SELECT oid FROM ns))),\n"
    "obj(kind, name, def) AS (\n"
    "  SELECT 'schema', n.nspname::text,\n"
    "         concat_ws(E'\\n', pg_get_userbyid(n.nspowner),\n"
    "                   (SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(n.nspacl) "
    "a))\n"
    "    FROM pg_namespace n JOIN ns ON ns.oid = n.oid\n",
    "  UNION ALL\n"
    "  SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized_view'\n"
    "                        WHEN 'S' THEN 'sequence' WHEN 'c' THEN 'type' ELSE 'table' END,\n"
    "         format('%I.%I', c.nspname, c.relname),\n"
    "         concat_ws(E'\\n', pg_get_userbyid(c.relowner),\n"
    "                   (SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(c.relacl) "
    "a),\n"
    "                   CASE WHEN c.relrowsecurity THEN 'row security' END,\n"
    "                   CASE WHEN c.relforcerowsecurity THEN 'forced' END,\n"
    "                   'persistence ' || c.relpersistence::text,\n"
    "                   CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END,\n"
    "                   CASE WHEN c.relkind IN ('v', 'm') THEN array_to_string(c.reloptions, ',') "
    "END,\n"
    "                   CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,\n"
    "                   CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END,\n"
    "                   CASE WHEN c.relkind = 'S' THEN\n"
    "                     (SELECT concat_ws(' ', format_type(s.seqtypid, NULL), s.seqstart, "
    "s.seqincrement,\n"
    "                                       s.seqmin, s.seqmax, s.seqcache, s.seqcycle)\n"
    "                        FROM pg_sequence s WHERE s.seqrelid = c.oid) END,\n"
    "                   (SELECT string_agg(concat_ws(' ', quote_ident(a.attname), "
    "format_type(a.atttypid, a.atttypmod),\n"
    "                                                CASE WHEN a.attnotnull THEN 'not null' END,\n"
    "                                                nullif(a.attidentity, ''), "
    "nullif(a.attgenerated, ''),\n"
    "                                                pg_get_expr(d.adbin, d.adrelid),\n"
    "                                                CASE WHEN a.attcollation <> 0 THEN "
    "a.attcollation::regcollation::text END,\n"
    "                                                (SELECT string_agg(x::text, ',' ORDER BY "
    "x::text) FROM unnest(a.attacl) x)), E'\\n' ORDER BY a.attnum)\n"
    "                      FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid "
    "AND d.adnum = a.attnum\n"
    "                     WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped))\n"
    "    FROM rel c WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'c') AND NOT c.month\n",
    "  UNION ALL\n"
    "  SELECT 'index', format('%I.%I', c.nspname, c.relname), pg_get_indexdef(c.oid)\n"
    "    FROM rel c JOIN pg_index x ON x.indexrelid = c.oid JOIN rel t ON t.oid = x.indrelid\n"
    "   WHERE NOT t.month\n",
    "  UNION ALL\n"
    "  SELECT 'constraint', format('%I.%I.%I', t.nspname, t.relname, k.conname),\n"
    "         pg_get_constraintdef(k.oid)\n"
    "    FROM pg_constraint k JOIN rel t ON t.oid = k.conrelid WHERE NOT t.month\n",
    "  UNION ALL\n"
    "  SELECT 'trigger', format('%I.%I.%I', t.nspname, t.relname, g.tgname),\n"
    "         pg_get_triggerdef(g.oid) || ' ' || g.tgenabled::text\n"
    "    FROM pg_trigger g JOIN rel t ON t.oid = g.tgrelid WHERE NOT g.tgisinternal AND NOT "
    "t.month\n",
    "  UNION ALL\n"
    "  SELECT CASE WHEN p.prokind IN ('f', 'p') THEN 'function' ELSE 'aggregate' END,\n"
    "         p.oid::regprocedure::text,\n"
    "         concat_ws(E'\\n', pg_get_userbyid(p.proowner),\n"
    "                   (SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(p.proacl) "
    "a),\n"
    "                   CASE WHEN p.prokind IN ('f', 'p') THEN pg_get_functiondef(p.oid) END)\n"
    "    FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace\n",
    "  UNION ALL\n"
    "  SELECT 'policy', format('%I.%I.%I', t.nspname, t.relname, y.polname),\n"
    "         concat_ws(E'\\n', y.polcmd::text, y.polpermissive, y.polroles::regrole[]::text,\n"
    "                   pg_get_expr(y.polqual, y.polrelid), pg_get_expr(y.polwithcheck, "
    "y.polrelid))\n"
    "    FROM pg_policy y JOIN rel t ON t.oid = y.polrelid\n",
    "  UNION ALL\n"
    "  SELECT 'rule', format('%I.%I.%I', t.nspname, t.relname, w.rulename), pg_get_ruledef(w.oid)\n"
    "    FROM pg_rewrite w JOIN rel t ON t.oid = w.ev_class WHERE w.rulename <> '_RETURN'\n",
    "  UNION ALL\n"
    "  SELECT 'type', format('%I.%I', n.nspname, t.typname),\n"
    "         concat_ws(E'\\n', pg_get_userbyid(t.typowner), t.typtype::text,\n"
    "                   format_type(t.typbasetype, t.typtypmod), t.typnotnull::text, "
    "t.typdefault,\n"
    "                   (SELECT string_agg(k.conname || ' ' || pg_get_constraintdef(k.oid), "
    "E'\\n'\n"
    "                                      ORDER BY k.conname)\n"
    "                      FROM pg_constraint k WHERE k.contypid = t.oid),\n"
    "                   (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)\n"
    "                      FROM pg_enum e WHERE e.enumtypid = t.oid),\n"
    "                   (SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(t.typacl) "
    "a))\n"
    "    FROM pg_type t JOIN ns n ON n.oid = t.typnamespace WHERE t.typtype IN ('d', 'e', 'r', "
    "'m')\n"
    "  UNION ALL\n"
    "  SELECT 'operator', format('%I.%s(%s,%s)', n.nspname, o.oprname, format_type(o.oprleft, "
    "NULL),\n"
    "                            format_type(o.oprright, NULL)),\n"
    "         concat_ws(E'\\n', pg_get_userbyid(o.oprowner), o.oprcode::regproc::text,\n"
    "                   o.oprcom::regoper::text, o.oprnegate::regoper::text, "
    "o.oprrest::regproc::text,\n"
    "                   o.oprjoin::regproc::text)\n"
    "    FROM pg_operator o JOIN ns n ON n.oid = o.oprnamespace\n",
    "  UNION ALL\n"
    "  SELECT 'role', quote_ident(g.rolname),\n"
    "         concat_ws(E'\\n', i.attrs,\n"
    "                   (SELECT string_agg('member of ' || quote_ident(p.rolname)\n"
    "                                      || CASE WHEN a.admin_option THEN ' with admin option' "
    "ELSE '' END,\n"
    "                                      E'\\n' ORDER BY p.rolname)\n"
    "                      FROM pg_auth_members a JOIN pg_roles p ON p.oid = a.roleid WHERE "
    "a.member = g.oid))\n"
    "    FROM grp g JOIN roleinfo i ON i.oid = g.oid\n"
    "  UNION ALL\n"
    "  SELECT 'member', format('%I %I', r.rolname, i.rolname),\n"
    "         concat_ws(E'\\n', CASE WHEN h.admin_option THEN 'with admin option' END, "
    "i.attrs)\n"
    "    FROM holder h JOIN pg_roles r ON r.oid = h.roleid JOIN roleinfo i ON i.oid = "
    "h.member\n"
    "  UNION ALL\n"
    /* Who may make themselves a member of any of them: the superusers, and (PostgreSQL 15)
     * the roles with CREATEROLE. By name only: their settings are the server's (a superuser
     * that logs every statement is no change to the record). */
    "  SELECT CASE WHEN r.rolsuper THEN 'superuser' ELSE 'createrole' END, "
    "quote_ident(r.rolname), ''\n"
    "    FROM pg_roles r WHERE r.rolsuper OR r.rolcreaterole\n"
    "  UNION ALL\n"
    /* This database: its owner, who may connect and make schemas or temporary tables in it
     * (PUBLIC, by default), and its settings (ALTER DATABASE ... SET). */
    "  SELECT 'database', 'this',\n"
    "         concat_ws(E'\\n', 'owner ' || (SELECT CASE WHEN o.rolsuper THEN 'a superuser'\n"
    "                                                     ELSE quote_ident(o.rolname) END\n"
    "                                           FROM pg_roles o WHERE o.oid = d.datdba),\n"
    "                   (SELECT acl FROM acl WHERE item = 'database'),\n"
    "                   (SELECT string_agg(CASE s.setdatabase WHEN 0 THEN 'every role, every "
    "database: '\n"
    "                                      ELSE '' END || array_to_string(s.setconfig, ','),\n"
    "                                      E'\\n' ORDER BY s.setdatabase)\n"
    "                      FROM pg_db_role_setting s\n"
    "                     WHERE s.setdatabase IN (0, d.oid) AND s.setrole = 0))\n"
    "    FROM pg_database d WHERE d.datname = current_database()\n"
    "  UNION ALL\n"
    /* ALTER DEFAULT PRIVILEGES: the grants every new object of a schema of the record's, or
     * made by one of onegrid's roles or their holders, is to get. */
    "  SELECT 'default_privileges',\n"
    "         concat_ws(' ', quote_ident(pg_get_userbyid(x.defaclrole)),\n"
    "                   coalesce(quote_ident(n.nspname), '*'),\n"
    "                   CASE x.defaclobjtype WHEN 'r' THEN 'tables' WHEN 'S' THEN 'sequences'\n"
    "                                        WHEN 'f' THEN 'functions' WHEN 'T' THEN 'types'\n"
    "                                        WHEN 'n' THEN 'schemas' END),\n"
    "         (SELECT acl FROM acl WHERE item = x.oid::text)\n"
    "    FROM pg_default_acl x LEFT JOIN pg_namespace n ON n.oid = x.defaclnamespace\n"
    "   WHERE x.defaclnamespace IN (SELECT oid FROM ns) OR x.defaclrole IN (SELECT oid FROM grp)\n"
    "      OR x.defaclrole IN (SELECT member FROM holder)\n"
    "  UNION ALL\n"
    "  SELECT 'catalog_grants', k.name, (SELECT acl FROM acl WHERE item = k.item) FROM "
    "catalog_changed k\n"
    "  UNION ALL\n"
    "  SELECT 'event_trigger', quote_ident(e.evtname),\n"
    "         concat_ws(E'\\n', e.evtevent, e.evtfoid::regproc::text, e.evtenabled::text, "
    "e.evttags::text)\n"
    "    FROM pg_event_trigger e\n",
    "  UNION ALL\n"
    "  -- og.ledger's monthly partitions (og.ensure_ledger_partition makes them as batches come):\n"
    "  -- one line for each different make-up, the partition's own name left out.\n"
    "  SELECT DISTINCT 'partitions', 'og.ledger_YYYYMM', d\n"
    "    FROM (SELECT concat_ws(E'\\n', pg_get_userbyid(c.relowner),\n"
    "                   (SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(c.relacl) "
    "a),\n"
    "                   CASE WHEN c.relrowsecurity THEN 'row security' END,\n"
    "                   CASE WHEN c.relforcerowsecurity THEN 'forced' END,\n"
    "                   'persistence ' || c.relpersistence::text,\n"
    "                   (SELECT string_agg(concat_ws(' ', quote_ident(a.attname), CASE WHEN "
    "a.attnotnull THEN 'not null' END,\n"
    "                                                pg_get_expr(d.adbin, d.adrelid),\n"
    "                                                (SELECT string_agg(x::text, ',' ORDER BY "
    "x::text) FROM unnest(a.attacl) x)), E'\\n' ORDER BY a.attnum)\n"
    "                      FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid "
    "AND d.adnum = a.attnum\n"
    "                     WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),\n"
    "                   (SELECT string_agg(CASE WHEN g.tgparentid = 0\n"
    "                                           THEN replace(pg_get_triggerdef(g.oid), "
    "format('%I.%I', c.nspname, c.relname), 'og.ledger_YYYYMM')\n"
    "                                           ELSE quote_ident(g.tgname) END || ' ' || "
    "g.tgenabled::text, E'\\n' ORDER BY g.tgname)\n"
    "                      FROM pg_trigger g WHERE g.tgrelid = c.oid AND NOT g.tgisinternal),\n"
    "                   (SELECT string_agg(k.conname || ' ' || pg_get_constraintdef(k.oid), E'\\n' "
    "ORDER BY k.conname)\n"
    "                      FROM pg_constraint k WHERE k.conrelid = c.oid AND k.conislocal AND "
    "k.conparentid = 0),\n"
    "                   (SELECT string_agg(replace(pg_get_indexdef(x.indexrelid), format('%I.%I', "
    "c.nspname, c.relname), 'og.ledger_YYYYMM'), E'\\n' ORDER BY 1)\n"
    "                      FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid\n"
    "                     WHERE x.indrelid = c.oid AND NOT i.relispartition)) AS d\n"
    "            FROM rel c WHERE c.month) m)\n"
    "SELECT kind, encode(sha256(convert_to(coalesce(def, ''), 'UTF8')), 'hex'), name, now(), "
    "version(), coalesce(def, '') FROM obj\n"
    " ORDER BY kind COLLATE \"C\", name COLLATE \"C\", 2\n",
};

struct def {
    char *kind, *hash, *name;
};

struct defs {
    struct def *v;
    size_t n, cap;
};

static void defs_free(struct defs *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->v[i].kind);
        free(d->v[i].hash);
        free(d->v[i].name);
    }
    free(d->v);
    *d = (struct defs){0};
}

static int defs_add(struct defs *d, const char *kind, const char *hash, const char *name)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 256;
        struct def *v = realloc(d->v, cap * sizeof(*v));
        if (!v)
            return -1;
        d->v = v;
        d->cap = cap;
    }
    struct def *e = &d->v[d->n];
    e->kind = strdup(kind);
    e->hash = strdup(hash);
    e->name = strdup(name);
    if (!e->kind || !e->hash || !e->name) {
        free(e->kind);
        free(e->hash);
        free(e->name);
        return -1;
    }
    d->n++;
    return 0;
}

/* By kind and name, then hash: the order both lists are compared in. */
static int def_cmp(const void *a, const void *b)
{
    const struct def *x = a, *y = b;
    int c = strcmp(x->kind, y->kind);
    if (!c)
        c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->hash, y->hash);
}

static int key_cmp(const struct def *x, const struct def *y)
{
    int c = strcmp(x->kind, y->kind);
    return c ? c : strcmp(x->name, y->name);
}

/* The major version in a version() text ("PostgreSQL 15.18 (Debian ...)"), 0 if none. */
static long pg_major(const char *s)
{
    const char *p = s ? strstr(s, "PostgreSQL ") : NULL;
    return p ? strtol(p + strlen("PostgreSQL "), NULL, 10) : 0;
}

/* Reads a list as this command prints it ("KIND SHA256 NAME" lines; '#' comments, the
 * first of which names the server's version). 0, or -1 with a message printed. */
static int read_expected(const char *path, struct defs *d, long *major)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = 0;

    if (!f) {
        fprintf(stderr, "onegridctl audit definitions: could not open \"%s\": %s\n", path,
                strerror(errno));
        return -1;
    }
    while ((len = getline(&line, &cap, f)) >= 0) {
        char *kind, *hash, *name, *sp;
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (line[0] == '#') {
            if (!*major)
                *major = pg_major(line);
            continue;
        }
        if (line[strspn(line, " \t")] == '\0')
            continue;
        kind = line;
        sp = strchr(kind, ' ');
        hash = sp ? sp + 1 : NULL;
        sp = hash ? strchr(hash, ' ') : NULL;
        name = sp ? sp + 1 : NULL;
        if (!name || !*name || hash + 64 != sp || strspn(hash, "0123456789abcdef") != 64) {
            fprintf(stderr,
                    "onegridctl audit definitions: %s:%ld: not a definition (kind, SHA-256 in "
                    "hex, name, as `audit definitions` prints them)\n",
                    path, lineno);
            rc = -1;
            break;
        }
        hash[-1] = '\0';
        hash[64] = '\0';
        if (defs_add(d, kind, hash, name) < 0) {
            fprintf(stderr, "onegridctl audit definitions: out of memory\n");
            rc = -1;
            break;
        }
    }
    if (!rc && ferror(f)) {
        fprintf(stderr, "onegridctl audit definitions: could not read \"%s\"\n", path);
        rc = -1;
    }
    free(line);
    fclose(f);
    return rc;
}

/* Compares two sorted lists object by object: an object is the same when it has the same
 * set of hashes in both (one, but for og.ledger's partitions). Prints each difference;
 * returns how many objects differ. */
static long compare(const struct defs *live, const struct defs *want)
{
    size_t i = 0, j = 0;
    long differ = 0;

    while (i < live->n || j < want->n) {
        int c = i == live->n ? 1 : j == want->n ? -1 : key_cmp(&live->v[i], &want->v[j]);
        size_t i2 = i, j2 = j;
        if (c <= 0)
            while (i2 < live->n && !key_cmp(&live->v[i2], &live->v[i]))
                i2++;
        if (c >= 0)
            while (j2 < want->n && !key_cmp(&want->v[j2], &want->v[j]))
                j2++;
        if (c < 0) {
            printf("ADDED   %s %s\n", live->v[i].kind, live->v[i].name);
            differ++;
        } else if (c > 0) {
            printf("MISSING %s %s\n", want->v[j].kind, want->v[j].name);
            differ++;
        } else {
            bool same = i2 - i == j2 - j;
            for (size_t k = 0; same && k < i2 - i; k++)
                same = strcmp(live->v[i + k].hash, want->v[j + k].hash) == 0;
            if (!same) {
                printf("CHANGED %s %s\n", live->v[i].kind, live->v[i].name);
                differ++;
            }
        }
        i = i2;
        j = j2;
    }
    return differ;
}

int og_cmd_audit_definitions(int argc, char **argv)
{
    static const char usage[] =
        "usage: onegridctl audit definitions --db CONNINFO [--expect FILE | --show \"KIND NAME\"]\n"
        "  list every table, view, function, trigger, index, constraint, type, operator,\n"
        "  policy and rule of schemas og, audit and feed, the tables that inherit theirs, and\n"
        "  each event trigger, with the SHA-256 of its definition as the server deparses it;\n"
        "  onegrid's roles, the roles that hold their rights, the superusers and CREATEROLE\n"
        "  roles, this database's grants and settings, default privileges, and the grants on\n"
        "  pg_catalog that are not initdb's: kind, SHA-256, name\n"
        "  --expect  compare with a list printed earlier, from this database or from one made\n"
        "            with `onegridctl migrate` of the same release on the same PostgreSQL\n"
        "            major version; exit 0 when every object is as listed, 1 naming each\n"
        "            object ADDED, MISSING or CHANGED\n"
        "  --show \"KIND NAME\"\n"
        "            print the text whose SHA-256 is listed for that object (each, for the\n"
        "            partitions), to see what differs: run it here and on the reference\n"
        "            database, and compare; exit 1 when there is no such object\n"
        "CONNINFO may log in as the auditor role: only the catalog is read.\n";
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                         {"expect", required_argument, NULL, 'e'},
                                         {"show", required_argument, NULL, 's'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *conninfo = NULL, *expect = NULL, *show = NULL;
    struct defs live = {0}, want = {0};
    long want_major = 0;
    char err[1024];
    PGconn *c = NULL;
    PGresult *r = NULL;
    char *sql = NULL;
    int rc = OG_EXIT_FAIL, o;

    optind = 1;
    while ((o = getopt_long(argc, argv, "d:e:s:h", opts, NULL)) != -1) {
        if (o == 'd') {
            conninfo = optarg;
        } else if (o == 'e') {
            expect = optarg;
        } else if (o == 's') {
            show = optarg;
        } else {
            fputs(usage, o == 'h' ? stdout : stderr);
            return o == 'h' ? OG_EXIT_OK : OG_EXIT_USAGE;
        }
    }
    if (!conninfo || optind != argc || (expect && show) || (show && !strchr(show, ' '))) {
        fputs(usage, stderr);
        return OG_EXIT_USAGE;
    }
    if (expect && read_expected(expect, &want, &want_major) < 0) {
        defs_free(&want);
        return OG_EXIT_USAGE;
    }
    if (!(c = og_db_connect(conninfo, "onegridctl audit", err, sizeof(err)))) {
        fprintf(stderr, "onegridctl: %s\n", err);
        goto out;
    }
    if (og_db_exec(c, "SET search_path = pg_catalog", err, sizeof(err)) < 0) {
        fprintf(stderr, "onegridctl audit definitions: %s\n", err);
        goto out;
    }
    size_t len = 1;
    for (size_t i = 0; i < OG_ARRAY_SIZE(SQL_DEFINITIONS); i++)
        len += strlen(SQL_DEFINITIONS[i]);
    if (!(sql = malloc(len))) {
        fprintf(stderr, "onegridctl audit definitions: out of memory\n");
        goto out;
    }
    sql[0] = '\0';
    for (size_t i = 0; i < OG_ARRAY_SIZE(SQL_DEFINITIONS); i++)
        strcat(sql, SQL_DEFINITIONS[i]);
    r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        og_db_error(c, r, err, sizeof(err));
        fprintf(stderr, "onegridctl audit definitions: %s\n", err);
        goto out;
    }
    if (PQntuples(r) == 0) {
        fprintf(stderr, "onegridctl audit definitions: schemas og, audit and feed hold nothing: "
                        "not a onegrid database?\n");
        goto out;
    }
    for (int i = 0; i < PQntuples(r); i++)
        if (defs_add(&live, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2)) < 0) {
            fprintf(stderr, "onegridctl audit definitions: out of memory\n");
            goto out;
        }
    if (show) {
        size_t kind_len = (size_t)(strchr(show, ' ') - show);
        long found = 0;
        for (int i = 0; i < PQntuples(r); i++) {
            const char *kind = PQgetvalue(r, i, 0), *name = PQgetvalue(r, i, 2);
            if (strlen(kind) != kind_len || strncmp(kind, show, kind_len) != 0 ||
                strcmp(name, show + kind_len + 1) != 0)
                continue;
            printf("# %s %s %s\n%s\n", kind, PQgetvalue(r, i, 1), name, PQgetvalue(r, i, 5));
            found++;
        }
        if (!found)
            fprintf(stderr, "onegridctl audit definitions: no %s in the list\n", show);
        rc = found ? OG_EXIT_OK : OG_EXIT_FAIL;
        goto out;
    }
    if (!expect) {
        printf("# onegrid definitions at %s, %s: kind, SHA-256 of the definition, name\n",
               PQgetvalue(r, 0, 3), PQgetvalue(r, 0, 4));
        for (size_t i = 0; i < live.n; i++)
            printf("%s %s %s\n", live.v[i].kind, live.v[i].hash, live.v[i].name);
        rc = OG_EXIT_OK;
        goto out;
    }
    qsort(live.v, live.n, sizeof(*live.v), def_cmp);
    qsort(want.v, want.n, sizeof(*want.v), def_cmp);
    long major = pg_major(PQgetvalue(r, 0, 4));
    if (want_major && major != want_major)
        printf("# %s was taken on PostgreSQL %ld, this server is %ld: the deparsed definitions "
               "may differ by version alone\n",
               expect, want_major, major);
    long differ = compare(&live, &want);
    if (differ)
        printf("definitions: %ld of %zu objects differ from %s\n", differ, live.n, expect);
    else
        printf("definitions: %zu objects, each as in %s\n", live.n, expect);
    rc = differ ? OG_EXIT_FAIL : OG_EXIT_OK;
out:
    free(sql);
    PQclear(r);
    PQfinish(c);
    defs_free(&live);
    defs_free(&want);
    return rc;
}
