/* The --where filter: a small recursive-descent parser into a node array, and its evaluator. */
#include <ctype.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "filter.h"

enum { N_OR, N_AND, N_NOT, N_CMP };
enum { F_NAME, F_FORMAT, F_DTYPE, F_SHAPE, F_ROWS, F_COLS, F_BYTES, F_SQNR, F_LAYER };
enum { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_GLOB };

typedef struct node {
    int kind, a, b; /* children (indices) */
    int field, op;
    double num;
    char *str;
} node;

struct vt_filter {
    node *n;
    int count, cap, root;
};

typedef struct ps {
    const char *s;
    size_t pos;
    vt_filter *f;
    char *err;
    size_t errcap;
    int depth;
} ps;

static const char *fields[] = {"name", "format", "dtype", "shape", "rows",
                               "cols", "bytes",  "sqnr",  "layer"};

static int fail(ps *p, const char *msg) {
    snprintf(p->err, p->errcap, "%s at position %zu of the filter", msg, p->pos + 1);
    return -1;
}

static void ws(ps *p) {
    while (isspace((unsigned char)p->s[p->pos])) p->pos++;
}

/* Most nodes of a filter. eval recurses once per && / || of a chain, so a chain of tens of
 * thousands of terms (a 128 KiB argument holds 16000 "rows>0&&") overflowed the stack. */
#define VT_FILTER_MAX_NODES 4096

static int add(ps *p, node nd) {
    if (p->f->count == VT_FILTER_MAX_NODES) {
        free(nd.str);
        return fail(p, "filter too long (at most 4096 comparisons and operators)");
    }
    if (p->f->count == p->f->cap) {
        int cap = p->f->cap ? p->f->cap * 2 : 16;
        node *v = realloc(p->f->n, (size_t)cap * sizeof *v);
        if (!v) {
            free(nd.str);
            return fail(p, "out of memory");
        }
        p->f->n = v;
        p->f->cap = cap;
    }
    p->f->n[p->f->count] = nd;
    return p->f->count++;
}

static int parse_or(ps *p);

static int parse_cmp(ps *p) {
    ws(p);
    size_t b = p->pos;
    while (isalpha((unsigned char)p->s[p->pos])) p->pos++;
    int field = -1;
    for (int i = 0; i < 9; i++)
        if (p->pos - b == strlen(fields[i]) && !strncmp(p->s + b, fields[i], p->pos - b)) field = i;
    if (field < 0) {
        p->pos = b;
        return fail(p, "expected a field (name format dtype shape rows cols bytes sqnr layer)");
    }
    ws(p);
    static const struct {
        const char *t;
        int op;
    } ops[] = {{"==", OP_EQ}, {"!=", OP_NE}, {"<=", OP_LE},  {">=", OP_GE},
               {"<", OP_LT},  {">", OP_GT},  {"~", OP_GLOB}, {"=", OP_EQ}};
    int op = -1;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (!strncmp(p->s + p->pos, ops[i].t, strlen(ops[i].t))) {
            op = ops[i].op;
            p->pos += strlen(ops[i].t);
            break;
        }
    if (op < 0) return fail(p, "expected an operator (== != < <= > >= ~)");
    ws(p);
    char buf[512];
    size_t n = 0;
    char q = p->s[p->pos];
    if (q == '\'' || q == '"') {
        p->pos++;
        while (p->s[p->pos] && p->s[p->pos] != q && n + 1 < sizeof buf) buf[n++] = p->s[p->pos++];
        if (p->s[p->pos] && p->s[p->pos] != q) return fail(p, "value longer than 511 bytes");
        if (p->s[p->pos] != q) return fail(p, "unterminated string");
        p->pos++;
    } else {
        while (p->s[p->pos] && !isspace((unsigned char)p->s[p->pos]) &&
               !strchr("()&|!", p->s[p->pos]) && n + 1 < sizeof buf)
            buf[n++] = p->s[p->pos++];
        if (p->s[p->pos] && !isspace((unsigned char)p->s[p->pos]) && !strchr("()&|!", p->s[p->pos]))
            return fail(p, "value longer than 511 bytes");
    }
    buf[n] = 0;
    if (!n) return fail(p, "expected a value");
    node nd = {N_CMP, -1, -1, field, op, 0, NULL};
    if (field >= F_ROWS) {
        if (op == OP_GLOB) return fail(p, "~ works on name, format, dtype and shape only");
        uint64_t v;
        char *end;
        nd.num = strtod(buf, &end);
        if (*end) {
            if (field == F_BYTES && !vt_cli_parse_bytes(buf, &v))
                nd.num = (double)v;
            else
                return fail(p, "expected a number");
        }
    } else if (!(nd.str = strdup(buf))) {
        return fail(p, "out of memory");
    }
    return add(p, nd);
}

