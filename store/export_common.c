/* Helpers of the exporters: tensor listing, atomic output files, streaming tensor bytes. */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "export_internal.h"
#include "parse.h" /* vt_utf8_valid_len */

typedef struct list_ctx {
    vt_tensor_info *v;
    uint64_t n, cap;
} list_ctx;

static int list_cb(void *ctx, const vt_tensor_info *ti) {
    list_ctx *c = ctx;
    if (c->n == c->cap) {
        uint64_t cap = c->cap ? c->cap * 2 : 64;
        vt_tensor_info *v = vt_realloc(c->v, cap * sizeof *v);
        if (!v) return vt_fail(-ENOMEM, "out of memory listing tensors");
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n++] = *ti;
    return 0;
}

int exp_list(vt_store *s, const char *pattern, vt_tensor_info **out, uint64_t *n) {
    list_ctx c = {0};
    int rc = vt_store_list(s, pattern, list_cb, &c);
    if (rc) {
        vt_free(c.v);
        return rc;
    }
    *out = c.v;
    *n = c.n;
    return 0;
}

int exp_begin(vt_store *s, const char *path, const vt_export_options *o, vt_dtype def,
              vt_dtype *deq, vt_tensor_info **out, uint64_t *n) {
    *deq = o ? o->dtype : def;
    if (*deq != VT_DTYPE_F32 && *deq != VT_DTYPE_F16 && *deq != VT_DTYPE_BF16)
        return vt_fail(VT_EUNSUPPORTED, "%s: dequantize to f32, f16 or bf16, not %s", path,
                       vt_dtype_name(*deq));
    return exp_list(s, o ? o->pattern : NULL, out, n);
}

int exp_out_write(exp_out *o, const void *p, size_t n, uint64_t off) {
    int rc = vt_pwrite_full(o->fd, p, n, off);
    return rc ? vt_fail(rc, "%s: write failed: %s", o->path, vt_strerror(rc)) : 0;
}

int exp_plain_dtype(const vt_tensor_info *ti, vt_dtype *dt) {
    switch (ti->format) {
    case VT_FMT_F32:
        *dt = VT_DTYPE_F32;
        return 1;
    case VT_FMT_F16:
        *dt = VT_DTYPE_F16;
        return 1;
    case VT_FMT_BF16:
        *dt = VT_DTYPE_BF16;
        return 1;
    case VT_STORE_FMT_RAW:
        *dt = ti->src_dtype;
        return 1;
    default:
        return 0;
    }
}

/* Rows of the largest chunk of @p ti: a record may give rows_per_chunk beyond the tensor's rows
 * (one chunk), and buffers are sized by what a chunk holds. */
static uint64_t chunk_rows(const vt_tensor_info *ti) {
    return ti->rows_per_chunk < ti->rows ? ti->rows_per_chunk : ti->rows;
}

int exp_write_stored(vt_store *s, const vt_tensor_info *ti, int fd, uint64_t off) {
    if (!ti->n_chunks) return 0;
    uint64_t cap = vt_store_format_bytes(ti->format, ti->src_dtype, chunk_rows(ti), ti->cols);
    void *buf = vt_malloc((size_t)cap);
    if (!buf) return vt_fail(-ENOMEM, "tensor '%s': out of memory", ti->name);
    int rc = 0;
    for (uint64_t c = 0; c < ti->n_chunks && !rc; c++) {
        size_t len;
        if ((rc = vt_store_read_chunk(s, ti->name, c, buf, (size_t)cap, &len))) break;
        if ((rc = vt_pwrite_full(fd, buf, len, off)))
            rc = vt_fail(rc, "tensor '%s' chunk %llu: write failed: %s", ti->name,
                         (unsigned long long)c, vt_strerror(rc));
        off += len;
    }
    vt_free(buf);
    return rc;
}

