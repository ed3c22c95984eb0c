/*
 * tokenizer.c - byte-level BPE (see tokenizer.h for the algorithm).
 *
 * Internally every token is kept as its raw bytes, so BPE runs on bytes and a
 * merge is a pair of ids: (left id, right id) -> (rank, merged id) in an
 * open-addressing hash map; the vocabulary is a second map, bytes -> id.
 * Per piece, merging uses a binary heap of candidate pairs ordered by
 * (rank, position) with lazy invalidation, O(n log n) in the piece length.
 */
#include "tokenizer.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_unicode.h"

struct merge_slot {
    uint64_t key; /* (left id << 32) | right id */
    int32_t rank; /* -1: empty slot */
    int32_t id;   /* merged token */
};

struct vt_tok {
    uint32_t n_tokens;
    uint8_t *arena;            /* all token bytes, concatenated */
    size_t *off;               /* [n_tokens + 1] token i is arena[off[i] .. off[i+1]) */
    uint8_t *special;          /* [n_tokens] 1: matched whole in text, decoded verbatim */
    uint8_t *silent;           /* [n_tokens] 1: UNUSED, decodes to no bytes (llama.cpp, HF) */
    int32_t *vocab_slots;      /* [vocab_cap] token id or -1; key = token bytes */
    uint32_t vocab_cap;        /* power of two */
    struct merge_slot *merges; /* [merge_cap] */
    uint32_t merge_cap;        /* power of two */
    int32_t byte_id[256];      /* token of each single byte, -1 if none */
    int32_t *specials;         /* [n_specials] ids, longest first */
    uint32_t n_specials;
    uint8_t special_first[256]; /* 1: some special token starts with this byte */
    enum vt_tok_pre pre;
    int ignore_merges;     /* 1: a piece that is a token is emitted as is, without BPE */
    int32_t bos;           /* token put before a prompt by the caller, -1: none */
    int spm;               /* 1: SentencePiece pieces (vt_tok_create_spm) */
    float *spm_scores;     /* [n_tokens] piece scores (vt_tok_set_spm_scores); NULL: decode only */
    int spm_space;         /* 1: a space before each text fragment (add_space_prefix); spm_bpe:
                            * 2, 3: Metaspace's "first" (the text's first fragment), "always",
                            * each only where the fragment does not start with a space */
    int spm_bpe;           /* 1: SentencePiece pieces merged by merge rank (tokenizer.json BPE) */
    int32_t spm_byte[256]; /* the "<0xNN>" token of each byte, -1 if none */
};

/* ------------------------------------------------------------------ hashing */

static uint64_t hash_bytes(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33; /* murmur3 finalizer */
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static uint32_t pow2_at_least(uint64_t n) {
    uint64_t c = 16;
    while (c < n) c <<= 1;
    return c > (1u << 31) ? 0 : (uint32_t)c;
}

static int32_t vocab_find(const vt_tok *t, const uint8_t *p, size_t n) {
    uint32_t mask = t->vocab_cap - 1;
    for (uint32_t i = (uint32_t)hash_bytes(p, n) & mask;; i = (i + 1) & mask) {
        int32_t id = t->vocab_slots[i];
        if (id < 0) return -1;
        size_t len = t->off[id + 1] - t->off[id];
        if (len == n && memcmp(t->arena + t->off[id], p, n) == 0) return id;
    }
}

/* Inserts id unless a token with the same bytes is already present. */
static void vocab_insert(vt_tok *t, int32_t id) {
    const uint8_t *p = t->arena + t->off[id];
    size_t n = t->off[id + 1] - t->off[id];
    uint32_t mask = t->vocab_cap - 1;
    for (uint32_t i = (uint32_t)hash_bytes(p, n) & mask;; i = (i + 1) & mask) {
        int32_t o = t->vocab_slots[i];
        if (o < 0) {
            t->vocab_slots[i] = id;
            return;
        }
        if (t->off[o + 1] - t->off[o] == n && memcmp(t->arena + t->off[o], p, n) == 0) return;
    }
}

static const struct merge_slot *merge_find(const vt_tok *t, int32_t a, int32_t b) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint32_t mask = t->merge_cap - 1;
    for (uint32_t i = (uint32_t)hash_u64(key) & mask;; i = (i + 1) & mask) {
        const struct merge_slot *s = &t->merges[i];
        if (s->rank < 0) return NULL;
        if (s->key == key) return s;
    }
}

/* Keeps the first (lowest) rank of a repeated pair. */
static void merge_insert(vt_tok *t, int32_t a, int32_t b, int32_t rank, int32_t id) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint32_t mask = t->merge_cap - 1;
    for (uint32_t i = (uint32_t)hash_u64(key) & mask;; i = (i + 1) & mask) {
        struct merge_slot *s = &t->merges[i];
        if (s->rank < 0) {
            s->key = key;
            s->rank = rank;
            s->id = id;
            return;
        }
        if (s->key == key) return;
    }
}

/* ------------------------------------------------------------------ UTF-8 */

/* Decodes one code point of s[0..n), n >= 1.  Returns its length; an invalid or
 * truncated sequence yields length 1 and *cp = UINT32_MAX. */
static size_t utf8_next(const uint8_t *s, size_t n, uint32_t *cp) {
    uint8_t c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2;
        v = c & 0x1F;
        min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3;
        v = c & 0x0F;
        min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        *cp = UINT32_MAX;
        return 1;
    }
    if (len > n) {
        *cp = UINT32_MAX;
        return 1;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = UINT32_MAX;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        *cp = UINT32_MAX;
        return 1;
    }
    *cp = v;
    return len;
}

/* GPT-2 byte-to-unicode: bytes '!'..'~', 0xA1..0xAC, 0xAE..0xFF stand for
 * themselves; the other 68 bytes map, in order, to U+0100 .. U+0143. */
static bool byte_is_printable(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
}

/* Byte that code point cp stands for, or -1. */
static int unicode_to_byte(uint32_t cp) {
    if (cp < 256) return byte_is_printable(cp) ? (int)cp : -1;
    if (cp >= 0x100 + 68) return -1;
    unsigned k = cp - 0x100;
    for (unsigned b = 0; b < 256; b++) {
        if (!byte_is_printable(b) && k-- == 0) return (int)b;
    }
    return -1;
}

/* Writes the bytes of a byte-level token string (each code point in the GPT-2
 * alphabet becomes its byte; any other code point or invalid byte is kept as
 * is).  dst must hold n bytes; returns the length written. */
