/* onegridctl: the operator's and integrator's tool.
 *
 * main.c     subcommand dispatch and usage
 * migrate.c  `onegridctl migrate`: versioned migrations once each, current definitions when changed
 * publish.c  `onegridctl publish`: JSON Lines in, protobuf out, every answer awaited
 * status.c   `onegridctl status`: the daemons' health from their metrics endpoints
 * audit.c    `onegridctl audit verify|heads`, `onegridctl rebuild-cases`
 * definitions.c `onegridctl audit definitions`: the schema's objects, to compare with a release's
 * feed.c     `onegridctl feed`: a handling unit's assignments, caught up and followed
 * registry.c `onegridctl registry import|export`: the registry as CSV and GeoJSON files
 * keys.c     `onegridctl keygen`: CURVE key pairs, archive's chain-signing key pair */
#ifndef OG_ONEGRIDCTL_H
#define OG_ONEGRIDCTL_H

#include <stdbool.h>
#include <stddef.h>

/* Exit statuses shared by the subcommands. */
#define OG_EXIT_OK         0
#define OG_EXIT_FAIL       1 /* the operation failed */
#define OG_EXIT_USAGE      2 /* bad arguments or unreadable input */
#define OG_EXIT_REJECTED   3 /* publish: some events were rejected (all answered) */
#define OG_EXIT_UNANSWERED 4 /* publish: some events got no answer in time */
#define OG_EXIT_NO_SPACE   5 /* publish: the outbox's file system stayed full too long */

/* main.c */
/* The whole of arg as an integer in [min, max], for option opt of subcommand cmd: 0, or
 * -1 with why printed ("onegridctl feed: --after: \"abc\" is not an integer in 0..N"). */
int og_cli_integer(const char *cmd, const char *opt, const char *arg, long long min, long long max,
                   long long *out);

/* migrate.c */
int og_cmd_migrate(int argc, char **argv);

/* publish.c */
int og_cmd_publish(int argc, char **argv);

/* status.c */
int og_cmd_status(int argc, char **argv);

/* audit.c */
int og_cmd_audit(int argc, char **argv);
int og_cmd_rebuild_cases(int argc, char **argv);

/* definitions.c */
int og_cmd_audit_definitions(int argc, char **argv);

/* feed.c */
int og_cmd_feed(int argc, char **argv);

/* registry.c */
int og_cmd_registry(int argc, char **argv);

/* keys.c */
int og_cmd_keygen(int argc, char **argv);
/* A CURVE key from arg: a file whose first line holds the key, or for a public key
 * (secret false) also the 40 Z85 characters themselves. A secret key file its group or
 * others may read is refused. 0, or -1 with err filled. */
int og_read_key(const char *arg, bool secret, char key[41], char *err, size_t errlen);

#endif
