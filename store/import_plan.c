/* Per-tensor import plan: which stored format (rules, defaults, AUTO), copy or convert, and the
 * tensor-level passes some formats need (nvfp4 amax, awq scales, AUTO trial on a row sample). */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "import_internal.h"

#define SAMPLE_ROWS 256 /* rows read for AUTO and awq trials */

static int is_float(vt_dtype t) {
    return t == VT_DTYPE_F32 || t == VT_DTYPE_F16 || t == VT_DTYPE_BF16 || t == VT_DTYPE_F64 ||
           t == VT_DTYPE_FP8_E4M3;
}

int imp_read_rows_f32(const imp_plan *p, uint64_t r0, uint64_t n, void *scratch, float *x) {
    const vt_src_tensor *t = p->src;
    uint64_t len = n * p->src_row_bytes;
    int rc = vt_pread_full(p->fd, scratch, (size_t)len, t->offset + r0 * p->src_row_bytes);
    if (rc)
        return vt_fail(rc, "tensor '%s': reading rows %llu..%llu of the source: %s", t->desc.name,
                       (unsigned long long)r0, (unsigned long long)(r0 + n), vt_strerror(rc));
    if (t->block_fmt != VT_FMT_COUNT)
        rc = vt_dequantize(t->block_fmt, NULL, scratch, n, p->cols, x, 1);
    else if (t->desc.dtype == VT_DTYPE_F16 || t->desc.dtype == VT_DTYPE_BF16) /* SIMD rows */
        rc = vt_dequantize(t->desc.dtype == VT_DTYPE_F16 ? VT_FMT_F16 : VT_FMT_BF16, NULL, scratch,
                           n, p->cols, x, 1);
    else
        rc = vt_convert_to_f32(t->desc.dtype, scratch, x, (size_t)(n * p->cols));
    if (rc)
        return vt_fail(rc, "tensor '%s': converting source rows to f32: %s", t->desc.name,
                       vt_last_error());
    return 0;
}

/* Up to SAMPLE_ROWS rows spread evenly over the tensor, as f32 [*nrows x cols]. */
static int read_sample(const imp_plan *p, float **out, uint64_t *nrows) {
    uint64_t n = p->rows < SAMPLE_ROWS ? p->rows : SAMPLE_ROWS;
    float *x = vt_malloc((size_t)(n * p->cols) * sizeof *x);
    void *scratch = vt_malloc((size_t)p->src_row_bytes);
    int rc = x && scratch ? 0 : vt_fail(-ENOMEM, "tensor '%s': out of memory", p->src->desc.name);
    for (uint64_t i = 0; i < n && !rc; i++)
        rc = imp_read_rows_f32(p, i * p->rows / n, 1, scratch, x + i * p->cols);
    vt_free(scratch);
    if (rc) {
        vt_free(x);
        return rc;
    }
    *out = x;
    *nrows = n;
    return 0;
}

/* nvfp4: tensor amax over all rows. */
static int observe_all(imp_plan *p) {
    uint64_t step = (1u << 20) / (p->cols ? p->cols : 1);
    if (step == 0) step = 1;
    float *x = vt_malloc((size_t)(step * p->cols) * sizeof *x);
    void *scratch = vt_malloc((size_t)(step * p->src_row_bytes));
    int rc = x && scratch ? 0 : vt_fail(-ENOMEM, "tensor '%s': out of memory", p->src->desc.name);
    for (uint64_t r = 0; r < p->rows && !rc; r += step) {
        uint64_t n = p->rows - r < step ? p->rows - r : step;
        rc = imp_read_rows_f32(p, r, n, scratch, x);
        if (!rc && (rc = vt_quant_observe(p->format, &p->qp, x, n * p->cols))) {
            uint64_t i = 0; /* its index counts from this slice: name the tensor's row */
            while (rc == VT_ENONFINITE && i < n * p->cols && isfinite(x[i])) i++;
            if (rc == VT_ENONFINITE && i < n * p->cols)
                rc = vt_fail(rc, "tensor '%s': non-finite value %g at tensor row %llu, column %llu",
                             p->src->desc.name, (double)x[i], (unsigned long long)(r + i / p->cols),
                             (unsigned long long)(i % p->cols));
            else
                rc = vt_fail(rc, "tensor '%s': %s", p->src->desc.name, vt_last_error());
        }
    }
    vt_free(x);
    vt_free(scratch);
    return rc;
}

