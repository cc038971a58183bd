/* SPDX-License-Identifier: Apache-2.0 */
/*
 * trace.h - libtrace: a signed, hash-chained, append-only ledger for
 * precursor chemicals and controlled drugs.
 *
 * Conventions for the whole API (read once, they hold everywhere):
 *
 *  - Every fallible function returns int: TRACE_OK (0) or a negative
 *    TRACE_E* code.  After a failure trace_error_last() describes it in
 *    words (thread-local; valid until the next libtrace call on the same
 *    thread; never NULL).
 *  - Objects are opaque.  What comes back through an `out` parameter is
 *    the caller's and is released with the matching *_free(); every
 *    *_free(NULL) is a no-op.  Pointers returned directly are borrowed
 *    from the object they came from.
 *  - Quantities are integers in base units (ug, uL, milli-units); times
 *    are int64 microseconds since the Unix epoch, UTC.  No floats.
 *  - Thread safety: a trace_ledger may be used from several threads for
 *    reads and appends at once; appends are serialised internally, and
 *    the memory map grows (when an append fills it) only once every
 *    other thread's reads and appends in progress have ended.  An
 *    append cannot grow the map while its own thread holds an open
 *    import or group commit (trace_import_*, trace_commit_*): it then
 *    fails with TRACE_EFULL; and a callback of a libtrace call runs
 *    inside its transaction, so it must not wait for another thread
 *    that appends.  Other objects belong to one thread at a time.
 *
 * No LMDB, OpenSSL, jansson or protobuf-c type appears in these headers.
 */
#ifndef TRACE_TRACE_H
#define TRACE_TRACE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TRACE_VERSION_STRING "0.1.0"

/* Error codes.  The comment gives the tracectl exit code each maps to. */
enum trace_error {
    TRACE_OK = 0,
    TRACE_EINVAL = -1,    /* rejected input (2) */
    TRACE_EPERM = -2,     /* permission denied (5) */
    TRACE_ENOTFOUND = -3, /* not found (4) */
    TRACE_EVERIFY = -4,   /* verification failed or damage found (3) */
    TRACE_EUNAVAIL = -5,  /* storage or service unavailable (6) */
    TRACE_ENOMEM = -6,    /* out of memory (6) */
    TRACE_EEXIST = -7,    /* already exists (2) */
    TRACE_EFULL = -8,     /* ledger map or disk full (6) */
    TRACE_EIO = -9        /* I/O error on a file (6) */
};

/* A short, static description of an error code. */
const char *trace_strerror(int err);

/*
 * The message of the last failure on this thread, with context (file,
 * line number, field).  Never NULL; "" when there is none.
 */
const char *trace_error_last(void);

/* Exit code of tracectl for a TRACE_E* code (0 for TRACE_OK). */
int trace_error_exit_code(int err);

/*
 * Parses a time as libtrace reads times everywhere: RFC 3339
 * (2026-03-01T09:30:00+08:00; fractions of a second down to a
 * microsecond; Z or a +HH:MM/-HH:MM offset) or a bare date (2026-03-01),
 * which means that day in the zone `tz_offset_min` (minutes east of UTC;
 * a ledger's is trace_ledger_tz()): its first microsecond, or with
 * `end_of_day` its last.  Dates that do not exist (2026-02-31), years
 * before 1900, hours, minutes or seconds out of range (leap seconds
 * included) and date-times without a zone are refused.  TRACE_OK with
 * *out_us (microseconds since the epoch, UTC), or TRACE_EINVAL with a
 * message.  Thread-safe.
 */
int trace_time_parse(int64_t *out_us, const char *text, int tz_offset_min,
                     int end_of_day);

/*
 * The Chinese name shown for an enumerated value of SPEC section 3 or 4
 * (an event type, party kind, permit kind or status, use, dosage form,
 * loss reason, alert status or severity): "sale" gives "销售",
 * "purchase_license" "购买许可证".  The names of party kinds, statuses,
 * permit kinds, uses, forms and reasons are also accepted on input.  Any
 * other value is returned as it is (NULL for NULL).
 */
const char *trace_zh_name(const char *value);

#ifdef __cplusplus
}
#endif

#include "trace/key.h"
#include "trace/ledger.h"
#include "trace/query.h"
#include "trace/reconcile.h"

#endif
