#include "dispatch.h"

#include <stdio.h>
#include <string.h>

#include "onegrid/v1/event.pb-c.h"

/* One allowed step: from a state, on a status, to a state. The full standard workflow
 * (GB/T 30428; see shared/GLOSSARY.md): dispatched -> accepted -> in progress -> resolved
 * -> checked -> closed -> evaluated, with void, return and rework as side exits. */
struct step {
    const char *from;
    int status;
    const char *to;
};

static const struct step steps[] = {
    {OG_STATE_DISPATCHED, ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_ACCEPTED, OG_STATE_ACCEPTED},
    {OG_STATE_DISPATCHED, ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_IN_PROGRESS,
     OG_STATE_IN_PROGRESS},
    {OG_STATE_ACCEPTED, ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_IN_PROGRESS,
     OG_STATE_IN_PROGRESS},
    {OG_STATE_ACCEPTED, ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_RESOLVED, OG_STATE_RESOLVED},
    {OG_STATE_IN_PROGRESS, ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_RESOLVED, OG_STATE_RESOLVED},
    {OG_STATE_DISPATCHED, ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_RETURNED, OG_STATE_RETURNED},
    {OG_STATE_ACCEPTED, ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_RETURNED, OG_STATE_RETURNED},
    {OG_STATE_RESOLVED, ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_CHECKED_OK, OG_STATE_CHECKED},
    {OG_STATE_RESOLVED, ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_CHECK_FAILED,
     OG_STATE_IN_PROGRESS},
    {OG_STATE_CHECKED, ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_CLOSED, OG_STATE_CLOSED},
    {OG_STATE_REPORTED, ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_VOIDED, OG_STATE_VOIDED},
    {OG_STATE_DISPATCHED, ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_VOIDED, OG_STATE_VOIDED},
    {OG_STATE_ACCEPTED, ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_VOIDED, OG_STATE_VOIDED},
    {OG_STATE_ACCEPTED, ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_SHELVED, OG_STATE_SHELVED},
    {OG_STATE_IN_PROGRESS, ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_SHELVED, OG_STATE_SHELVED},
    /* An extension moves the deadline and leaves the state as it is. */
    {OG_STATE_DISPATCHED, ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_EXTENDED, OG_STATE_DISPATCHED},
    {OG_STATE_ACCEPTED, ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_EXTENDED, OG_STATE_ACCEPTED},
    {OG_STATE_IN_PROGRESS, ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_EXTENDED,
     OG_STATE_IN_PROGRESS},
    /* So do a request for one (the clock pauses) and its refusal (the clock resumes). */
    {OG_STATE_DISPATCHED, ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_EXTENSION_REQUESTED,
     OG_STATE_DISPATCHED},
    {OG_STATE_ACCEPTED, ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_EXTENSION_REQUESTED,
     OG_STATE_ACCEPTED},
    {OG_STATE_IN_PROGRESS, ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_EXTENSION_REQUESTED,
     OG_STATE_IN_PROGRESS},
    {OG_STATE_DISPATCHED, ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_EXTENSION_REFUSED,
     OG_STATE_DISPATCHED},
    {OG_STATE_ACCEPTED, ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_EXTENSION_REFUSED,
     OG_STATE_ACCEPTED},
    {OG_STATE_IN_PROGRESS, ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_EXTENSION_REFUSED,
     OG_STATE_IN_PROGRESS},
};

static const char *status_name(int status)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
        &onegrid__v1__status_update__status__descriptor, status);
    return v ? v->name : "?";
}

const char *og_lifecycle_status(const char *state, int status, bool check_required, char *why,
                                size_t whylen)
{
    /* A category without a field check closes straight from resolved. */
    if (!check_required && strcmp(state, OG_STATE_RESOLVED) == 0 &&
        status == ONEGRID__V1__STATUS_UPDATE__STATUS__STATUS_CLOSED)
        return OG_STATE_CLOSED;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
        if (steps[i].status == status && strcmp(steps[i].from, state) == 0)
            return steps[i].to;
    snprintf(why, whylen, "%s is not allowed when the case is %s", status_name(status), state);
    return NULL;
}

const char *og_lifecycle_evaluation(const char *state, int result, char *why, size_t whylen)
{
    if (strcmp(state, OG_STATE_CLOSED) != 0) {
        snprintf(why, whylen, "only a closed case can be evaluated; the case is %s", state);
        return NULL;
    }
    /* 不满意 reopens the case for its unit (返工); the others complete it. */
    return result == ONEGRID__V1__EVALUATION__RESULT__RESULT_UNSATISFIED ? OG_STATE_DISPATCHED
                                                                         : OG_STATE_EVALUATED;
}

/* Named once: og_lifecycle_final and og_lifecycle_stage read it. The queries that load only
 * the other cases read og.case.stage (index og.case_open, migration 030), which is
 * og_lifecycle_stage of the state for every row dispatch writes and og.case_stage for the
 * rest (023's backfill, decisions of older releases): a state added here or taken away
 * needs a migration that sets the stage of the rows already stored, and og.case_stage
 * changed to match, or a case whose stored stage says final would not be loaded. */
static const char *const final_states[] = {OG_STATE_CLOSED, OG_STATE_EVALUATED, OG_STATE_VOIDED};

bool og_lifecycle_final(const char *state)
{
    for (size_t i = 0; i < sizeof(final_states) / sizeof(final_states[0]); i++)
        if (strcmp(state, final_states[i]) == 0)
            return true;
    return false;
}

const char *og_lifecycle_stage(const char *state)
{
    if (og_lifecycle_final(state))
        return OG_STAGE_FINAL;
    if (strcmp(state, OG_STATE_RESOLVED) == 0 || strcmp(state, OG_STATE_CHECKED) == 0)
        return OG_STAGE_CHECKING;
    return OG_STAGE_HANDLING;
}

const char *og_lifecycle_clock(const struct og_case *c)
{
    if (c->deadline == 0 || strcmp(og_lifecycle_stage(c->state), OG_STAGE_HANDLING) != 0)
        return OG_CLOCK_NONE;
    return c->paused_at ? OG_CLOCK_PAUSED : OG_CLOCK_RUNNING;
}
