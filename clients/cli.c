/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.c - tracectl's commands: the table, dispatch and shared helpers.
 * traced runs the same commands for its clients, so a command prints
 * through ctl_out/ctl_err (per thread) and never exits.
 *
 * Uses only libtrace's public API.  One table (commands[]) drives
 * dispatch, usage lines and help, so they cannot drift apart.  Exit codes
 * follow SPEC section 5: 0 ok, 1 usage, 2 rejected input, 3 verification
 * failed, 4 not found, 5 permission denied, 6 unavailable.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tracectl.h"

_Thread_local FILE *ctl_out;
_Thread_local FILE *ctl_err;
_Thread_local int ctl_tz_min = 480;

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

int ctl_fail(int rc)
{
    const char *msg = trace_error_last();
    fprintf(ctl_err, "tracectl: %s\n", msg[0] ? msg : trace_strerror(rc));
    return trace_error_exit_code(rc);
}

int ctl_usage(const char *cmd, const char *fmt, const char *arg)
{
    const struct command *c = ctl_find_command(cmd);
    fprintf(ctl_err, "tracectl %s: ", cmd);
    fprintf(ctl_err, fmt, arg);
    fprintf(ctl_err, "\nusage: tracectl %s %s\n(see tracectl %s --help)\n", cmd,
            c ? c->args : "", cmd);
    return EXIT_USAGE;
}

int ctl_bad_time(const char *cmd, const char *opt, const char *text)
{
    char m[600];

    /* the library's reason, from the ctl_parse_when that failed */
    snprintf(m, sizeof(m), "bad %s time %.64s: %.400s", opt, text,
             trace_error_last());
    return ctl_usage(cmd, "%s", m);
}

void ctl_help(const struct command *c)
{
    fprintf(ctl_out, "usage: tracectl [global options] %s %s\n\n%s\n\n%s",
            c->name, c->args, c->summary, c->help);
}

const char *ctl_keys_dir(struct globals *g)
{
    if (g->keys)
        return g->keys;
    snprintf(g->keys_buf, sizeof(g->keys_buf), "%s/keys", g->data);
    return g->keys_buf;
}

int ctl_open(struct globals *g, trace_ledger **out)
{
    int rc;

    if (g->connect) {
        *out = NULL;
        return g->remote ? 0 : remote_open(g);
    }
    if ((rc = trace_ledger_open(out, g->data)) != TRACE_OK)
        return ctl_fail(rc);
    return 0;
}

void ctl_close(struct globals *g, trace_ledger *l)
{
    (void)g;
    if (l)
        trace_ledger_close(l);
}

const char *ctl_acting_party(struct globals *g, trace_ledger *l)
{
    if (g->as)
        return g->as;
    if (l)
        return trace_ledger_regulator(l);
    return g->remote ? remote_regulator(g) : "REGULATOR";
}

static _Thread_local char errmsg[1024];
static _Thread_local int errmsg_set;

void ctl_set_errmsg(const char *msg)
{
    snprintf(errmsg, sizeof(errmsg), "%s", msg);
    errmsg_set = 1;
}

static _Thread_local unsigned long n_rejected, n_lines;

void ctl_set_rejected(unsigned long rejected, unsigned long lines)
{
    n_rejected = rejected;
    n_lines = lines;
}

void ctl_rejected(unsigned long *rejected, unsigned long *lines)
{
    *rejected = n_rejected;
    *lines = n_lines;
}

const char *ctl_errmsg(void)
{
    return errmsg_set ? errmsg : trace_error_last();
}

int ctl_code_of_exit(int exit_code)
{
    switch (exit_code) {
    case 0:
        return TRACE_OK;
    case 3:
        return TRACE_EVERIFY;
    case 4:
        return TRACE_ENOTFOUND;
    case 5:
        return TRACE_EPERM;
    case 6:
        return TRACE_EUNAVAIL;
    default:
        return TRACE_EINVAL;
    }
}

int ctl_append_lines(struct globals *g, trace_ledger *l, char **lines,
                     const size_t *lens, const unsigned long *linenos, size_t n,
                     const char *as, unsigned flags, trace_append_result *res)
{
    trace_keyring *ring = NULL;
    trace_batch *b = NULL;
    int rc;

    errmsg_set = 0;
    n_rejected = n_lines = 0;
    if (!l)
        return remote_append(g, lines, lens, linenos, n, as, flags, res);
    if ((rc = trace_keyring_open(&ring, ctl_keys_dir(g), 0)) == TRACE_OK &&
        (rc = trace_batch_new(&b, l)) == TRACE_OK) {
        for (size_t i = 0; i < n && rc == TRACE_OK; i++)
            rc = trace_batch_add_json(b, lines[i], lens[i], linenos[i]);
        if (rc == TRACE_OK)
            rc = trace_ledger_append(l, b, ring, as, flags, res);
    }
    trace_batch_free(b);
    trace_keyring_free(ring);
    return rc;
}

int ctl_import_stream(struct globals *g, FILE *in, const char *as,
                      unsigned flags, trace_append_result *res,
                      int *read_failed)
{
    errmsg_set = 0;
    n_rejected = n_lines = 0;
    return remote_import(g, in, as, flags, res, read_failed);
}

