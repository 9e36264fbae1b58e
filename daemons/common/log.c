#include "log.h"

#include <stdarg.h>
#include <stdio.h>

static int max_level = LOG_INFO;

void og_log_set_level(int level)
{
    max_level = level;
}

void og_log(int priority, const char *fmt, ...)
{
    char line[2048];
    va_list ap;

    if (priority > max_level)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* One message, one line: libpq's messages span lines (DETAIL, CONTEXT), and the
     * journal would lose the priority of every line after the first. The unit separator
     * inside event keys ("source\x1fid") is shown as a slash. */
    for (char *c = line; *c; c++) {
        if (*c == '\n')
            *c = (c[1] ? ' ' : '\0');
        else if (*c == '\x1f')
            *c = '/';
    }
    /* One fprintf per line so lines from one process never interleave mid-line. */
    fprintf(stderr, "<%d>%s\n", priority, line);
}

void og_log_warning_line(void *arg, const char *line)
{
    (void)arg;
    og_log(LOG_WARNING, "%s", line);
}
