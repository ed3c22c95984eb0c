/* Reading: tensor records, listing, chunk records, verified chunk reads and dequantized rows.
 * Every call runs in its own LMDB read transaction (MDB_NOTLS), so any number of threads and
 * processes may read while one writer commits. */
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "store_internal.h"

static int name_ok(vt_store *s, const char *name) {
    if (!name) return st_fail(s, -EINVAL, "tensor name is NULL");
    size_t l = strlen(name);
    if (l == 0 || l >= VT_MAX_NAME)
        return st_fail(s, -EINVAL, "tensor name of %zu bytes (1..%d allowed)", l, VT_MAX_NAME - 1);
    return 0;
}

int st_tensor_get(vt_store *s, MDB_txn *txn, const char *name, vt_tensor_info *ti,
                  const void **aux) {
    int rc = name_ok(s, name);
    if (rc) return rc;
    MDB_val k = {strlen(name), (void *)name}, d;
    rc = mdb_get(txn, s->db_tensors, &k, &d);
    if (rc == MDB_NOTFOUND)
        return st_fail(s, VT_ENOTFOUND, "store %s: no tensor named %s", s->path, name);
    if (rc)
        return st_fail(s, st_mdb_code(rc), "store %s: looking up tensor %s: %s", s->path, name,
                       mdb_strerror(rc));
    if ((rc = st_tensor_rec_decode(k.mv_data, k.mv_size, d.mv_data, d.mv_size, ti, aux)))
        return st_fail(s, rc, "store %s: %s", s->path, vt_last_error());
    return 0;
}

int vt_store_stat(vt_store *s, const char *name, vt_tensor_info *out) {
    if (!s || !out) return vt_fail(-EINVAL, "vt_store_stat: bad arguments");
    MDB_txn *txn;
    int rc = st_txn_begin(s, 1, &txn);
    if (rc) return rc;
    rc = st_tensor_get(s, txn, name, out, NULL);
    st_txn_abort(s, txn);
    return rc;
}

/* Literal prefix of a glob (the part before the first special character). */
static size_t glob_prefix(const char *p) {
    size_t i = 0;
    while (p[i] && !strchr("*?[\\", p[i])) i++;
    return i;
}

int vt_store_list(vt_store *s, const char *pattern, vt_store_list_fn fn, void *ctx) {
    if (!s || !fn) return vt_fail(-EINVAL, "vt_store_list: bad arguments");
    if (pattern && !*pattern) pattern = NULL;
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = st_txn_begin(s, 1, &txn);
    if (rc) return rc;
    if ((rc = mdb_cursor_open(txn, s->db_tensors, &cur))) {
        st_txn_abort(s, txn);
        return st_fail(s, st_mdb_code(rc), "store %s: %s", s->path, mdb_strerror(rc));
    }
    size_t pl = pattern ? glob_prefix(pattern) : 0;
    MDB_val k = {pl, (void *)pattern}, d;
    int m = mdb_cursor_get(cur, &k, &d, pl ? MDB_SET_RANGE : MDB_FIRST);
    vt_tensor_info ti;
    for (; m == 0; m = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        if (pl && (k.mv_size < pl || memcmp(k.mv_data, pattern, pl))) break;
        if ((rc = st_tensor_rec_decode(k.mv_data, k.mv_size, d.mv_data, d.mv_size, &ti, NULL))) {
            rc = st_fail(s, rc, "store %s: %s", s->path, vt_last_error());
            break;
        }
        if (pattern && fnmatch(pattern, ti.name, 0)) continue;
        if ((rc = fn(ctx, &ti))) break;
    }
    if (!rc && m && m != MDB_NOTFOUND)
        rc = st_fail(s, st_mdb_code(m), "store %s: listing: %s", s->path, mdb_strerror(m));
    mdb_cursor_close(cur);
    st_txn_abort(s, txn);
    return rc;
}

