/* SPDX-License-Identifier: Apache-2.0 */
/*
 * trace/csvmap.h - CSV exports of ERP systems read into the ledger's own
 * events through a column mapping (SPEC 11: tracectl import --format csv
 * --map MAP FILE).
 *
 * The mapping is a JSON object naming, for one event type, which column
 * holds which SPEC 3 field:
 *
 *   {"type": "sale",              one SPEC 3 event type (required)
 *    "header": true,              first record names the columns
 *                                 (default true)
 *    "delimiter": ",",            one byte (default ","; "\t" for TSV)
 *    "columns": {"id": "单据号", "at": "日期", "qty": "数量", ...},
 *                                 field -> header name, or 1-based column
 *                                 number (an integer, or a string of
 *                                 digits when "header" is false); a dotted
 *                                 field ("rx.id", "route.from") goes into
 *                                 a nested object
 *    "fixed": {"party": "9131..."},  fields with one value for every row
 *                                 (any JSON value)
 *    "at_format": "%Y-%m-%d %H:%M",  strptime(3) format of the `at`
 *                                 column (absent: RFC 3339 as is)
 *    "formats": {"valid_until": "%Y/%m/%d"},  the same for other fields
 *    "tz": "+08:00",              offset of those local times ("Z" or
 *                                 +HH:MM; default +08:00)
 *    "units": {"公斤": "kg"}}     unit column values -> SPEC 3 units
 *
 * Each data record becomes one JSON line (an empty cell leaves its field
 * out), handed to a callback with the physical line number the record
 * starts on; tracectl gives it to trace_import_line, so the import's
 * validation, checks at entry, atomicity and idempotency apply as they
 * are.  The CSV is read as RFC 4180 (quoted fields with delimiters, line
 * breaks and doubled quotes; CRLF or LF line ends; a UTF-8 BOM; blank
 * lines skipped), one record at a time: memory is bounded by the largest
 * record (at most 1 MiB).
 *
 * Not thread-safe per object; distinct objects may be used on distinct
 * threads.
 */
#ifndef TRACE_CSVMAP_H
#define TRACE_CSVMAP_H

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct trace_csvmap trace_csvmap;

/*
 * Reads a mapping from `in` (a JSON object as above) into *out (the
 * caller's, freed with trace_csvmap_free).  TRACE_OK; TRACE_EINVAL for a
 * mapping that is not JSON, names an unknown event type, an unknown key,
 * a bad delimiter, time zone or column, or a field both fixed and mapped
 * (reason in trace_error_last()); TRACE_ENOMEM.
 */
int trace_csvmap_load(trace_csvmap **out, FILE *in);
void trace_csvmap_free(trace_csvmap *m);

/* One event as a JSON line (not NUL-terminated in general) from the
 * record starting on physical line `lineno` (from 1).  A non-zero return
 * stops the reading and is returned. */
typedef int (*trace_csvmap_line_fn)(void *ctx, const char *line, size_t len,
                                    unsigned long lineno);
/* A record refused before it became a line (too few columns, a date its
 * format does not parse, a unit not in "units"), with a message that
 * starts "line N: ".  A non-zero return stops the reading. */
typedef int (*trace_csvmap_reject_fn)(void *ctx, unsigned long lineno,
                                      const char *reason);

/*
 * Reads the CSV `in` to its end, one record at a time.  TRACE_OK when the
 * file as a whole could be read (records may still have been refused
 * through `reject`); TRACE_EINVAL when it cannot be mapped at all (the
 * header lacks a mapped column, a record longer than 1 MiB, a quote left
 * open at the end), with "line N: reason" in trace_error_last();
 * TRACE_EUNAVAIL for a read error; TRACE_ENOMEM; or a callback's return.
 * `rows` (may be NULL) gets the number of data records read.
 */
int trace_csvmap_read(const trace_csvmap *m, FILE *in,
                      trace_csvmap_line_fn on_line,
                      trace_csvmap_reject_fn reject, void *ctx,
                      unsigned long *rows);

#ifdef __cplusplus
}
#endif

#endif