static size_t token_to_bytes(const uint8_t *s, size_t n, uint8_t *dst) {
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = utf8_next(s + i, n - i, &cp);
        int b = cp == UINT32_MAX ? -1 : unicode_to_byte(cp);
        if (b >= 0) {
            dst[o++] = (uint8_t)b;
        } else {
            memcpy(dst + o, s + i, l);
            o += l;
        }
        i += l;
    }
    return o;
}

/* ------------------------------------------------------------------ classes */

enum cp_class { CP_OTHER, CP_LETTER, CP_NUMBER, CP_SPACE };

static bool in_ranges(uint32_t cp, const uint32_t (*r)[2], size_t n) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < r[mid][0])
            hi = mid;
        else if (cp > r[mid][1])
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

static enum cp_class classify(uint32_t cp) {
    if (cp < 0x80) {
        if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return CP_LETTER;
        if (cp >= '0' && cp <= '9') return CP_NUMBER;
        if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return CP_SPACE;
        return CP_OTHER;
    }
    if (cp == UINT32_MAX) return CP_OTHER;
    /* Unicode White_Space above ASCII */
    if (cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
        cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000)
        return CP_SPACE;
    if (in_ranges(cp, tok_letter_ranges, sizeof tok_letter_ranges / sizeof tok_letter_ranges[0]))
        return CP_LETTER;
    if (in_ranges(cp, tok_number_ranges, sizeof tok_number_ranges / sizeof tok_number_ranges[0]))
        return CP_NUMBER;
    return CP_OTHER;
}

/* Class and byte length of the code point at s[i], i < e. */
static enum cp_class class_at(const uint8_t *s, size_t i, size_t e, size_t *len) {
    uint32_t cp;
    *len = utf8_next(s + i, e - i, &cp);
    return classify(cp);
}

/* ------------------------------------------------------------------ create */

void vt_tok_destroy(vt_tok *tok) {
    if (!tok) return;
    free(tok->arena);
    free(tok->off);
    free(tok->special);
    free(tok->silent);
    free(tok->vocab_slots);
    free(tok->merges);
    free(tok->specials);
    free(tok->spm_scores);
    free(tok);
}

struct special_ref {
    size_t len;
    int32_t id;
};

/* longest first, then lowest id */
static int cmp_special(const void *pa, const void *pb) {
    const struct special_ref *a = pa, *b = pb;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

static _Thread_local char tok_err[512];

const char *vt_tok_error(void) {
    return tok_err;
}

static int tok_fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int tok_fail(int rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tok_err, sizeof tok_err, fmt, ap);
    va_end(ap);
    return rc;
}

/* Merge @p r ("left right", @p n bytes at @p m) names token @p what that is not in the
 * vocabulary. */
static int merge_missing(uint32_t r, const uint8_t *m, size_t n, const char *which,
                         const char *what) {
    return tok_fail(-EINVAL, "merge %u '%.*s': %s '%s' is not in the vocabulary", r,
                    (int)(n < 200 ? n : 200), (const char *)m, which, what);
}

/* Pieces by their exact spelling, for the merges of a tokenizer.json over SentencePiece pieces:
 * they name added pieces ("▁▁", Gemma's whitespace runs) and byte pieces ("<0x41>") as written,
 * which the encoder's lookup (U+2581 held as a space, added and byte pieces apart) does not
 * find. Open addressing on hash_bytes; -ENOMEM. */
typedef struct exact_map {
    const char *const *tokens;
    int32_t *slot;
    uint32_t cap; /* power of two */
} exact_map;

static int exact_build(exact_map *m, const char *const *tokens, uint32_t n) {
    m->tokens = tokens;
    m->cap = pow2_at_least((uint64_t)n * 2 + 1);
    m->slot = m->cap ? malloc((size_t)m->cap * sizeof *m->slot) : NULL;
    if (!m->slot) return -ENOMEM;
    for (uint32_t i = 0; i < m->cap; i++) m->slot[i] = -1;
    for (uint32_t i = 0; i < n; i++) {
        const size_t l = strlen(tokens[i]);
        uint32_t h = (uint32_t)hash_bytes((const uint8_t *)tokens[i], l) & (m->cap - 1);
        while (m->slot[h] >= 0) {
            const char *o = tokens[m->slot[h]];
            if (strlen(o) == l && !memcmp(o, tokens[i], l)) break; /* the first of equals */
            h = (h + 1) & (m->cap - 1);
        }
        if (m->slot[h] < 0) m->slot[h] = (int32_t)i;
    }
    return 0;
}

static int32_t exact_find(const exact_map *m, const uint8_t *p, size_t n) {
    for (uint32_t h = (uint32_t)hash_bytes(p, n) & (m->cap - 1); m->slot[h] >= 0;
         h = (h + 1) & (m->cap - 1)) {
        const char *o = m->tokens[m->slot[h]];
        if (strlen(o) == n && !memcmp(o, p, n)) return m->slot[h];
    }
    return -1;
}

/* @p exact: the merges' parts are looked up by their exact spelling (tokenizer.json over
 * SentencePiece pieces), else as the vocabulary holds them (byte-level BPE, GGUF). */
static int build_merges(vt_tok *t, const char *const *merges, uint32_t n_merges,
                        const exact_map *exact) {
    size_t max_len = 0;
    for (uint32_t r = 0; r < n_merges; r++) {
        if (!merges[r]) return tok_fail(-EINVAL, "merge %u is NULL", r);
        size_t l = strlen(merges[r]);
        if (l > max_len) max_len = l;
    }
    t->merge_cap = pow2_at_least((uint64_t)n_merges * 2 + 1);
    if (!t->merge_cap) return -ENOMEM;
    t->merges = malloc((size_t)t->merge_cap * sizeof *t->merges);
    uint8_t *scratch = malloc(max_len + 1);
    if (!t->merges || !scratch) {
        free(scratch);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < t->merge_cap; i++) t->merges[i].rank = -1;
    int rc = 0;
    for (uint32_t r = 0; r < n_merges && rc == 0; r++) {
        const uint8_t *m = (const uint8_t *)merges[r];
        size_t n = strlen(merges[r]);
        const uint8_t *sp = memchr(m, ' ', n);
        if (!sp || sp == m || sp == m + n - 1) {
            rc = tok_fail(-EINVAL, "merge %u '%.*s' is not two tokens separated by a space", r,
                          (int)(n < 200 ? n : 200), (const char *)m);
            break;
        }
        size_t nl = (size_t)(sp - m);
        int32_t a, b, ab;
        if (exact) {
            memcpy(scratch, m, nl);
            memcpy(scratch + nl, sp + 1, n - nl - 1);
            a = exact_find(exact, m, nl);
            b = exact_find(exact, sp + 1, n - nl - 1);
            ab = exact_find(exact, scratch, n - 1);
        } else {
            size_t bl = token_to_bytes(m, nl, scratch);
            size_t br = token_to_bytes(sp + 1, n - nl - 1, scratch + bl);
            a = vocab_find(t, scratch, bl);
            b = vocab_find(t, scratch + bl, br);
            ab = vocab_find(t, scratch, bl + br);
        }
        if (a < 0 || b < 0 || ab < 0) {
            /* name the part as the merge spells it, the joined one as the two texts joined */
            char part[256];
            if (a < 0)
                snprintf(part, sizeof part, "%.*s", (int)(nl < 200 ? nl : 200), (const char *)m);
            else if (b < 0)
                snprintf(part, sizeof part, "%.200s", (const char *)sp + 1);
            else
                snprintf(part, sizeof part, "%.*s%.100s", (int)(nl < 100 ? nl : 100),
                         (const char *)m, (const char *)sp + 1);
            rc = merge_missing(r, m, n,
                               a < 0   ? "left token"
                               : b < 0 ? "right token"
                                       : "merged token",
                               part);
        } else
            merge_insert(t, a, b, (int32_t)r, ab);
    }
    free(scratch);
    return rc;
}