int vt_store_read_aux(vt_store *s, const char *name, void *dst, size_t cap, size_t *len) {
    if (!s || (!dst && cap)) return vt_fail(-EINVAL, "vt_store_read_aux: bad arguments");
    MDB_txn *txn;
    vt_tensor_info ti;
    const void *aux;
    int rc = st_txn_begin(s, 1, &txn);
    if (rc) return rc;
    if (!(rc = st_tensor_get(s, txn, name, &ti, &aux))) {
        if (len) *len = ti.aux_bytes;
        if (!dst && !cap) { /* a size query */
        } else if (cap < ti.aux_bytes) {
            rc = st_fail(s, -ERANGE, "tensor %s: aux is %llu bytes, buffer %zu", name,
                         (unsigned long long)ti.aux_bytes, cap);
        } else if (ti.aux_bytes) {
            memcpy(dst, aux, ti.aux_bytes);
        }
    }
    st_txn_abort(s, txn);
    return rc;
}

void vt_store_tensor_params(const vt_tensor_info *ti, const float *aux, vt_quant_params *p) {
    vt_quant_params_init(p);
    p->tensor_scale = ti->tensor_scale;
    p->channel_scale = aux;
    p->channel_count = aux ? ti->cols : 0;
}

/* ---- chunks ---- */

int st_chunk_get(vt_store *s, MDB_txn *txn, const vt_tensor_info *ti, uint64_t index,
                 vt_chunk_info *ci) {
    if (index >= ti->n_chunks)
        return st_fail(s, VT_ENOTFOUND, "tensor %s has %llu chunks, no chunk %llu", ti->name,
                       (unsigned long long)ti->n_chunks, (unsigned long long)index);
    uint8_t kb[16];
    st_chunk_key(ti->id, index, kb);
    MDB_val k = {16, kb}, d;
    int rc = mdb_get(txn, s->db_chunks, &k, &d);
    if (rc == MDB_NOTFOUND)
        return st_fail(s, VT_ECORRUPT, "tensor %s chunk %llu: missing from the index", ti->name,
                       (unsigned long long)index);
    if (rc)
        return st_fail(s, st_mdb_code(rc), "tensor %s chunk %llu: %s", ti->name,
                       (unsigned long long)index, mdb_strerror(rc));
    if ((rc = st_chunk_rec_decode(kb, 16, d.mv_data, d.mv_size, st_fv(s), ci)))
        return st_fail(s, rc, "tensor %s: %s", ti->name, vt_last_error());
    return st_chunk_check(s, ti, ci);
}

int st_chunk_check(vt_store *s, const vt_tensor_info *ti, const vt_chunk_info *ci) {
    uint64_t index = ci->index;
    if (index >= ti->n_chunks)
        return st_fail(s, VT_ECORRUPT, "tensor %s has %llu chunks, the index has a chunk %llu",
                       ti->name, (unsigned long long)ti->n_chunks, (unsigned long long)index);
    uint64_t row0 = index * ti->rows_per_chunk;
    uint64_t rows = ti->rows - row0 < ti->rows_per_chunk ? ti->rows - row0 : ti->rows_per_chunk;
    uint64_t raw = vt_store_format_bytes(ti->format, ti->src_dtype, rows, ti->cols);
    if (ci->row0 != row0 || ci->rows != rows || ci->raw_len != raw)
        return st_fail(s, VT_ECORRUPT,
                       "tensor %s chunk %llu: record says rows %llu+%llu, %llu bytes; expected "
                       "%llu+%llu, %llu",
                       ti->name, (unsigned long long)index, (unsigned long long)ci->row0,
                       (unsigned long long)ci->rows, (unsigned long long)ci->raw_len,
                       (unsigned long long)row0, (unsigned long long)rows, (unsigned long long)raw);
    return 0;
}

int vt_store_chunk_info(vt_store *s, const char *name, uint64_t index, vt_chunk_info *out) {
    if (!s || !out) return vt_fail(-EINVAL, "vt_store_chunk_info: bad arguments");
    MDB_txn *txn;
    vt_tensor_info ti;
    int rc = st_txn_begin(s, 1, &txn);
    if (rc) return rc;
    if (!(rc = st_tensor_get(s, txn, name, &ti, NULL))) rc = st_chunk_get(s, txn, &ti, index, out);
    st_txn_abort(s, txn);
    return rc;
}

