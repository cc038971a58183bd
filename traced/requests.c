/* SPDX-License-Identifier: Apache-2.0 */
/*
 * requests.c - what traced does with one request: decode it (with a byte
 * budget), authenticate it (key, signature, suspension, clock window,
 * start time; then admission in admit.c: replay, rate, share), and run
 * it with the requester's rights: Call (a typed operation of ops.h, its
 * rows encoded as they come), Prepare (JSON Lines to canonical events
 * and a ticket) or Commit (checked, then handed to the writer in
 * server.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "server_int.h"
#include "trace/query.h"
#include "trace/reconcile.h"
#include "ops.h"
#include "wire.h"

#define TICKET_LIFETIME_US  (600LL * 1000000) /* prepare -> commit */
#define MAX_REPORTED_ERRORS 20

/* A protobuf-c allocator with a byte budget, for outside bytes. */
struct budget {
    ProtobufCAllocator a;
    size_t left;
};

static void *budget_alloc(void *data, size_t n)
{
    struct budget *b = data;
    if (n > b->left)
        return NULL;
    b->left -= n;
    return malloc(n);
}

static void budget_free(void *data, void *p)
{
    (void)data;
    free(p);
}

static void budget_init(struct budget *b, size_t msg_len)
{
    b->a.alloc = budget_alloc;
    b->a.free = budget_free;
    b->a.allocator_data = b;
    b->left = 4 * msg_len + (1u << 16);
}

/* Typed operations --------------------------------------------------------- */

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static int rows_reserve(struct rows_out *o, size_t more)
{
    if (o->len + more > o->max)
        return -1;
    if (o->len + more > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        uint8_t *b;
        while (cap < o->len + more)
            cap *= 2;
        if (cap > o->max)
            cap = o->max;
        if (!(b = realloc(o->buf, cap)))
            return -1;
        o->buf = b;
        o->cap = cap;
    }
    return 0;
}

int rows_add(const ops_item_t *item, void *ctx)
{
    struct rows_out *o = ctx;
    size_t n = trace__ops__v1__item__get_packed_size(item);

    /* 13 bytes kept for the trailer (ran, next) */
    if (rows_reserve(o, 1 + 10 + n + 13) != 0)
        return OPS_FULL;
    o->buf[o->len++] = 0x0a; /* Result.items, length-delimited */
    o->len += put_varint(o->buf + o->len, n);
    o->len += trace__ops__v1__item__pack(item, o->buf + o->len);
    return 0;
}

void rows_finish(struct rows_out *o, int code, const ops_status *st)
{
    if (st->ran && rows_reserve(o, 2) == 0) {
        o->buf[o->len++] = 0x10; /* Result.ran */
        o->buf[o->len++] = 1;
    }
    if (code == 0 && st->next && rows_reserve(o, 11) == 0) {
        o->buf[o->len++] = 0x18; /* Result.next */
        o->len += put_varint(o->buf + o->len, st->next);
    }
    if (st->name[0] && rows_reserve(o, 3 + strlen(st->name)) == 0) {
        size_t n = strlen(st->name); /* < 256: two varint bytes at most */
        o->buf[o->len++] = 0x22;     /* Result.party_name */
        o->len += put_varint(o->buf + o->len, n);
        memcpy(o->buf + o->len, st->name, n);
        o->len += n;
    }
}

int call_env(struct server *s, const ops_call_t *call, ops_env *env,
             char **rules)
{
    const ops_op *op = ops_of_call(call);

    memset(env, 0, sizeof(*env));
    *rules = NULL;
    env->daemon = 1;
    env->data_dir = s->cfg->data;
    env->backup_dir = s->cfg->backup_dir;
    env->store_via = store_on_writer; /* alerts, cosignatures */
    if (op && op->op_case == TRACE__OPS__V1__CALL__OP_RECONCILE &&
        s->cfg->rules &&
        !(*rules = traced_read_rules(s->cfg->rules, &env->rules_len)))
        return -1;
    env->rules_json = *rules;
    return 0;
}

int call_run(struct server *s, const ops_env *env, const ops_principal *who,
             const ops_call_t *call, ops_item_fn fn, void *ctx, ops_status *st)
{
    const ops_op *op = ops_of_call(call);
    int code, serial = op && op->op_case == TRACE__OPS__V1__CALL__OP_RECONCILE;

    /* reconciliations (stored alerts) one at a time, the nightly one
     * included; reads run side by side on their own read transactions;
     * other writes (cosign) store through the writer (env->store_via),
     * which orders them, and do not wait for a reconciliation */
    if (serial)
        pthread_mutex_lock(&s->recon_mu);
    code = ops_call(s->l, env, who, call, fn, ctx, st);
    if (serial)
        pthread_mutex_unlock(&s->recon_mu);
    if (code == 0 && op->op_case == TRACE__OPS__V1__CALL__OP_RECONCILE &&
        !(call->reconcile->has_dry_run && call->reconcile->dry_run))
        atomic_store(&s->last_reconcile_us, wire_now_us());
    if (code == 6 && !st->msg[0])
        snprintf(st->msg, sizeof(st->msg), "out of memory");
    return code;
}

