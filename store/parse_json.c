/* A small bounded JSON reader (DOM of index-linked nodes) for safetensors headers, multi-file
 * index files and config.json. It never trusts its input: depth, sizes and encodings are
 * checked, and errors name the source and the byte offset. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

#define JSON_MAX_DEPTH 64

typedef struct jp {
    const char *s;
    size_t len, pos;
    const char *what;
    vt_json *j;
} jp;

static int jerr(jp *p, const char *msg) {
    return vt_fail(VT_EFORMAT, "%s: invalid JSON at byte %zu: %s", p->what, p->pos, msg);
}

static void skip_ws(jp *p) {
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static int new_node(jp *p, uint32_t type, uint32_t *out) {
    vt_json *j = p->j;
    if (j->n == j->cap) {
        if (j->cap >= UINT32_MAX / 2) return jerr(p, "too many values");
        uint32_t cap = j->cap ? j->cap * 2 : 64;
        vt_json_node *nn = vt_realloc(j->nodes, (size_t)cap * sizeof *nn);
        if (!nn) return vt_fail(-ENOMEM, "%s: out of memory parsing JSON", p->what);
        j->nodes = nn;
        j->cap = cap;
    }
    memset(&j->nodes[j->n], 0, sizeof j->nodes[0]);
    j->nodes[j->n].type = type;
    *out = j->n++;
    return 0;
}

static void arena_put(vt_json *j, const char *b, size_t n) {
    memcpy(j->arena + j->arena_len, b, n);
    j->arena_len += n;
}

static int hex4(jp *p, uint32_t *out) {
    if (p->len - p->pos < 4) return jerr(p, "truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos++];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return jerr(p, "bad hex digit in \\u escape");
    }
    *out = v;
    return 0;
}

/* Decode a string starting at the opening quote into the arena; writes its offset and length.
 * The arena has room: a decoded string is never longer than its quoted source text. */
static int parse_string(jp *p, uint32_t *off, uint32_t *slen) {
    vt_json *j = p->j;
    p->pos++; /* opening quote */
    size_t start = j->arena_len;
    for (;;) {
        if (p->pos >= p->len) return jerr(p, "unterminated string");
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20) return jerr(p, "control character in string");
        if (c != '\\') {
            /* copy a run of plain bytes (no NUL possible). It must be UTF-8 on its own: the
             * bytes that end a run are ASCII, which never occur inside a UTF-8 sequence. */
            size_t r = p->pos;
            while (r < p->len && p->s[r] != '"' && p->s[r] != '\\' &&
                   (unsigned char)p->s[r] >= 0x20)
                r++;
            size_t ok = vt_utf8_valid_len(p->s + p->pos, r - p->pos);
            if (ok < r - p->pos) {
                p->pos += ok;
                char m[64];
                snprintf(m, sizeof m, "string is not valid UTF-8 (byte 0x%02x)",
                         (unsigned char)p->s[p->pos]);
                return jerr(p, m);
            }
            arena_put(j, p->s + p->pos, r - p->pos);
            p->pos = r;
            continue;
        }
        p->pos++;
        if (p->pos >= p->len) return jerr(p, "unterminated escape");
        char e = p->s[p->pos++];
        char out;
        switch (e) {
        case '"':
            out = '"';
            break;
        case '\\':
            out = '\\';
            break;
        case '/':
            out = '/';
            break;
        case 'b':
            out = '\b';
            break;
        case 'f':
            out = '\f';
            break;
        case 'n':
            out = '\n';
            break;
        case 'r':
            out = '\r';
            break;
        case 't':
            out = '\t';
            break;
        case 'u': {
            uint32_t cp;
            int rc = hex4(p, &cp);
            if (rc) return rc;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
                    return jerr(p, "unpaired surrogate");
                p->pos += 2;
                if ((rc = hex4(p, &lo))) return rc;
                if (lo < 0xDC00 || lo > 0xDFFF) return jerr(p, "bad low surrogate");
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return jerr(p, "unpaired low surrogate");
            }
            if (cp == 0) return jerr(p, "\\u0000 in string");
            char u[4];
            size_t n;
            if (cp < 0x80) {
                u[0] = (char)cp;
                n = 1;
            } else if (cp < 0x800) {
                u[0] = (char)(0xC0 | (cp >> 6));
                u[1] = (char)(0x80 | (cp & 0x3F));
                n = 2;
            } else if (cp < 0x10000) {
                u[0] = (char)(0xE0 | (cp >> 12));
                u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                u[2] = (char)(0x80 | (cp & 0x3F));
                n = 3;
            } else {
                u[0] = (char)(0xF0 | (cp >> 18));
                u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
                u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
                u[3] = (char)(0x80 | (cp & 0x3F));
                n = 4;
            }
            arena_put(j, u, n);
            continue;
        }
        default:
            return jerr(p, "bad escape");
        }
        arena_put(j, &out, 1);
    }
    size_t n = j->arena_len - start;
    if (n > UINT32_MAX - 1) return jerr(p, "string too long");
    j->arena[j->arena_len++] = '\0';
    *off = (uint32_t)start;
    *slen = (uint32_t)n;
    return 0;
}

