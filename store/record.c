/* Versioned binary encodings of the index records (docs/FORMAT.md, "LMDB databases"). Every
 * decoder validates every length and field: index content is treated as hostile input. */
#include <errno.h>
#include <string.h>
#include <xxhash.h>

#include "store_internal.h"

static uint64_t f64_bits(double d) {
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}
static double bits_f64(uint64_t u) {
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* ---- tensor records ---- */

size_t st_tensor_rec_size(const vt_tensor_info *ti) {
    return ST_TENSOR_REC_FIXED + 8u * ti->ndim + 2u + strlen(ti->source) + ti->aux_bytes;
}

void st_tensor_rec_encode(const vt_tensor_info *ti, const void *aux, uint8_t *p) {
    uint32_t ts;
    memcpy(&ts, &ti->tensor_scale, 4);
    memset(p, 0, ST_TENSOR_REC_FIXED);
    p[0] = ST_TENSOR_REC_VERSION;
    p[1] = (uint8_t)ti->src_dtype;
    p[2] = (uint8_t)ti->ndim;
    st_put_le32(p + 4, ti->format);
    st_put_le64(p + 8, ti->id);
    st_put_le64(p + 16, ti->rows);
    st_put_le64(p + 24, ti->cols);
    st_put_le64(p + 32, ti->rows_per_chunk);
    st_put_le64(p + 40, ti->n_chunks);
    st_put_le64(p + 48, ti->raw_bytes);
    st_put_le64(p + 56, ti->stored_bytes);
    st_put_le64(p + 64, ti->commit_time);
    st_put_le32(p + 72, ts);
    st_put_le32(p + 76, (uint32_t)ti->aux_bytes);
    st_put_le64(p + 80, f64_bits(ti->metrics.sqnr_db));
    st_put_le64(p + 88, f64_bits(ti->metrics.cosine));
    st_put_le64(p + 96, f64_bits(ti->metrics.max_err));
    uint8_t *q = p + ST_TENSOR_REC_FIXED;
    for (uint32_t i = 0; i < ti->ndim; i++, q += 8) st_put_le64(q, ti->dims[i]);
    size_t sl = strlen(ti->source);
    st_put_le16(q, (uint16_t)sl);
    memcpy(q + 2, ti->source, sl);
    q += 2 + sl;
    if (ti->aux_bytes) memcpy(q, aux, ti->aux_bytes);
}

static int valid_format(uint32_t fmt, vt_dtype dt) {
    if (fmt == VT_STORE_FMT_RAW) return vt_dtype_size(dt) != 0;
    if (fmt & ~(0xffu | VT_FMT_SPARSE24)) return 0;
    if (VT_FMT_BASE(fmt) >= VT_FMT_COUNT) return 0;
    if ((fmt & VT_FMT_SPARSE24) && VT_FMT_BASE(fmt) == VT_FMT_NF4_DQ) return 0;
    return vt_dtype_size(dt) != 0;
}

uint64_t vt_store_format_bytes(uint32_t fmt, vt_dtype dt, uint64_t rows, uint64_t cols) {
    if (!valid_format(fmt, dt)) return 0;
    if (fmt == VT_STORE_FMT_RAW) {
        uint64_t es = vt_dtype_size(dt), n;
        if (__builtin_mul_overflow(rows, cols, &n) || __builtin_mul_overflow(n, es, &n)) return 0;
        return n;
    }
    if (rows == 0 || cols == 0) return 0;
    if (cols > (1ull << 40) || rows > (1ull << 48)) return 0;
    /* vt_quant_bytes is computed in u64; keep its inputs small enough not to overflow */
    long double est = (long double)rows * (long double)cols * 2.5L + (long double)rows * 64;
    if (est > 1.8e19L) return 0;
    return vt_quant_bytes(fmt, rows, cols);
}

static uint64_t row_align(uint32_t fmt, uint64_t cols) {
    if (fmt == VT_STORE_FMT_RAW) return 1;
    return vt_quant_row_align(fmt, cols);
}

int st_tensor_check(vt_tensor_info *ti, int fill) {
    const char *nm = ti->name;
    if (ti->ndim > VT_MAX_DIMS)
        return vt_fail(VT_EFORMAT, "tensor %s: ndim %u > %d", nm, ti->ndim, VT_MAX_DIMS);
    if ((unsigned)ti->src_dtype >= VT_DTYPE_COUNT)
        return vt_fail(VT_EFORMAT, "tensor %s: unknown source dtype %d", nm, (int)ti->src_dtype);
    if (!valid_format(ti->format, ti->src_dtype))
        return vt_fail(VT_EFORMAT, "tensor %s: invalid format 0x%x", nm, ti->format);
    uint64_t rows = 1, cols = 1;
    if (ti->ndim > 0) {
        cols = ti->dims[ti->ndim - 1];
        for (uint32_t i = 0; i + 1 < ti->ndim; i++)
            if (__builtin_mul_overflow(rows, ti->dims[i], &rows))
                return vt_fail(VT_EFORMAT, "tensor %s: shape overflows", nm);
        uint64_t n;
        if (__builtin_mul_overflow(rows, cols, &n))
            return vt_fail(VT_EFORMAT, "tensor %s: shape overflows", nm);
    }
    if (fill) {
        ti->rows = rows;
        ti->cols = cols;
    } else if (ti->rows != rows || ti->cols != cols) {
        return vt_fail(VT_EFORMAT, "tensor %s: rows x cols %llux%llu do not match the shape", nm,
                       (unsigned long long)ti->rows, (unsigned long long)ti->cols);
    }
    if (rows == 0 || cols == 0) {
        if (fill) ti->rows_per_chunk = ti->n_chunks = ti->raw_bytes = 0;
        if (ti->rows_per_chunk || ti->n_chunks || ti->raw_bytes)
            return vt_fail(VT_EFORMAT, "tensor %s: empty tensor with chunks", nm);
        return 0;
    }
    uint64_t al = row_align(ti->format, cols);
    if (al == 0)
        return vt_fail(VT_EFORMAT, "tensor %s: no row alignment for format 0x%x", nm, ti->format);
    if (ti->rows_per_chunk == 0 || ti->rows_per_chunk % al)
        return vt_fail(VT_EFORMAT,
                       "tensor %s: rows_per_chunk %llu is not a positive multiple of %llu", nm,
                       (unsigned long long)ti->rows_per_chunk, (unsigned long long)al);
    uint64_t raw = vt_store_format_bytes(ti->format, ti->src_dtype, rows, cols);
    if (raw == 0) return vt_fail(VT_EFORMAT, "tensor %s: size overflows", nm);
    uint64_t nc = rows / ti->rows_per_chunk + (rows % ti->rows_per_chunk != 0);
    if (fill) {
        ti->n_chunks = nc;
        ti->raw_bytes = raw;
    } else if (ti->n_chunks != nc || ti->raw_bytes != raw) {
        return vt_fail(VT_EFORMAT,
                       "tensor %s: chunk count %llu or raw bytes %llu inconsistent with shape", nm,
                       (unsigned long long)ti->n_chunks, (unsigned long long)ti->raw_bytes);
    }
    if (ti->format != VT_STORE_FMT_RAW && VT_FMT_BASE(ti->format) == VT_FMT_AWQ_INT4) {
        if (ti->aux_bytes != cols * 4)
            return vt_fail(VT_EFORMAT, "tensor %s: awq aux is %llu bytes, expected %llu", nm,
                           (unsigned long long)ti->aux_bytes, (unsigned long long)(cols * 4));
    }
    return 0;
}

int st_tensor_rec_decode(const void *key, size_t klen, const void *val, size_t vlen,
                         vt_tensor_info *ti, const void **aux) {
    const uint8_t *p = val;
    memset(ti, 0, sizeof *ti);
    if (klen == 0 || klen >= VT_MAX_NAME)
        return vt_fail(VT_EFORMAT, "tensor record: name length %zu", klen);
    if (memchr(key, 0, klen)) return vt_fail(VT_EFORMAT, "tensor record: name contains NUL");
    memcpy(ti->name, key, klen);
    ti->name[klen] = 0;
    const char *nm = ti->name;
    if (vlen < ST_TENSOR_REC_FIXED)
        return vt_fail(VT_EFORMAT, "tensor %s: record too short (%zu bytes)", nm, vlen);
    if (p[0] != ST_TENSOR_REC_VERSION)
        return vt_fail(VT_EFORMAT, "tensor %s: record version %u unknown", nm, p[0]);
    ti->src_dtype = (vt_dtype)p[1];
    ti->ndim = p[2];
    if (p[3] != 0) return vt_fail(VT_EFORMAT, "tensor %s: reserved byte set", nm);
    ti->format = st_le32(p + 4);
    ti->id = st_le64(p + 8);
    ti->rows = st_le64(p + 16);
    ti->cols = st_le64(p + 24);
    ti->rows_per_chunk = st_le64(p + 32);
    ti->n_chunks = st_le64(p + 40);
    ti->raw_bytes = st_le64(p + 48);
    ti->stored_bytes = st_le64(p + 56);
    ti->commit_time = st_le64(p + 64);
    uint32_t ts = st_le32(p + 72);
    memcpy(&ti->tensor_scale, &ts, 4);
    ti->aux_bytes = st_le32(p + 76);
    ti->metrics.sqnr_db = bits_f64(st_le64(p + 80));
    ti->metrics.cosine = bits_f64(st_le64(p + 88));
    ti->metrics.max_err = bits_f64(st_le64(p + 96));
    if (ti->id == 0) return vt_fail(VT_EFORMAT, "tensor %s: id 0", nm);
    if (ti->ndim > VT_MAX_DIMS) return vt_fail(VT_EFORMAT, "tensor %s: ndim %u", nm, ti->ndim);
    size_t off = ST_TENSOR_REC_FIXED;
    if (vlen - off < 8u * ti->ndim + 2u)
        return vt_fail(VT_EFORMAT, "tensor %s: record truncated in dims", nm);
    for (uint32_t i = 0; i < ti->ndim; i++, off += 8) ti->dims[i] = st_le64(p + off);
    size_t sl = st_le16(p + off);
    off += 2;
    if (sl >= VT_MAX_NAME || vlen - off < sl)
        return vt_fail(VT_EFORMAT, "tensor %s: bad source length %zu", nm, sl);
    if (memchr(p + off, 0, sl)) return vt_fail(VT_EFORMAT, "tensor %s: source contains NUL", nm);
    memcpy(ti->source, p + off, sl);
    ti->source[sl] = 0;
    off += sl;
    if (vlen - off != ti->aux_bytes)
        return vt_fail(VT_EFORMAT,
                       "tensor %s: aux length %llu does not match record (%zu bytes left)", nm,
                       (unsigned long long)ti->aux_bytes, vlen - off);
    if (aux) *aux = ti->aux_bytes ? p + off : NULL;
    int rc = st_tensor_check(ti, 0);
    if (rc) return rc;
    /* every chunk stores 1..2^40 bytes (st_chunk_rec_decode): a count the stored bytes cannot
     * cover is a damaged record, not a tensor to walk chunk by chunk */
    uint64_t min_chunks = ti->stored_bytes / (1ull << 40) + (ti->stored_bytes % (1ull << 40) != 0);
    if (ti->n_chunks > ti->stored_bytes || ti->n_chunks < min_chunks)
        return vt_fail(VT_EFORMAT, "tensor %s: %llu chunks cannot hold %llu stored bytes", nm,
                       (unsigned long long)ti->n_chunks, (unsigned long long)ti->stored_bytes);
    return 0;
}

/* ---- chunk records ---- */

void st_chunk_key(uint64_t tensor_id, uint64_t index, uint8_t key[16]) {
    st_put_be64(key, tensor_id);
    st_put_be64(key + 8, index);
}

uint64_t st_chunk_seed(uint32_t fv, uint64_t tensor_id, uint64_t index) {
    if (fv < ST_CHUNK_REC_V2) return 0;
    uint8_t key[16];
    st_chunk_key(tensor_id, index, key);
    return (uint64_t)XXH3_64bits(key, sizeof key);
}

void st_chunk_rec_encode(const vt_chunk_info *ci, uint32_t fv, uint8_t p[ST_CHUNK_REC_LEN]) {
    memset(p, 0, ST_CHUNK_REC_LEN);
    p[0] = (uint8_t)(fv < ST_CHUNK_REC_V2 ? ST_CHUNK_REC_V1 : ST_CHUNK_REC_V2);
    p[1] = (uint8_t)ci->codec;
    st_put_le32(p + 4, ci->shard_id);
    st_put_le64(p + 8, ci->offset);
    st_put_le64(p + 16, ci->stored_len);
    st_put_le64(p + 24, ci->raw_len);
    st_put_le64(p + 32, ci->row0);
    st_put_le64(p + 40, ci->rows);
    st_put_le64(p + 48, ci->checksum);
}

int st_chunk_rec_decode(const void *key, size_t klen, const void *val, size_t vlen, uint32_t fv,
                        vt_chunk_info *ci) {
    const uint8_t *p = val;
    memset(ci, 0, sizeof *ci);
    if (klen != 16) return vt_fail(VT_EFORMAT, "chunk record: key length %zu", klen);
    ci->tensor_id = st_be64(key);
    ci->index = st_be64((const uint8_t *)key + 8);
    unsigned long long tid = (unsigned long long)ci->tensor_id, idx = (unsigned long long)ci->index;
    if (vlen != ST_CHUNK_REC_LEN)
        return vt_fail(VT_EFORMAT, "chunk %llu of tensor id %llu: record length %zu", idx, tid,
                       vlen);
    if (p[0] != ST_CHUNK_REC_V1 && p[0] != ST_CHUNK_REC_V2)
        return vt_fail(VT_EFORMAT, "chunk %llu of tensor id %llu: record version %u", idx, tid,
                       p[0]);
    /* the record version is the store's: a format-1 record in a format-2 store would check
     * its bytes without the key binding. (A version-2 record read by a handle that opened the
     * store at version 1 is fine: vt_store_upgrade raised it since.) */
    if (fv && p[0] < (fv < ST_CHUNK_REC_V2 ? ST_CHUNK_REC_V1 : ST_CHUNK_REC_V2))
        return vt_fail(VT_EFORMAT,
                       "chunk %llu of tensor id %llu: record version %u in a store of format "
                       "version %u",
                       idx, tid, p[0], fv);
    ci->checksum_seed = st_chunk_seed(p[0], ci->tensor_id, ci->index);
    ci->codec = p[1];
    ci->shard_id = st_le32(p + 4);
    ci->offset = st_le64(p + 8);
    ci->stored_len = st_le64(p + 16);
    ci->raw_len = st_le64(p + 24);
    ci->row0 = st_le64(p + 32);
    ci->rows = st_le64(p + 40);
    ci->checksum = st_le64(p + 48);
    ci->padded_len = st_round_up(ci->stored_len, ST_ALIGN);
    if (p[2] || p[3])
        return vt_fail(VT_EFORMAT, "chunk %llu of tensor id %llu: reserved bytes set", idx, tid);
    if (ci->codec > VT_CODEC_ZSTD)
        return vt_fail(VT_EFORMAT, "chunk %llu of tensor id %llu: unknown codec %u", idx, tid,
                       ci->codec);
    if (ci->shard_id == 0)
        return vt_fail(VT_EFORMAT, "chunk %llu of tensor id %llu: shard 0", idx, tid);
    if (ci->offset % ST_ALIGN || ci->offset < ST_SHARD_HEADER || ci->offset > (1ull << 56))
        return vt_fail(VT_EFORMAT, "chunk %llu of tensor id %llu: bad offset %llu", idx, tid,
                       (unsigned long long)ci->offset);
    if (ci->stored_len == 0 || ci->stored_len > (1ull << 40) || ci->raw_len == 0 ||
        ci->raw_len > (1ull << 40))
        return vt_fail(VT_EFORMAT, "chunk %llu of tensor id %llu: bad lengths %llu/%llu", idx, tid,
                       (unsigned long long)ci->stored_len, (unsigned long long)ci->raw_len);
    if (ci->codec == VT_CODEC_NONE && ci->stored_len != ci->raw_len)
        return vt_fail(VT_EFORMAT, "chunk %llu of tensor id %llu: uncompressed but lengths differ",
                       idx, tid);
    if (ci->rows == 0 || ci->rows > (1ull << 48) || ci->row0 > (1ull << 48))
        return vt_fail(VT_EFORMAT, "chunk %llu of tensor id %llu: bad row range", idx, tid);
    return 0;
}

/* ---- shard records ---- */

void st_shard_rec_encode(const st_shard_rec *r, uint8_t p[ST_SHARD_REC_LEN]) {
    memset(p, 0, ST_SHARD_REC_LEN);
    p[0] = ST_SHARD_REC_VERSION;
    p[1] = r->flags;
    st_put_le16(p + 2, r->dir);
    st_put_le64(p + 8, r->size);
}

int st_shard_rec_decode(const void *key, size_t klen, const void *val, size_t vlen,
                        st_shard_rec *r) {
    const uint8_t *p = val;
    memset(r, 0, sizeof *r);
    if (klen != 4) return vt_fail(VT_EFORMAT, "shard record: key length %zu", klen);
    r->id = st_be32(key);
    if (vlen != ST_SHARD_REC_LEN)
        return vt_fail(VT_EFORMAT, "shard %u: record length %zu", r->id, vlen);
    if (p[0] != ST_SHARD_REC_VERSION)
        return vt_fail(VT_EFORMAT, "shard %u: record version %u", r->id, p[0]);
    r->flags = p[1];
    r->dir = st_le16(p + 2);
    r->size = st_le64(p + 8);
    if (r->id == 0) return vt_fail(VT_EFORMAT, "shard record with id 0");
    if (st_le32(p + 4) != 0 || (r->flags & ~1u))
        return vt_fail(VT_EFORMAT, "shard %u: reserved bits set", r->id);
    if (r->dir >= VT_STORE_MAX_DIRS)
        return vt_fail(VT_EFORMAT, "shard %u: data dir %u out of range", r->id, r->dir);
    if (r->size < ST_SHARD_HEADER || r->size % ST_ALIGN || r->size > (1ull << 56))
        return vt_fail(VT_EFORMAT, "shard %u: bad size %llu", r->id, (unsigned long long)r->size);
    return 0;
}

/* ---- data directory list ---- */

void st_dirs_free(st_dirs *d) {
    for (uint32_t i = 0; i < d->n; i++) vt_free(d->path[i]);
    memset(d, 0, sizeof *d);
}

int st_dirs_encode(const st_dirs *d, uint8_t **out, size_t *len) {
    size_t n = 5;
    for (uint32_t i = 0; i < d->n; i++) n += 2 + strlen(d->path[i]);
    uint8_t *p = vt_malloc(n);
    if (!p) return vt_fail(-ENOMEM, "out of memory encoding data directories");
    p[0] = ST_DIRS_REC_VERSION;
    st_put_le32(p + 1, d->n);
    size_t off = 5;
    for (uint32_t i = 0; i < d->n; i++) {
        size_t l = strlen(d->path[i]);
        st_put_le16(p + off, (uint16_t)l);
        memcpy(p + off + 2, d->path[i], l);
        off += 2 + l;
    }
    *out = p;
    *len = n;
    return 0;
}

/* An extra data directory must be an absolute, normalised path below "/": no "." or ".."
 * components, no empty components, no NUL. */
int st_dir_path_valid(const char *p, size_t l) {
    if (l < 2 || l > 4000 || p[0] != '/') return 0;
    if (memchr(p, 0, l)) return 0;
    size_t i = 1;
    while (i <= l) {
        size_t j = i;
        while (j < l && p[j] != '/') j++;
        size_t cl = j - i;
        if (cl == 0 && j < l) return 0;
        if ((cl == 1 && p[i] == '.') || (cl == 2 && p[i] == '.' && p[i + 1] == '.')) return 0;
        i = j + 1;
    }
    return p[l - 1] != '/';
}

int st_dirs_decode(const void *val, size_t len, st_dirs *d) {
    const uint8_t *p = val;
    memset(d, 0, sizeof *d);
    if (len < 5 || p[0] != ST_DIRS_REC_VERSION)
        return vt_fail(VT_EFORMAT, "data directory list: bad header");
    uint32_t n = st_le32(p + 1);
    if (n < 1 || n > VT_STORE_MAX_DIRS)
        return vt_fail(VT_EFORMAT, "data directory list: %u entries", n);
    size_t off = 5;
    for (uint32_t i = 0; i < n; i++) {
        if (len - off < 2) goto bad;
        size_t l = st_le16(p + off);
        off += 2;
        if (len - off < l) goto bad;
        const char *s = (const char *)p + off;
        if (i == 0 ? l != 0 : !st_dir_path_valid(s, l)) {
            st_dirs_free(d);
            return vt_fail(VT_EFORMAT, "data directory list: entry %u is not %s", i,
                           i == 0 ? "empty (the store's own data/)"
                                  : "an absolute normalised path");
        }
        d->path[i] = vt_malloc(l + 1);
        if (!d->path[i]) {
            st_dirs_free(d);
            return vt_fail(-ENOMEM, "out of memory decoding data directories");
        }
        memcpy(d->path[i], s, l);
        d->path[i][l] = 0;
        d->n = i + 1;
        off += l;
    }
    if (off != len) goto bad;
    return 0;
bad:
    st_dirs_free(d);
    return vt_fail(VT_EFORMAT, "data directory list: truncated or trailing bytes");
}

int vt_store_record_decode_test(const void *data, size_t len) {
    vt_tensor_info ti;
    vt_chunk_info ci;
    st_shard_rec sr;
    st_dirs d;
    const void *aux;
    int rc = VT_EFORMAT, r;
    /* the first bytes double as a key: exercise key validation too */
    size_t kl = len ? ((const uint8_t *)data)[0] % 40 : 0;
    if (kl > len) kl = len;
    if ((r = st_tensor_rec_decode(data, kl, (const uint8_t *)data + kl, len - kl, &ti, &aux)) == 0)
        rc = 0;
    if (len >= 16 &&
        st_chunk_rec_decode(data, 16, (const uint8_t *)data + 16, len - 16, 0, &ci) == 0)
        rc = 0;
    if (len >= 4 && st_shard_rec_decode(data, 4, (const uint8_t *)data + 4, len - 4, &sr) == 0)
        rc = 0;
    if (st_dirs_decode(data, len, &d) == 0) {
        st_dirs_free(&d);
        rc = 0;
    }
    (void)r;
    return rc;
}