int vt_store_chunks(vt_store *s, const char *name, vt_chunk_info *out, uint64_t cap, uint64_t *n) {
    if (!s || (!out && cap)) return vt_fail(-EINVAL, "vt_store_chunks: bad arguments");
    MDB_txn *txn;
    vt_tensor_info ti;
    int rc = st_txn_begin(s, 1, &txn);
    if (rc) return rc;
    if (!(rc = st_tensor_get(s, txn, name, &ti, NULL))) {
        if (n) *n = ti.n_chunks;
        for (uint64_t i = 0; i < ti.n_chunks && i < cap && !rc; i++)
            rc = st_chunk_get(s, txn, &ti, i, &out[i]);
        if (!rc && cap < ti.n_chunks)
            rc = st_fail(s, -ERANGE, "tensor %s has %llu chunks, room for %llu", name,
                         (unsigned long long)ti.n_chunks, (unsigned long long)cap);
    }
    st_txn_abort(s, txn);
    return rc;
}

static const char *tname(const char *name) {
    return name ? name : "?";
}

int vt_store_chunk_decode(vt_store *s, const vt_chunk_info *ci, const void *stored, void *dst,
                          size_t cap) {
    if (!ci || !stored || !dst) return vt_fail(-EINVAL, "vt_store_chunk_decode: bad arguments");
    if (cap < ci->raw_len)
        return st_fail(s, -ERANGE, "chunk %llu: needs %llu bytes, buffer %zu",
                       (unsigned long long)ci->index, (unsigned long long)ci->raw_len, cap);
    uint64_t h = st_chunk_sum(ci, stored);
    if (h != ci->checksum)
        return st_fail(s, VT_ECORRUPT,
                       "tensor id %llu chunk %llu (shard %u @%llu): checksum mismatch",
                       (unsigned long long)ci->tensor_id, (unsigned long long)ci->index,
                       ci->shard_id, (unsigned long long)ci->offset);
    if (ci->codec == VT_CODEC_ZSTD) {
        int rc = st_decompress(stored, ci->stored_len, dst, ci->raw_len);
        if (rc)
            return st_fail(s, rc, "tensor id %llu chunk %llu (shard %u @%llu): %s",
                           (unsigned long long)ci->tensor_id, (unsigned long long)ci->index,
                           ci->shard_id, (unsigned long long)ci->offset, vt_last_error());
    } else if (ci->codec == VT_CODEC_NONE) {
        if (dst != stored) memcpy(dst, stored, ci->raw_len);
    } else {
        return st_fail(s, VT_ECORRUPT, "chunk %llu: unknown codec %u",
                       (unsigned long long)ci->index, ci->codec);
    }
    return 0;
}

int st_read_stored(vt_store *s, MDB_txn *txn, const char *name, const vt_chunk_info *ci, void *buf,
                   char *where, size_t wcap) {
    st_shard_rec r;
    int rc = st_shard_get(s, txn, ci->shard_id, &r);
    if (rc == VT_ENOTFOUND)
        return st_fail(s, VT_ECORRUPT, "tensor %s chunk %llu: shard %u is not in the index",
                       tname(name), (unsigned long long)ci->index, ci->shard_id);
    if (rc) return rc;
    {
        char dir[4096], sn[32];
        if (st_dir_path(s, r.dir, dir, sizeof dir)) dir[0] = 0;
        st_shard_name(r.id, sn, sizeof sn);
        snprintf(where, wcap, "%s/%s @%llu", dir, sn, (unsigned long long)ci->offset);
    }
    if (ci->offset + ci->padded_len > r.size)
        return st_fail(
            s, VT_ECORRUPT,
            "tensor %s chunk %llu (shard %s): extends past the shard's recorded size %llu",
            tname(name), (unsigned long long)ci->index, where, (unsigned long long)r.size);
    int fd;
    if ((rc = st_shard_fd(s, &r, &fd))) return rc;
    rc = vt_pread_full(fd, buf, ci->stored_len, ci->offset);
    if (rc)
        return st_fail(s, rc == VT_EFORMAT ? VT_ECORRUPT : rc,
                       "tensor %s chunk %llu (shard %s): read failed: %s", tname(name),
                       (unsigned long long)ci->index, where,
                       rc == VT_EFORMAT ? "shard file is truncated" : vt_strerror(rc));
    if (st_chunk_sum(ci, buf) != ci->checksum)
        return st_fail(s, VT_ECORRUPT, "tensor %s chunk %llu (shard %s): checksum mismatch",
                       tname(name), (unsigned long long)ci->index, where);
    return 0;
}

