#include "dispatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int64_t og_clock_boot_us(void)
{
    struct timespec ts;
    /* CLOCK_BOOTTIME is CLOCK_MONOTONIC plus the time the machine was suspended: after a
     * resume the wall clock has moved on by the suspension, and so has this. */
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void og_clock_init(struct og_clock *k, int64_t bound_us, int64_t wall_us, int64_t boot_us)
{
    *k = (struct og_clock){.bound = bound_us, .wall_ref = wall_us, .boot_ref = boot_us};
}

bool og_clock_trusted(const struct og_clock *k)
{
    return !k->wall_off && !k->db_off;
}

static enum og_clock_change change(bool before, bool after)
{
    return before == after ? OG_CLOCK_UNCHANGED : after ? OG_CLOCK_REGAINED : OG_CLOCK_LOST;
}

enum og_clock_change og_clock_observe(struct og_clock *k, int64_t wall_us, int64_t boot_us)
{
    bool before = og_clock_trusted(k);
    int64_t off = wall_us - (k->wall_ref + (boot_us - k->boot_ref));

    if (llabs(off) <= k->bound) {
        /* Agreement: drift, slewing and small corrections are absorbed from here on. */
        k->wall_off = false;
        k->wall_ref = wall_us;
        k->boot_ref = boot_us;
    } else {
        /* The reference stays: the wall clock agrees again when it is back where boot
         * time says it should be. */
        k->wall_off = true;
        k->wall_step = off;
    }
    return change(before, og_clock_trusted(k));
}

enum og_clock_change og_clock_observe_db(struct og_clock *k, int64_t db_us, int64_t wall0_us,
                                         int64_t wall1_us)
{
    bool before = og_clock_trusted(k);
    int64_t offset = db_us - (wall0_us / 2 + wall1_us / 2);

    /* A slow round trip (or a wall clock that moved during it) says nothing. */
    if (wall1_us < wall0_us || wall1_us - wall0_us > k->bound / 2)
        return OG_CLOCK_UNCHANGED;
    if (!k->db_known) {
        /* Learnt only from a wall clock that agrees with boot time. */
        if (k->wall_off)
            return OG_CLOCK_UNCHANGED;
        k->db_known = true;
        k->db_ref = offset;
        return OG_CLOCK_UNCHANGED;
    }
    if (llabs(offset - k->db_ref) <= k->bound) {
        k->db_off = false;
        if (!k->wall_off)
            k->db_ref = offset; /* the two hosts' clocks drift apart slowly */
    } else {
        k->db_off = true;
        k->db_step = offset - k->db_ref;
    }
    return change(before, og_clock_trusted(k));
}

/* "2592000 s (30.0 days)" */
static void span(int64_t us, char *buf, size_t len)
{
    double s = (double)llabs(us) / 1e6;
    if (s >= 86400)
        snprintf(buf, len, "%.0f s (%.1f days)", s, s / 86400);
    else if (s >= 3600)
        snprintf(buf, len, "%.0f s (%.1f h)", s, s / 3600);
    else
        snprintf(buf, len, "%.0f s", s);
}

void og_clock_describe(const struct og_clock *k, char *buf, size_t len)
{
    char a[64], b[64];
    span(k->wall_step, a, sizeof(a));
    span(k->db_step, b, sizeof(b));
    if (k->wall_off && k->db_off)
        snprintf(buf, len,
                 "the wall clock is %s %s the boot-time clock's reckoning, and %s %s the "
                 "database's clock",
                 a, k->wall_step > 0 ? "ahead of" : "behind", b,
                 k->db_step < 0 ? "ahead of" : "behind");
    else if (k->wall_off)
        snprintf(buf, len, "the wall clock is %s %s the boot-time clock's reckoning", a,
                 k->wall_step > 0 ? "ahead of" : "behind");
    else if (k->db_off)
        snprintf(buf, len, "the database's clock moved %s %s against the wall clock", b,
                 k->db_step > 0 ? "ahead" : "back");
    else
        snprintf(buf, len, "the clocks agree");
}
