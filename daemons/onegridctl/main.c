/* onegridctl: subcommand dispatch. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onegridctl.h"

int og_cli_integer(const char *cmd, const char *opt, const char *arg, long long min, long long max,
                   long long *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(arg, &end, 10);
    if (errno || end == arg || *end || v < min || v > max) {
        fprintf(stderr, "onegridctl %s: %s: \"%s\" is not an integer in %lld..%lld\n", cmd, opt,
                arg, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: onegridctl COMMAND [OPTIONS]\n"
        "\n"
        "commands:\n"
        "  migrate --db CONNINFO [--sql-dir DIR] [--status | --dry-run]\n"
        "      apply the versioned migrations not applied yet, then the current definitions\n"
        "      (functions, views) whose text changed\n"
        "  status [--config FILE] [--json] [--timeout MS]\n"
        "      each daemon's health, version, uptime, queues, database and last error, from\n"
        "      the metrics endpoints the configuration names (exit 0 healthy, 1 degraded,\n"
        "      2 down)\n"
        "  publish --endpoint EP [--window N] [--timeout S] [--results FILE]\n"
        "          [--rebase-time RFC3339] [--outbox FILE [--wait-space S]]\n"
        "          [--curve-server-key KEY --curve-key FILE] FILE...\n"
        "      publish events from JSON Lines files (- for stdin) and wait for every answer\n"
        "  publish --dry-run FILE...\n"
        "      check the files as intake would, publishing nothing\n"
        "  audit verify --db CONNINFO [--public-key FILE]... [--expect-heads FILE]\n"
        "               [--per-link]\n"
        "      recompute every hash chain from the record, check archive's signatures and\n"
        "      the heads kept elsewhere (exit 1 if broken)\n"
        "  audit heads --db CONNINFO\n"
        "      print the signed chain heads, to keep elsewhere (anchoring)\n"
        "  audit definitions --db CONNINFO [--expect FILE]\n"
        "      list the views, functions, tables and triggers of the record with a digest of\n"
        "      each, or compare them with a release's (exit 1 naming each that differs)\n"
        "  rebuild-cases --db CONNINFO [--apply]\n"
        "      compare the case projection with the ledger (or rebuild it)\n"
        "  feed --db CONNINFO --unit UNIT [--after SEQ] [--follow]\n"
        "      a handling unit's assignments after a sequence number, as JSON Lines\n"
        "  registry import --db CONNINFO [--dry-run] [--effective TIME] [--summary]\n"
        "                  [--reload | --pid-file FILE] DIR|FILE...\n"
        "      make the registry tables what CSV and GeoJSON files say, after showing what\n"
        "      changes; changed routing rules become new versions from TIME (default now)\n"
        "  registry export --db CONNINFO [--at TIME] DIR\n"
        "      write the registry as the files import reads\n"
        "  keygen --out FILE\n"
        "      make a CURVE key pair (FILE: secret, FILE.pub: public) for a publisher or intake\n"
        "  keygen --signing PREFIX\n"
        "      make archive's chain-signing key pair (PREFIX.sign.secret, PREFIX.sign.public)\n"
        "\n"
        "Run `onegridctl COMMAND --help` for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return OG_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return OG_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("onegridctl %s\n", ONEGRID_VERSION);
        return OG_EXIT_OK;
    }
    if (strcmp(argv[1], "migrate") == 0)
        return og_cmd_migrate(argc - 1, argv + 1);
    if (strcmp(argv[1], "status") == 0)
        return og_cmd_status(argc - 1, argv + 1);
    if (strcmp(argv[1], "publish") == 0)
        return og_cmd_publish(argc - 1, argv + 1);
    if (strcmp(argv[1], "audit") == 0)
        return og_cmd_audit(argc - 1, argv + 1);
    if (strcmp(argv[1], "rebuild-cases") == 0)
        return og_cmd_rebuild_cases(argc - 1, argv + 1);
    if (strcmp(argv[1], "feed") == 0)
        return og_cmd_feed(argc - 1, argv + 1);
    if (strcmp(argv[1], "registry") == 0)
        return og_cmd_registry(argc - 1, argv + 1);
    if (strcmp(argv[1], "keygen") == 0)
        return og_cmd_keygen(argc - 1, argv + 1);
    fprintf(stderr, "onegridctl: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return OG_EXIT_USAGE;
}