int st_read_chunk_ci(vt_store *s, MDB_txn *txn, const char *name, const vt_chunk_info *ci,
                     void *dst, size_t cap) {
    if (cap < ci->raw_len)
        return st_fail(s, -ERANGE, "tensor %s chunk %llu: needs %llu bytes, buffer %zu",
                       tname(name), (unsigned long long)ci->index, (unsigned long long)ci->raw_len,
                       cap);
    void *buf = dst;
    if (ci->codec != VT_CODEC_NONE) {
        buf = vt_malloc(ci->stored_len);
        if (!buf)
            return st_fail(s, -ENOMEM, "tensor %s chunk %llu: out of memory", tname(name),
                           (unsigned long long)ci->index);
    }
    char where[4200];
    int rc = st_read_stored(s, txn, name, ci, buf, where, sizeof where);
    if (!rc && ci->codec == VT_CODEC_ZSTD) {
        if ((rc = st_decompress(buf, ci->stored_len, dst, ci->raw_len)))
            rc = st_fail(s, rc, "tensor %s chunk %llu (shard %s): %s", tname(name),
                         (unsigned long long)ci->index, where, vt_last_error());
    }
    if (buf != dst) vt_free(buf);
    return rc;
}

/* Run @p fn in a read txn; retry once with a fresh snapshot when a shard file vanished (gc
 * compacted it after our snapshot was taken). */
typedef int (*read_fn)(vt_store *s, MDB_txn *txn, void *ctx);
static int with_read_txn(vt_store *s, read_fn fn, void *ctx) {
    for (int attempt = 0;; attempt++) {
        MDB_txn *txn;
        int rc = st_txn_begin(s, 1, &txn);
        if (rc) return rc;
        rc = fn(s, txn, ctx);
        st_txn_abort(s, txn);
        if (rc == -ENOENT && attempt == 0) continue;
        return rc;
    }
}

typedef struct chunk_ctx {
    const char *name;
    uint64_t index;
    void *dst;
    size_t cap;
    size_t *len;
} chunk_ctx;

static int read_chunk_fn(vt_store *s, MDB_txn *txn, void *p) {
    chunk_ctx *c = p;
    vt_tensor_info ti;
    vt_chunk_info ci;
    int rc = st_tensor_get(s, txn, c->name, &ti, NULL);
    if (!rc) rc = st_chunk_get(s, txn, &ti, c->index, &ci);
    if (!rc && c->len) *c->len = ci.raw_len;
    if (!rc) rc = st_read_chunk_ci(s, txn, ti.name, &ci, c->dst, c->cap);
    return rc;
}

int vt_store_read_chunk(vt_store *s, const char *name, uint64_t index, void *dst, size_t cap,
                        size_t *len) {
    if (!s || !dst) return vt_fail(-EINVAL, "vt_store_read_chunk: bad arguments");
    chunk_ctx c = {name, index, dst, cap, len};
    return with_read_txn(s, read_chunk_fn, &c);
}