static int parse_unary(ps *p) {
    if (++p->depth > 100) return fail(p, "filter nested too deeply");
    ws(p);
    int r;
    if (p->s[p->pos] == '!' && p->s[p->pos + 1] != '=') {
        p->pos++;
        int a = parse_unary(p);
        r = a < 0 ? -1 : add(p, (node){N_NOT, a, -1, 0, 0, 0, NULL});
    } else if (p->s[p->pos] == '(') {
        p->pos++;
        r = parse_or(p);
        ws(p);
        if (r >= 0 && p->s[p->pos] != ')')
            r = fail(p, "expected ')'");
        else if (r >= 0)
            p->pos++;
    } else {
        r = parse_cmp(p);
    }
    p->depth--;
    return r;
}

static int parse_bin(ps *p, const char *tok, int kind, int (*sub)(ps *)) {
    int a = sub(p);
    while (a >= 0) {
        ws(p);
        if (strncmp(p->s + p->pos, tok, 2)) break;
        p->pos += 2;
        int b = sub(p);
        if (b < 0) return -1;
        a = add(p, (node){kind, a, b, 0, 0, 0, NULL});
    }
    return a;
}

static int parse_and(ps *p) {
    return parse_bin(p, "&&", N_AND, parse_unary);
}
static int parse_or(ps *p) {
    return parse_bin(p, "||", N_OR, parse_and);
}

int vt_filter_parse(const char *expr, vt_filter **out, char *err, size_t errcap) {
    vt_filter *f = calloc(1, sizeof *f);
    if (!f) return -1;
    ps p = {expr, 0, f, err, errcap, 0};
    int root = parse_or(&p);
    ws(&p);
    if (root >= 0 && p.s[p.pos]) root = fail(&p, "unexpected text");
    if (root < 0) {
        vt_filter_free(f);
        return -1;
    }
    f->root = root;
    *out = f;
    return 0;
}

void vt_filter_free(vt_filter *f) {
    if (!f) return;
    for (int i = 0; i < f->count; i++) free(f->n[i].str);
    free(f->n);
    free(f);
}

long vt_filter_layer(const char *name) {
    static const char *pre[] = {"blk.", "layers.", "layer.", "h."};
    for (size_t k = 0; k < sizeof pre / sizeof pre[0]; k++) {
        for (const char *s = strstr(name, pre[k]); s; s = strstr(s + 1, pre[k])) {
            if (s != name && s[-1] != '.') continue;
            const char *d = s + strlen(pre[k]);
            if (!isdigit((unsigned char)*d)) continue;
            char *end;
            long v = strtol(d, &end, 10);
            if (*end == '.' || *end == 0) return v;
        }
    }
    return -1;
}

static int cmp_num(double a, int op, double b) {
    switch (op) {
    case OP_EQ:
        return a == b;
    case OP_NE:
        return a != b;
    case OP_LT:
        return a < b;
    case OP_LE:
        return a <= b;
    case OP_GT:
        return a > b;
    default:
        return a >= b;
    }
}

/* One comparison (N_CMP). Apart from eval so that its buffer is not in every frame of eval's
 * recursion. */
static __attribute__((noinline)) int eval_cmp(const node *n, const vt_tensor_info *ti) {
    char buf[512];
    const char *sv = NULL;
    double nv = 0;
    switch (n->field) {
    case F_NAME:
        sv = ti->name;
        break;
    case F_FORMAT:
        if (ti->format == VT_STORE_FMT_RAW)
            sv = "raw";
        else
            sv = vt_format_name(ti->format, buf, sizeof buf);
        break;
    case F_DTYPE:
        sv = vt_dtype_name(ti->src_dtype);
        break;
    case F_SHAPE: {
        size_t k = 0;
        buf[0] = 0;
        for (uint32_t d = 0; d < ti->ndim && k < sizeof buf - 24; d++)
            k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%llu", d ? "x" : "",
                                  (unsigned long long)ti->dims[d]);
        sv = buf;
        break;
    }
    case F_ROWS:
        nv = (double)ti->rows;
        break;
    case F_COLS:
        nv = (double)ti->cols;
        break;
    case F_BYTES:
        nv = (double)ti->stored_bytes;
        break;
    case F_SQNR:
        nv = ti->metrics.sqnr_db;
        break;
    default: {
        long layer = vt_filter_layer(ti->name);
        /* no layer number (token_embd.weight, output_norm.weight): every comparison on layer is
         * false, != included, so "layer < 2" selects blocks 0 and 1 only */
        if (layer < 0) return 0;
        nv = (double)layer;
    }
    }
    if (!sv) return cmp_num(nv, n->op, n->num);
    if (n->op == OP_GLOB) return fnmatch(n->str, sv, 0) == 0;
    int c = strcmp(sv, n->str);
    return cmp_num(c, n->op, 0);
}

static int eval(const vt_filter *f, int i, const vt_tensor_info *ti) {
    const node *n = &f->n[i];
    switch (n->kind) {
    case N_OR:
        return eval(f, n->a, ti) || eval(f, n->b, ti);
    case N_AND:
        return eval(f, n->a, ti) && eval(f, n->b, ti);
    case N_NOT:
        return !eval(f, n->a, ti);
    default:
        return eval_cmp(n, ti);
    }
}

int vt_filter_eval(const vt_filter *f, const vt_tensor_info *ti) {
    return eval(f, f->root, ti);
}
