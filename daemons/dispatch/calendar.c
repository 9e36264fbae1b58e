#include "dispatch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>
#include "util.h"

/* Working time: China has one time zone and no daylight saving, so local time is UTC+8
 * throughout; a working day runs from 09:00 to 17:00 local time (8 working hours). */
#define TZ_OFFSET (8 * 3600)
#define DAY_START (9 * 3600)
#define DAY_END   (17 * 3600)

struct exception_day {
    int64_t day; /* days since 1970-01-01, local */
    bool working;
    UT_hash_handle hh;
};

struct og_calendar {
    struct exception_day *days;
};

struct og_calendar *og_calendar_new(void)
{
    return calloc(1, sizeof(struct og_calendar));
}

void og_calendar_destroy(struct og_calendar **calp)
{
    struct og_calendar *cal = *calp;
    struct exception_day *d, *t;
    if (!cal)
        return;
    HASH_ITER(hh, cal->days, d, t)
    {
        HASH_DEL(cal->days, d);
        free(d);
    }
    free(cal);
    *calp = NULL;
}

int og_calendar_set(struct og_calendar *cal, int64_t day, bool working)
{
    struct exception_day *d;
    HASH_FIND(hh, cal->days, &day, sizeof(day), d);
    if (!d) {
        d = calloc(1, sizeof(*d));
        if (!d)
            return -ENOMEM;
        d->day = day;
        HASH_ADD(hh, cal->days, day, sizeof(d->day), d);
    }
    d->working = working;
    return 0;
}

size_t og_calendar_count(const struct og_calendar *cal)
{
    return HASH_COUNT(cal->days);
}

bool og_calendar_working(const struct og_calendar *cal, int64_t day)
{
    struct exception_day *d;
    HASH_FIND(hh, cal->days, &day, sizeof(day), d);
    if (d)
        return d->working;
    /* 1970-01-01 was a Thursday: (day + 3) % 7 is 0 on Mondays. */
    int64_t wd = ((day + 3) % 7 + 7) % 7;
    return wd < 5;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* No deadline beyond the last second a timestamp may hold (year 9999): archive refuses a
 * decision that names one, so it would be sent again for ever. The registry bounds a time
 * limit to what the calendar counts (migration 032); this holds whatever it says. */
static int64_t bounded(int64_t t)
{
    return t > OG_TIME_MAX ? OG_TIME_MAX : t;
}

int64_t og_calendar_deadline(const struct og_calendar *cal, int64_t start, int limit,
                             const char *unit)
{
    int64_t day = floor_div(start + TZ_OFFSET, 86400);

    if (limit <= 0)
        return start;
    if (strcmp(unit, "working_hours") != 0 && strcmp(unit, "working_days") != 0)
        return bounded(start + (int64_t)limit * 3600); /* "hours": day and night */
    if (strcmp(unit, "working_days") == 0) { /* the end of the limit-th working day after */
        int n = 0;
        for (int guard = 0; n < limit && guard < 3660; guard++)
            if (og_calendar_working(cal, ++day))
                n++;
        if (n < limit) /* a calendar without working days: plain days */
            return bounded(start + (int64_t)limit * 86400);
        return bounded(day * 86400 + DAY_END - TZ_OFFSET);
    }
    /* "working_hours": only time within working days' 09:00-17:00 counts. */
    return og_calendar_add_working(cal, start, (int64_t)limit * 3600);
}

int64_t og_calendar_add_working(const struct og_calendar *cal, int64_t start, int64_t seconds)
{
    int64_t local = start + TZ_OFFSET;
    int64_t day = floor_div(local, 86400), sec = local - day * 86400, left = seconds;

    if (seconds <= 0)
        return start;
    for (int guard = 0; guard < 3660; guard++, day++, sec = 0) {
        if (!og_calendar_working(cal, day))
            continue;
        int64_t from = sec < DAY_START ? DAY_START : sec;
        if (from >= DAY_END)
            continue;
        if (DAY_END - from >= left)
            return bounded(day * 86400 + from + left - TZ_OFFSET);
        left -= DAY_END - from;
    }
    return bounded(start + seconds); /* a calendar without working days: plain time */
}

int64_t og_calendar_working_between(const struct og_calendar *cal, int64_t from, int64_t to)
{
    int64_t total = 0;
    if (to <= from)
        return 0;
    int64_t day = floor_div(from + TZ_OFFSET, 86400), last = floor_div(to + TZ_OFFSET, 86400);
    for (int guard = 0; day <= last && guard < 3660; guard++, day++) {
        if (!og_calendar_working(cal, day))
            continue;
        int64_t open = day * 86400 + DAY_START - TZ_OFFSET,
                close = day * 86400 + DAY_END - TZ_OFFSET;
        int64_t a = from > open ? from : open, b = to < close ? to : close;
        if (b > a)
            total += b - a;
    }
    return total;
}

int64_t og_calendar_resume(const struct og_calendar *cal, int64_t deadline, int64_t paused_at,
                           int64_t now, const char *unit)
{
    if (deadline == 0 || now <= paused_at)
        return deadline;
    if (strcmp(unit, "working_hours") != 0 && strcmp(unit, "working_days") != 0)
        return deadline + (now - paused_at); /* "hours": the time paused, day and night */
    if (deadline <= paused_at)
        return deadline + (now - paused_at);
    int64_t due =
        og_calendar_add_working(cal, now, og_calendar_working_between(cal, paused_at, deadline));
    if (strcmp(unit, "working_days") == 0) { /* such a limit ends at the close of a working day */
        int64_t day = floor_div(due + TZ_OFFSET - 1, 86400);
        due = day * 86400 + DAY_END - TZ_OFFSET;
    }
    return due;
}