/* Parses a time for --from/--to/--at/--as-of with the library's parser
 * (trace_time_parse): RFC 3339 or a bare date (whole day in the ledger's
 * zone, ctl_tz_min). */
int ctl_parse_when(const char *s, int end_of_day, int64_t *out)
{
    return trace_time_parse(out, s, ctl_tz_min, end_of_day) == TRACE_OK ? 0
                                                                        : -1;
}

void ctl_now_text(char *buf, size_t cap, time_t t)
{
    int off = ctl_tz_min, a = off < 0 ? -off : off;
    time_t local = t + (time_t)off * 60;
    struct tm tm;
    char day[32];

    gmtime_r(&local, &tm);
    strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, cap, "%s%c%02d:%02d", day, off < 0 ? '-' : '+', a / 60,
             a % 60);
}

int ctl_rules_option(const struct globals *g, const char *cmd, const char *path,
                     ProtobufCBinaryData *data)
{
    char *text;
    size_t len;

    free(data->data);
    data->data = NULL;
    data->len = 0;
    if (g->connect)
        return ctl_usage(cmd, "%s",
                         "--rules is a setting of traced (rules = FILE), "
                         "not of a request");
    if (ctl_read_file(path, &text, &len) != 0) {
        fprintf(ctl_err, "tracectl: cannot read %s\n", path);
        return 4;
    }
    data->data = (uint8_t *)text;
    data->len = len;
    return 0;
}

int ctl_read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    long n;
    if (!f)
        return -1;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0 || !(*out = malloc((size_t)n + 1))) {
        fclose(f);
        return -1;
    }
    if (fread(*out, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(*out);
        return -1;
    }
    fclose(f);
    (*out)[n] = '\0'; /* callers may read it as a string */
    *len = (size_t)n;
    return 0;
}

/* ------------------------------------------------------------------ */
/* The command table                                                    */

static int cmd_help(struct globals *g, int argc, char **argv);