static int read_raw_fn(vt_store *s, MDB_txn *txn, void *p) {
    chunk_ctx *c = p;
    vt_tensor_info ti;
    vt_chunk_info ci;
    int rc = st_tensor_get(s, txn, c->name, &ti, NULL);
    if (rc) return rc;
    if (c->cap < ti.raw_bytes)
        return st_fail(s, -ERANGE, "tensor %s: needs %llu bytes, buffer %zu", ti.name,
                       (unsigned long long)ti.raw_bytes, c->cap);
    uint64_t off = 0;
    for (uint64_t i = 0; i < ti.n_chunks; i++) {
        if ((rc = st_chunk_get(s, txn, &ti, i, &ci))) return rc;
        if ((rc = st_read_chunk_ci(s, txn, ti.name, &ci, (char *)c->dst + off, c->cap - off)))
            return rc;
        off += ci.raw_len;
    }
    return 0;
}

int vt_store_read_tensor_raw(vt_store *s, const char *name, void *dst, size_t cap) {
    if (!s || (!dst && cap)) return vt_fail(-EINVAL, "vt_store_read_tensor_raw: bad arguments");
    chunk_ctx c = {name, 0, dst, cap, NULL};
    return with_read_txn(s, read_raw_fn, &c);
}

typedef struct rows_ctx {
    const char *name;
    uint64_t row0, nrows;
    vt_dtype out;
    void *dst;
    size_t cap;
} rows_ctx;

/* Convert @p n f32 values to the output dtype at @p dst; returns the index of the first finite
 * value that became infinite (beyond f16's 65504, or rounding past bf16's largest), or n. */
static size_t put_out(vt_dtype t, const float *src, void *dst, size_t n) {
    if (t == VT_DTYPE_F32) {
        memcpy(dst, src, n * 4);
        return n;
    }
    const uint16_t *h = dst, inf = t == VT_DTYPE_F16 ? 0x7c00 : 0x7f80;
    if (t == VT_DTYPE_F16)
        vt_f32_to_f16_row(src, dst, n);
    else
        vt_f32_to_bf16_row(src, dst, n);
    for (size_t i = 0; i < n; i++)
        if ((h[i] & 0x7fff) == inf && isfinite(src[i])) return i;
    return n;
}

/* A raw f64 tensor read as f32: the index of the first finite double beyond the f32 range (it
 * became infinite), or n. */
static size_t f64_overflow(const void *raw, const float *f, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (isinf(f[i])) {
            double d;
            memcpy(&d, (const char *)raw + 8 * i, 8);
            if (isfinite(d)) return i;
        }
    return n;
}

