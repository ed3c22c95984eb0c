/* quant/quant_dispatch.c — vt_quantize / vt_dequantize and their _ref twins: argument checks,
 * the NaN/Inf scan, and threading over rows (long rows are split into runs of whole blocks). */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "quant_fault.h"
#include "quant_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define VT_X86 1
#endif

/* Elements handled by one task: big enough to amortise the hand-out, small enough that two
 * threads share a 1-row tensor of a few hundred thousand weights. */
#define TASK_ELEMS (1u << 15)

/* ---- non-finite scan ------------------------------------------------------------------------ */

static uint64_t scan_scalar(const float *x, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        if ((u & 0x7f800000u) == 0x7f800000u) return i;
    }
    return n;
}

/* The index of the first NaN/Inf in x[0..n), or n, and then the largest |x| (in *amax): one
 * pass, on the bit patterns (|x| orders as its bits do; a NaN/Inf is any value at or above
 * 0x7f800000). */
static uint64_t scan_amax_scalar(const float *x, uint64_t n, uint32_t *mbits) {
    uint32_t m = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        u &= 0x7fffffffu;
        if (u >= 0x7f800000u) return i;
        m = u > m ? u : m;
    }
    *mbits = m > *mbits ? m : *mbits;
    return n;
}

#ifdef VT_X86
__attribute__((target("avx2"))) static uint64_t scan_amax_avx2(const float *x, uint64_t n,
                                                               uint32_t *mbits) {
    const __m256i abs = _mm256_set1_epi32(0x7fffffff), fin = _mm256_set1_epi32(0x7f7fffff);
    __m256i mx = _mm256_setzero_si256();
    uint64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m256i acc = _mm256_setzero_si256();
        for (int k = 0; k < 64; k += 8)
            acc = _mm256_max_epu32(
                acc, _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(x + i + k)), abs));
        if (!_mm256_testz_si256(_mm256_cmpgt_epi32(acc, fin), _mm256_cmpgt_epi32(acc, fin)))
            return i + scan_scalar(x + i, 64);
        mx = _mm256_max_epu32(mx, acc);
    }
    uint32_t lanes[8];
    _mm256_storeu_si256((__m256i *)lanes, mx);
    for (int k = 0; k < 8; k++) *mbits = lanes[k] > *mbits ? lanes[k] : *mbits;
    return i + scan_amax_scalar(x + i, n - i, mbits);
}
#endif

static uint64_t scan_amax(const float *x, uint64_t n, float *amax) {
    uint32_t m = 0;
    uint64_t b;
#ifdef VT_X86
    if (__builtin_cpu_supports("avx2"))
        b = scan_amax_avx2(x, n, &m);
    else
#endif
        b = scan_amax_scalar(x, n, &m);
    memcpy(amax, &m, 4);
    return b;
}

/* awq's smallest and largest channel scale (vt_qrange_safe), 1 and 1 otherwise. */
static void scale_span(uint32_t base, const vt_quant_params *p, uint64_t cols, float *smin,
                       float *smax) {
    *smin = *smax = 1.0f;
    if (base != VT_FMT_AWQ_INT4 || !p || !p->channel_scale) return;
    for (uint64_t c = 0; c < cols; c++) {
        const float v = p->channel_scale[c];
        *smin = c == 0 || v < *smin ? v : *smin;
        *smax = c == 0 || v > *smax ? v : *smax;
    }
}

/* ---- jobs ----------------------------------------------------------------------------------- */

typedef struct qjob {
    const vt_qrow_ops *ops;
    uint32_t fmt, base;
    const vt_quant_params *p;
    const float *src; /* quantize: f32 input */
    uint8_t *dstq;
    const uint8_t *srcq; /* dequantize: packed input */
    float *dstf;
    uint64_t rows, cols, row_bytes;
    uint64_t rows_per_task; /* when segs_per_row == 1 */
    uint64_t seg_elems, segs_per_row;
    uint32_t block_elems, block_bytes;
    int ref, sparse;
    float smin, smax;      /* awq's channel scales (scale_span) */
    _Atomic uint64_t bad;  /* smallest row*cols+col of a NaN/Inf seen, UINT64_MAX if none */
    _Atomic uint64_t rbad; /* the same of a value the format cannot hold (vt_qrange_first) */
    pthread_mutex_t mu;    /* guards err/msg */
    int err;
    char msg[512];
} qjob;

