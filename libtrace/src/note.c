/* SPDX-License-Identifier: Apache-2.0 */
/*
 * note.c - C2SP signed notes as checkpoints (tlog-checkpoint), their
 * Ed25519 signatures and cosignature/v1 cosignatures, verifier keys.
 * Everything here reads outside bytes: lengths are checked before use
 * and nothing is trusted until a signature over it is.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "trace/proof.h"

#define NOTE_MAX   65536
#define EM_DASH    "\xe2\x80\x94"
#define ALG_ED     0x01
#define ALG_COSIG  0x04
#define COSIG_HEAD "cosignature/v1\ntime "

/* SHA-256(name || "\n" || alg || pub)[:4] */
static void key_id_of(uint8_t out[4], const char *name, uint8_t alg,
                      const uint8_t pub[32])
{
    size_t n = strlen(name);
    uint8_t buf[256 + 2 + 32], h[32];

    if (n > 255)
        n = 255;
    memcpy(buf, name, n);
    buf[n] = '\n';
    buf[n + 1] = alg;
    memcpy(buf + n + 2, pub, 32);
    sha256(h, buf, n + 2 + 32);
    memcpy(out, h, 4);
}

/* A key name: non-empty, no spaces, no '+', printable. */
static int name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 255)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == '+' || s[i] == 0x7f)
            return 0;
    return 1;
}

int trace_vkey_format(char *out, size_t cap, const char *name,
                      const uint8_t pub[TRACE_PUBKEY_LEN])
{
    uint8_t id[4], raw[33];
    char b64[64];
    int n;

    if (!name_ok(name, strlen(name)))
        return trace_fail(TRACE_EINVAL, "bad key name");
    key_id_of(id, name, ALG_ED, pub);
    raw[0] = ALG_ED;
    memcpy(raw + 1, pub, 32);
    base64_encode(b64, sizeof(b64), raw, sizeof(raw));
    n = snprintf(out, cap, "%s+%02x%02x%02x%02x+%s", name, id[0], id[1], id[2],
                 id[3], b64);
    return n > 0 && (size_t)n < cap ? TRACE_OK
                                    : trace_fail(TRACE_EINVAL, "no room");
}

int trace_vkey_parse(const char *vkey, char *name, size_t cap,
                     uint8_t pub[TRACE_PUBKEY_LEN])
{
    const char *p1 = strchr(vkey, '+'), *p2;
    uint8_t raw[64], id[4], want[4];
    char hex[9], b64[128];
    size_t n, len;

    if (!p1 || !(p2 = strchr(p1 + 1, '+')) || p2 - p1 != 9 ||
        !name_ok(vkey, (size_t)(p1 - vkey)) || (size_t)(p1 - vkey) >= cap ||
        strlen(p2 + 1) >= sizeof(b64))
        return trace_fail(TRACE_EINVAL,
                          "a verifier key is NAME+KEYID+BASE64 (tracectl "
                          "checkpoint --public-key prints the log's)");
    n = (size_t)(p1 - vkey);
    memcpy(hex, p1 + 1, 8);
    hex[8] = '\0';
    for (int i = 0; i < 4; i++) {
        unsigned x;
        if (sscanf(hex + 2 * i, "%2x", &x) != 1)
            return trace_fail(TRACE_EINVAL, "bad key id in verifier key");
        id[i] = (uint8_t)x;
    }
    snprintf(b64, sizeof(b64), "%s", p2 + 1); /* length checked above */
    if (base64_decode(raw, sizeof(raw), &len, b64) != TRACE_OK || len != 33 ||
        raw[0] != ALG_ED)
        return trace_fail(TRACE_EINVAL,
                          "verifier key is not an Ed25519 key (0x01 || 32 "
                          "bytes, base64)");
    memcpy(name, vkey, n);
    name[n] = '\0';
    memcpy(pub, raw + 1, 32);
    key_id_of(want, name, ALG_ED, pub);
    if (memcmp(want, id, 4) != 0)
        return trace_fail(TRACE_EINVAL,
                          "the verifier key's id does not match its name "
                          "and key");
    return TRACE_OK;
}

/* Reads one line of [*p, end) into out (without its newline).  0 when
 * there is no complete line. */
static int next_line(const char **p, const char *end, const char **line,
                     size_t *len)
{
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    if (!nl)
        return 0;
    *line = *p;
    *len = (size_t)(nl - *p);
    *p = nl + 1;
    return 1;
}