int imp_awq_stats_open(const char *path, imp_awq_stats *st) {
    memset(st, 0, sizeof *st);
    st->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (st->fd < 0)
        return vt_fail(-errno, "%s: cannot open activation statistics: %s", path, strerror(errno));
    unsigned char head[16];
    int rc = vt_pread_full(st->fd, head, 10, 0);
    if (!rc) {
        if (vt_src_detect(head, 10) == VT_SRC_NPY)
            rc = vt_parse_npy_fd(st->fd, path, "awq", &st->file);
        else
            rc = vt_parse_safetensors_fd(st->fd, path, &st->file);
    } else {
        rc = vt_fail(rc, "%s: cannot read activation statistics", path);
    }
    if (!rc && st->file.kind == VT_SRC_NPY) {
        const vt_src_tensor *t = &st->file.tensors[0];
        uint64_t n = 0;
        vt_dims_product(t->desc.dims, t->desc.ndim, &n);
        if (t->desc.ndim != 1 || !is_float(t->desc.dtype))
            rc =
                vt_fail(-EINVAL, "%s: activation statistics must be one float vector [cols]", path);
        void *raw = rc ? NULL : vt_malloc((size_t)t->nbytes + 1);
        st->single = rc ? NULL : vt_malloc((size_t)n * sizeof(float) + 1);
        if (!rc && (!raw || !st->single)) rc = vt_fail(-ENOMEM, "%s: out of memory", path);
        if (!rc && !(rc = vt_pread_full(st->fd, raw, (size_t)t->nbytes, t->offset)))
            rc = vt_convert_to_f32(t->desc.dtype, raw, st->single, (size_t)n);
        vt_free(raw);
        st->single_len = n;
    }
    if (rc) imp_awq_stats_close(st);
    return rc;
}

void imp_awq_stats_close(imp_awq_stats *st) {
    vt_src_file_free(&st->file);
    vt_free(st->single);
    if (st->fd > 0) close(st->fd);
    memset(st, 0, sizeof *st);
}

/* Activation statistics for tensor @p name with @p cols columns into a new [cols] array. */
static int awq_stats_for(imp_awq_stats *st, const char *name, uint64_t cols, float **out) {
    if (st->single) {
        if (st->single_len != cols)
            return vt_fail(
                -EINVAL, "tensor '%s': awq statistics have %llu channels, the tensor %llu columns",
                name, (unsigned long long)st->single_len, (unsigned long long)cols);
        float *a = vt_malloc((size_t)cols * sizeof *a);
        if (!a) return vt_fail(-ENOMEM, "out of memory");
        memcpy(a, st->single, (size_t)cols * sizeof *a);
        *out = a;
        return 0;
    }
    char base[VT_MAX_NAME];
    snprintf(base, sizeof base, "%s", name);
    size_t bl = strlen(base);
    if (bl > 7 && !strcmp(base + bl - 7, ".weight")) base[bl - 7] = 0;
    for (uint32_t i = 0; i < st->file.n_tensors; i++) {
        const vt_src_tensor *t = &st->file.tensors[i];
        if (strcmp(t->desc.name, name) && strcmp(t->desc.name, base)) continue;
        uint64_t n = 0;
        vt_dims_product(t->desc.dims, t->desc.ndim, &n);
        if (n != cols || !is_float(t->desc.dtype))
            return vt_fail(-EINVAL, "%s: statistics '%s' are not a float vector of %llu values",
                           st->file.path, t->desc.name, (unsigned long long)cols);
        void *raw = vt_malloc((size_t)t->nbytes + 1);
        float *a = vt_malloc((size_t)cols * sizeof *a + 1);
        int rc = raw && a ? vt_pread_full(st->fd, raw, (size_t)t->nbytes, t->offset) : -ENOMEM;
        if (!rc) rc = vt_convert_to_f32(t->desc.dtype, raw, a, (size_t)cols);
        vt_free(raw);
        if (rc) {
            vt_free(a);
            return vt_fail(rc, "%s: reading statistics '%s'", st->file.path, t->desc.name);
        }
        *out = a;
        return 0;
    }
    return vt_fail(-EINVAL, "tensor '%s': no activation statistics for it in %s (awq needs them)",
                   name, st->file.path);
}

static int awq_prepare(const vt_import_options *o, imp_awq_stats *awq, imp_plan *p) {
    const char *name = p->src->desc.name;
    if (!o->awq_stats_path)
        return vt_fail(-EINVAL,
                       "tensor '%s': format awq_int4 needs activation statistics (--awq-stats "
                       "FILE.npy); refusing to guess them",
                       name);
    float *act = NULL, *w = NULL;
    uint64_t n;
    int rc = awq_stats_for(awq, name, p->cols, &act);
    if (!rc) rc = read_sample(p, &w, &n);
    if (!rc && !(p->aux = vt_malloc((size_t)p->cols * sizeof(float))))
        rc = vt_fail(-ENOMEM, "out of memory");
    float alpha;
    if (!rc && (rc = vt_awq_search(w, n, p->cols, act, 20, 0, p->aux, &alpha)))
        rc = vt_fail(rc, "tensor '%s': awq scale search: %s", name, vt_last_error());
    if (!rc) {
        p->qp.channel_scale = p->aux;
        p->qp.channel_count = p->cols;
    }
    vt_free(act);
    vt_free(w);
    return rc;
}

