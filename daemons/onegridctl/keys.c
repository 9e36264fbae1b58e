/* `onegridctl keygen`: CURVE key pairs for publishers and for onegrid-intake, and reading
 * them back for `onegridctl publish`. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "onegridctl.h"
#include "zsock.h"

int og_read_key(const char *arg, char key[41], char *err, size_t errlen)
{
    if (og_curve_key_check(arg) == 0) { /* the key itself */
        memcpy(key, arg, 41);
        return 0;
    }
    return og_curve_key_read(arg, key, err, errlen);
}

static int write_file(const char *path, mode_t mode, const char *text, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
    size_t len = strlen(text);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (write(fd, text, len) != (ssize_t)len || fsync(fd) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    return close(fd) == 0 ? 0 : -1;
}

int og_cmd_keygen(int argc, char **argv)
{
    static const struct option opts[] = {{"out", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *usage =
        "usage: onegridctl keygen --out FILE\n"
        "  makes a CURVE key pair: FILE holds the secret key (mode 0600; give it to the\n"
        "  publisher or to onegrid-intake only), FILE.pub the public key, which is also\n"
        "  printed. Neither file may exist yet.\n";
    const char *out = NULL;
    char pub[41], sec[41], text[256], err[512], path[4096];
    int c, rc = OG_EXIT_FAIL;

    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        if (c == 'o')
            out = optarg;
        else {
            fputs(usage, c == 'h' ? stdout : stderr);
            return c == 'h' ? OG_EXIT_OK : OG_EXIT_USAGE;
        }
    }
    if (!out || optind != argc) {
        fputs(usage, stderr);
        return OG_EXIT_USAGE;
    }
    if (zmq_curve_keypair(pub, sec) != 0) {
        fprintf(stderr, "onegridctl keygen: %s (libzmq without CURVE?)\n", zmq_strerror(errno));
        return OG_EXIT_FAIL;
    }
    snprintf(text, sizeof(text), "%s\n# onegrid CURVE secret key; its public key: %s\n", sec, pub);
    if (write_file(out, 0600, text, err, sizeof(err)) < 0)
        goto fail;
    snprintf(path, sizeof(path), "%s.pub", out);
    snprintf(text, sizeof(text), "%s\n", pub);
    if (write_file(path, 0644, text, err, sizeof(err)) < 0) {
        unlink(out);
        goto fail;
    }
    printf("%s\n", pub);
    rc = OG_EXIT_OK;
    goto done;
fail:
    fprintf(stderr, "onegridctl keygen: %s\n", err);
done:
    sodium_memzero(sec, sizeof(sec));
    sodium_memzero(text, sizeof(text));
    return rc;
}