static void job_error(qjob *j, int rc) {
    pthread_mutex_lock(&j->mu);
    if (!j->err) {
        j->err = rc;
        snprintf(j->msg, sizeof j->msg, "%s", vt_last_error());
    }
    pthread_mutex_unlock(&j->mu);
}

static void note_bad(_Atomic uint64_t *bad, uint64_t idx) {
    uint64_t cur = atomic_load_explicit(bad, memory_order_relaxed);
    while (idx < cur && !atomic_compare_exchange_weak_explicit(bad, &cur, idx, memory_order_relaxed,
                                                               memory_order_relaxed)) {
    }
}

/* Parameters for a run of a row starting at column c0 (awq scales are per column). */
static const vt_quant_params *unit_params(uint32_t base, const vt_quant_params *p, uint64_t c0,
                                          uint64_t n, vt_quant_params *tmp) {
    if (base != VT_FMT_AWQ_INT4 || c0 == 0) return p;
    *tmp = *p;
    tmp->channel_scale += c0;
    tmp->channel_count = n;
    return tmp;
}

/* Calls fn(j, row, c0, n) for the rows/segments of task i. */
static void task_range(const qjob *j, uint64_t i, uint64_t *r0, uint64_t *r1, uint64_t *c0,
                       uint64_t *n) {
    if (j->segs_per_row > 1) {
        *r0 = i / j->segs_per_row;
        *r1 = *r0 + 1;
        *c0 = (i % j->segs_per_row) * j->seg_elems;
        *n = j->cols - *c0 < j->seg_elems ? j->cols - *c0 : j->seg_elems;
    } else {
        *r0 = i * j->rows_per_task;
        *r1 = *r0 + j->rows_per_task < j->rows ? *r0 + j->rows_per_task : j->rows;
        *c0 = 0;
        *n = j->cols;
    }
}

static int quant_task(void *ctx, uint64_t i, int tid) {
    qjob *j = ctx;
    uint64_t r0, r1, c0, n;
    task_range(j, i, &r0, &r1, &c0, &n);
    vt_quant_params tmp;
    const vt_quant_params *p = unit_params(j->base, j->p, c0, n, &tmp);
    vt_qrow_fn fn = j->ref ? j->ops->quantize_ref : j->ops->quantize;
    for (uint64_t r = r0; r < r1; r++) {
        const float *x = j->src + r * j->cols + c0;
        float amax;
        uint64_t b = scan_amax(x, n, &amax);
        if (b < n) {
            note_bad(&j->bad, r * j->cols + c0 + b);
            return VT_ENONFINITE;
        }
        /* the per-block range check only where the run's largest value calls for it */
        const int safe = vt_qrange_safe(j->base, amax, p, j->smin, j->smax);
        uint8_t *d = j->dstq + r * j->row_bytes + c0 / j->block_elems * j->block_bytes;
        if (j->sparse) {
            uint64_t k = 0;
            int rc =
                vt_sparse24_quantize_row(j->ops, j->base, x, d, n, p, j->ref, safe ? NULL : &k);
            if (rc == -ERANGE) {
                note_bad(&j->rbad, r * j->cols + c0 + k);
                return rc;
            }
            if (rc) {
                job_error(j, rc);
                return rc;
            }
        } else {
            b = safe ? n : vt_qrange_first(j->base, x, n, p);
            if (b < n) {
                note_bad(&j->rbad, r * j->cols + c0 + b);
                return -ERANGE;
            }
            fn(x, d, n, p);
        }
    }
    return 0;
}

