/* SPDX-License-Identifier: Apache-2.0 */
/*
 * trace/epcis.h - GS1 EPCIS 2.0 JSON/JSON-LD documents read into the
 * ledger's own events (SPEC 11).
 *
 * A document (EPCISDocument or EPCISQueryDocument) is read as a stream:
 * only one EPCIS event is held in memory at a time, whatever the size of
 * the document.  Each event is mapped by its bizStep to zero or more
 * SPEC 3 JSON lines, handed to a callback (tracectl feeds them to
 * trace_import_line, so the import's validation, checks and atomicity
 * apply unchanged):
 *
 *   commissioning            produce (TransformationEvent: with inputs)
 *   transforming             produce with inputs (no registered output:
 *                            consume of the inputs)
 *   shipping                 sale (source -> destination owning party)
 *   receiving                receipt (from the source owning party)
 *   destroying               destroy
 *   dispensing               dispense (prescription from an extension
 *                            member named "...:rx")
 *   inspecting, holding and other steps that change no custody: nothing
 *
 * Locations: a bizLocation, readPoint, source or destination names a
 * party by its GLN or by the SGLN of one of its sites (party `sites`);
 * an event whose location is a site of its party is recorded at that
 * site.
 *
 * An eventID of the form TRACE_EPCIS_ID_PREFIX + percent-encoded id
 * gives back that id; a receipt refers to the eventID named by a
 * bizTransaction of type upevt when there is one; an extension object
 * "...:fields" gives the events its method, witness, handler, checker,
 * site, carrier and spec (what trace_epcis_export writes).
 *
 * What the mapping needs from the ledger - products by GTIN, parties by
 * GLN, permits by id - sits in a trace_epcis_master, loaded from a
 * ledger or filled by the caller (a client of traced).
 *
 * Outcomes per EPCIS event: mapped (its lines were handed on), skipped
 * (no registered product, no custody change, declared erroneous, an
 * AggregationEvent, AssociationEvent or TransactionEvent), or rejected
 * (it concerns a registered product but cannot be mapped, or it is
 * malformed) with its index in the event list and the reason.
 *
 * Not thread-safe per object; distinct objects may be used on distinct
 * threads.
 */
#ifndef TRACE_EPCIS_H
#define TRACE_EPCIS_H

#include <stdint.h>
#include <stdio.h>

#include "trace/ledger.h"
#include "trace/query.h"
#include "trace/trace.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct trace_epcis_master trace_epcis_master;

/* An empty master.  TRACE_OK or TRACE_ENOMEM. */
int trace_epcis_master_new(trace_epcis_master **out);
/* Adds every registered product, every party carrying a GLN and every
 * permit of the ledger.  TRACE_OK, TRACE_ENOMEM or a read error. */
int trace_epcis_master_load(trace_epcis_master *m, trace_ledger *l);
/* Adds one product: content is a decimal in content_unit (a SPEC 3
 * unit) per dosage unit or item.  TRACE_EINVAL for a bad GTIN, unit or
 * quantity. */
int trace_epcis_master_add_product(trace_epcis_master *m, const char *gtin,
                                   const char *substance, const char *content,
                                   const char *content_unit,
                                   uint32_t units_per_pack);
/* Adds a party's GLN (13 digits) or a permit and its kind. */
int trace_epcis_master_add_party(trace_epcis_master *m, const char *gln,
                                 const char *party);
int trace_epcis_master_add_permit(trace_epcis_master *m, const char *permit,
                                  const char *kind);
/* Adds a site of a party and its SGLN (13 digits): an EPCIS location,
 * source or destination naming it maps to the party, and the events at
 * that location to the site. */
int trace_epcis_master_add_site(trace_epcis_master *m, const char *sgln,
                                const char *party, const char *site);
void trace_epcis_master_free(trace_epcis_master *m);

typedef struct trace_epcis_summary {
    uint64_t events;   /* EPCIS events read */
    uint64_t mapped;   /* events that gave ledger events */
    uint64_t lines;    /* ledger events given */
    uint64_t skipped;  /* events read that store nothing */
    uint64_t rejected; /* events that cannot be mapped */
} trace_epcis_summary;

/* A ledger event (one JSON line, not NUL-terminated in general) from
 * the EPCIS event at `index` (from 0) of the event list.  A non-zero
 * return stops the reading and is returned. */
typedef int (*trace_epcis_line_fn)(void *ctx, const char *line, size_t len,
                                   unsigned long index);