void call_log(const char *party, const ops_call_t *call, int code,
              const ops_status *st)
{
    const ops_op *op = ops_of_call(call);

    if (code == 5)
        log_msg(LOG_LVL_WARN, "refused %s the operation %s: %s", party,
                op ? op->name : "?", st->msg);
    else
        log_msg(LOG_LVL_DEBUG, "%s ran %s: exit %d", party, op ? op->name : "?",
                code);
}

static void run_call(struct work *w, const ops_call_t *call, const char *party,
                     const trace_party *pi)
{
    struct server *s = w->srv;
    Trace__Wire__V1__Response resp = TRACE__WIRE__V1__RESPONSE__INIT;
    ops_principal who = {party, pi->regulator, pi->scopes};
    struct rows_out o = {NULL, 0, 0, (size_t)s->cfg->max_reply};
    ops_env env;
    ops_status st;
    char *rules;
    int code;

    if (call_env(s, call, &env, &rules) != 0) {
        reply_error(w, 6, "the daemon cannot read its rules file");
        return;
    }
    env.store_ctx = w;
    code = call_run(s, &env, &who, call, rows_add, &o, &st);
    free(rules);
    rows_finish(&o, code, &st);
    resp.code = code;
    resp.message = code ? st.msg : NULL;
    resp.has_result = 1;
    resp.result.data = o.buf;
    resp.result.len = o.len;
    call_log(party, call, code, &st);
    reply(w, &resp);
    free(o.buf);
}

/* Prepare and commit ----------------------------------------------------- */

/* ticket = u64be issued_us || HMAC(key, issued_us || requester || 0 ||
 * for each event: u32be len || bytes) */
static int ticket_mac(struct server *s, uint8_t mac[32], int64_t issued,
                      const char *principal, const ProtobufCBinaryData *ev,
                      size_t n)
{
    size_t len = 8 + strlen(principal) + 1;
    uint8_t *buf, *p;
    int rc;

    for (size_t i = 0; i < n; i++)
        len += 4 + ev[i].len;
    if (!(buf = malloc(len)))
        return -1;
    p = buf;
    for (int i = 0; i < 8; i++)
        *p++ = (uint8_t)((uint64_t)issued >> (56 - 8 * i));
    memcpy(p, principal, strlen(principal) + 1);
    p += strlen(principal) + 1;
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < 4; k++)
            *p++ = (uint8_t)(ev[i].len >> (24 - 8 * k));
        memcpy(p, ev[i].data, ev[i].len);
        p += ev[i].len;
    }
    rc = wire_hmac(mac, s->ticket_key, buf, len);
    free(buf);
    return rc;
}

struct find_alert {
    const char *id;
    const char *party;
    int found, names_party;
};

static int match_alert(const trace_alert *a, void *ctx)
{
    struct find_alert *fa = ctx;
    if (strcmp(a->id, fa->id) != 0)
        return 0;
    fa->found = 1;
    fa->names_party =
        (a->party && strcmp(a->party, fa->party) == 0) ||
        (a->counterparty && strcmp(a->counterparty, fa->party) == 0);
    return 1;
}

/* An alert_ack line must name a stored alert, and one about the
 * requester unless a regulator acknowledges it.  0 or an exit code with
 * msg. */
static int check_ack(struct server *s, const char *line, size_t len,
                     const char *party, const trace_party *pi, char *msg,
                     size_t cap)
{
    json_t *j = json_loadb(line, len, 0, NULL);
    const char *alert;
    struct find_alert fa = {NULL, party, 0, 0};
    int ret = 0;

    if (!j)
        return 0; /* the parser has already accepted it; nothing to add */
    alert = json_string_value(json_object_get(j, "alert"));
    if (alert) {
        fa.id = alert;
        trace_alerts(s->l, NULL, match_alert, &fa);
        if (!fa.found) {
            snprintf(msg, cap, "no alert %.128s (run reconcile first)", alert);
            ret = 4;
        } else if (!pi->regulator && !fa.names_party) {
            snprintf(msg, cap,
                     "permission denied: alert %.128s is not about %s", alert,
                     party);
            ret = 5;
        }
    }
    json_decref(j);
    return ret;
}

/* Keys to provision for parties registered by lines of the batch: each
 * key's registration follows its party's line. */
struct provctx {
    char *pending; /* per provision entry: 1 waiting for its line, 2 done */
    char **keyed;  /* subjects of party lines that carry a pubkey */
    size_t n_keyed;
};

static void provctx_free(struct provctx *pc)
{
    for (size_t i = 0; i < pc->n_keyed; i++)
        free(pc->keyed[i]);
    free(pc->keyed);
    free(pc->pending);
}

