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
    /* One fprintf per line so lines from one process never interleave mid-line. */
    fprintf(stderr, "<%d>%s\n", priority, line);
}