int trace_checkpoint_parse(trace_checkpoint *cp, const char *note, size_t len)
{
    const char *p = note, *end = note + len, *line, *blank = NULL;
    size_t n, rlen;
    char buf[128];
    uint8_t root[64];
    int i = 0;

    memset(cp, 0, sizeof(*cp));
    if (len == 0 || len > NOTE_MAX)
        return trace_fail(TRACE_EINVAL, "a checkpoint note of %zu bytes", len);
    if (memchr(note, '\0', len))
        return trace_fail(TRACE_EINVAL, "a checkpoint holds no NUL bytes");
    /* the text: lines up to the first blank one */
    while (next_line(&p, end, &line, &n)) {
        if (n == 0) {
            blank = line;
            break;
        }
        if (i == 0) {
            if (n >= sizeof(cp->origin) || !name_ok(line, n))
                return trace_fail(TRACE_EINVAL, "bad checkpoint origin");
            memcpy(cp->origin, line, n);
        } else if (i == 1) {
            char *e;
            if (n == 0 || n >= 21 || (line[0] == '0' && n > 1))
                return trace_fail(TRACE_EINVAL, "bad checkpoint size");
            memcpy(buf, line, n);
            buf[n] = '\0';
            for (size_t k = 0; k < n; k++)
                if (buf[k] < '0' || buf[k] > '9')
                    return trace_fail(TRACE_EINVAL, "bad checkpoint size");
            cp->size = strtoull(buf, &e, 10);
        } else if (i == 2) {
            if (n >= sizeof(buf))
                return trace_fail(TRACE_EINVAL, "bad checkpoint root");
            memcpy(buf, line, n);
            buf[n] = '\0';
            if (base64_decode(root, sizeof(root), &rlen, buf) != TRACE_OK ||
                rlen != 32)
                return trace_fail(TRACE_EINVAL,
                                  "the checkpoint's root is not base64 of 32 "
                                  "bytes");
            memcpy(cp->root, root, 32);
        }
        i++;
    }
    if (!blank || i < 3)
        return trace_fail(TRACE_EINVAL,
                          "a checkpoint is origin, size and root lines, a "
                          "blank line, then signature lines");
    cp->text_len = (size_t)(blank - note);
    if (cp->text_len >= sizeof(cp->text))
        return trace_fail(TRACE_EINVAL, "checkpoint text too long");
    memcpy(cp->text, note, cp->text_len);
    /* signature lines: "— NAME BASE64" */
    while (next_line(&p, end, &line, &n)) {
        const char *sp;
        trace_note_sig *s;
        uint8_t raw[128];
        char b64[192];
        size_t nl, bl, raw_len;

        if (n < 4 || memcmp(line, EM_DASH " ", 4) != 0)
            return trace_fail(TRACE_EINVAL,
                              "a signature line starts with an em dash");
        line += 4;
        n -= 4;
        if (!(sp = memchr(line, ' ', n)))
            return trace_fail(TRACE_EINVAL, "a signature line is NAME SIG");
        nl = (size_t)(sp - line);
        bl = n - nl - 1;
        if (!name_ok(line, nl) || bl == 0 || bl >= sizeof(b64))
            return trace_fail(TRACE_EINVAL, "bad signature line");
        memcpy(b64, sp + 1, bl);
        b64[bl] = '\0';
        if (base64_decode(raw, sizeof(raw), &raw_len, b64) != TRACE_OK ||
            raw_len < 5)
            return trace_fail(TRACE_EINVAL, "a signature is not base64");
        if (cp->n_sigs == TRACE_NOTE_MAX_SIGS)
            return trace_fail(TRACE_EINVAL, "too many signatures");
        s = &cp->sigs[cp->n_sigs++];
        memcpy(s->name, line, nl);
        s->name[nl] = '\0';
        memcpy(s->key_id, raw, 4);
        s->sig_len = raw_len - 4 <= sizeof(s->sig) ? raw_len - 4 : 0;
        memcpy(s->sig, raw + 4, s->sig_len);
    }
    if (p != end)
        return trace_fail(TRACE_EINVAL, "a checkpoint ends with a newline");
    if (cp->n_sigs == 0)
        return trace_fail(TRACE_EINVAL, "the checkpoint is not signed");
    return TRACE_OK;
}