static int hex_digit(uint8_t c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                  : -1;
}

/* The byte NN a SentencePiece byte piece "<0xNN>" (hex digits of either case) stands for, or
 * -1 for any other text @p s[0..n). */
static int byte_piece(const uint8_t *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>' || hex_digit(s[3]) < 0 || hex_digit(s[4]) < 0)
        return -1;
    return hex_digit(s[3]) << 4 | hex_digit(s[4]);
}

/* s[i..e) starts with U+2581, SentencePiece's space. */
static bool is_u2581(const uint8_t *s, size_t i, size_t e) {
    return i + 3 <= e && s[i] == 0xE2 && s[i + 1] == 0x96 && s[i + 2] == 0x81;
}

/* Writes the bytes of a SentencePiece piece @p s[0..n) of type @p ty as llama.cpp's
 * token_to_piece does: a BYTE token "<0xNN>" is the byte NN, a normal one its text with each
 * U+2581 (the piece's space) a space. dst must hold n bytes; returns the length written. */
static size_t spm_to_bytes(const uint8_t *s, size_t n, int32_t ty, uint8_t *dst) {
    const int b = ty == VT_TOK_TYPE_BYTE ? byte_piece(s, n) : -1;
    if (b >= 0) {
        dst[0] = (uint8_t)b;
        return 1;
    }
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (ty != VT_TOK_TYPE_UNKNOWN && is_u2581(s, i, n)) {
            dst[o++] = ' ';
            i += 3;
        } else {
            dst[o++] = s[i++];
        }
    }
    return o;
}

/* spm: 0 byte-level BPE (merges by the vocabulary's byte spelling), 1 SentencePiece pieces
 * (GGUF: no merges), 2 SentencePiece pieces with tokenizer.json merges (exact spelling). */
static int tok_build(const char *const *tokens, uint32_t n_tokens, const char *const *merges,
                     uint32_t n_merges, const int32_t *token_types, int spm, vt_tok **out) {
    tok_err[0] = 0;
    if (!out) return -EINVAL;
    *out = NULL;
    if (!tokens || n_tokens == 0 || n_tokens > INT32_MAX || (!merges && n_merges) ||
        n_merges > INT32_MAX)
        return tok_fail(-EINVAL, "%u tokens, %u merges", n_tokens, n_merges);
    size_t total = 0;
    for (uint32_t i = 0; i < n_tokens; i++) {
        if (!tokens[i]) return tok_fail(-EINVAL, "token %u is NULL", i);
        total += strlen(tokens[i]);
    }

    vt_tok *t = calloc(1, sizeof *t);
    if (!t) return -ENOMEM;
    t->n_tokens = n_tokens;
    t->bos = -1;
    t->spm = spm != 0;
    t->arena = malloc(total + 1);
    t->off = malloc(((size_t)n_tokens + 1) * sizeof *t->off);
    t->special = calloc(n_tokens, 1);
    t->silent = calloc(n_tokens, 1);
    t->vocab_cap = pow2_at_least((uint64_t)n_tokens * 2 + 1);
    t->vocab_slots = t->vocab_cap ? malloc((size_t)t->vocab_cap * sizeof *t->vocab_slots) : NULL;
    if (!t->arena || !t->off || !t->special || !t->silent || !t->vocab_slots) {
        vt_tok_destroy(t);
        return -ENOMEM;
    }

    size_t o = 0;
    for (uint32_t i = 0; i < n_tokens; i++) {
        const uint8_t *s = (const uint8_t *)tokens[i];
        size_t n = strlen(tokens[i]);
        int32_t ty = token_types ? token_types[i] : VT_TOK_TYPE_NORMAL;
        t->off[i] = o;
        t->silent[i] = ty == VT_TOK_TYPE_UNUSED;
        if (ty == VT_TOK_TYPE_CONTROL || ty == VT_TOK_TYPE_USER_DEFINED) {
            t->special[i] = n > 0;
            t->n_specials += n > 0;
            memcpy(t->arena + o, s, n);
            o += n;
        } else if (spm) {
            o += spm_to_bytes(s, n, ty, t->arena + o);
        } else {
            o += token_to_bytes(s, n, t->arena + o);
        }
    }
    t->off[n_tokens] = o;

    /* normal tokens first, so they win when a special token decodes alike. A SentencePiece
     * BYTE token ("<0x41>", decoded "A") is not a piece: text matches the piece "A", and the byte
     * token serves only the fallback (spm_byte: its exact "<0x%02X>" spelling, as llama.cpp
     * looks it up, the last of equals as in its token_to_id) */
    for (uint32_t i = 0; i < t->vocab_cap; i++) t->vocab_slots[i] = -1;
    for (int b = 0; b < 256; b++) t->spm_byte[b] = -1;
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t i = 0; i < n_tokens; i++) {
            const int32_t ty = token_types ? token_types[i] : VT_TOK_TYPE_NORMAL;
            if (spm && pass == 0) {
                const char *x = tokens[i];
                const int b = byte_piece((const uint8_t *)x, strlen(x));
                if (b >= 0 && x[3] < 'a' && x[4] < 'a') t->spm_byte[b] = (int32_t)i; /* "%02X" */
                if (ty == VT_TOK_TYPE_BYTE) continue;
            }
            if (t->special[i] == pass && t->off[i + 1] > t->off[i]) vocab_insert(t, (int32_t)i);
        }
    }
    for (int b = 0; b < 256; b++) {
        uint8_t c = (uint8_t)b;
        t->byte_id[b] = vocab_find(t, &c, 1);
    }

    t->specials = malloc(((size_t)t->n_specials + 1) * sizeof *t->specials);
    struct special_ref *refs = malloc(((size_t)t->n_specials + 1) * sizeof *refs);
    if (!t->specials || !refs) {
        free(refs);
        vt_tok_destroy(t);
        return -ENOMEM;
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < n_tokens; i++) {
        if (t->special[i]) {
            refs[k].len = t->off[i + 1] - t->off[i];
            refs[k++].id = (int32_t)i;
            t->special_first[t->arena[t->off[i]]] = 1;
        }
    }
    qsort(refs, t->n_specials, sizeof *refs, cmp_special);
    for (k = 0; k < t->n_specials; k++) t->specials[k] = refs[k].id;
    free(refs);

    exact_map em = {0};
    int rc = spm == 2 ? exact_build(&em, tokens, n_tokens) : 0;
    if (!rc) rc = build_merges(t, merges, n_merges, spm == 2 ? &em : NULL);
    free(em.slot);
    if (rc) {
        vt_tok_destroy(t);
        return rc;
    }
    *out = t;
    return 0;
}