/* An event rejected (index from 0) or skipped (`rejected` 0), with the
 * reason.  A non-zero return stops the reading and is returned. */
typedef int (*trace_epcis_note_fn)(void *ctx, unsigned long index, int rejected,
                                   const char *reason);

/*
 * Reads one EPCIS 2.0 JSON document from `in` to its end.  TRACE_OK when
 * the document as a whole is well-formed (its events may still have been
 * rejected: see sum->rejected); TRACE_EINVAL for one that is not (not
 * JSON, not an EPCISDocument or EPCISQueryDocument, no event list), with
 * the reason in trace_error_last(); TRACE_EUNAVAIL for a read error.
 * Lines given before such an error must be discarded by the caller.
 * `note` may be NULL.
 */
int trace_epcis_read(const trace_epcis_master *m, FILE *in,
                     trace_epcis_line_fn on_line, trace_epcis_note_fn note,
                     void *ctx, trace_epcis_summary *sum);

/* ------------------------------------------------------------------ */
/* Writing (SPEC 11): tracectl export --format epcis                    */

/* eventIDs of ledger ids that are no URI: this prefix and the id
 * percent-encoded; the reader takes such an eventID back to the id. */
#define TRACE_EPCIS_ID_PREFIX "urn:x-trace:id:"
/* The JSON-LD namespace of the extension members trace:rx (the
 * prescription of a dispense) and trace:fields (ledger fields EPCIS has
 * no place for: method, witness, handler, checker, site, carrier, spec);
 * the reader reads both back. */
#define TRACE_EPCIS_VOCAB "urn:x-trace:epcis:"

typedef struct trace_epcis_export_summary {
    uint64_t entries;         /* ledger events read (after the filters) */
    uint64_t written;         /* EPCIS events written */
    uint64_t not_movements;   /* registrations, permits, notes: no EPCIS */
    uint64_t other_types;     /* movements EPCIS has no bizStep for here
                                 (consume, loss, transfer, ...) */
    uint64_t no_product;      /* movements by substance (no gtin), or with
                                 an input of no registered product */
    uint64_t no_gln;          /* a party of the movement has no GLN */
    uint64_t not_expressible; /* a unit with no UN/CEFACT code the reader
                                 maps, a lot an LGTIN cannot carry */
} trace_epcis_export_summary;

/*
 * Writes the ledger's events matching `opts` (NULL: all; as for
 * trace_ledger_export) to `out` as one EPCIS 2.0 EPCISDocument, streamed:
 * each event is written as it is read.  The movements naming a GTIN map
 * to ObjectEvents and TransformationEvents that trace_epcis_read maps
 * back to the same ledger events (same ids: importing twice adds
 * nothing); the others are counted in `sum` and left out.  TRACE_OK,
 * TRACE_EINVAL (a bad party filter), TRACE_ENOMEM, TRACE_EUNAVAIL (a
 * write error), TRACE_EVERIFY or a read error.  After an error `out`
 * holds an incomplete document.
 */
int trace_epcis_export(trace_ledger *l, const trace_export_opts *opts,
                       FILE *out, trace_epcis_export_summary *sum);

/*
 * The same document from the ledger's JSON Lines export read elsewhere
 * (tracectl through traced): the parties' GLNs and the products are
 * given, then each exported line, then the end.  The document written
 * is the one trace_epcis_export writes for the same lines.
 */
typedef struct trace_epcis_writer trace_epcis_writer;
int trace_epcis_writer_new(trace_epcis_writer **out, FILE *f);
int trace_epcis_writer_add_party(trace_epcis_writer *w, const char *party,
                                 const char *gln);
/* The first product of a substance names the inputs of that substance. */
int trace_epcis_writer_add_product(trace_epcis_writer *w, const char *gtin,
                                   const char *substance);
/* A site's SGLN: events at that site are located there (bizLocation). */
int trace_epcis_writer_add_site(trace_epcis_writer *w, const char *party,
                                const char *site, const char *sgln);
/* One line of the export (a SPEC 3 JSON line).  TRACE_EVERIFY for a line
 * that is not one, TRACE_EUNAVAIL for a write error. */
int trace_epcis_writer_line(trace_epcis_writer *w, const char *line,
                            size_t len);
/* Closes the document; the counts. */
int trace_epcis_writer_end(trace_epcis_writer *w,
                           trace_epcis_export_summary *sum);
void trace_epcis_writer_free(trace_epcis_writer *w);

#ifdef __cplusplus
}
#endif

#endif