static int dequant_task(void *ctx, uint64_t i, int tid) {
    qjob *j = ctx;
    uint64_t r0, r1, c0, n;
    task_range(j, i, &r0, &r1, &c0, &n);
    vt_quant_params tmp;
    const vt_quant_params *p = unit_params(j->base, j->p, c0, n, &tmp);
    vt_dqrow_fn fn = j->ref ? j->ops->dequantize_ref : j->ops->dequantize;
    for (uint64_t r = r0; r < r1; r++) {
        const uint8_t *s = j->srcq + r * j->row_bytes + c0 / j->block_elems * j->block_bytes;
        float *y = j->dstf + r * j->cols + c0;
        if (j->sparse)
            vt_sparse24_dequantize_row(j->ops, j->base, s, y, n, p, j->ref);
        else
            fn(s, y, n, p);
    }
    return 0;
}

typedef struct scan_job {
    const float *x;
    uint64_t n;
    _Atomic uint64_t bad;
} scan_job;

static int scan_task(void *ctx, uint64_t i, int tid) {
    scan_job *s = ctx;
    uint64_t a = i * TASK_ELEMS, n = s->n - a < TASK_ELEMS ? s->n - a : TASK_ELEMS;
    float amax;
    uint64_t b = scan_amax(s->x + a, n, &amax);
    if (b == n) return 0;
    note_bad(&s->bad, a + b);
    return VT_ENONFINITE;
}

/* ---- checks --------------------------------------------------------------------------------- */

int vt_qfault_fail(const vt_qfault *f, const char *what, uint32_t fmt, const char *ctx,
                   uint64_t row0, const char *row_word) {
    char nb[32];
    vt_format_name(fmt, nb, sizeof nb);
    if (f->code == VT_ENONFINITE)
        return vt_fail(VT_ENONFINITE, "%s%s %s: non-finite value %g at %s %llu, column %llu", ctx,
                       what, nb, (double)f->value, row_word, (unsigned long long)(row0 + f->row),
                       (unsigned long long)f->col);
    return vt_fail(f->code,
                   "%s%s %s: value %g at %s %llu, column %llu is out of the format's range (%s)",
                   ctx, what, nb, (double)f->value, row_word, (unsigned long long)(row0 + f->row),
                   (unsigned long long)f->col, vt_qrange_rule(VT_FMT_BASE(fmt)));
}

/* The error for value src[idx] (code VT_ENONFINITE or -ERANGE), in *f too when f is not NULL. */
static int value_error(int code, const char *what, uint32_t fmt, const float *src, uint64_t cols,
                       uint64_t idx, vt_qfault *f) {
    vt_qfault tmp;
    if (!f) f = &tmp;
    *f = (vt_qfault){.code = code, .row = idx / cols, .col = idx % cols, .value = src[idx]};
    return vt_qfault_fail(f, what, fmt, "", 0, "row");
}

/* The unit of work along a row: the whole row, or for dense rows of at least 2 TASK_ELEMS runs
 * of whole blocks of about TASK_ELEMS. Quantizing checks a unit for NaN/Inf, then for range,
 * and stops at its first error; errors are reported for the first unit that has one
 * (vt_quantize on any number of threads and vt_quant_check alike). */
static uint64_t seg_len(const vt_format_info *fi, uint64_t cols, int sparse) {
    if (sparse || cols < 2 * (uint64_t)TASK_ELEMS) return cols;
    return (TASK_ELEMS + fi->block_elems - 1) / fi->block_elems * fi->block_elems;
}

/* The unit holding element idx of a row-major [rows][cols] array, units of seg elements. */
static uint64_t unit_of(uint64_t idx, uint64_t cols, uint64_t seg) {
    return idx / cols * ((cols + seg - 1) / seg) + idx % cols / seg;
}