int vt_tok_create(const char *const *tokens, uint32_t n_tokens, const char *const *merges,
                  uint32_t n_merges, const int32_t *token_types, vt_tok **out) {
    return tok_build(tokens, n_tokens, merges, n_merges, token_types, 0, out);
}

int vt_tok_create_spm(const char *const *tokens, uint32_t n_tokens, const int32_t *token_types,
                      vt_tok **out) {
    return tok_build(tokens, n_tokens, NULL, 0, token_types, 1, out);
}

int vt_tok_create_spm_bpe(const char *const *tokens, uint32_t n_tokens, const char *const *merges,
                          uint32_t n_merges, const int32_t *token_types, int space, vt_tok **out) {
    if (space < 0 || space > 3) return tok_fail(-EINVAL, "space mode %d", space);
    int rc = tok_build(tokens, n_tokens, merges, n_merges, token_types, 2, out);
    if (!rc) {
        (*out)->spm_bpe = 1;
        (*out)->spm_space = space;
    }
    return rc;
}

/* ------------------------------------------------------------------ encode */

struct heap_item {
    int32_t rank;
    uint32_t left, right; /* symbol positions */
    int32_t left_id, right_id;
};

struct encoder {
    const vt_tok *t;
    const uint8_t *text; /* the whole text, for the offsets in error messages */
    int32_t *ids;
    uint32_t cap;
    uint64_t n; /* ids produced so far (written or not) */
    /* scratch, grown to the longest piece so far */
    size_t scratch_cap;
    int32_t *sym_id;
    uint32_t *next, *prev;
    struct heap_item *heap; /* n-1 initial pairs + at most 2 per merge: < 3n */
    size_t heap_n;
};

static int reserve_scratch(struct encoder *e, size_t n) {
    if (n <= e->scratch_cap) return 0;
    size_t cap = e->scratch_cap * 2 > n ? e->scratch_cap * 2 : n;
    if (cap < 64) cap = 64;
    if (cap > UINT32_MAX - 1 || cap > SIZE_MAX / (3 * sizeof *e->heap)) return -ENOMEM;
    int32_t *sym_id = realloc(e->sym_id, cap * sizeof *sym_id);
    if (sym_id) e->sym_id = sym_id;
    uint32_t *next = realloc(e->next, cap * sizeof *next);
    if (next) e->next = next;
    uint32_t *prev = realloc(e->prev, cap * sizeof *prev);
    if (prev) e->prev = prev;
    struct heap_item *heap = realloc(e->heap, 3 * cap * sizeof *heap);
    if (heap) e->heap = heap;
    if (!sym_id || !next || !prev || !heap) return -ENOMEM;
    e->scratch_cap = cap;
    return 0;
}

static void emit(struct encoder *e, int32_t id) {
    if (e->n < e->cap) e->ids[e->n] = id;
    e->n++;
}

static bool heap_less(const struct heap_item *a, const struct heap_item *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->left < b->left;
}

static void heap_push(struct encoder *e, struct heap_item it) {
    size_t i = e->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&it, &e->heap[p])) break;
        e->heap[i] = e->heap[p];
        i = p;
    }
    e->heap[i] = it;
}

static struct heap_item heap_pop(struct encoder *e) {
    struct heap_item top = e->heap[0];
    struct heap_item last = e->heap[--e->heap_n];
    size_t i = 0, n = e->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap_less(&e->heap[c + 1], &e->heap[c])) c++;
        if (!heap_less(&e->heap[c], &last)) break;
        e->heap[i] = e->heap[c];
        i = c;
    }
    if (n) e->heap[i] = last;
    return top;
}

#define NONE UINT32_MAX

static void push_pair(struct encoder *e, uint32_t l, uint32_t r) {
    if (l == NONE || r == NONE) return;
    const struct merge_slot *m = merge_find(e->t, e->sym_id[l], e->sym_id[r]);
    if (m) {
        struct heap_item it = {m->rank, l, r, e->sym_id[l], e->sym_id[r]};
        heap_push(e, it);
    }
}

/* The byte at @p p of the text has no single-byte token, so byte-level BPE cannot represent it
 * (a vocabulary without all 256 byte tokens). */
static int no_byte_token(const struct encoder *e, const uint8_t *p) {
    return tok_fail(-EINVAL,
                    "byte 0x%02x at offset %zu of the text has no single-byte token in the "
                    "vocabulary",
                    *p, (size_t)(p - e->text));
}

static int bpe_run(struct encoder *e, size_t n);

/* BPE over the bytes s[0..n), n >= 1; emits the resulting ids. */
static int bpe_piece(struct encoder *e, const uint8_t *s, size_t n) {
    const vt_tok *t = e->t;
    if (n == 1) {
        if (t->byte_id[s[0]] < 0) return no_byte_token(e, s);
        emit(e, t->byte_id[s[0]]);
        return 0;
    }
    if (t->ignore_merges) {
        int32_t id = vocab_find(t, s, n);
        if (id >= 0 && !t->special[id]) {
            emit(e, id);
            return 0;
        }
    }
    int rc = reserve_scratch(e, n);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++) {
        e->sym_id[i] = t->byte_id[s[i]];
        if (e->sym_id[i] < 0) return no_byte_token(e, s + i);
        e->prev[i] = i == 0 ? NONE : (uint32_t)(i - 1);
        e->next[i] = i + 1 == n ? NONE : (uint32_t)(i + 1);
    }
    return bpe_run(e, n);
}

