/* PostgreSQL connections for the daemons: connect with the session settings onegrid
 * relies on (synchronous_commit on, an application_name for pg_stat_activity), and small
 * helpers that turn a failed PGresult into a caller-owned message. Nothing here logs. */
#ifndef OG_DB_H
#define OG_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

/* Connects and sets the session up. Returns NULL with err filled. */
PGconn *og_db_connect(const char *conninfo, const char *application_name, char *err, size_t errlen);
/* The keywords and values og_db_connect gives PQconnectdbParams (dbname = conninfo,
 * expanded), NULL-terminated: onegrid's defaults for a lost network (connect_timeout 5 s,
 * keepalives after 15 s idle, probes 5 s apart, tcp_user_timeout 30 s), which the
 * conninfo's own values override, then application_name and client_encoding UTF8, which
 * override the conninfo. Returns the number of pairs. */
#define OG_DB_CONN_PARAMS 10
size_t og_db_conn_params(const char *conninfo, const char *application_name,
                         const char *keys[OG_DB_CONN_PARAMS], const char *vals[OG_DB_CONN_PARAMS]);
/* Runs a statement without parameters; 0, or -EIO with err filled (message and SQLSTATE). */
int og_db_exec(PGconn *c, const char *sql, char *err, size_t errlen);
/* Runs a query with n text parameters; its rows, or NULL with err filled. */
PGresult *og_db_query(PGconn *c, const char *sql, int n, const char *const *params, char *err,
                      size_t errlen);
/* Fills err from a failed result ("ERROR: ... (SQLSTATE 23505)"); returns -EIO. */
int og_db_error(PGconn *c, const PGresult *r, char *err, size_t errlen);
/* The SQLSTATE of r, or "" when none. */
const char *og_db_sqlstate(const PGresult *r);
/* True when a statement that failed with sqlstate failed because of the data it was given
 * (the record's own content), so that trying the same record again cannot succeed:
 * class 22 (data exception), 23 (integrity constraint violation), 54 (program limit
 * exceeded: a value too large to index, too many elements). Not OG002 (the record refers
 * to a case or report the database does not have): the decision, not the event, is wrong
 * (archive leaves such a record out). Everything else (cancels, timeouts,
 * lock waits, disk full, out of memory, too many connections, I/O and internal errors,
 * connection loss, shutdown, serialisation failures, missing privileges or functions) is
 * a fault of the system around the record: keep it and try again. */
bool og_db_record_error(const char *sqlstate);
/* Raises glibc's malloc thresholds in the session's server process, so that it keeps the
 * memory a batch needs from one batch to the next instead of giving it back to the kernel
 * and faulting it in again: a 30 MiB text made and freed by one query (see db.c). For a
 * session that stores batches (archive's). 0, or -EIO with err filled: a failure (a
 * statement_timeout shorter than it, no memory for it) leaves the session as it was, to
 * go on with. */
int og_db_settle_backend_heap(PGconn *c, char *err, size_t errlen);
/* Bounds the session's lock waits by ms, unless the server, the database or the role
 * already sets a lock_timeout of its own (an operator's choice is kept); nothing when ms
 * is 0. A statement that waits longer for a lock then fails with SQLSTATE 55P03: a fault,
 * never a record's. 0, or -EIO with err filled. */
int og_db_limit_lock_waits(PGconn *c, long ms, char *err, size_t errlen);
/* Compares the database's schema with the one this build was made for: the highest
 * versioned migration of deploy/sql and a digest of the current definitions, as
 * `onegridctl migrate` records them (public.onegrid_migration, public.onegrid_repeatable).
 * 0 when they match; -EPROTO with err saying which way they differ and what to do ("run
 * onegridctl migrate", or "upgrade onegrid"); -EIO when it could not be read (err). */
int og_db_schema_check(PGconn *c, char *err, size_t errlen);
/* The database's generation (og.generation_check, migration 028), after opening a new one
 * when the database was found restored from a backup or replaced by a promoted standby:
 * > 0, or -EIO with err filled. A daemon that finds a generation other than the one it
 * began with holds state of a time the database no longer has. */
int og_db_generation(PGconn *c, char *err, size_t errlen);
/* Connects, checks the schema (og_db_schema_check) and disconnects: 0, -EPROTO, or -EIO
 * when the database cannot be reached (err). */
int og_db_schema_probe(const char *conninfo, const char *application_name, char *err,
                       size_t errlen);
/* This build's schema version (the highest versioned migration). */
int og_db_schema_version(void);
/* True when the connection is gone and must be made again. */
bool og_db_broken(PGconn *c);

#endif