static int read_rows_fn(vt_store *s, MDB_txn *txn, void *p) {
    rows_ctx *c = p;
    vt_tensor_info ti;
    const void *aux_db;
    int rc = st_tensor_get(s, txn, c->name, &ti, &aux_db);
    if (rc) return rc;
    size_t es = vt_dtype_size(c->out);
    if (c->row0 > ti.rows || c->nrows > ti.rows - c->row0)
        return st_fail(s, -ERANGE, "tensor %s: rows %llu..%llu out of range (it has %llu)", ti.name,
                       (unsigned long long)c->row0, (unsigned long long)(c->row0 + c->nrows),
                       (unsigned long long)ti.rows);
    if (c->nrows == 0 || ti.cols == 0) return 0;
    if (c->cap / es / ti.cols < c->nrows)
        return st_fail(s, -ERANGE, "tensor %s: %llu rows need %llu bytes, buffer %zu", ti.name,
                       (unsigned long long)c->nrows, (unsigned long long)(c->nrows * ti.cols * es),
                       c->cap);
    float *aux = NULL;
    void *raw = NULL;
    float *f = NULL;
    if (ti.aux_bytes) { /* copy: LMDB memory may be unaligned for floats */
        if (!(aux = vt_malloc(ti.aux_bytes))) goto oom;
        memcpy(aux, aux_db, ti.aux_bytes);
    }
    vt_quant_params qp;
    vt_store_tensor_params(&ti, aux, &qp);
    uint64_t rpc = ti.rows_per_chunk;
    uint64_t raw_cap =
        vt_store_format_bytes(ti.format, ti.src_dtype, rpc < ti.rows ? rpc : ti.rows, ti.cols);
    uint64_t f_cap = (rpc < ti.rows ? rpc : ti.rows) * ti.cols;
    if (!(raw = vt_malloc(raw_cap)) || !(f = vt_malloc(f_cap * sizeof(float)))) goto oom;
    uint64_t first = c->row0 / rpc, last = (c->row0 + c->nrows - 1) / rpc;
    for (uint64_t i = first; i <= last && !rc; i++) {
        vt_chunk_info ci;
        if ((rc = st_chunk_get(s, txn, &ti, i, &ci))) break;
        if ((rc = st_read_chunk_ci(s, txn, ti.name, &ci, raw, raw_cap))) break;
        /* A chunk wholly inside the range, wanted as f32, is decoded straight into dst (no
         * second copy through f). */
        int direct =
            c->out == VT_DTYPE_F32 && ci.row0 >= c->row0 && ci.row0 + ci.rows <= c->row0 + c->nrows;
        float *fo = direct ? (float *)((char *)c->dst + (ci.row0 - c->row0) * ti.cols * es) : f;
        /* the chunk's rows [a, b) are wanted: values wa.. wa + wn of the chunk */
        const uint64_t a = ci.row0 > c->row0 ? ci.row0 : c->row0;
        const uint64_t b =
            ci.row0 + ci.rows < c->row0 + c->nrows ? ci.row0 + ci.rows : c->row0 + c->nrows;
        const size_t wa = (a - ci.row0) * ti.cols, wn = (b - a) * ti.cols;
        const int f64 = ti.format == VT_STORE_FMT_RAW && ti.src_dtype == VT_DTYPE_F64;
        if (ti.format == VT_STORE_FMT_RAW)
            rc = vt_convert_to_f32(ti.src_dtype, raw, fo, ci.rows * ti.cols);
        else
            rc = vt_dequantize(ti.format, &qp, raw, ci.rows, ti.cols, fo, 1);
        if (rc) {
            rc = st_fail(s, rc, "tensor %s chunk %llu: cannot dequantize: %s", ti.name,
                         (unsigned long long)i, vt_last_error());
            break;
        }
        /* k: the first wanted value (from wa) that does not fit: a finite f32 beyond c->out
         * (put_out skips infinities), or before it a finite double beyond f32 (now infinite);
         * the hint follows which of the two it is, not its magnitude */
        size_t k = direct
                       ? wn
                       : put_out(c->out, f + wa, (char *)c->dst + (a - c->row0) * ti.cols * es, wn);
        int from_f64 = 0;
        if (f64) {
            size_t k64 = f64_overflow((const char *)raw + 8 * wa, fo + wa, k);
            if (k64 < k) k = k64, from_f64 = 1;
        }
        if (k < wn) {
            const size_t bad = wa + k;
            double v;
            if (f64)
                memcpy(&v, (const char *)raw + 8 * bad, 8);
            else
                v = f[bad];
            /* f16 output: a value rounding past bf16's largest too fits only f32 */
            const int bf16_too =
                c->out == VT_DTYPE_F16 && !from_f64 && (vt_f32_to_bf16(fo[bad]) & 0x7fff) == 0x7f80;
            rc = st_fail(s, -ERANGE,
                         "tensor %s row %llu, column %llu: value %g does not fit %s (it would "
                         "read as infinite; %s)",
                         ti.name, (unsigned long long)(ci.row0 + bad / ti.cols),
                         (unsigned long long)(bad % ti.cols), v, vt_dtype_name(c->out),
                         from_f64 ? "only its raw f64 bytes hold it (vt_store_read_tensor_raw)"
                         : c->out == VT_DTYPE_F16 && !bf16_too ? "read it as bf16 or f32"
                                                               : "read it as f32");
            break;
        }
    }
    vt_free(aux);
    vt_free(raw);
    vt_free(f);
    return rc;
oom:
    vt_free(aux);
    vt_free(raw);
    vt_free(f);
    return st_fail(s, -ENOMEM, "tensor %s: out of memory reading rows", ti.name);
}