/* The merges over the n symbols set up in e->sym_id / prev / next (a chain from 0): the
 * adjacent pair of the lowest merge rank first (the leftmost on ties), until none is left;
 * emits the resulting ids. */
static int bpe_run(struct encoder *e, size_t n) {
    const vt_tok *t = e->t;
    e->heap_n = 0;
    for (size_t i = 0; i + 1 < n; i++) push_pair(e, (uint32_t)i, (uint32_t)(i + 1));
    while (e->heap_n) {
        struct heap_item it = heap_pop(e);
        uint32_t l = it.left, r = it.right;
        /* stale: either side merged away or changed since the pair was queued */
        if (e->next[l] != r || e->sym_id[l] != it.left_id || e->sym_id[r] != it.right_id ||
            e->sym_id[r] < 0)
            continue;
        e->sym_id[l] = merge_find(t, it.left_id, it.right_id)->id;
        e->sym_id[r] = -1;
        e->next[l] = e->next[r];
        if (e->next[r] != NONE) e->prev[e->next[r]] = l;
        push_pair(e, e->prev[l], l);
        push_pair(e, l, e->next[l]);
    }
    for (uint32_t i = 0; i != NONE; i = e->next[i]) emit(e, e->sym_id[i]);
    return 0;
}

static bool is_contraction(const uint8_t *s, size_t i, size_t e, size_t *len) {
    if (s[i] != '\'' || i + 1 >= e) return false;
    uint8_t a = s[i + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') {
        *len = 2;
        return true;
    }
    if (i + 2 < e) {
        uint8_t b = s[i + 2];
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) {
            *len = 3;
            return true;
        }
    }
    return false;
}

/* End of the run of class c starting at i. */
static size_t run_end(const uint8_t *s, size_t i, size_t e, enum cp_class c) {
    size_t l;
    while (i < e && class_at(s, i, e, &l) == c) i += l;
    return i;
}

/* GPT-2 pattern over s[b..e) (which holds no numbers after the digit split,
 * though they are handled anyway). */
static int split_gpt2(struct encoder *en, const uint8_t *s, size_t b, size_t e) {
    size_t i = b;
    while (i < e) {
        size_t l, end;
        enum cp_class c = class_at(s, i, e, &l);
        if (is_contraction(s, i, e, &l)) {
            end = i + l;
        } else if (c != CP_SPACE) {
            end = run_end(s, i, e, c);
        } else {
            size_t l2;
            enum cp_class nc = i + 1 < e ? class_at(s, i + 1, e, &l2) : CP_SPACE;
            if (s[i] == ' ' && nc != CP_SPACE) {
                end = run_end(s, i + 1, e, nc); /* " ?\p{L}+" and friends */
            } else {
                /* \s+(?!\S): the whitespace run, less its last character when a
                 * non-space follows; a lone space char before one falls to \s+. */
                size_t j = i, last = i;
                while (j < e && class_at(s, j, e, &l2) == CP_SPACE) {
                    last = j;
                    j += l2;
                }
                end = (j < e && last > i) ? last : j;
            }
        }
        int rc = bpe_piece(en, s + i, end - i);
        if (rc) return rc;
        i = end;
    }
    return 0;
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d) at s[i]: the letters in either case.  Oniguruma, which
 * `tokenizers` uses, also folds U+017F LATIN SMALL LETTER LONG S (bytes C5 BF) to 's' (the only
 * non-ASCII fold onto these letters). */
static bool is_contraction_ci(const uint8_t *s, size_t i, size_t e, size_t *len) {
    if (s[i] != '\'' || i + 1 >= e) return false;
    uint8_t a = s[i + 1] | 0x20; /* ASCII lower case; other bytes compare unequal below */
    if (s[i + 1] == 0xC5 && i + 2 < e && s[i + 2] == 0xBF) {
        *len = 3;
        return true;
    }
    if (a == 's' || a == 't' || a == 'm' || a == 'd') {
        *len = 2;
        return true;
    }
    if (i + 2 < e) {
        uint8_t b = s[i + 2] | 0x20;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) {
            *len = 3;
            return true;
        }
    }
    return false;
}

static bool is_crlf(uint8_t c) {
    return c == '\r' || c == '\n';
}

/* The Llama-3 pattern over s[b..e), tried alternative by alternative at each position as a
 * backtracking regex engine does (leftmost alternative first):
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
 *   \s*[\r\n]+|\s+(?!\S)|\s+
 * max_digits is 3 (Llama 3) or 1 (Qwen2, whose pattern has \p{N} alone). */
static int split_llama3(struct encoder *en, const uint8_t *s, size_t b, size_t e,
                        unsigned max_digits) {
    size_t i = b;
    while (i < e) {
        size_t l, l2, end;
        enum cp_class c = class_at(s, i, e, &l);
        /* the next character's class; the end of the text counts as space (nothing to join) */
        enum cp_class nc = i + l < e ? class_at(s, i + l, e, &l2) : CP_SPACE;
        if (is_contraction_ci(s, i, e, &l2)) {
            end = i + l2;
        } else if (c == CP_LETTER) {
            end = run_end(s, i, e, CP_LETTER);
        } else if (c != CP_NUMBER && !is_crlf(s[i]) && nc == CP_LETTER) {
            end = run_end(s, i + l, e, CP_LETTER); /* one leading non-letter, then letters */
        } else if (c == CP_NUMBER) {
            end = i + l;
            for (unsigned k = 1; k < max_digits && end < e && class_at(s, end, e, &l2) == CP_NUMBER;
                 k++)
                end += l2;
        } else if (c == CP_OTHER || (s[i] == ' ' && nc == CP_OTHER)) {
            end = run_end(s, c == CP_OTHER ? i : i + 1, e, CP_OTHER);
            while (end < e && is_crlf(s[end])) end++;
        } else {
            /* whitespace: \s*[\r\n]+ takes the run up to its last CR/LF; otherwise \s+(?!\S)
             * the run less its last character when a non-space follows, else \s+ */
            size_t j = i, last = i, crlf_end = 0;
            while (j < e && class_at(s, j, e, &l2) == CP_SPACE) {
                last = j;
                if (is_crlf(s[j])) crlf_end = j + 1;
                j += l2;
            }
            if (crlf_end)
                end = crlf_end;
            else
                end = (j < e && last > i) ? last : j;
        }
        int rc = bpe_piece(en, s + i, end - i);
        if (rc) return rc;
        i = end;
    }
    return 0;
}

