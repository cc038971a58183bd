/* SPDX-License-Identifier: Apache-2.0 */
/*
 * render_checks.c - the rows of the checks: alerts and reconciliation's
 * summary, verify's result, and the log's checkpoints, proofs and
 * cosignatures.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "ops.h"
#include "render_int.h"

void alert(ops_render *r, const Trace__Ops__V1__Alert *a)
{
    FILE *o = r->out;

    if (r->json) {
        fprintf(o, "%s\n", a->json);
        return;
    }
    if (r->csv) {
        csv_field(o, a->id, 0);
        csv_field(o, a->rule, 0);
        csv_field(o, a->severity, 0);
        csv_field(o, a->status, 0);
        csv_field(o, a->party, 0);
        csv_field(o, a->detail, 0);
        csv_field(o, a->ack_by, 0);
        csv_field(o, a->ack_at, 0);
        csv_field(o, a->ack_note, 1);
        return;
    }
    if (r->rows == 0) {
        static const struct col c[] = {
            {"ID", "编号", 17, 0},      {"RULE", "规则", 20, 0},
            {"SEVERITY", "级别", 8, 0}, {"STATUS", "状态", 12, 0},
            {"PARTY", "单位", 20, 0},   {"DETAIL", "详情", 0, 0}};
        heading(r, "", c, sizeof(c) / sizeof(*c));
    }
    fprintf(o, "%-17s %-20s ", a->id, a->rule);
    cell(o, W(r, a->severity), 8);
    cell(o, W(r, a->status), 12);
    fprintf(o, "%-20s %s\n", a->party ? a->party : "-", a->detail);
    if (a->ack_at && a->ack_by)
        fprintf(o, L(r, "%17s %s by %s at %s: %s\n", "%17s %s：%s 于 %s：%s\n"),
                "", W(r, a->status), a->ack_by, a->ack_at,
                or_empty(a->ack_note));
}

void summary(ops_render *r, const Trace__Ops__V1__ReconcileSummary *m)
{
    FILE *e = r->err ? r->err : stderr;

    if (m->partial)
        fprintf(e,
                "%llu alerts (%llu new) over %llu events (%llu appended "
                "since the previous run) in %.2f s\n",
                (unsigned long long)m->alerts,
                (unsigned long long)m->new_alerts,
                (unsigned long long)m->events,
                (unsigned long long)m->new_events, m->seconds);
    else
        fprintf(e, "%llu alerts (%llu new) over %llu events in %.2f s\n",
                (unsigned long long)m->alerts,
                (unsigned long long)m->new_alerts,
                (unsigned long long)m->events, m->seconds);
}

static void hex32(char hex[65], const ProtobufCBinaryData *b)
{
    hex[0] = '\0';
    for (size_t i = 0; i < b->len && i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", b->data[i]);
}

/* verify --deep's fields, after the others of the JSON object. */
static void verified_deep_json(FILE *o, const Trace__Ops__V1__Verified *v)
{
    static const struct {
        const char *name;
        size_t offset;
    } strs[] = {
        {"index", offsetof(Trace__Ops__V1__Verified, index)},
        {"key", offsetof(Trace__Ops__V1__Verified, index_key)},
        {"problem", offsetof(Trace__Ops__V1__Verified, problem)},
        {"expected", offsetof(Trace__Ops__V1__Verified, expected)},
        {"found", offsetof(Trace__Ops__V1__Verified, found)},
    };

    if (!v->has_deep || !v->deep)
        return;
    fprintf(o, ",\"deep\":true,\"index_records\":%llu",
            (unsigned long long)v->index_records);
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        const char *x =
            *(const char *const *)((const char *)v + strs[i].offset);
        if (!x)
            continue;
        fprintf(o, ",\"%s\":", strs[i].name);
        ops_json_value(o, x);
    }
}

void verified(ops_render *r, const Trace__Ops__V1__Verified *v)
{
    FILE *o = r->out;
    char hex[65];

    if (!v->ok) {
        if (r->json) {
            fprintf(o, "{\"ok\":false,\"bad_seq\":%llu,\"reason\":",
                    (unsigned long long)v->bad_seq);
            ops_json_value(o, or_empty(v->reason));
            verified_deep_json(o, v);
            fputs("}\n", o);
        }
        return;
    }
    hex32(hex, &v->head);
    if (r->json) {
        fprintf(o,
                "{\"ok\":true,\"entries\":%llu,\"signatures\":%llu,"
                "\"head\":\"%s\"",
                (unsigned long long)v->entries,
                (unsigned long long)v->signatures, hex);
        if (v->has_checkpoints)
            fprintf(o, ",\"checkpoints\":%llu",
                    (unsigned long long)v->checkpoints);
        verified_deep_json(o, v);
        fputs("}\n", o);
        return;
    }
    fprintf(o,
            L(r, "ok: %llu entries, %llu signatures verified\nhead: %s\n",
              "通过：%llu 条记录，%llu 个签名已验证\n链头：%s\n"),
            (unsigned long long)v->entries, (unsigned long long)v->signatures,
            hex);
    if (v->has_checkpoints && v->checkpoints)
        fprintf(o,
                L(r,
                  "checkpoints: %llu, each signed by the log key and "
                  "matching the Merkle tree\n",
                  "检查点：%llu 个，均由日志密钥签名且与默克尔树一致\n"),
                (unsigned long long)v->checkpoints);
    if (v->has_deep && v->deep)
        fprintf(o,
                L(r, "indexes: %llu records, each as the journal gives it\n",
                  "索引：%llu 条记录，均与日志重算一致\n"),
                (unsigned long long)v->index_records);
}

/* checkpoint: the note as signed (text), its fields (--json), or the
 * log's verifier key (--public-key, either way) */
void note(ops_render *r, const Trace__Ops__V1__Note *n)
{
    FILE *o = r->out;
    char hex[65];

    if (n->vkey) {
        fprintf(o, "%s\n", n->vkey);
        return;
    }
    if (!r->json) {
        fputs(or_empty(n->note), o);
        return;
    }
    hex32(hex, &n->root);
    fputc('{', o);
    ops_json_str(o, "origin", or_empty(n->origin), 0);
    fprintf(o, ",\"tree_size\":%llu,\"root\":\"%s\"",
            (unsigned long long)n->tree_size, hex);
    ops_json_str(o, "note", or_empty(n->note), 1);
    fputs("}\n", o);
}

/* prove: the bundle as the library wrote it, ending with a newline */
void bundle(ops_render *r, const Trace__Ops__V1__Bundle *b)
{
    size_t len = strlen(b->json);

    fwrite(b->json, 1, len, r->out);
    if (len == 0 || b->json[len - 1] != '\n')
        fputc('\n', r->out);
}

/* cosign: what was stored */
void cosigned(ops_render *r, const Trace__Ops__V1__Cosigned *c)
{
    FILE *o = r->out;

    if (!r->json) {
        fprintf(o,
                "stored the cosignature of %s for the checkpoint of %llu "
                "entries of %s\n",
                c->witness, (unsigned long long)c->tree_size, c->origin);
        return;
    }
    fputc('{', o);
    ops_json_str(o, "origin", c->origin, 0);
    fprintf(o, ",\"tree_size\":%llu", (unsigned long long)c->tree_size);
    ops_json_str(o, "witness", c->witness, 1);
    fputs("}\n", o);
}