static int auto_choose(const vt_import_options *o, imp_plan *p) {
    float *w;
    uint64_t n;
    int rc = read_sample(p, &w, &n);
    if (rc) return rc;
    vt_choose_target t = {0};
    t.min_sqnr_db = o->target_sqnr_db;
    t.max_bits = o->max_bits;
    if (t.min_sqnr_db <= 0 && t.max_bits <= 0) t.min_sqnr_db = 20.0; /* nf4-class by default */
    t.candidates = 0;
    for (uint32_t f = 0; f < VT_FMT_COUNT; f++) /* awq needs statistics; leave it out */
        if (f != VT_FMT_AWQ_INT4 && vt_format_get(f) && vt_format_get(f)->can_quantize)
            t.candidates |= 1u << f;
    vt_metrics m;
    rc = vt_quant_choose(w, n, p->cols, &t, &p->format, &m);
    vt_free(w);
    if (rc)
        return vt_fail(rc, "tensor '%s': choosing a format: %s", p->src->desc.name,
                       vt_last_error());
    return 0;
}

int imp_plan_tensor(const vt_import_options *o, imp_awq_stats *awq, const vt_src_tensor *t, int fd,
                    imp_plan *p) {
    memset(p, 0, sizeof *p);
    p->src = t;
    p->fd = fd;
    vt_quant_params_init(&p->qp);
    vt_tensor_rows_cols(&t->desc, &p->rows, &p->cols);
    if (t->block_fmt != VT_FMT_COUNT) {
        const vt_format_info *fi = vt_format_get(t->block_fmt);
        p->src_row_bytes = p->cols / fi->block_elems * fi->block_bytes;
    } else {
        p->src_row_bytes = p->cols * vt_dtype_size(t->desc.dtype);
    }
    const char *name = t->desc.name;
    vt_dtype dt = t->desc.dtype;
    int plain = dt == VT_DTYPE_F32 || dt == VT_DTYPE_F16 || dt == VT_DTYPE_BF16;
    uint32_t keep = t->block_fmt != VT_FMT_COUNT ? t->block_fmt
                    : plain                      ? (dt == VT_DTYPE_F32   ? VT_FMT_F32
                                                    : dt == VT_DTYPE_F16 ? VT_FMT_F16
                                                                         : VT_FMT_BF16)
                                                 : VT_STORE_FMT_RAW;
    uint32_t fmt = VT_IMPORT_KEEP;
    if (!is_float(dt)) {
        fmt = VT_IMPORT_KEEP; /* integers and bool are stored as they are */
    } else if (t->block_fmt != VT_FMT_COUNT && !o->requantize) {
        fmt = VT_IMPORT_KEEP;
    } else {
        uint32_t i;
        for (i = 0; i < o->n_rules; i++)
            if (o->rules[i].glob && fnmatch(o->rules[i].glob, name, 0) == 0) break;
        if (i < o->n_rules)
            fmt = o->rules[i].format;
        else if (t->desc.ndim <= 1 || strstr(name, "norm") || strstr(name, "bias"))
            /* small tensors stay unquantized: as they are (keep, f16, bf16), else f32 (an f64
             * source under --format keep stays f64: f32 would round it) */
            fmt = dt == VT_DTYPE_F16 || dt == VT_DTYPE_BF16 || o->format == VT_IMPORT_KEEP
                      ? VT_IMPORT_KEEP
                      : VT_FMT_F32;
        else
            fmt = o->format;
    }
    p->format = fmt == VT_IMPORT_KEEP ? keep : fmt;
    if (fmt == VT_IMPORT_AUTO) {
        p->format = VT_FMT_F32;
        if (p->rows && p->cols) {
            int rc = auto_choose(o, p);
            if (rc) return rc;
        }
    }
    if (p->format != VT_STORE_FMT_RAW && !vt_format_get(p->format))
        return vt_fail(-EINVAL, "tensor '%s': invalid format %#x", name, p->format);
    if (p->format != VT_STORE_FMT_RAW && p->format == keep) {
        p->mode = IMP_COPY;
    } else if (p->format == VT_STORE_FMT_RAW) {
        p->mode = IMP_COPY;
    } else {
        const vt_format_info *fi = vt_format_get(p->format);
        if (!fi->can_quantize) {
            char nb[32];
            return vt_fail(VT_EUNSUPPORTED, "tensor '%s': format %s can be read but not written",
                           name, vt_format_name(p->format, nb, sizeof nb));
        }
        if ((p->format & VT_FMT_SPARSE24) && VT_FMT_BASE(p->format) == VT_FMT_NF4_DQ)
            return vt_fail(VT_EUNSUPPORTED,
                           "tensor '%s': nf4_dq cannot be 2:4 sparse (its super-blocks cross rows)",
                           name);
        p->mode = IMP_CONVERT;
    }
    if (p->mode == IMP_COPY && p->format != VT_STORE_FMT_RAW &&
        vt_quant_row_bytes(p->format, p->cols) != p->src_row_bytes)
        return vt_fail(VT_EUNSUPPORTED,
                       "tensor '%s': source rows of %llu bytes do not match the stored layout",
                       name, (unsigned long long)p->src_row_bytes);
    if (p->mode == IMP_CONVERT && p->rows && p->cols) {
        if (VT_FMT_BASE(p->format) == VT_FMT_AWQ_INT4) return awq_prepare(o, awq, p);
        if (vt_format_get(p->format)->needs_params) return observe_all(p);
    }
    return 0;
}

void imp_plan_free(imp_plan *p) {
    vt_free(p->aux);
    p->aux = NULL;
}
