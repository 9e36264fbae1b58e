/* onegridctl: subcommand dispatch. */
#include <stdio.h>
#include <string.h>

#include "onegridctl.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: onegridctl COMMAND [OPTIONS]\n"
            "\n"
            "commands:\n"
            "  migrate --db CONNINFO [--sql-dir DIR]\n"
            "      apply the schema migrations that are not applied yet\n"
            "  publish --endpoint EP [--window N] [--timeout S] [--results FILE]\n"
            "          [--rebase-time RFC3339] FILE...\n"
            "      publish events from JSON Lines files (- for stdin) and wait for every answer\n"
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
    if (strcmp(argv[1], "publish") == 0)
        return og_cmd_publish(argc - 1, argv + 1);
    fprintf(stderr, "onegridctl: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return OG_EXIT_USAGE;
}