/* Pre-tokenizes and encodes text without special tokens, s[b..e). */
static int encode_fragment(struct encoder *en, const uint8_t *s, size_t b, size_t e) {
    switch (en->t->pre) {
    case VT_TOK_PRE_GPT2:
        return split_gpt2(en, s, b, e);
    case VT_TOK_PRE_LLAMA3:
        return split_llama3(en, s, b, e, 3);
    case VT_TOK_PRE_QWEN2:
        return split_llama3(en, s, b, e, 1);
    default:
        break;
    }
    size_t seg = b, i = b;
    while (i < e) {
        size_t l;
        if (class_at(s, i, e, &l) == CP_NUMBER) {
            int rc = split_gpt2(en, s, seg, i);
            if (!rc) rc = bpe_piece(en, s + i, l);
            if (rc) return rc;
            seg = i + l;
        }
        i += l;
    }
    return split_gpt2(en, s, seg, e);
}

/* ------------------------------------------------------------------ SentencePiece */

/* A candidate merge of adjacent symbols left and right into a piece of @p size bytes. */
struct spm_item {
    float score;
    uint32_t left, right;
    size_t size;
};

/* llama.cpp's queue order: the highest score first, the leftmost on ties. */
static bool spm_before(const struct spm_item *a, const struct spm_item *b) {
    return a->score != b->score ? a->score > b->score : a->left < b->left;
}