int exp_write_rows(vt_store *s, const vt_tensor_info *ti, vt_dtype dt, uint64_t row0, uint64_t n,
                   int fd, uint64_t off) {
    if (!n || !ti->cols) return 0;
    uint64_t step = ti->rows_per_chunk ? ti->rows_per_chunk : n;
    size_t es = vt_dtype_size(dt);
    size_t cap = (size_t)((step < n ? step : n) * ti->cols * es);
    void *buf = vt_malloc(cap);
    if (!buf) return vt_fail(-ENOMEM, "tensor '%s': out of memory", ti->name);
    int rc = 0;
    for (uint64_t r = row0; r < row0 + n && !rc;) {
        uint64_t end = (r / step + 1) * step; /* stay within one chunk per read */
        if (end > row0 + n) end = row0 + n;
        size_t len = (size_t)((end - r) * ti->cols * es);
        if ((rc = vt_store_read_rows(s, ti->name, r, end - r, dt, buf, cap))) break;
        if ((rc = vt_pwrite_full(fd, buf, len, off)))
            rc = vt_fail(rc, "tensor '%s': write failed: %s", ti->name, vt_strerror(rc));
        off += len;
        r = end;
    }
    vt_free(buf);
    return rc;
}

int exp_write_raw_rows(vt_store *s, const vt_tensor_info *ti, uint64_t row0, uint64_t n, int fd,
                       uint64_t off) {
    if (!n || !ti->cols) return 0;
    uint64_t rpc = ti->rows_per_chunk, rb = ti->cols * vt_dtype_size(ti->src_dtype);
    size_t cap = (size_t)(chunk_rows(ti) * rb);
    void *buf = vt_malloc(cap);
    if (!buf) return vt_fail(-ENOMEM, "tensor '%s': out of memory", ti->name);
    int rc = 0;
    for (uint64_t c = row0 / rpc; c <= (row0 + n - 1) / rpc && !rc; c++) {
        size_t len;
        if ((rc = vt_store_read_chunk(s, ti->name, c, buf, cap, &len))) break;
        uint64_t c0 = c * rpc, c1 = c0 + len / rb;
        uint64_t a = c0 > row0 ? c0 : row0, b = c1 < row0 + n ? c1 : row0 + n;
        if ((rc = vt_pwrite_full(fd, (char *)buf + (a - c0) * rb, (size_t)((b - a) * rb), off)))
            rc = vt_fail(rc, "tensor '%s': write failed: %s", ti->name, vt_strerror(rc));
        off += (b - a) * rb;
    }
    vt_free(buf);
    return rc;
}

void exp_put(exp_buf *b, const void *d, size_t n) {
    if (b->err) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) cap *= 2;
        unsigned char *p = vt_realloc(b->p, cap);
        if (!p) {
            b->err = vt_fail(-ENOMEM, "out of memory building a file header");
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

void exp_le(exp_buf *b, uint64_t v, int bytes) {
    unsigned char t[8];
    for (int i = 0; i < bytes; i++) t[i] = (unsigned char)(v >> (8 * i));
    exp_put(b, t, (size_t)bytes);
}

void exp_printf(exp_buf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= (int)sizeof tmp) {
        if (!b->err) b->err = vt_fail(-EINVAL, "header field too long");
        return;
    }
    exp_put(b, tmp, (size_t)n);
}

void exp_json_str(exp_buf *b, const char *s, size_t n) {
    const size_t ok = vt_utf8_valid_len(s, n);
    if (ok < n) { /* a name or string stored before import checked them */
        if (!b->err)
            b->err = vt_fail(-EILSEQ,
                             "\"%.*s...\" is not valid UTF-8 (byte 0x%02x at offset %zu): a "
                             "safetensors header is JSON and cannot hold it",
                             (int)(ok < 64 ? ok : 64), s, (unsigned char)s[ok], ok);
        return;
    }
    exp_put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            exp_put(b, e, 2);
        } else if (c < 0x20) {
            exp_printf(b, "\\u%04x", c);
        } else {
            exp_put(b, &c, 1);
        }
    }
    exp_put(b, "\"", 1);
}

void exp_buf_free(exp_buf *b) {
    vt_free(b->p);
    memset(b, 0, sizeof *b);
}
