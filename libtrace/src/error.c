/* SPDX-License-Identifier: Apache-2.0 */
/*
 * error.c - error codes and the thread-local last-error message.
 *
 * Every failure path calls trace_fail() once, at the place that knows
 * the context, and returns its code; callers higher up may add a prefix
 * (a line number) but never replace the message.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static _Thread_local char last_msg[1024];
static _Thread_local int last_mdb;

int trace_fail(int err, const char *fmt, ...)
{
    char tmp[sizeof(last_msg)];
    va_list ap;

    /* Format aside first: callers may pass trace_error_last() itself to
     * add context to a message. */
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    memcpy(last_msg, tmp, sizeof(last_msg));
    return err;
}

int trace_fail_line(int err, unsigned long lineno)
{
    char tmp[sizeof(last_msg)];

    memcpy(tmp, last_msg, sizeof(tmp));
    snprintf(last_msg, sizeof(last_msg), "line %lu: %.990s", lineno, tmp);
    return err;
}

int last_mdb_error(void)
{
    return last_mdb;
}

int trace_fail_mdb(int rc, const char *what)
{
    int err;

    if (rc == LEDGER_ELOCKED) /* the message is set (ledger.c) */
        return TRACE_EUNAVAIL;
    last_mdb = rc;
    switch (rc) {
    case MDB_MAP_FULL:
        err = TRACE_EFULL;
        break;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
        err = TRACE_EVERIFY;
        break;
    case MDB_NOTFOUND:
        err = TRACE_ENOTFOUND;
        break;
    case ENOSPC:
        err = TRACE_EFULL;
        break;
    case ENOMEM:
        err = TRACE_ENOMEM;
        break;
    default:
        err = TRACE_EUNAVAIL;
        break;
    }
    return trace_fail(err, "%s: %s", what, mdb_strerror(rc));
}

void trace_error_clear(void)
{
    last_msg[0] = '\0';
}

const char *trace_error_last(void)
{
    return last_msg;
}

static const struct {
    int code;
    int exit_code;
    const char *text;
} errors[] = {
    {TRACE_OK, 0, "ok"},
    {TRACE_EINVAL, 2, "rejected input"},
    {TRACE_EPERM, 5, "permission denied"},
    {TRACE_ENOTFOUND, 4, "not found"},
    {TRACE_EVERIFY, 3, "verification failed"},
    {TRACE_EUNAVAIL, 6, "unavailable"},
    {TRACE_ENOMEM, 6, "out of memory"},
    {TRACE_EEXIST, 2, "already exists"},
    {TRACE_EFULL, 6, "ledger or disk full"},
    {TRACE_EIO, 6, "I/O error"},
};

const char *errno_text(int e)
{
    static _Thread_local char buf[128];

    if (strerror_r(e, buf, sizeof(buf)) != 0)
        snprintf(buf, sizeof(buf), "error %d", e);
    return buf;
}

const char *trace_strerror(int err)
{
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
        if (errors[i].code == err)
            return errors[i].text;
    return "unknown error";
}

int trace_error_exit_code(int err)
{
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
        if (errors[i].code == err)
            return errors[i].exit_code;
    return 6;
}