static int after_party_line(trace_batch *b, const Trace__Wire__V1__Prepare *pr,
                            struct provctx *pc, const char *requester,
                            const Trace__Wire__V1__Line *ln, char *msg,
                            size_t cap)
{
    json_t *j = json_loadb((const char *)ln->text.data, ln->text.len, 0, NULL);
    const char *subject;
    int rc = TRACE_OK;

    if (!j)
        return TRACE_OK;
    subject = json_string_value(json_object_get(j, "subject"));
    if (subject) {
        if (json_object_get(j, "pubkey")) {
            char **p = realloc(pc->keyed, (pc->n_keyed + 1) * sizeof(*p));
            if (p && (p[pc->n_keyed] = strdup(subject)))
                pc->keyed = p, pc->n_keyed++;
            else if (p)
                pc->keyed = p;
        }
        for (size_t i = 0; pc->pending && i < pr->n_provision; i++) {
            const Trace__Wire__V1__ProvisionKey *pk = pr->provision[i];
            if (pc->pending[i] != 1 || strcmp(pk->party, subject) != 0 ||
                pk->pubkey.len != TRACE_PUBKEY_LEN)
                continue;
            rc = trace_batch_add_key_registration(b, requester, pk->party,
                                                  pk->pubkey.data);
            if (rc != TRACE_OK)
                snprintf(msg, cap, "line %llu: %s",
                         (unsigned long long)ln->lineno, trace_error_last());
            pc->pending[i] = 2;
        }
    }
    json_decref(j);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The recorders among parties[n] registered without any key and not
 * keyed by this batch, once each, in order of first appearance: each
 * distinct recorder is looked up once (a chunk holds thousands of events
 * of a few hundred recorders). */
static int list_need_keys(struct server *s, char **parties, size_t n,
                          const struct provctx *pc, char **need, size_t *n_need)
{
    char **u = malloc((n + 1) * sizeof(*u)), **keyed = NULL;
    unsigned char *state = NULL; /* per distinct recorder: 1 need, 2 listed */
    size_t nu = 0;

    if (!u || !(state = calloc(n + 1, 1)) ||
        !(keyed = malloc((pc->n_keyed + 1) * sizeof(*keyed)))) {
        free(u);
        free(state);
        return -1;
    }
    memcpy(u, parties, n * sizeof(*u));
    qsort(u, n, sizeof(*u), cmp_str);
    for (size_t i = 0; i < n; i++)
        if (nu == 0 || strcmp(u[nu - 1], u[i]) != 0)
            u[nu++] = u[i];
    if (pc->n_keyed)
        memcpy(keyed, pc->keyed, pc->n_keyed * sizeof(*keyed));
    qsort(keyed, pc->n_keyed, sizeof(*keyed), cmp_str);
    for (size_t i = 0; i < nu; i++) {
        trace_party info;
        if (bsearch(&u[i], keyed, pc->n_keyed, sizeof(*keyed), cmp_str))
            continue; /* registered with its key in this batch */
        if (trace_party_info(s->l, u[i], &info) != TRACE_OK || info.n_keys == 0)
            state[i] = 1;
    }
    *n_need = 0;
    for (size_t i = 0; i < n; i++) {
        char **f = bsearch(&parties[i], u, nu, sizeof(*u), cmp_str);
        size_t k = (size_t)(f - u);
        if (state[k] == 1) {
            need[(*n_need)++] = parties[i];
            state[k] = 2;
        }
    }
    free(u);
    free(state);
    free(keyed);
    return 0;
}

static void run_prepare(struct work *w, const Trace__Wire__V1__Prepare *pr,
                        const char *party, const trace_party *pi)
{
    struct server *s = w->srv;
    Trace__Wire__V1__Response resp = TRACE__WIRE__V1__RESPONSE__INIT;
    Trace__Wire__V1__Prepared prep = TRACE__WIRE__V1__PREPARED__INIT;
    ProtobufCBinaryData *evs = NULL;
    char **parties = NULL, *msgs = NULL, **need = NULL;
    size_t n_need = 0;
    struct provctx pc = {NULL, NULL, 0};
    uint64_t *linenos = NULL;
    uint8_t ticket[8 + 32];
    size_t mlen = 0, n;
    unsigned long errors = 0, lines = 0;
    int first = 0, rc;
    FILE *m = open_memstream(&msgs, &mlen);
    trace_batch *b = NULL;
    int64_t issued = wire_now_us();

    if (!m || trace_batch_new(&b, s->l) != TRACE_OK) {
        if (m)
            fclose(m);
        free(msgs);
        reply_error(w, 6, "out of memory");
        return;
    }
    /* import --provision-keys: a regulator registers keys first */
    if (pr->n_provision && !(pc.pending = calloc(pr->n_provision, 1))) {
        fclose(m);
        free(msgs);
        trace_batch_free(b);
        reply_error(w, 6, "out of memory");
        return;
    }
    for (size_t i = 0; i < pr->n_provision; i++) {
        const Trace__Wire__V1__ProvisionKey *pk = pr->provision[i];
        const char *why = NULL;
        trace_party known;
        int code = 0;
        if (pi->regulator && trace_party_id_valid(pk->party) &&
            trace_party_info(s->l, pk->party, &known) != TRACE_OK) {
            pc.pending[i] = 1; /* registered by a line of this batch */
            continue;
        }
        if (!pi->regulator) {
            code = 5;
            why = "permission denied: only a regulator registers keys";
        } else if (!trace_party_id_valid(pk->party) ||
                   pk->pubkey.len != TRACE_PUBKEY_LEN) {
            code = 2;
            why = "malformed key to provision";
        } else if ((rc = trace_batch_add_key_registration(
                        b, party, pk->party, pk->pubkey.data)) != TRACE_OK) {
            code = trace_error_exit_code(rc);
            why = trace_error_last();
        }
        if (why) {
            fclose(m);
            free(msgs);
            provctx_free(&pc);
            trace_batch_free(b);
            reply_error(w, code, why);
            return;
        }
    }
    for (size_t i = 0; i < pr->n_lines; i++) {
        const Trace__Wire__V1__Line *ln = pr->lines[i];
        size_t before = trace_batch_count(b);
        char amsg[300];
        int arc;

        lines++;
        rc = trace_batch_add_json(b, (const char *)ln->text.data, ln->text.len,
                                  (unsigned long)ln->lineno);
        if (rc == TRACE_OK && trace_batch_count(b) > before) {
            const char *rec, *type;
            trace_batch_event(b, before, &type, &rec, NULL, NULL, NULL);
            if (!pi->regulator && strcmp(rec, party) != 0) {
                rc = TRACE_EPERM;
                snprintf(amsg, sizeof(amsg),
                         "line %llu: event recorded by %s, but acting as %s: "
                         "a party writes only its own ledger",
                         (unsigned long long)ln->lineno, rec, party);
            } else if (strcmp(type, "alert_ack") == 0 &&
                       (arc = check_ack(s, (const char *)ln->text.data,
                                        ln->text.len, party, pi, amsg,
                                        sizeof(amsg))) != 0) {
                rc = arc == 4 ? TRACE_ENOTFOUND : TRACE_EPERM;
            } else if (strcmp(type, "party") == 0) {
                rc =
                    after_party_line(b, pr, &pc, party, ln, amsg, sizeof(amsg));
            }
            if (rc != TRACE_OK && errors < MAX_REPORTED_ERRORS)
                fprintf(m, "%s%s", errors ? "\n" : "", amsg);
        } else if (rc != TRACE_OK && errors < MAX_REPORTED_ERRORS) {
            fprintf(m, "%s%s", errors ? "\n" : "", trace_error_last());
        }
        if (rc != TRACE_OK) {
            if (!first)
                first = trace_error_exit_code(rc);
            errors++;
        }
    }
    for (size_t i = 0; !errors && pc.pending && i < pr->n_provision; i++)
        if (pc.pending[i] == 1) {
            fprintf(m,
                    "%s is not a registered party (a regulator registers "
                    "it with a `party` event first)",
                    pr->provision[i]->party);
            first = 5;
            errors++;
        }
    if (errors) {
        if (errors > MAX_REPORTED_ERRORS)
            fprintf(m, "\n... %lu more rejected lines",
                    errors - MAX_REPORTED_ERRORS);
        fclose(m);
        resp.has_rejected = resp.has_lines = 1;
        resp.rejected = errors;
        resp.lines = lines;
        resp.code = first;
        resp.message = msgs;
        log_msg(LOG_LVL_INFO, "prepare for %s: %lu of %lu lines rejected",
                party, errors, lines);
        reply(w, &resp);
        free(msgs);
        provctx_free(&pc);
        trace_batch_free(b);
        return;
    }
    fclose(m);
    free(msgs);
    n = trace_batch_count(b);
    evs = calloc(n + 1, sizeof(*evs));
    parties = calloc(n + 1, sizeof(*parties));
    linenos = calloc(n + 1, sizeof(*linenos));
    if (!evs || !parties || !linenos) {
        reply_error(w, 6, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const uint8_t *bytes;
        const char *rec;
        unsigned long ln;
        trace_batch_event(b, i, NULL, &rec, &bytes, &evs[i].len, &ln);
        evs[i].data = (uint8_t *)bytes;
        parties[i] = (char *)rec;
        linenos[i] = ln;
    }
    for (int i = 0; i < 8; i++)
        ticket[i] = (uint8_t)((uint64_t)issued >> (56 - 8 * i));
    if (ticket_mac(s, ticket + 8, issued, party, evs, n) != 0) {
        reply_error(w, 6, "out of memory");
        goto out;
    }
    prep.n_events = n;
    prep.events = evs;
    prep.n_parties = n;
    prep.parties = parties;
    prep.n_linenos = n;
    prep.linenos = linenos;
    prep.ticket.data = ticket;
    prep.ticket.len = sizeof(ticket);
    if (pr->has_want_provision && pr->want_provision &&
        !(need = calloc(n + 1, sizeof(*need)))) {
        reply_error(w, 6, "out of memory");
        goto out;
    }
    if (need && list_need_keys(s, parties, n, &pc, need, &n_need) != 0) {
        reply_error(w, 6, "out of memory");
        goto out;
    }
    prep.n_need_keys = n_need;
    prep.need_keys = need;
    resp.code = 0;
    resp.prepared = &prep;
    reply(w, &resp);
out:
    free(evs);
    free(parties);
    free(linenos);
    free(need);
    provctx_free(&pc);
    trace_batch_free(b);
}

/* Checks a commit and hands it to the writer (which answers it). */
static void run_commit(struct work *w, const Trace__Wire__V1__Commit *cm,
                       const char *party, const trace_party *pi)
{
    struct server *s = w->srv;
    uint8_t mac[32];
    int64_t issued = 0;
    size_t total = 0;
    char msg[256];

    if (cm->ticket.len != 40) {
        reply_error(w, 2, "malformed ticket");
        return;
    }
    for (int i = 0; i < 8; i++)
        issued = (int64_t)(((uint64_t)issued << 8) | cm->ticket.data[i]);
    if (ticket_mac(s, mac, issued, party, cm->events, cm->n_events) != 0) {
        reply_error(w, 6, "out of memory");
        return;
    }
    if (CRYPTO_memcmp(mac, cm->ticket.data + 8, 32) != 0) {
        log_msg(LOG_LVL_WARN, "refused %s a commit: events not as prepared",
                party);
        reply_error(w, 5,
                    "permission denied: the events are not what this "
                    "daemon prepared for you (prepare them again)");
        return;
    }
    if (wire_now_us() - issued > TICKET_LIFETIME_US) {
        reply_error(w, 2, "the prepared events expired: prepare them again");
        return;
    }
    if (cm->n_groups == 0 || cm->n_events == 0) {
        reply_error(w, 2, "nothing to commit");
        return;
    }
    if (cm->has_historic && cm->historic && !pi->regulator) {
        log_msg(LOG_LVL_WARN, "refused %s a historic commit", party);
        reply_error(w, 5,
                    "permission denied: only a regulator marks events as "
                    "historic (migrated records)");
        return;
    }
    w->groups = calloc(cm->n_groups, sizeof(*w->groups));
    if (!w->groups || trace_batch_new(&w->batch, s->l) != TRACE_OK) {
        free(w->groups);
        w->groups = NULL;
        reply_error(w, 6, "out of memory");
        return;
    }
    for (size_t i = 0; i < cm->n_groups; i++) {
        const Trace__Wire__V1__Group *g = cm->groups[i];
        if (strlen(g->party) >= sizeof(w->groups[i].party) ||
            g->key_id.len != TRACE_KEY_ID_LEN || g->sig.len != TRACE_SIG_LEN ||
            g->count == 0) {
            reply_error(w, 2, "malformed signature group");
            goto fail;
        }
        if (!pi->regulator && strcmp(g->party, party) != 0) {
            snprintf(msg, sizeof(msg),
                     "permission denied: %s may not send events of %s", party,
                     g->party);
            log_msg(LOG_LVL_WARN, "refused %s a commit of %s's events", party,
                    g->party);
            reply_error(w, 5, msg);
            goto fail;
        }
        snprintf(w->groups[i].party, sizeof(w->groups[i].party), "%s",
                 g->party);
        memcpy(w->groups[i].key_id, g->key_id.data, TRACE_KEY_ID_LEN);
        memcpy(w->groups[i].sig, g->sig.data, TRACE_SIG_LEN);
        w->groups[i].count = g->count;
        total += g->count;
    }
    if (total != cm->n_events) {
        reply_error(w, 2, "the signature groups do not cover the events");
        goto fail;
    }
    for (size_t i = 0; i < cm->n_events; i++) {
        unsigned long ln = cm->n_linenos == cm->n_events
                               ? (unsigned long)cm->linenos[i]
                               : i + 1;
        if (trace_batch_add_encoded(w->batch, cm->events[i].data,
                                    cm->events[i].len, ln) != TRACE_OK) {
            reply_error(w, 2, trace_error_last());
            goto fail;
        }
    }
    w->n_groups = cm->n_groups;
    if (cm->has_checks && cm->checks > 2) {
        reply_error(w, 2, "checks: 0, 1 or 2");
        goto fail;
    }
    w->flags = cm->has_historic && cm->historic ? TRACE_APPEND_HISTORIC : 0;
    if (cm->has_checks && cm->checks)
        w->flags |= cm->checks == 2 ? TRACE_APPEND_STRICT : TRACE_APPEND_CHECK;
    if (cm->has_party_groups && cm->party_groups)
        w->flags |= TRACE_APPEND_PARTY_GROUPS;
    snprintf(w->principal, sizeof(w->principal), "%s", party);
    w->next = NULL;
    if (s->direct)
        write_all(s, w);
    else
        queue_push(&s->commitq, w);
    return;
fail:
    free(w->groups);
    w->groups = NULL;
    trace_batch_free(w->batch);
    w->batch = NULL;
}

/* Requests ---------------------------------------------------------------- */

static void handle_hello(struct work *w)
{
    struct server *s = w->srv;
    Trace__Wire__V1__Response resp = TRACE__WIRE__V1__RESPONSE__INIT;
    Trace__Wire__V1__HelloReply h = TRACE__WIRE__V1__HELLO_REPLY__INIT;
    uint8_t head[32];
    uint64_t size;

    h.version = WIRE_VERSION;
    h.regulator = (char *)trace_ledger_regulator(s->l);
    h.pubkey.data = (uint8_t *)trace_key_public(s->key);
    h.pubkey.len = TRACE_PUBKEY_LEN;
    h.max_message = (uint64_t)s->cfg->max_message;
    h.pub_url = s->has_pub ? s->cfg->pub : NULL;
    h.has_features = 1;
    h.features = WIRE_FEATURE_PARTY_GROUPS | WIRE_FEATURE_SESSIONS |
                 WIRE_FEATURE_CALLS | WIRE_FEATURE_JOBS;
    h.has_tz_min = 1;
    h.tz_min = trace_ledger_tz(s->l);
    if (trace_ledger_head(s->l, &size, head) == TRACE_OK) {
        h.has_size = h.has_head = 1;
        h.size = size;
        h.head.data = head;
        h.head.len = sizeof(head);
    }
    h.has_started_us = h.has_last_commit_us = h.has_last_reconcile_us = 1;
    h.started_us = s->start_us;
    h.last_commit_us = atomic_load(&s->last_commit_us);
    h.last_reconcile_us = atomic_load(&s->last_reconcile_us);
    h.has_jobs = 1;
    h.jobs = jobs_active(s);
    resp.code = 0;
    resp.hello = &h;
    reply(w, &resp);
}

/* The request's time as seconds from the daemon's clock, for messages:
 * computed in floating point, so any int64 time is safe. */
static double skew_s(int64_t t, int64_t now)
{
    return ((double)t - (double)now) / 1e6;
}

/* Runs an authenticated and admitted request. */
static void dispatch(struct work *w, const Trace__Wire__V1__RequestBody *body,
                     const char *owner, const trace_party *pi)
{
    switch (body->op_case) {
    case TRACE__WIRE__V1__REQUEST_BODY__OP_EXEC:
        reply_error(w, 1,
                    "this daemon takes typed operations (Call), not "
                    "Exec: the client is older than traced");
        break;
    case TRACE__WIRE__V1__REQUEST_BODY__OP_CALL:
        run_call(w, body->call, owner, pi);
        break;
    case TRACE__WIRE__V1__REQUEST_BODY__OP_JOB:
        jobs_handle(w, body->job, owner, pi);
        break;
    case TRACE__WIRE__V1__REQUEST_BODY__OP_PREPARE:
        run_prepare(w, body->prepare, owner, pi);
        break;
    case TRACE__WIRE__V1__REQUEST_BODY__OP_COMMIT:
        run_commit(w, body->commit, owner, pi);
        break;
    default:
        reply_error(w, 1, "unknown request");
        break;
    }
}

/* Opens a session for the requester on this connection (wire.proto). */
static void run_open_session(struct work *w,
                             const Trace__Wire__V1__OpenSession *os,
                             const char *owner, const uint8_t *key_id)
{
    struct server *s = w->srv;
    Trace__Wire__V1__Response resp = TRACE__WIRE__V1__RESPONSE__INIT;
    Trace__Wire__V1__SessionOpened so = TRACE__WIRE__V1__SESSION_OPENED__INIT;
    uint8_t priv[WIRE_SHARE_LEN], pub[WIRE_SHARE_LEN], key[32],
        id[WIRE_SESSION_ID_LEN];
    int rc = 0;

    if (os->share.len != WIRE_SHARE_LEN) {
        reply_error(w, 2, "malformed request: the session share");
        return;
    }
    if (wire_x25519_new(priv, pub) != 0 || wire_random(id, sizeof(id)) != 0) {
        reply_error(w, 6, "unavailable: no key for a session");
        return;
    }
    if (wire_session_key(key, priv, os->share.data, id, os->share.data, pub) !=
        0)
        rc = 2;
    else if (sessions_open(&s->sessions, owner, key_id, w->pipe, key,
                           wire_now_us(), id) != 0)
        rc = 6;
    OPENSSL_cleanse(priv, sizeof(priv));
    OPENSSL_cleanse(key, sizeof(key));
    if (rc) {
        reply_error(w, rc,
                    rc == 2 ? "the session share is not a usable "
                              "X25519 key"
                            : "unavailable: cannot open a session");
        return;
    }
    so.session.data = id;
    so.session.len = sizeof(id);
    so.share.data = pub;
    so.share.len = sizeof(pub);
    so.idle_s = (uint32_t)s->cfg->session_idle;
    resp.code = 0;
    resp.session = &so;
    log_msg(LOG_LVL_INFO, "opened a session for %s", owner);
    reply(w, &resp);
}

/* The owner of key_id, its public key and the owner's record; 0, the
 * request answered, unless the key is registered to `party`. */
static int requester_key(struct work *w, const uint8_t *key_id,
                         const char *party, char owner[72],
                         uint8_t pub[TRACE_PUBKEY_LEN], trace_party *pi)
{
    struct server *s = w->srv;
    int rc = trace_key_owner(s->l, key_id, owner, 72, pub);

    if (rc == TRACE_OK)
        rc = trace_party_info(s->l, owner, pi);
    if (rc == TRACE_OK && strcmp(owner, party) == 0)
        return 1;
    log_msg(LOG_LVL_WARN, "refused a request as %s: key not registered to it",
            party);
    reply_error(w, 5,
                "permission denied: the key is not registered to that party");
    return 0;
}

/* 0, the request answered, if the requester is suspended. */
static int requester_active(struct work *w, const trace_party *pi,
                            const char *owner)
{
    if (!pi->suspended)
        return 1;
    log_msg(LOG_LVL_WARN, "refused a request of suspended %s", owner);
    reply_error(w, 5, "permission denied: the party is suspended");
    return 0;
}

static void handle_signed(struct work *w,
                          const Trace__Wire__V1__SignedRequest *sr,
                          size_t msg_len)
{
    struct server *s = w->srv;
    Trace__Wire__V1__RequestBody *body;
    struct budget bud;
    char owner[72], msg[300];
    uint8_t pub[TRACE_PUBKEY_LEN], digest[32];
    /* now and window are small (window <= 1 day): now +- window cannot
     * overflow, and the untrusted time is only compared with them */
    int64_t now = wire_now_us(), window = s->cfg->clock_window * 1000000LL;
    trace_party pi;

    budget_init(&bud, msg_len);
    if (sr->sig.len != TRACE_SIG_LEN) {
        reply_error(w, 5, "permission denied: malformed signature");
        return;
    }
    body = trace__wire__v1__request_body__unpack(&bud.a, sr->body.len,
                                                 sr->body.data);
    if (!body) {
        reply_error(w, 2, "malformed request body");
        return;
    }
    if (body->key_id.len != TRACE_KEY_ID_LEN ||
        body->nonce.len != WIRE_NONCE_LEN ||
        !trace_party_id_valid(body->party)) {
        reply_error(w, 2, "malformed request: key id, nonce or party");
        goto out;
    }
    /* Stateless checks first: key, signature, suspension, clock.  Only a
     * request that passes them may take a rate token and a place in the
     * replay cache (admit.c). */
    if (!requester_key(w, body->key_id.data, body->party, owner, pub, &pi))
        goto out;
    wire_request_digest(digest, sr->body.data, sr->body.len);
    if (trace_sig_verify(pub, digest, sizeof(digest), sr->sig.data) !=
        TRACE_OK) {
        log_msg(LOG_LVL_WARN, "refused a request as %s: bad signature",
                body->party);
        reply_error(w, 5, "permission denied: bad signature");
        goto out;
    }
    if (!requester_active(w, &pi, owner))
        goto out;
    if (body->time_us > now + window || body->time_us < now - window) {
        snprintf(msg, sizeof(msg),
                 "permission denied: the request's time is %+.0f s from the "
                 "daemon's clock (window %lld s): check the clock",
                 skew_s(body->time_us, now), s->cfg->clock_window);
        log_msg(LOG_LVL_WARN, "refused a request of %s: clock off by %+.0f s",
                body->party, skew_s(body->time_us, now));
        reply_error(w, 5, msg);
        goto out;
    }
    if (body->time_us < s->floor_us) {
        log_msg(LOG_LVL_WARN,
                "refused a request of %s signed before the "
                "daemon started",
                body->party);
        reply_error(w, 5,
                    "permission denied: the request was signed before "
                    "the daemon started (a replay?); send it again");
        goto out;
    }
    switch (admit_request(&s->admit, owner, pi.regulator, body->key_id.data,
                          body->nonce.data, body->time_us, now)) {
    case ADMIT_OK:
        if (ahead_note(&s->ahead, body->key_id.data, body->nonce.data,
                       body->time_us, now) != 0) {
            log_msg(LOG_LVL_ERROR, "cannot record a request signed ahead "
                                   "of the clock (traced.ahead)");
            reply_error(w, 6,
                        "unavailable: the daemon cannot record a request "
                        "signed ahead of its clock; check the client's clock");
            goto out;
        }
        w->admitted = 1;
        break;
    case ADMIT_RATE:
        reply_error(w, 6, "busy: request rate limit; slow down");
        goto out;
    case ADMIT_REPLAY:
        log_msg(LOG_LVL_WARN, "refused a replayed request of %s", body->party);
        reply_error(w, 5, "permission denied: replayed request");
        goto out;
    case ADMIT_TOO_OLD:
        log_msg(LOG_LVL_WARN,
                "refused a request of %s: its time is behind the replay "
                "cache (the clock went back?)",
                body->party);
        reply_error(w, 5,
                    "permission denied: the request's time is behind what "
                    "the daemon can check for replays; send it again");
        goto out;
    case ADMIT_SHARE:
        log_msg(LOG_LVL_WARN,
                "refused %s: its share of the replay cache is full", owner);
        reply_error(w, 6,
                    "busy: too many requests of this party in this clock "
                    "window; slow down");
        goto out;
    case ADMIT_FULL:
        log_msg(LOG_LVL_WARN, "refused %s: the replay cache is full", owner);
        reply_error(w, 6, "busy: too many requests in this clock window");
        goto out;
    case ADMIT_NOMEM:
        reply_error(w, 6, "out of memory");
        goto out;
    }
    if (body->op_case == TRACE__WIRE__V1__REQUEST_BODY__OP_OPEN_SESSION)
        run_open_session(w, body->open_session, owner, body->key_id.data);
    else
        dispatch(w, body, owner, &pi);
out:
    trace__wire__v1__request_body__free_unpacked(body, &bud.a);
}

/* A request in a session: the session, its MAC and sequence number
 * (session.c) stand for the signature, nonce and time of a signed one;
 * the key's registration, the party's suspension and its rate limit are
 * checked as for a signed request. */
static void handle_sealed(struct work *w,
                          const Trace__Wire__V1__SealedRequest *sr,
                          size_t msg_len)
{
    struct server *s = w->srv;
    Trace__Wire__V1__Response resp = TRACE__WIRE__V1__RESPONSE__INIT;
    Trace__Wire__V1__RequestBody *body = NULL;
    struct budget bud;
    char party[72], owner[72];
    uint8_t key_id[TRACE_KEY_ID_LEN], pub[TRACE_PUBKEY_LEN];
    trace_party pi;

    if (sr->session.len != WIRE_SESSION_ID_LEN || sr->mac.len != 32) {
        reply_error(w, 2, "malformed request: session id or MAC");
        return;
    }
    switch (sessions_check(&s->sessions, sr->session.data, w->pipe, sr->seq,
                           sr->body.data, sr->body.len, sr->mac.data,
                           wire_now_us(), party, key_id)) {
    case SESSION_OK:
        break;
    case SESSION_GONE:
        resp.code = 5;
        resp.message = "permission denied: no such session on this "
                       "connection (it expired): open a new one";
        resp.has_session_gone = resp.session_gone = 1;
        reply(w, &resp);
        return;
    case SESSION_BAD_MAC:
        log_msg(LOG_LVL_WARN, "refused a request in a session: bad MAC");
        reply_error(w, 5, "permission denied: bad session MAC");
        return;
    case SESSION_REPLAY:
        log_msg(LOG_LVL_WARN, "refused a replayed request of %s (session)",
                party);
        reply_error(w, 5, "permission denied: replayed request");
        return;
    }
    budget_init(&bud, msg_len);
    body = trace__wire__v1__request_body__unpack(&bud.a, sr->body.len,
                                                 sr->body.data);
    if (!body) {
        reply_error(w, 2, "malformed request body");
        return;
    }
    if (strcmp(body->party, party) != 0 ||
        body->key_id.len != TRACE_KEY_ID_LEN ||
        memcmp(body->key_id.data, key_id, TRACE_KEY_ID_LEN) != 0) {
        reply_error(w, 5,
                    "permission denied: the request names another party or "
                    "key than its session");
        goto out;
    }
    if (body->op_case == TRACE__WIRE__V1__REQUEST_BODY__OP_OPEN_SESSION) {
        reply_error(w, 5,
                    "permission denied: a session is opened by a signed "
                    "request");
        goto out;
    }
    if (!requester_key(w, key_id, party, owner, pub, &pi) ||
        !requester_active(w, &pi, owner))
        goto out;
    switch (admit_rate(&s->admit, owner, wire_now_us())) {
    case ADMIT_OK:
        w->admitted = 1;
        break;
    case ADMIT_RATE:
        reply_error(w, 6, "busy: request rate limit; slow down");
        goto out;
    default:
        reply_error(w, 6, "out of memory");
        goto out;
    }
    dispatch(w, body, owner, &pi);
out:
    trace__wire__v1__request_body__free_unpacked(body, &bud.a);
}

void handle(struct work *w)
{
    struct server *s = w->srv;
    nng_msg *m = w->req;
    size_t len = nng_msg_len(m);
    Trace__Wire__V1__Request *rq;
    struct budget bud;

    /* w may be reused as soon as it is answered: keep what it held */
    size_t held = w->bytes;

    w->req = NULL;
    w->bytes = 0;
    if (wire_now_us() - w->received_us > s->cfg->request_timeout * 1000LL) {
        nng_msg_free(m);
        queue_bytes_release(s, held);
        reply_error(w, 6, "busy: the request waited too long; try again");
        return;
    }
    budget_init(&bud, len);
    rq = trace__wire__v1__request__unpack(&bud.a, len, nng_msg_body(m));
    if (!rq) {
        nng_msg_free(m);
        queue_bytes_release(s, held);
        log_msg(LOG_LVL_INFO, "malformed request of %zu bytes", len);
        reply_error(w, 2, "malformed request");
        return;
    }
    if (rq->kind_case == TRACE__WIRE__V1__REQUEST__KIND_HELLO)
        handle_hello(w);
    else if (rq->kind_case == TRACE__WIRE__V1__REQUEST__KIND_SIGNED)
        handle_signed(w, rq->signed_, len);
    else if (rq->kind_case == TRACE__WIRE__V1__REQUEST__KIND_SEALED)
        handle_sealed(w, rq->sealed, len);
    else
        reply_error(w, 1, "unknown request");
    trace__wire__v1__request__free_unpacked(rq, &bud.a);
    nng_msg_free(m);
    queue_bytes_release(s, held);
}