/* Common argument checks; fills *pp with usable params. Returns 1 when there is nothing to do. */
static int check_args(const char *what, uint32_t fmt, const vt_quant_params *p, const void *src,
                      uint64_t rows, uint64_t cols, const void *dst, int quantize,
                      const vt_quant_params **pp, vt_quant_params *defp) {
    char nb[32];
    const vt_format_info *fi = vt_format_get(fmt);
    if (!fi) return vt_fail(-EINVAL, "%s: invalid format value %#x", what, fmt);
    uint32_t base = VT_FMT_BASE(fmt);
    vt_format_name(fmt, nb, sizeof nb);
    if ((fmt & VT_FMT_SPARSE24) && base == VT_FMT_NF4_DQ)
        return vt_fail(VT_EUNSUPPORTED, "%s: nf4_dq cannot be combined with 2:4 sparsity", what);
    if (quantize && !fi->can_quantize)
        return vt_fail(VT_EUNSUPPORTED,
                       "%s %s: read-only format; import from GGUF keeps its blocks as they are",
                       what, nb);
    if (rows == 0 || cols == 0) return 1;
    if (!src || !dst) return vt_fail(-EINVAL, "%s %s: NULL buffer", what, nb);
    if (rows > UINT64_MAX / cols)
        return vt_fail(-EOVERFLOW, "%s %s: rows x cols overflows", what, nb);
    if (base == VT_FMT_AWQ_INT4) {
        if (!p || !p->channel_scale)
            return vt_fail(-EINVAL, "%s %s: needs vt_quant_params.channel_scale (AWQ scales)", what,
                           nb);
        if (p->channel_count != cols)
            return vt_fail(-EINVAL, "%s %s: channel_count %llu != cols %llu", what, nb,
                           (unsigned long long)p->channel_count, (unsigned long long)cols);
        for (uint64_t c = 0; c < cols; c++)
            if (!(p->channel_scale[c] > 0.0f && p->channel_scale[c] <= 3.402823466e38f))
                return vt_fail(-EINVAL,
                               "%s %s: AWQ channel scale %g at column %llu is not a "
                               "positive finite number",
                               what, nb, (double)p->channel_scale[c], (unsigned long long)c);
    }
    if (base == VT_FMT_NVFP4) {
        if (!p)
            return vt_fail(-EINVAL,
                           "%s %s: needs vt_quant_params (tensor_scale from vt_quant_observe)",
                           what, nb);
        /* no default: one of 1 made or read blocks with the wrong scale, silently */
        if (isnan(p->tensor_scale))
            return vt_fail(-EINVAL,
                           "%s %s: vt_quant_params.tensor_scale is unset (NaN, as "
                           "vt_quant_params_init leaves it): set the tensor's scale "
                           "(vt_quant_observe computes it from the values; a stored tensor's "
                           "is in its record, vt_store_tensor_params)",
                           what, nb);
        if (!(p->tensor_scale > 0.0f && p->tensor_scale <= 3.402823466e38f))
            return vt_fail(-EINVAL, "%s %s: tensor_scale %g is not a positive finite number", what,
                           nb, (double)p->tensor_scale);
    }
    if (!p) {
        vt_quant_params_init(defp);
        p = defp;
    }
    *pp = p;
    return 0;
}