static int parse_number(jp *p, uint32_t node) {
    size_t start = p->pos;
    if (p->pos < p->len && p->s[p->pos] == '-') p->pos++;
    size_t d0 = p->pos;
    while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
    if (p->pos == d0) return jerr(p, "bad number");
    if (p->s[d0] == '0' && p->pos - d0 > 1) return jerr(p, "leading zero in number");
    if (p->pos < p->len && p->s[p->pos] == '.') {
        p->pos++;
        size_t f0 = p->pos;
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
        if (p->pos == f0) return jerr(p, "bad fraction");
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-')) p->pos++;
        size_t e0 = p->pos;
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
        if (p->pos == e0) return jerr(p, "bad exponent");
    }
    vt_json *j = p->j;
    size_t n = p->pos - start;
    j->nodes[node].str = (uint32_t)j->arena_len;
    j->nodes[node].len = (uint32_t)n;
    arena_put(j, p->s + start, n);
    j->arena[j->arena_len++] = '\0';
    return 0;
}

static int parse_value(jp *p, int depth, uint32_t *out);

static int parse_container(jp *p, int depth, uint32_t node, int is_obj) {
    char close = is_obj ? '}' : ']';
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        return 0;
    }
    uint32_t last = 0;
    for (;;) {
        uint32_t key = 0, klen = 0;
        skip_ws(p);
        if (is_obj) {
            if (p->pos >= p->len || p->s[p->pos] != '"') return jerr(p, "expected member name");
            int rc = parse_string(p, &key, &klen);
            if (rc) return rc;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') return jerr(p, "expected ':'");
            p->pos++;
        }
        uint32_t child;
        int rc = parse_value(p, depth + 1, &child);
        if (rc) return rc;
        vt_json_node *nodes = p->j->nodes; /* may have moved */
        nodes[child].key = key;
        if (last)
            nodes[last].next = child;
        else
            nodes[node].child = child;
        nodes[node].count++;
        last = child;
        skip_ws(p);
        if (p->pos >= p->len) return jerr(p, is_obj ? "unterminated object" : "unterminated array");
        char c = p->s[p->pos++];
        if (c == close) return 0;
        if (c != ',') return jerr(p, is_obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int lit(jp *p, const char *w) {
    size_t n = strlen(w);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, w, n)) return jerr(p, "unexpected token");
    p->pos += n;
    return 0;
}

static int parse_value(jp *p, int depth, uint32_t *out) {
    if (depth > JSON_MAX_DEPTH) return jerr(p, "nesting deeper than 64");
    skip_ws(p);
    if (p->pos >= p->len) return jerr(p, "unexpected end");
    char c = p->s[p->pos];
    int rc;
    uint32_t node;
    switch (c) {
    case '{':
    case '[':
        if ((rc = new_node(p, c == '{' ? VT_JSON_OBJECT : VT_JSON_ARRAY, &node))) return rc;
        rc = parse_container(p, depth, node, c == '{');
        break;
    case '"':
        if ((rc = new_node(p, VT_JSON_STRING, &node))) return rc;
        {
            uint32_t off, n;
            rc = parse_string(p, &off, &n);
            p->j->nodes[node].str = off;
            p->j->nodes[node].len = n;
        }
        break;
    case 't':
        if ((rc = new_node(p, VT_JSON_TRUE, &node))) return rc;
        rc = lit(p, "true");
        break;
    case 'f':
        if ((rc = new_node(p, VT_JSON_FALSE, &node))) return rc;
        rc = lit(p, "false");
        break;
    case 'n':
        if ((rc = new_node(p, VT_JSON_NULL, &node))) return rc;
        rc = lit(p, "null");
        break;
    default:
        if (c != '-' && (c < '0' || c > '9')) return jerr(p, "unexpected character");
        if ((rc = new_node(p, VT_JSON_NUMBER, &node))) return rc;
        rc = parse_number(p, node);
    }
    *out = node;
    return rc;
}

int vt_json_parse(const char *text, size_t len, const char *what, vt_json *out) {
    memset(out, 0, sizeof *out);
    if (len > VT_PARSE_MAX_HEADER)
        return vt_fail(VT_EFORMAT, "%s: JSON of %zu bytes exceeds the %llu-byte cap", what, len,
                       (unsigned long long)VT_PARSE_MAX_HEADER);
    out->arena_cap = len + 1;
    out->arena = vt_malloc(out->arena_cap);
    if (!out->arena) return vt_fail(-ENOMEM, "%s: out of memory parsing JSON", what);
    jp p = {text, len, 0, what, out};
    uint32_t root;
    int rc = parse_value(&p, 0, &root);
    if (!rc) {
        skip_ws(&p);
        if (p.pos != len) rc = jerr(&p, "trailing characters after the value");
    }
    if (rc) vt_json_free(out);
    return rc;
}

void vt_json_free(vt_json *j) {
    if (!j) return;
    vt_free(j->nodes);
    vt_free(j->arena);
    memset(j, 0, sizeof *j);
}

uint32_t vt_json_get(const vt_json *j, uint32_t obj, const char *key) {
    if (obj >= j->n || j->nodes[obj].type != VT_JSON_OBJECT) return 0;
    for (uint32_t c = j->nodes[obj].child; c; c = j->nodes[c].next)
        if (!strcmp(j->arena + j->nodes[c].key, key)) return c;
    return 0;
}

int vt_json_u64(const vt_json *j, uint32_t node, uint64_t *out) {
    if (node >= j->n || j->nodes[node].type != VT_JSON_NUMBER) return -EINVAL;
    const char *s = j->arena + j->nodes[node].str;
    uint64_t v = 0;
    if (!*s) return -EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -EINVAL;
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) return -ERANGE;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int vt_json_f64(const vt_json *j, uint32_t node, double *out) {
    if (node >= j->n || j->nodes[node].type != VT_JSON_NUMBER) return -EINVAL;
    *out = strtod(j->arena + j->nodes[node].str, NULL);
    return 0;
}