int trace_checkpoint_verify(const trace_checkpoint *cp, const char *name,
                            const uint8_t pub[TRACE_PUBKEY_LEN])
{
    uint8_t id[4];

    key_id_of(id, name, ALG_ED, pub);
    for (size_t i = 0; i < cp->n_sigs; i++) {
        const trace_note_sig *s = &cp->sigs[i];
        if (strcmp(s->name, name) == 0 && memcmp(s->key_id, id, 4) == 0 &&
            s->sig_len == TRACE_SIG_LEN &&
            trace_sig_verify(pub, cp->text, cp->text_len, s->sig) == TRACE_OK)
            return TRACE_OK;
    }
    return trace_fail(TRACE_EVERIFY,
                      "no valid signature of %s on the "
                      "checkpoint",
                      name);
}

/* "cosignature/v1\ntime T\n" || text */
static size_t cosig_message(char *buf, size_t cap, const trace_checkpoint *cp,
                            uint64_t time)
{
    int n = snprintf(buf, cap, COSIG_HEAD "%" PRIu64 "\n", time);
    if (n < 0 || (size_t)n + cp->text_len > cap)
        return 0;
    memcpy(buf + n, cp->text, cp->text_len);
    return (size_t)n + cp->text_len;
}

int trace_checkpoint_verify_cosig(const trace_checkpoint *cp, const char *name,
                                  const uint8_t pub[TRACE_PUBKEY_LEN],
                                  uint64_t *time)
{
    char msg[sizeof(cp->text) + 64];
    uint8_t id[4];

    key_id_of(id, name, ALG_COSIG, pub);
    for (size_t i = 0; i < cp->n_sigs; i++) {
        const trace_note_sig *s = &cp->sigs[i];
        uint64_t t;
        size_t n;
        if (strcmp(s->name, name) != 0 || memcmp(s->key_id, id, 4) != 0 ||
            s->sig_len != 8 + TRACE_SIG_LEN)
            continue;
        t = be64_get(s->sig);
        if ((n = cosig_message(msg, sizeof(msg), cp, t)) &&
            trace_sig_verify(pub, msg, n, s->sig + 8) == TRACE_OK) {
            if (time)
                *time = t;
            return TRACE_OK;
        }
    }
    return trace_fail(TRACE_EVERIFY,
                      "no valid cosignature of %s on the "
                      "checkpoint",
                      name);
}

int trace_checkpoint_cosign(const trace_checkpoint *cp, const trace_key *key,
                            const char *name, uint64_t time, char *line,
                            size_t cap)
{
    char msg[sizeof(cp->text) + 64], b64[160];
    uint8_t raw[4 + 8 + TRACE_SIG_LEN];
    size_t n;
    int rc, w;

    if (!name_ok(name, strlen(name)))
        return trace_fail(TRACE_EINVAL, "bad witness name");
    if (!(n = cosig_message(msg, sizeof(msg), cp, time)))
        return trace_fail(TRACE_EINVAL, "checkpoint too long");
    key_id_of(raw, name, ALG_COSIG, trace_key_public(key));
    be64_put(raw + 4, time);
    if ((rc = trace_key_sign(key, msg, n, raw + 12)) != TRACE_OK)
        return rc;
    base64_encode(b64, sizeof(b64), raw, sizeof(raw));
    w = snprintf(line, cap, EM_DASH " %s %s\n", name, b64);
    return w > 0 && (size_t)w < cap ? TRACE_OK
                                    : trace_fail(TRACE_EINVAL, "no room");
}

/* The log's signature line over `text` (internal: checkpoint.c). */
int note_sign_line(const trace_key *key, const char *name, const char *text,
                   size_t len, char *line, size_t cap)
{
    uint8_t raw[4 + TRACE_SIG_LEN];
    char b64[128];
    int rc, w;

    key_id_of(raw, name, ALG_ED, trace_key_public(key));
    if ((rc = trace_key_sign(key, text, len, raw + 4)) != TRACE_OK)
        return rc;
    base64_encode(b64, sizeof(b64), raw, sizeof(raw));
    w = snprintf(line, cap, EM_DASH " %s %s\n", name, b64);
    return w > 0 && (size_t)w < cap ? TRACE_OK
                                    : trace_fail(TRACE_EINVAL, "no room");
}

int trace_merkle_verify_inclusion(uint64_t index, uint64_t size,
                                  const uint8_t leaf[32],
                                  const uint8_t (*proof)[32], size_t n,
                                  const uint8_t root[32])
{
    return merkle_verify_inclusion(index, size, leaf, proof, n, root);
}

int trace_merkle_verify_consistency(uint64_t size1, uint64_t size2,
                                    const uint8_t root1[32],
                                    const uint8_t root2[32],
                                    const uint8_t (*proof)[32], size_t n)
{
    return merkle_verify_consistency(size1, size2, root1, root2, proof, n);
}