static int run_rows(const char *what, uint32_t fmt, const vt_quant_params *p, const float *src,
                    const void *srcq, uint64_t rows, uint64_t cols, void *dstq, float *dstf,
                    int ref, int nthreads, vt_qfault *f) {
    char nb[32];
    uint32_t base = VT_FMT_BASE(fmt);
    const vt_format_info *fi = vt_format_get(fmt);
    qjob j;
    memset(&j, 0, sizeof j);
    j.ops = vt_qops_get(base);
    int quantize = src != NULL;
    int have = j.ops && (quantize ? (ref ? j.ops->quantize_ref : j.ops->quantize) != NULL
                                  : (ref ? j.ops->dequantize_ref : j.ops->dequantize) != NULL);
    if (!have)
        return vt_fail(VT_EUNSUPPORTED, "%s %s: format not available in this build", what,
                       vt_format_name(fmt, nb, sizeof nb));
    j.fmt = fmt;
    j.base = base;
    j.p = p;
    j.src = src;
    j.srcq = srcq;
    j.dstq = dstq;
    j.dstf = dstf;
    j.rows = rows;
    j.cols = cols;
    j.ref = ref;
    j.sparse = (fmt & VT_FMT_SPARSE24) != 0;
    j.row_bytes = vt_quant_row_bytes(fmt, cols);
    if (j.row_bytes == 0)
        return vt_fail(VT_EUNSUPPORTED, "%s %s: format not available in this build", what,
                       vt_format_name(fmt, nb, sizeof nb));
    j.block_elems = fi->block_elems;
    j.block_bytes = fi->block_bytes;
    atomic_init(&j.bad, UINT64_MAX);
    atomic_init(&j.rbad, UINT64_MAX);
    if (quantize) scale_span(base, p, cols, &j.smin, &j.smax);
    pthread_mutex_init(&j.mu, NULL);
    uint64_t ntasks;
    j.seg_elems = seg_len(fi, cols, j.sparse);
    if (j.seg_elems < cols) {
        j.segs_per_row = (cols + j.seg_elems - 1) / j.seg_elems;
        ntasks = rows * j.segs_per_row;
    } else {
        j.segs_per_row = 1;
        j.rows_per_task = cols >= TASK_ELEMS ? 1 : TASK_ELEMS / cols;
        ntasks = (rows + j.rows_per_task - 1) / j.rows_per_task;
    }
    int rc = vt_parallel_for(ntasks, quantize ? quant_task : dequant_task, &j, ref ? 1 : nthreads);
    /* Every task before a failing one ran to its end, so the first unit with an error is the
     * first one noted, whatever the threading (a unit stops at its first error, the NaN scan
     * before the range check) */
    uint64_t bad = atomic_load(&j.bad), rbad = atomic_load(&j.rbad);
    if (bad != UINT64_MAX &&
        (rbad == UINT64_MAX || unit_of(bad, cols, j.seg_elems) <= unit_of(rbad, cols, j.seg_elems)))
        rc = value_error(VT_ENONFINITE, what, fmt, src, cols, bad, f);
    else if (rbad != UINT64_MAX)
        rc = value_error(-ERANGE, what, fmt, src, cols, rbad, f);
    else if (rc && j.err)
        rc = vt_fail(j.err, "%s", j.msg);
    else if (rc)
        rc = vt_fail(rc, "%s %s: %s", what, vt_format_name(fmt, nb, sizeof nb), vt_strerror(rc));
    pthread_mutex_destroy(&j.mu);
    return rc;
}

static int quantize_impl(uint32_t fmt, const vt_quant_params *p, const float *src, uint64_t rows,
                         uint64_t cols, void *dst, int ref, int nthreads, vt_qfault *f) {
    const char *what = ref ? "vt_quantize_ref" : "vt_quantize";
    vt_quant_params defp;
    if (f) f->code = 0;
    int rc = check_args(what, fmt, p, src, rows, cols, dst, 1, &p, &defp);
    if (rc) return rc > 0 ? 0 : rc;
    if (VT_FMT_BASE(fmt) == VT_FMT_NF4_DQ) {
        scan_job s = {.x = src, .n = rows * cols};
        atomic_init(&s.bad, UINT64_MAX);
        vt_parallel_for((s.n + TASK_ELEMS - 1) / TASK_ELEMS, scan_task, &s, ref ? 1 : nthreads);
        uint64_t bad = atomic_load(&s.bad);
        if (bad != UINT64_MAX) return value_error(VT_ENONFINITE, what, fmt, src, cols, bad, f);
        return vt_nf4dq_quantize(src, rows, cols, dst, ref, ref ? 1 : nthreads);
    }
    return run_rows(what, fmt, p, src, NULL, rows, cols, dst, NULL, ref, nthreads, f);
}