static const struct command commands[] = {
    {"init", cmd_init,
     "[--regulator ID] [--regime CN|US|EU|UN] [--regimes FILE] [--catalog "
     "FILE] [--tz +HH:MM] [--max-qty 'QTY UNIT']",
     "Create a new ledger in --data DIR with its root regulator.",
     "  --regulator ID   root regulator party id (default REGULATOR)\n"
     "  --regime CODE    the regulatory regime the rules follow: CN (default;\n"
     "                   易制毒化学品管理条例, 麻醉药品和精神药品管理条例),\n"
     "                   US (DEA: List I/II, Schedules II-V), EU (273/2004,\n"
     "                   111/2005: categories 1-4) or UN (1988 Convention\n"
     "                   Tables I/II); stored in the ledger (`tracectl "
     "regime`)\n"
     "  --regimes FILE   a regime table JSON instead of the built-in one\n"
     "                   (data/regimes.json); stored in the ledger.  An\n"
     "                   unknown regime or a malformed table is refused (exit\n"
     "                   2) and no ledger is made\n"
     "  --catalog FILE   substance catalog JSON (default: the built-in one\n"
     "                   with the substances of SPEC section 7)\n"
     "  --tz +HH:MM      the zone of bare dates in events and options\n"
     "                   (default +08:00)\n"
     "  --max-qty 'QTY UNIT'\n"
     "                   the largest quantity one event may carry in the\n"
     "                   dimension of UNIT (mass, volume or count), e.g.\n"
     "                   --max-qty '50000 t' --max-qty '1000 m3'; may be\n"
     "                   repeated.  Default 10^18 base units: 1000000 t,\n"
     "                   1000000000 m3, 10^15 unit.  Larger quantities are\n"
     "                   refused when parsed (exit 2); stock that would\n"
     "                   sum beyond ~9.2*10^18 base units is refused too.\n\n"
     "The regulator's key is created in the key folder (DIR/keys unless\n"
     "--keys is given) unless that folder already holds ID.key.\n"},
    {"keygen", cmd_keygen, "PARTY",
     "Create a new Ed25519 key for PARTY in the key folder.",
     "Writes PARTY.key (private, mode 0600) and PARTY.pub and prints the\n"
     "public key in base64, the form a `party` event's pubkey takes.\n"},
    {"import", cmd_import,
     "[--provision-keys] [--historic] [--strict] [--dry-run] "
     "[--receipt F] [--format jsonl|epcis|csv] [--map MAP] FILE|-",
     "Append the events of a JSON Lines file (SPEC section 3), an EPCIS "
     "2.0 document or a CSV export through a column mapping.",
     "  --provision-keys  create and register a key (signed by the root\n"
     "                    regulator, whose key must be in the key folder)\n"
     "                    for every registered party that has none\n"
     "  --historic        mark the events as migrated records (no\n"
     "                    LATE_REPORT, no checks at entry)\n"
     "  --strict          refuse the file if the checks at entry find\n"
     "                    anything (exit 2, nothing imported)\n"
     "  --dry-run         do everything but store: every line checked,\n"
     "                    signed and indexed, then dropped; says what would\n"
     "                    be imported (keys it would provision are made in\n"
     "                    a temporary copy of the key folder)\n"
     "  --receipt F       write the write's receipt to F: the signed\n"
     "                    checkpoint of each commit and the inclusion proofs\n"
     "                    of its entries (each of a commit of at most 64,\n"
     "                    else its first and last), checked first; tracectl\n"
     "                    check-proof F --log-key VKEY checks it later\n"
     "  --format epcis    read a GS1 EPCIS 2.0 JSON document (EPCISDocument\n"
     "                    or EPCISQueryDocument): ObjectEvents and\n"
     "                    TransformationEvents of registered products\n"
     "                    (tracectl products) become produce, sale,\n"
     "                    receipt, destroy and dispense events by bizStep;\n"
     "                    parties by their `gln` or the `sgln` of one of\n"
     "                    their `sites` (the event is then at that site).\n"
     "                    Events of no registered product are skipped; one\n"
     "                    that cannot be mapped is rejected with its\n"
     "                    eventList index and nothing is imported.  Through\n"
     "                    traced the products, GLNs and permits are the\n"
     "                    daemon's.\n"
     "  --format csv --map MAP\n"
     "                    read a CSV export (RFC 4180; BOM and CRLF\n"
     "                    tolerated): MAP, a JSON file, names the event\n"
     "                    type, which column holds which field (by header\n"
     "                    name or 1-based number), fixed fields, the\n"
     "                    strptime format and time zone of date columns\n"
     "                    and unit names (see trace/csvmap.h).  Each row\n"
     "                    is one event, numbered by its line in the CSV.\n"
     "                    Ledger-folder only for now.\n\n"
     "Each event is signed with its recording party's key from the key\n"
     "folder.  The whole file is one atomic batch: any rejected line is\n"
     "reported with its number and nothing is imported.  Re-importing the\n"
     "same events is harmless: identical ids and contents are skipped.\n"
     "With --as PARTY every event must be recorded by PARTY.\n\n"
     "The checks at entry of `record` (see `check`: stock going negative,\n"
     "a missing, invalid or exhausted permit, receipts exceeding their\n"
     "sale, times in the future, licence scopes) run on every event against\n"
     "the ledger plus the file's earlier lines.  A file records what already\n"
     "happened, so a finding is a warning naming its line: the file is\n"
     "imported, and reconciliation runs at once so that the findings'\n"
     "alerts are raised now rather than at night (tracectl alerts --open).\n"
     "Through traced the daemon does both; with --strict a multi-chunk file\n"
     "keeps the chunks committed before the one with the finding.\n"},
    {"export", cmd_export,
     "[--format jsonl|epcis] [--party P] [--from T] [--to T]",
     "Write events as JSON Lines, in journal order, or as one GS1 EPCIS 2.0\n"
     "document (--format epcis, SPEC 11).",
     "  --format F  jsonl (the default) or epcis: the movements recorded by\n"
     "              GTIN (produce, sale, receipt, destroy, dispense) as\n"
     "              EPCIS events; what EPCIS cannot carry (no GTIN, a\n"
     "              party without a GLN, other types) is counted on stderr;\n"
     "              a movement at a site with an SGLN is located there\n"
     "  --party P   only events recorded by P\n"
     "  --from T    only events whose `at` is at or after T\n"
     "  --to T      only events whose `at` is at or before T\n"
     "T is RFC 3339 (2026-03-01T08:00:00+08:00) or a date (the whole day,\n"
     "+08:00).\n"},
    {"balance", cmd_balance, "PARTY [--at T] [--substance S] [--csv]",
     "Book stock of a party per site, substance and lot.",
     "  --at T          stock as of T (RFC 3339, or a date: the end of that\n"
     "                  day, +08:00); default now\n"
     "  --substance S   one substance (catalog code, CAS number or Chinese\n"
     "                  name)\n"
     "  --csv           CSV with a header (UTF-8 with a BOM, for "
     "spreadsheets)\n"
     "--json prints one line per holding: party, site, substance, lot, qty\n"
     "(exact decimal in unit), unit.  Holdings at zero are not shown.\n"},
    {"trace", cmd_trace, "LOT [--party P] --forward|--backward",
     "Where a lot went, or where it came from.",
     "  --forward    every party that received the lot, and onward, also\n"
     "               through `produce` events into new lots\n"
     "  --backward   how the lot reached P (or its origin), back to its\n"
     "               producer or importer and through a product's inputs\n"
     "  --party P    start from P's holding of the lot\n"
     "--json prints one line per hop: lot, substance, from, to, qty, unit,\n"
     "event, at (and kind, party, into_lot, depth).\n"},
    {"permit", cmd_permit,
     "show ID [--at T] | list [--holder P] [--status S] [--at T]",
     "A permit's budget, write-off, remaining quantity and status; or a\n"
     "list of permits.",
     "  show ID      one permit: every citation and whether it was written\n"
     "               off (a citation counts only if the permit was valid\n"
     "               for it)\n"
     "  list         one line per permit (a party: those it holds or is\n"
     "               the named counterparty of; a regulator: all)\n"
     "  --holder P   only permits held by P\n"
     "  --status S   only permits in status S: active, suspended, revoked,\n"
     "               exhausted, expired, not_yet_valid\n"
     "  --at T       the state as of T (default now)\n"},
    {"parties", cmd_parties, "[--kind K]",
     "List the registered parties: id, kind, region, status, licences, "
     "name.",
     "  --kind K   only parties of kind K (manufacturer, distributor, user,\n"
     "             enterprise, pharmacy, hospital, carrier, warehouse,\n"
     "             importer, exporter, regulator)\n"
     "Every registered party may read the registry (a seller checks a\n"
     "buyer's licences and status in it).\n"},
    {"products", cmd_products, "[--substance S]",
     "List the registered products (GTIN, substance, content, units per "
     "pack, form, name).",
     "  --substance S   only products of substance S (code, CAS number or\n"
     "                  name)\n"
     "Products are registered with `product` events by a regulator or\n"
     "their manufacturer; movements may then name a gtin and packs.\n"},
    {"credit", cmd_credit, "PARTY [--at T] [--rules FILE]",
     "Enterprise credit evaluation (企业信用评价): a score from 0 to 100 and "
     "a grade over the twelve months before T.",
     "  --at T         as of T (default now)\n"
     "  --rules FILE   the rules file whose \"credit\" object sets weights:\n"
     "                 {\"credit\":{\"weights\":{\"open_high\":10,...}}}\n"
     "                 (traced uses its own `rules` setting)\n"
     "100 less, for each factor, its count times its weight: stored alerts\n"
     "naming the party by severity, open (or only acknowledged) apart from\n"
     "resolved, each counted at its first evidence event's time; late\n"
     "reports (LATE_REPORT) and stocktake variances (STOCKTAKE_VARIANCE)\n"
     "as their own factors; the party's loss events.  Grade A >= 90,\n"
     "B >= 75, C >= 60, else D.  Run reconcile first: only stored alerts\n"
     "count.  The party itself and regulators may ask.\n"},
    {"history", cmd_history,
     "PARTY|LOT [--from T] [--to T] [--after SEQ] [--limit N] [--csv]",
     "Events recorded by a party, or naming a lot, in journal order.",
     "  PARTY|LOT     a party's own events, or (if no party has that id)\n"
     "                every event naming the lot\n"
     "  --lot LOT     events naming LOT, even if a party has that id\n"
     "  --from/--to   `at` window (inclusive)\n"
     "  --limit N     page size (default 100, 0: all)\n"
     "  --after SEQ   next page: events after journal position SEQ\n"
     "  --csv         CSV with a header (UTF-8 with a BOM, for "
     "spreadsheets)\n"},
    {"reconcile", cmd_reconcile,
     "[--as-of T] [--rules FILE] [--dry-run] [--incremental]",
     "Run every reconciliation rule over the ledger and store the alerts.",
     "  --as-of T      judge as of T (default now): windows such as the\n"
     "                 receipt window count up to T\n"
     "  --incremental  read only what was appended since the previous\n"
     "                 incremental run and what judging it needs (its\n"
     "                 lots, permits, buyers' orders, patients, and what\n"
     "                 was still pending last time); prints the alerts\n"
     "                 about those.  The first run, and one after the rules\n"
     "                 changed or a correction, reads everything\n"
     "  --rules FILE   JSON overrides, e.g. "
     "{\"UNUSUAL_ORDER\":{\"factor\":4},\n"
     "                 "
     "\"LATE_REPORT\":{\"enabled\":false,\"severity\":\"low\"}}\n"
     "  --dry-run      print the alerts without storing them\n"
     "--json prints one alert per line: id, rule, severity, party,\n"
     "counterparty, substance, lot, permit, events [{party,id}], detail,\n"
     "status.  The same ledger gives the same alerts with the same ids.\n"},
    {"alerts", cmd_alerts,
     "[--open] [--status S] [--rule R] [--party P] [--follow] [--csv]",
     "List stored alerts.",
     "  --open        only alerts nobody acknowledged or resolved\n"
     "  --status S    open, acknowledged or resolved\n"
     "  --rule R      one rule code\n"
     "  --party P     alerts naming P as party or counterparty\n"
     "  --follow      then keep printing new alerts as reconciliation runs\n"
     "                store them (Ctrl-C to stop)\n"
     "  --csv         CSV with a header (UTF-8 with a BOM, for "
     "spreadsheets)\n"},
    {"ack", cmd_ack, "ALERT [--status acknowledged|resolved] [--note TEXT]",
     "Acknowledge or resolve an alert (records an alert_ack event).",
     "Recorded and signed as --as PARTY, by default the root regulator.\n"},
    {"check", cmd_check, "TYPE --FIELD VALUE ...",
     "Run the checks at entry on an event without recording it.",
     "Takes the arguments of record (without --override) and prints what\n"
     "recording the event now would run into: FUTURE_TIME (beyond 5 minutes\n"
     "ahead), NEGATIVE_STOCK (the lot's book stock over all sites would go\n"
     "below zero), PERMIT_MISSING / PERMIT_INVALID / PERMIT_EXCEEDED (the\n"
     "cited permit: never issued; not active, another holder, counterparty,\n"
     "substance or kind, single-use and used; less left than the movement),\n"
     "RECEIPT_EXCEEDS_SALE (the receipts of a sale would total more than\n"
     "it shipped), RX_REUSE (a dispensing's prescription id was dispensed\n"
     "already, by anyone: names that dispensing).  Exit 2 if there is any\n"
     "finding, 0 if none.  A seller\n"
     "checks a buyer's permit before a sale this way.\n"},
    {"record", cmd_record, "TYPE --FIELD VALUE ... [--receipt F]",
     "Record one event, signed as --as PARTY (e.g. a dispensing at the "
     "counter).",
     "Every --FIELD VALUE becomes a field of the SPEC section 3 event; id\n"
     "and at default to a fresh id and now.  A dispensing takes short\n"
     "flags for its prescription:\n"
     "  tracectl --as PHARMACY record dispense --substance morphine \\\n"
     "      --lot MOR-2601 --qty 10 --unit unit --rx-id RX-1 \\\n"
     "      --prescriber DR-1 --patient 310101195001011234 \\\n"
     "      --written 2026-02-01 --days 3 --form oral [--chronic]\n"
     "The patient id is pseudonymised before anything is stored.  A\n"
     "carrier's pickup, handover or delivery names the sale it carries:\n"
     "  tracectl --as CARRIER record pickup --ref.party SELLER \\\n"
     "      --ref.id SALE-ID --substance ephedrine --lot EPH-2601-A \\\n"
     "      --qty 100 --unit kg --vehicle 沪A12345 --driver ID [--seal S]\n"
     "(handover and delivery take --to; the driver is pseudonymised like\n"
     "a patient; custody moves no stock).  A missing\n"
     "or malformed field is named in the error (exit 2); nothing is stored.\n"
     "A correction without a replacement voids the event: say --void (or\n"
     "use `correct ID --FIELD VALUE`, which builds the replacement).\n"
     "--receipt F writes the receipt of the write to F (the checkpoint its\n"
     "commit stored and the entry's inclusion proof; see import).\n"
     "The registry by name (regulators):\n"
     "  record party add --subject ID --name N --kind K --region R \\\n"
     "      --licenses CN-PC-1,CN-PC-2      (the same as record party ...)\n"
     "  record party update ID --FIELD VALUE ...   changes only those fields\n"
     "      (--name, --kind, --region, --licenses, --status suspended)\n"
     "  record party key ID --pubkey KEY [--revoke OLD-KEY]   a key rotation\n"
     "Before recording, the checks at entry run (see `check`): an event\n"
     "that would take stock negative, cite a bad or exceeded permit,\n"
     "receive more than a sale shipped or dispense a prescription again is\n"
     "refused (exit 2) unless\n"
     "  --override REASON   records it anyway, the reason stored in the\n"
     "                      event (a fact must never become unrecordable)\n"},
    {"parcels", cmd_parcels, "[--outlet O] [--from T] [--to T]",
     "The three 100 % checks (三个100%) of parcels per courier outlet.",
     "For each outlet (or the one named): parcels recorded, and the share\n"
     "whose sender was verified by real name, that were opened for\n"
     "inspection, X-rayed, and all three.  Parcels are `parcel` events;\n"
     "each one short of a check is a PARCEL_CHECK_MISSING alert.  A\n"
     "regulator sees every outlet, an outlet's party its own parcels.\n"
     "This reads the parcels the caller may export (a scan).\n"},
    {"applications", cmd_applications, "[--pending] [--party P]",
     "Permit applications (网上审批) and where each stands.",
     "One line per application: the applicant, what it asks for, its\n"
     "state (pending, approved by a permit, rejected with the reason) and\n"
     "the working days (Monday to Friday in the ledger's zone) it waited\n"
     "for its answer, or has waited so far.\n"
     "  --pending   only those not answered yet (a regulator's queue)\n"
     "  --party P   only P's applications\n"
     "A party applies with `record permit_application`; a regulator\n"
     "answers with a `permit` citing it (`record permit ... --application\n"
     "APPLICANT/ID`) or an `application_decision` (`--application\n"
     "APPLICANT/ID --decision rejected --reason R`).  An application\n"
     "unanswered after 5 working days is APPLICATION_OVERDUE.  A regulator\n"
     "sees every application, a party its own.\n"},
    {"correct", cmd_correct, "EVENT-ID --reason R --FIELD VALUE ...",
     "Correct one of your events: its replacement is the event as it "
     "stands with the given fields changed.",
     "  tracectl --as P correct use-0001 --reason \"weighing error\" --qty "
     "205.5\n"
     "records a `correction` of use-0001 whose replacement is use-0001 with\n"
     "qty 205.5 (every --FIELD VALUE as record takes them, --at included:\n"
     "they change the replacement; the correction itself is dated now).\n"
     "The original stays in the journal, shown as corrected.  To void an\n"
     "event instead: record correction --corrects ID --reason R --void.\n"
     "The checks at entry run as for record (--override REASON).\n"},
    {"register", cmd_register,
     "PARTY --substance S [--month YYYY-MM | --from DATE --to DATE] "
     "[--csv | --html | --format text|csv|json|html]",
     "The special register (专用账册): a row per receipt, dispensing, "
     "destruction or other movement, with the running balance.",
     "  --substance S   the drug or chemical (code, CAS number or Chinese "
     "name)\n"
     "  --month YYYY-MM that month\n"
     "  --from/--to     first and last day (default today; one alone means\n"
     "                  that day), in the ledger's zone (+08:00)\n"
     "The heading names the party, the drug (its Chinese name with --lang\n"
     "zh), its specification and the period; the opening balance is the\n"
     "first row; then one row per entry: date, kind, entry id, prescription\n"
     "id (dispensing) or supplier, buyer or witness, lot, specification,\n"
     "quantity in or out, the balance after it over all lots and sites, and\n"
     "the handler and checker (经手人, 复核人); days without movement have no\n"
     "row; the period's totals (received, dispensed, destroyed, other out,\n"
     "closing) end it.\n"
     "  --csv           the same rows as CSV (UTF-8 with a BOM, a header "
     "line;\n"
     "                  an `opening` row first and a `total` row last)\n"
     "  --html          a printable page (A4 landscape) with signature lines\n"
     "  --json          one object per day, every day of the period, with its\n"
     "                  totals and entries (supplier and lot, prescription "
     "ids,\n"
     "                  balance, handler, checker, spec)\n"
     "Handler and checker are staff of the party (names or staff ids, never\n"
     "a patient's): record them with the event, e.g. `record dispense ...\n"
     "--handler 张药师 --checker 李药师` (also on receipt, sale and destroy).\n"
     "The specification (规格, e.g. \"10mg×10片\") is the event's `spec`, "
     "else\n"
     "its lot's: the spec on the party's receipt (or produce) of the lot,\n"
     "else on the lot's produce event; record it once per lot with\n"
     "`record receipt ... --spec 10mg×10片`.  A hospital prints patients\n"
     "from its own records: the ledger holds only pseudonyms.\n"},
    {"backup", cmd_backup, "DEST",
     "Write a consistent, compacted copy of the ledger to DEST.",
     "Safe while others append: the copy is the ledger at one moment.  The\n"
     "pseudonymisation secret is copied; key folders are not.  Restore by\n"
     "pointing --data at the copy (or copying it back).\n"},
    {"status", cmd_status, "",
     "Is traced up, and how is its ledger? (needs no party key)",
     "With --connect URL: the daemon's answer to an unauthenticated Hello:\n"
     "its ledger's size and head, when it started, its last commit and\n"
     "reconciliation, its jobs.  Exit 6 if it does not answer: for\n"
     "monitoring and health checks.  With --data DIR: the ledger's size\n"
     "and head, as `head` prints them.\n"},
    {"catalog", cmd_catalog, "",
     "List the substances of the ledger's catalog and their controls.",
     "Codes and CAS numbers are what events name as `substance`; the\n"
     "controls are the licence scopes a buyer needs (e.g. CN-PC-1).\n"},
    {"regime", cmd_regime, "", "Show the ledger's regime and its table.",
     "The regime (CN, US, EU or UN) was chosen at `init --regime`; a ledger\n"
     "made before regimes existed is CN.  For each control class: the\n"
     "permit kinds a sale, a carried sale's transport, an import and an\n"
     "export accept and whether one is required (PERMIT_MISSING,\n"
     "PERMIT_INVALID), the licence scope a buyer must hold\n"
     "(UNLICENSED_PARTY) and the LATE_REPORT deadline parameter that\n"
     "applies; then the licence scopes that exist and the deadlines'\n"
     "defaults (a rules file overrides them).  --json: the table's entry.\n"
     "--lang zh: Chinese labels.\n"},
    {"head", cmd_head, "[--follow]",
     "Print the journal's size and head hash (to record outside).",
     "The head hash covers every entry: writing it down somewhere else\n"
     "(a register, an e-mail, a newspaper) lets anyone check later that\n"
     "nothing before it was rewritten.  --follow prints each new head as\n"
     "appends land, until interrupted.\n"},
    {"checkpoint", cmd_checkpoint, "[--size N] [--public-key] [--follow]",
     "Print the ledger's signed checkpoint (a C2SP signed note) with its "
     "witnesses' cosignatures.",
     "Every append ends with a checkpoint: the Merkle tree root (RFC 9162)\n"
     "of the journal at that size, signed by the ledger's log key\n"
     "(DIR/traced.key; through traced, the daemon's `key` setting).  Keep\n"
     "one outside the box, or have witnesses cosign it: nobody can later\n"
     "rewrite or roll back what it covers unseen.\n"
     "  --size N      the checkpoint stored when the journal had N entries\n"
     "  --public-key  the log's verifier key (NAME+KEYID+BASE64), which\n"
     "                check-proof and witnesses need\n"
     "  --follow      then print each new checkpoint as appends land\n"
     "                (through traced: the notes of its PUB feed, each\n"
     "                checked with the daemon's log key)\n"},
    {"prove", cmd_prove,
     "PARTY/EVENT-ID | --history PARTY | --consistency OLD NEW [--out F]",
     "Write an offline proof bundle (JSON) for check-proof.",
     "  PARTY/EVENT-ID        the event, its exact stored bytes, its entry,\n"
     "                        leaf index and inclusion proof, the checkpoint,\n"
     "                        the recorder's signature over its group and\n"
     "                        the registration of its key, proven the same\n"
     "  --history PARTY       every entry of the party's chain, each proven\n"
     "  --consistency OLD NEW that the tree of NEW entries extends the one\n"
     "                        of OLD (both stored checkpoints)\n"
     "  --out F               write to F instead of standard output\n"},
    {"check-proof", cmd_check_proof,
     "FILE --log-key VKEY [--witness-key [NAME=]VKEY ...] [--min-cosigs K]",
     "Check a proof bundle offline, with no ledger.",
     "Exit 0 when everything holds (printing what was shown), 3 naming the\n"
     "first thing that does not: the checkpoint's signature by the log key,\n"
     "the witnesses' cosignatures (at least K of the keys given), the\n"
     "inclusion proof, the entry, the event, the recorder's signature, the\n"
     "key's registration, a history's chain links.\n"},
    {"witness", cmd_witness,
     "--log URL|DIR --key FILE --state DIR [--name NAME] [--log-key VKEY]",
     "Cosign the log's latest checkpoint if it extends the last one cosigned.",
     "A witness (a regulator, an outside auditor) keeps in --state the last\n"
     "checkpoint it cosigned for each log and the log key seen first.  It\n"
     "cosigns (C2SP tlog-cosignature, cosignature/v1) a newer checkpoint\n"
     "only after checking the log's consistency proof from that one, and\n"
     "hands the cosignature to the log, which stores it in the ledger\n"
     "folder and serves it with the checkpoint.  A smaller (rolled back)\n"
     "or inconsistent checkpoint is refused with exit 3, both signed notes\n"
     "written to an evidence file in --state.\n"
     "  --log URL|DIR    traced (ipc://, tcp://, tls+tcp://; requests are\n"
     "                   signed as --as with --keys, any registered party)\n"
     "                   or a ledger folder (a copy will do: the cosigned\n"
     "                   note is kept in --state as ORIGIN.cosigned, for\n"
     "                   `tracectl cosign` by a party that can connect)\n"
     "  --key FILE       the witness's Ed25519 key (PEM)\n"
     "  --name NAME      its key name (default: the key file's name)\n"
     "  --log-key VKEY   the log's verifier key (default: at first contact\n"
     "                   the folder's, or the key traced says Hello with;\n"
     "                   then the one pinned in --state)\n"
     "  --public-key     print the witness's verifier key (making the key\n"
     "                   file if it does not exist) and stop\n"},
    {"cosign", cmd_cosign, "FILE --witness-key [NAME=]VKEY",
     "Hand in a witness's cosignature of a checkpoint, to be served with it.",
     "FILE is a checkpoint cosigned by a witness (witness --state keeps\n"
     "its last one as ORIGIN.cosigned): the checkpoint's text as the log\n"
     "stored it, a blank line and the witness's cosignature line, which\n"
     "must verify under VKEY.  Any registered party may hand one in (an\n"
     "outside auditor without a party key gives its file to one, a\n"
     "regulator say); it is stored under the key's name.  A name keeps\n"
     "its first key, and a checkpoint takes the cosignatures of at most\n"
     "31 witnesses (exit 5 beyond).\n"},
    {"verify", cmd_verify, "[--deep] [--from-checkpoint FILE]",
     "Recompute every hash, link and signature of the ledger.",
     "Also recomputes the Merkle tree and checks every stored subtree and\n"
     "checkpoint against it (and each checkpoint's signature by the log\n"
     "key).  Exit 0 if everything holds; exit 3 naming the first bad entry,\n"
     "or when the storage itself is damaged.  Through a daemon only a\n"
     "regulator verifies (exit 5 for other parties).\n"
     "\n"
     "--from-checkpoint FILE  a signed checkpoint kept outside (tracectl\n"
     "        checkpoint > FILE): the journal must still hold its tree; a\n"
     "        rewrite or a rollback below it fails (the whole journal is\n"
     "        still verified)\n"
     "--deep  then re-derive every index that queries read from the\n"
     "        journal (replayed into a scratch copy in a temporary\n"
     "        directory beside the ledger, removed after) and compare it\n"
     "        with the stored one, record by record: ids, pchain, heads,\n"
     "        parties, keys, bal, lots, permits, pev, eff, acks and rcidx\n"
     "        (reconciliation's keys as of its last incremental run).\n"
     "        Alerts come from reconciliation runs, not from the journal\n"
     "        alone, so they are checked for consistency only: alertseq\n"
     "        numbers each stored alert once, each alert's JSON parses,\n"
     "        its id is the one its rule and evidence give, and its\n"
     "        evidence is in the journal.  Exit 3 naming the first record\n"
     "        that differs: its index, its key (strings as text, \\0\n"
     "        between fields; binary as hex), what the journal gives and\n"
     "        what is stored, or missing/unexpected.  --json adds deep,\n"
     "        index_records and, on a difference, index, key, problem,\n"
     "        expected and found.  Needs disk space about the size of the\n"
     "        indexes; takes a few times as long as verify.\n"},
    {"help", cmd_help, "[COMMAND]", "Show help for a command.", ""},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

const struct command *ctl_find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

void ctl_main_usage(FILE *f)
{
    fprintf(
        f,
        "usage: tracectl [--data DIR | --connect URL] [--keys DIR] "
        "[--as PARTY] [--json] COMMAND ...\n\n"
        "Global options:\n"
        "  --data DIR     ledger folder (default ./ledger, or $TRACE_DATA)\n"
        "  --connect URL  talk to a traced daemon instead (ipc://, tcp://,\n"
        "                 tls+tcp://; or $TRACE_CONNECT): the same commands\n"
        "  --keys DIR     key folder (default DIR/keys)\n"
        "  --as PARTY     act and sign as PARTY (default: the root\n"
        "                 regulator); with --connect, requests are signed\n"
        "                 with its key from the key folder\n"
        "  --timeout S    with --connect: seconds to wait for an answer\n"
        "  --tls-ca FILE  with tls+tcp://: CA that signed the daemon's cert\n"
        "  --tls-cert F   with tls+tcp://: our certificate and key (PEM)\n"
        "  --json         JSON Lines output\n"
        "  --lang zh|en   words of the human-readable output (default: zh in\n"
        "                 a zh_* locale, else en; --json is the same in both)\n"
        "\nCommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-8s %-40s %s\n", commands[i].name, commands[i].args,
                commands[i].summary);
    fprintf(f, "\nFirst try:\n"
               "  tracectl --data demo init\n"
               "  tracectl --data demo import --provision-keys "
               "examples/demo.jsonl\n"
               "  tracectl --data demo verify\n"
               "Exit codes: 0 ok, 1 usage, 2 rejected input, 3 verification "
               "failed,\n4 not found, 5 permission denied, 6 unavailable.\n");
}

static int cmd_help(struct globals *g, int argc, char **argv)
{
    if (argc > 1) {
        const struct command *c = ctl_find_command(argv[1]);
        char *args[] = {argv[1], "--help", NULL};
        if (!c)
            return ctl_usage("help", "unknown command %s", argv[1]);
        if (c->run == cmd_help) {
            ctl_help(c);
            return 0;
        }
        /* `help X` is `X --help`: each command prints its own */
        optind = 0;
        return c->run(g, 2, args);
    }
    ctl_main_usage(ctl_out);
    return 0;
}

/* With --connect: which commands run here and which on the daemon. */
static int remote_route(struct globals *g, const struct command *cmd, int argc,
                        char **argv)
{
    int ret;

    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return cmd->run(g, argc, argv);
    if (strcmp(cmd->name, "help") == 0 || strcmp(cmd->name, "keygen") == 0)
        return cmd->run(g, argc, argv);
    if (strcmp(cmd->name, "status") == 0)
        return cmd->run(g, argc, argv); /* a Hello: no key needed */
    if (strcmp(cmd->name, "init") == 0) {
        fprintf(ctl_err, "tracectl: init creates a ledger folder: run it "
                         "with --data DIR where traced will run\n");
        return EXIT_USAGE;
    }
    if ((ret = remote_open(g)) != 0)
        return ret;
    /* every command parses here and sends what it parsed: a Call (ops.h),
     * or for writes Prepare and Commit */
    ret = cmd->run(g, argc, argv);
    remote_close(g);
    return ret;
}

/* 1 if the command line asks for the command's help. */
static int asks_help(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    return 0;
}

/* On a ledger folder, --as P acts as P only with P's private key in the
 * key folder (SPEC 5), as through traced, where P signs each request:
 * for reads as for writes.  0 (and a message) if it is not there. */
static int key_at_hand(struct globals *g)
{
    trace_keyring *ring = NULL;
    const trace_key *key = NULL;
    int rc = trace_keyring_open(&ring, ctl_keys_dir(g), 0);

    if (rc == TRACE_OK)
        rc = trace_keyring_get(ring, g->as, &key);
    if (rc != TRACE_OK)
        fprintf(ctl_err,
                "tracectl: permission denied: --as %s needs %s's private key "
                "in the key folder %s (%s); make one with `tracectl keygen "
                "%s` and register it, or import with --provision-keys\n",
                g->as, g->as, ctl_keys_dir(g),
                rc == TRACE_ENOTFOUND ? "there is none" : trace_error_last(),
                g->as);
    trace_keyring_free(ring);
    return rc == TRACE_OK;
}

int ctl_dispatch(struct globals *g, int argc, char **argv)
{
    const struct command *cmd;

    if (argc < 1) {
        ctl_main_usage(ctl_err);
        return EXIT_USAGE;
    }
    cmd = ctl_find_command(argv[0]);
    if (!cmd) {
        fprintf(ctl_err, "tracectl: unknown command %s\n\n", argv[0]);
        ctl_main_usage(ctl_err);
        return EXIT_USAGE;
    }
    /* --json may also follow the command */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--json") == 0) {
            g->json = 1;
            memmove(&argv[i], &argv[i + 1], (size_t)(argc - i) * sizeof(*argv));
            argc--;
            i--;
        }
    }
    optind = 0; /* glibc: 0 re-initialises getopt for the command's options */
    if (!g->connect && strcmp(cmd->name, "init") != 0 &&
        strcmp(cmd->name, "keygen") != 0 && strcmp(cmd->name, "help") != 0) {
        /* bare dates on the command line mean days in the ledger's zone */
        trace_ledger *l;
        if (trace_ledger_open(&l, g->data) == TRACE_OK) {
            ctl_tz_min = trace_ledger_tz(l);
            trace_ledger_close(l);
        }
    }
    if (g->connect)
        return remote_route(g, cmd, argc, argv);
    if (g->as && strcmp(cmd->name, "init") != 0 &&
        strcmp(cmd->name, "keygen") != 0 && strcmp(cmd->name, "help") != 0 &&
        !asks_help(argc, argv) && !key_at_hand(g))
        return 5;
    return cmd->run(g, argc, argv);
}