int vt_store_read_rows(vt_store *s, const char *name, uint64_t row0, uint64_t nrows,
                       vt_dtype out_dtype, void *dst, size_t cap) {
    if (!s || (!dst && cap)) return vt_fail(-EINVAL, "vt_store_read_rows: bad arguments");
    if (out_dtype != VT_DTYPE_F32 && out_dtype != VT_DTYPE_F16 && out_dtype != VT_DTYPE_BF16)
        return st_fail(s, VT_EUNSUPPORTED,
                       "vt_store_read_rows: output dtype %s not supported (f32, f16, bf16)",
                       vt_dtype_name(out_dtype));
    rows_ctx c = {name, row0, nrows, out_dtype, dst, cap};
    return with_read_txn(s, read_rows_fn, &c);
}

/* ---- user metadata ---- */

static int meta_key(vt_store *s, const char *key, char *buf) {
    size_t l = key ? strlen(key) : 0;
    if (l == 0 || l > 255)
        return st_fail(s, -EINVAL, "metadata key of %zu bytes (1..255 allowed)", l);
    memcpy(buf, ST_USER_PREFIX, 3);
    memcpy(buf + 3, key, l + 1);
    return 0;
}

int vt_store_get_meta(vt_store *s, const char *key, void *dst, size_t cap, size_t *len) {
    if (!s || (!dst && cap)) return vt_fail(-EINVAL, "vt_store_get_meta: bad arguments");
    char kb[260];
    int rc = meta_key(s, key, kb);
    if (rc) return rc;
    MDB_txn *txn;
    if ((rc = st_txn_begin(s, 1, &txn))) return rc;
    MDB_val k = {strlen(kb), kb}, d;
    int m = mdb_get(txn, s->db_meta, &k, &d);
    if (m == MDB_NOTFOUND)
        rc = st_fail(s, VT_ENOTFOUND, "store %s: no metadata key %s", s->path, key);
    else if (m)
        rc = st_fail(s, st_mdb_code(m), "store %s: metadata %s: %s", s->path, key, mdb_strerror(m));
    else {
        if (len) *len = d.mv_size;
        if (!dst && !cap) { /* a size query */
        } else if (cap < d.mv_size) {
            rc = st_fail(s, -ERANGE, "metadata %s is %zu bytes, buffer %zu", key, d.mv_size, cap);
        } else if (d.mv_size) {
            memcpy(dst, d.mv_data, d.mv_size);
        }
    }
    st_txn_abort(s, txn);
    return rc;
}

int vt_store_meta_list(vt_store *s, const char *prefix, vt_store_meta_fn fn, void *ctx) {
    if (!s || !fn) return vt_fail(-EINVAL, "vt_store_meta_list: bad arguments");
    char kb[260];
    size_t pl = prefix ? strlen(prefix) : 0;
    if (pl > 255) return st_fail(s, -EINVAL, "metadata prefix too long");
    memcpy(kb, ST_USER_PREFIX, 3);
    if (pl) memcpy(kb + 3, prefix, pl);
    pl += 3;
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = st_txn_begin(s, 1, &txn);
    if (rc) return rc;
    if ((rc = mdb_cursor_open(txn, s->db_meta, &cur))) {
        st_txn_abort(s, txn);
        return st_fail(s, st_mdb_code(rc), "store %s: %s", s->path, mdb_strerror(rc));
    }
    MDB_val k = {pl, kb}, d;
    char key[260];
    for (int m = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE); m == 0;
         m = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        if (k.mv_size < pl || memcmp(k.mv_data, kb, pl)) break;
        if (k.mv_size - 3 > 255 || memchr(k.mv_data, 0, k.mv_size))
            continue; /* not a key we wrote */
        memcpy(key, (char *)k.mv_data + 3, k.mv_size - 3);
        key[k.mv_size - 3] = 0;
        if ((rc = fn(ctx, key, d.mv_data, d.mv_size))) break;
    }
    mdb_cursor_close(cur);
    st_txn_abort(s, txn);
    return rc;
}