static int dequantize_impl(uint32_t fmt, const vt_quant_params *p, const void *src, uint64_t rows,
                           uint64_t cols, float *dst, int ref, int nthreads) {
    const char *what = ref ? "vt_dequantize_ref" : "vt_dequantize";
    vt_quant_params defp;
    int rc = check_args(what, fmt, p, src, rows, cols, dst, 0, &p, &defp);
    if (rc) return rc > 0 ? 0 : rc;
    if (VT_FMT_BASE(fmt) == VT_FMT_NF4_DQ)
        return vt_nf4dq_dequantize(src, rows, cols, dst, ref, ref ? 1 : nthreads);
    return run_rows(what, fmt, p, NULL, src, rows, cols, NULL, dst, ref, nthreads, NULL);
}

int vt_quantize(uint32_t fmt, const vt_quant_params *p, const float *src, uint64_t rows,
                uint64_t cols, void *dst, int nthreads) {
    return quantize_impl(fmt, p, src, rows, cols, dst, 0, nthreads, NULL);
}

int vt_quantize_fault(uint32_t fmt, const vt_quant_params *p, const float *src, uint64_t rows,
                      uint64_t cols, void *dst, int nthreads, vt_qfault *f) {
    return quantize_impl(fmt, p, src, rows, cols, dst, 0, nthreads, f);
}

int vt_quantize_ref(uint32_t fmt, const vt_quant_params *p, const float *src, uint64_t rows,
                    uint64_t cols, void *dst) {
    return quantize_impl(fmt, p, src, rows, cols, dst, 1, 1, NULL);
}

int vt_quant_check(uint32_t fmt, const vt_quant_params *p, const float *src, uint64_t rows,
                   uint64_t cols) {
    const char *what = "vt_quant_check";
    vt_quant_params defp;
    int rc = check_args(what, fmt, p, src, rows, cols, src, 1, &p, &defp);
    if (rc) return rc > 0 ? 0 : rc;
    const uint32_t base = VT_FMT_BASE(fmt);
    const int sparse = (fmt & VT_FMT_SPARSE24) != 0;
    const vt_qrow_ops *ops = vt_qops_get(base);
    void *row = NULL; /* 2:4: the row quantized, for the kept values' check */
    if (sparse && !(row = vt_malloc(vt_quant_row_bytes(fmt, cols))))
        return vt_fail(-ENOMEM, "%s: out of memory", what);
    const uint64_t seg = seg_len(vt_format_get(fmt), cols, sparse);
    float smin, smax;
    scale_span(base, p, cols, &smin, &smax);
    for (uint64_t r = 0; r < rows && !rc; r++)
        for (uint64_t c0 = 0; c0 < cols && !rc; c0 += seg) { /* vt_quantize's units, in order */
            const float *x = src + r * cols + c0;
            const uint64_t n = cols - c0 < seg ? cols - c0 : seg;
            float amax;
            uint64_t b = scan_amax(x, n, &amax);
            if (b < n) {
                rc = value_error(VT_ENONFINITE, what, fmt, src, cols, r * cols + c0 + b, NULL);
                break;
            }
            if (vt_qrange_safe(base, amax, p, smin, smax)) continue;
            if (sparse) { /* whole rows */
                if (vt_sparse24_quantize_row(ops, base, x, row, cols, p, 0, &b) != -ERANGE)
                    continue;
            } else {
                vt_quant_params tmp;
                if ((b = vt_qrange_first(base, x, n, unit_params(base, p, c0, n, &tmp))) == n)
                    continue;
            }
            rc = value_error(-ERANGE, what, fmt, src, cols, r * cols + c0 + b, NULL);
        }
    vt_free(row);
    return rc;
}

int vt_dequantize(uint32_t fmt, const vt_quant_params *p, const void *src, uint64_t rows,
                  uint64_t cols, float *dst, int nthreads) {
    return dequantize_impl(fmt, p, src, rows, cols, dst, 0, nthreads);
}

int vt_dequantize_ref(uint32_t fmt, const vt_quant_params *p, const void *src, uint64_t rows,
                      uint64_t cols, float *dst) {
    return dequantize_impl(fmt, p, src, rows, cols, dst, 1, 1);
}