static void spm_push(struct spm_item *h, size_t *hn, struct spm_item it) {
    size_t i = (*hn)++;
    while (i > 0 && spm_before(&it, &h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = it;
}

static struct spm_item spm_pop(struct spm_item *h, size_t *hn) {
    struct spm_item top = h[0], last = h[--*hn];
    size_t i = 0, n = *hn;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && spm_before(&h[c + 1], &h[c])) c++;
        if (!spm_before(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (n) h[i] = last;
    return top;
}

/* The length of the UTF-8 character that starts with byte @p c, by its lead byte alone, at most
 * @p left (llama.cpp's unicode_len_utf8; SentencePiece's symbols). */
static size_t lead_len(uint8_t c, size_t left) {
    static const uint8_t lens[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lens[c >> 4] < left ? lens[c >> 4] : left;
}

/* The text s[b..e) as SentencePiece pieces spell it, into x (e - b + 1 bytes): a space first
 * when @p space, each U+2581 a space (the pieces hold their U+2581 as spaces). Its length. */
static size_t spm_text(const uint8_t *s, size_t b, size_t e, int space, uint8_t *x) {
    size_t n = 0;
    if (space) x[n++] = ' ';
    for (size_t i = b; i < e;) {
        if (is_u2581(s, i, e)) {
            x[n++] = ' ';
            i += 3;
        } else {
            x[n++] = s[i++];
        }
    }
    return n;
}

/* One raw text fragment s[b..e) (no special token in it) as llama.cpp's SPM tokenizer
 * (llm_tokenizer_spm_session) encodes it: a space first when @p space, each space a piece's
 * U+2581 (our pieces hold it as a space, so an U+2581 in the text becomes one too); symbols are
 * UTF-8 characters (lead byte decides the length); repeatedly the adjacent pair whose
 * concatenation is a piece with the highest score (leftmost on ties) is merged; a final symbol
 * that is no piece becomes its bytes' "<0xNN>" tokens (else the byte's one-character piece). */
static int spm_fragment(struct encoder *en, const uint8_t *s, size_t b, size_t e, int space) {
    const vt_tok *t = en->t;
    size_t cap = e - b + 1, n = 0;
    uint8_t *x = malloc(cap);
    uint32_t *pos = malloc(cap * sizeof *pos), *len = malloc(cap * sizeof *len);
    uint32_t *prev = malloc(cap * sizeof *prev), *next = malloc(cap * sizeof *next);
    struct spm_item *heap = malloc(3 * cap * sizeof *heap);
    int rc = x && pos && len && prev && next && heap && cap < UINT32_MAX ? 0 : -ENOMEM;
    if (!rc) n = spm_text(s, b, e, space, x);
    uint32_t ns = 0;
    for (size_t o = 0; !rc && o < n; ns++) {
        const size_t l = lead_len(x[o], n - o);
        pos[ns] = (uint32_t)o;
        len[ns] = (uint32_t)l;
        prev[ns] = ns ? ns - 1 : NONE;
        o += l;
        next[ns] = o == n ? NONE : ns + 1;
    }
    size_t hn = 0;
#define SPM_TRY(l, r)                                                                              \
    do {                                                                                           \
        if ((l) != NONE && (r) != NONE) {                                                          \
            int32_t id_ = vocab_find(t, x + pos[l], (size_t)len[l] + len[r]);                      \
            if (id_ >= 0)                                                                          \
                spm_push(                                                                          \
                    heap, &hn,                                                                     \
                    (struct spm_item){t->spm_scores[id_], (l), (r), (size_t)len[l] + len[r]});     \
        }                                                                                          \
    } while (0)
    for (uint32_t i = 1; !rc && i < ns; i++) SPM_TRY(i - 1, i);
    while (!rc && hn) {
        struct spm_item it = spm_pop(heap, &hn);
        const uint32_t l = it.left, r = it.right;
        /* stale: a side merged away, or grown since (llama.cpp's test) */
        if (!len[l] || !len[r] || (size_t)len[l] + len[r] != it.size) continue;
        len[l] += len[r];
        len[r] = 0;
        next[l] = next[r];
        if (next[r] != NONE) prev[next[r]] = l;
        SPM_TRY(prev[l], l);
        SPM_TRY(l, next[l]);
    }
#undef SPM_TRY
    for (uint32_t i = 0; !rc && ns && i != NONE; i = next[i]) {
        int32_t id = vocab_find(t, x + pos[i], len[i]);
        if (id >= 0) {
            emit(en, id);
            continue;
        }
        for (uint32_t k = 0; !rc && k < len[i]; k++) { /* byte fallback */
            const uint8_t c = x[pos[i] + k];
            const int32_t bt = t->spm_byte[c] >= 0 ? t->spm_byte[c] : t->byte_id[c];
            if (bt < 0)
                rc = tok_fail(-EINVAL,
                              "byte 0x%02x of the text has neither a <0x%02X> token nor a "
                              "one-byte piece in the vocabulary",
                              c, c);
            else
                emit(en, bt);
        }
    }
    free(x), free(pos), free(len), free(prev), free(next), free(heap);
    return rc;
}

/* One raw text fragment s[b..e) (no special token in it) as a tokenizer.json BPE model over
 * SentencePiece pieces (Gemma's, Llama 2's and Mistral's, byte_fallback) encodes it: a space
 * first when @p space (the normalizer's Prepend("▁"), Metaspace's prepend), each space the
 * pieces' U+2581 (held as a space here, so an U+2581 in the text is one too), no further split;
 * the symbols are its UTF-8 characters, a character that is no piece its bytes' "<0xNN>" tokens
 * (byte fallback, before merging, as Hugging Face's BPE does); then the adjacent pair of the
 * lowest merge rank is merged first (leftmost on ties), as in bpe_piece. */
static int spm_bpe_fragment(struct encoder *en, const uint8_t *s, size_t b, size_t e, int space) {
    const vt_tok *t = en->t;
    size_t n = 0, cap = e - b + 1;
    uint8_t *x = malloc(cap);
    int rc = x ? reserve_scratch(en, cap) : -ENOMEM;
    if (!rc) n = spm_text(s, b, e, space, x);
    size_t ns = 0;
    for (size_t o = 0; !rc && o < n;) {
        const size_t l = lead_len(x[o], n - o);
        int32_t id = vocab_find(t, x + o, l);
        if (id >= 0 && !t->special[id]) {
            en->sym_id[ns++] = id;
        } else {
            for (size_t k = 0; !rc && k < l; k++) { /* byte fallback */
                const uint8_t c = x[o + k];
                if (t->spm_byte[c] < 0)
                    rc = tok_fail(-EINVAL,
                                  "byte 0x%02x of the text has no <0x%02X> token in the "
                                  "vocabulary (byte fallback)",
                                  c, c);
                else
                    en->sym_id[ns++] = t->spm_byte[c];
            }
        }
        o += l;
    }
    for (size_t i = 0; !rc && i < ns; i++) {
        en->prev[i] = i == 0 ? NONE : (uint32_t)(i - 1);
        en->next[i] = i + 1 == ns ? NONE : (uint32_t)(i + 1);
    }
    if (!rc && ns) rc = bpe_run(en, ns);
    free(x);
    return rc;
}

/* Whether the spm_bpe fragment at s[frag..] gets a space in front: always (the normalizer's
 * Prepend), or, as Metaspace prepends, where it does not start with a space or U+2581, at the
 * text's start only ("first") or at every fragment ("always"). */
static int spm_bpe_space(const vt_tok *t, const uint8_t *s, size_t frag, size_t e) {
    const int starts_space = s[frag] == ' ' || is_u2581(s, frag, e);
    return t->spm_space == 1 || (t->spm_space == 2 && !frag && !starts_space) ||
           (t->spm_space == 3 && !starts_space);
}

/* The text s[b..e) between special tokens (or the text's ends), by the tokenizer's kind:
 * byte-level BPE (split by the pre-tokenizer), SentencePiece by score (llama.cpp: a space in
 * front with add_space_prefix, every fragment starting the text or following a special token)
 * or by merge rank (tokenizer.json); the two SentencePiece kinds encode no empty fragment. */
static int encode_segment(struct encoder *en, const uint8_t *s, size_t b, size_t e) {
    const vt_tok *t = en->t;
    if (!t->spm) return encode_fragment(en, s, b, e);
    if (b >= e) return 0;
    return t->spm_bpe ? spm_bpe_fragment(en, s, b, e, spm_bpe_space(t, s, b, e))
                      : spm_fragment(en, s, b, e, t->spm_space);
}

/* Longest special token at s[i..n), or -1. */
static int32_t match_special(const vt_tok *t, const uint8_t *s, size_t i, size_t n) {
    if (!t->special_first[s[i]]) return -1;
    for (uint32_t k = 0; k < t->n_specials; k++) {
        int32_t id = t->specials[k];
        size_t len = t->off[id + 1] - t->off[id];
        if (len <= n - i && memcmp(s + i, t->arena + t->off[id], len) == 0) return id;
    }
    return -1;
}

int vt_tok_encode(const vt_tok *tok, const char *text, int32_t *ids, uint32_t cap,
                  uint32_t *n_out) {
    tok_err[0] = 0;
    if (!tok || !text || !n_out || (!ids && cap)) return -EINVAL;
    *n_out = 0;
    if (tok->spm && !tok->spm_scores && !tok->spm_bpe)
        return tok_fail(-ENOTSUP, "a SentencePiece vocabulary without piece scores cannot encode");
    if (!tok->spm && tok->pre == VT_TOK_PRE_UNSUPPORTED) return -ENOTSUP;
    const uint8_t *s = (const uint8_t *)text;
    size_t n = strlen(text);
    struct encoder en = {.t = tok, .text = s, .ids = ids, .cap = cap};
    int rc = 0;

    size_t frag = 0;
    for (size_t i = 0; i < n && rc == 0;) {
        int32_t sp = tok->n_specials ? match_special(tok, s, i, n) : -1;
        if (sp < 0) {
            i++;
            continue;
        }
        rc = encode_segment(&en, s, frag, i);
        emit(&en, sp);
        i += tok->off[sp + 1] - tok->off[sp];
        frag = i;
    }
    if (rc == 0) rc = encode_segment(&en, s, frag, n);

    free(en.sym_id);
    free(en.next);
    free(en.prev);
    free(en.heap);
    if (rc) return rc;
    if (en.n > UINT32_MAX) return -ENOSPC;
    *n_out = (uint32_t)en.n;
    return en.n > cap ? -ENOSPC : 0;
}

int vt_tok_set_spm_scores(vt_tok *tok, const float *scores, int add_space_prefix) {
    if (!tok || !tok->spm || !scores) return -EINVAL;
    float *c = malloc((size_t)tok->n_tokens * sizeof *c);
    if (!c) return -ENOMEM;
    memcpy(c, scores, (size_t)tok->n_tokens * sizeof *c);
    free(tok->spm_scores);
    tok->spm_scores = c;
    tok->spm_space = add_space_prefix != 0;
    return 0;
}

int vt_tok_set_pre(vt_tok *tok, enum vt_tok_pre pre) {
    if (!tok ||
        (pre != VT_TOK_PRE_DIGITS_GPT2 && pre != VT_TOK_PRE_GPT2 && pre != VT_TOK_PRE_UNSUPPORTED &&
         pre != VT_TOK_PRE_LLAMA3 && pre != VT_TOK_PRE_QWEN2))
        return -EINVAL;
    tok->pre = pre;
    return 0;
}

int vt_tok_set_ignore_merges(vt_tok *tok, int on) {
    if (!tok) return -EINVAL;
    tok->ignore_merges = on != 0;
    return 0;
}

int vt_tok_set_bos(vt_tok *tok, int32_t id) {
    if (!tok || id < -1 || (id >= 0 && (uint32_t)id >= tok->n_tokens)) return -EINVAL;
    tok->bos = id;
    return 0;
}

int32_t vt_tok_bos(const vt_tok *tok) {
    return tok ? tok->bos : -1;
}

enum vt_tok_pre vt_tok_pre_from_gguf(const char *name) {
    /* llama.cpp's names for each split (llama-vocab.cpp) */
    static const struct {
        const char *name;
        enum vt_tok_pre pre;
    } names[] = {
        {"smollm", VT_TOK_PRE_DIGITS_GPT2}, {"starcoder", VT_TOK_PRE_DIGITS_GPT2},
        {"refact", VT_TOK_PRE_DIGITS_GPT2}, {"codeshell", VT_TOK_PRE_DIGITS_GPT2},
        {"gpt-2", VT_TOK_PRE_GPT2},         {"llama3", VT_TOK_PRE_LLAMA3},
        {"llama-v3", VT_TOK_PRE_LLAMA3},    {"llama-bpe", VT_TOK_PRE_LLAMA3},
        {"qwen2", VT_TOK_PRE_QWEN2},        {"deepseek-r1-qwen", VT_TOK_PRE_QWEN2},
        {"megrez", VT_TOK_PRE_QWEN2},
    };
    if (!name) return VT_TOK_PRE_UNSUPPORTED;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i].name)) return names[i].pre;
    return VT_TOK_PRE_UNSUPPORTED;
}

/* ------------------------------------------------------------------ decode */

int vt_tok_decode(const vt_tok *tok, int32_t id, char *buf, size_t cap, size_t *len_out) {
    if (!tok || !len_out || id < 0 || (uint32_t)id >= tok->n_tokens || (!buf && cap))
        return -EINVAL;
    size_t len = tok->silent[id] ? 0 : tok->off[id + 1] - tok->off[id];
    *len_out = len;
    if (cap < len) return -ENOSPC;
    if (len) memcpy(buf, tok->arena + tok->off[id], len);
    if (cap > len) buf[len] = '\0';
    return 0;
}

int vt_tok_lookup(const vt_tok *tok, const char *piece, int32_t *id) {
    if (!tok || !piece || !id) return -EINVAL;
    int32_t r = vocab_find(tok, (const uint8_t *)piece, strlen(piece));
    if (r < 0) return -ENOENT;
    *id = r;
    return 0;
}

int vt_tok_find_special(const vt_tok *tok, const char *piece, int32_t *id) {
    if (!tok || !piece || !id) return -EINVAL;
    size_t n = strlen(piece);
    for (uint32_t k = 0; k < tok->n_specials; k++) {
        int32_t t = tok->specials[k];
        if (tok->off[t + 1] - tok->off[t] == n && !memcmp(tok->arena + tok->off[t], piece, n)) {
            *id = t;
            return 0;
        }
    }
    return -ENOENT;
}

/* llama.cpp's end-of-generation tokens by text (llama-vocab.cpp, load: special_eog_ids). Its
 * end-of-turn (special_eot_id) and end-of-message names, looked for first, are all in this list,
 * so they add nothing to the set. */
static const char *const eog_names[] = {
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<\xef\xbd\x9c"
    "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", /* DeepSeek's, full-width | and U+2581 */
    "[e~["};
/* Its FIM pad, repository and file-separator tokens end generation too: one of each, the first
 * name of its row found (llama.cpp takes whichever its hash map meets first). */
static const char *const eog_fim_names[3][5] = {
    {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"},
    {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"},
    {"<|file_sep|>"}};

_Static_assert(sizeof eog_names / sizeof eog_names[0] + 3 == VT_TOK_MAX_EOG,
               "VT_TOK_MAX_EOG: one id per name and per FIM kind");

/* The token whose bytes are @p name, of any type, the last of equals (llama.cpp's token_to_id
 * keeps the last id of a text), else -1. */
static int32_t find_named(const vt_tok *tok, const char *name) {
    size_t n = strlen(name);
    for (uint32_t t = tok->n_tokens; t-- > 0;)
        if (tok->off[t + 1] - tok->off[t] == n && tok->arena[tok->off[t]] == (uint8_t)name[0] &&
            !memcmp(tok->arena + tok->off[t], name, n))
            return (int32_t)t;
    return -1;
}

static int cmp_id(const void *pa, const void *pb) {
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    return (a > b) - (a < b);
}

/* The place of @p name in eog_names[]. */
static size_t eog_at(const char *name) {
    size_t i = 0;
    while (strcmp(eog_names[i], name)) i++;
    return i;
}

int vt_tok_find_eog(const vt_tok *tok, int32_t ids[VT_TOK_MAX_EOG], uint32_t *n_out) {
    if (!tok || !ids || !n_out) return -EINVAL;
    enum { N_NAMES = sizeof eog_names / sizeof eog_names[0] };
    int32_t by_name[N_NAMES];
    for (size_t i = 0; i < N_NAMES; i++) by_name[i] = find_named(tok, eog_names[i]);
    /* llama.cpp's workarounds: gpt-oss's (o200k_harmony) and Solar Open's <|end|> ends a message,
     * not the generation; Gemma 4's and PaddleOCR's </s> is no end */
    int has_call = by_name[eog_at("<|call|>")] >= 0 || by_name[eog_at("<|calls|>")] >= 0;
    if (has_call && (by_name[eog_at("<|return|>")] >= 0 || by_name[eog_at("<|flush|>")] >= 0))
        by_name[eog_at("<|end|>")] = -1;
    if (by_name[eog_at("<|tool_response>")] >= 0) by_name[eog_at("</s>")] = -1;
    uint32_t n = 0;
    for (size_t i = 0; i < N_NAMES; i++)
        if (by_name[i] >= 0) ids[n++] = by_name[i];
    for (int f = 0; f < 3; f++)
        for (int j = 0; j < 5 && eog_fim_names[f][j]; j++) {
            int32_t id = find_named(tok, eog_fim_names[f][j]);
            if (id >= 0) {
                ids[n++] = id;
                break;
            }
        }
    qsort(ids, n, sizeof *ids, cmp_id);
    *n_out = n;
    return 0;
}

uint32_t vt_tok_n_tokens(const vt_tok *tok) {
    return tok ? tok->n_tokens : 0;
}
