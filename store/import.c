/* vt_import_file: plan every tensor, then convert/quantize and put all chunks of all tensors on
 * the thread pool (one task per chunk, the source read slice by slice), measure the error of
 * converted tensors, and commit everything in one writer — or abort it on any error. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "import_internal.h"
#include "quant/quant_fault.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define IMP_X86 1
#endif

/* f32 values converted at a time per thread: f16 source, x and y (640 KiB) stay in the 1 MiB L2 */
#define SLICE_ELEMS (1u << 16)

typedef struct chunk_sums {
    double sx2, se2, sxy, sy2, maxe;
} chunk_sums;

typedef struct imp_tensor {
    imp_plan plan;
    vt_writer_tensor *wt;
    vt_tensor_info ti;
    chunk_sums *sums; /* [ti.n_chunks] for converted tensors */
} imp_tensor;

typedef struct scratch {
    void *src;
    size_t src_cap;
    float *x, *y;
    size_t f_cap;
    void *out;
    size_t out_cap;
} scratch;

typedef struct imp_run {
    vt_store_writer *w;
    const vt_import_options *o;
    imp_tensor *t;
    uint32_t nt;
    uint64_t *job0; /* [nt + 1] first global chunk job of each tensor */
    scratch *sc;
    int nthreads;
    _Atomic uint64_t bytes_done;
    uint64_t bytes_total;
    _Atomic uint64_t chunks_done;
    double t0, last_report;
    pthread_mutex_t mu;  /* error capture and progress */
    atomic_int err_code; /* set under mu; read without it as the cancellation flag */
    char err[1024];
} imp_run;

void vt_import_options_init(vt_import_options *o) {
    memset(o, 0, sizeof *o);
    o->format = VT_IMPORT_KEEP;
}

static int grow(void **p, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    vt_free(*p);
    *p = vt_malloc(need);
    *cap = *p ? need : 0;
    return *p ? 0 : vt_fail(-ENOMEM, "out of memory for a %zu-byte import buffer", need);
}

/* Error sums of a slice. Eight float lanes over blocks of 1024 values (so the compiler can
 * vectorize), flushed into f64 totals after each block: relative error of the sums stays near
 * 1e-6 while the loop runs at SIMD speed. */
#if defined(__SANITIZE_THREAD__)
#define IMP_CLONES /* TSan: an ifunc resolver runs before the runtime is up and crashes */
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define IMP_CLONES
#endif
#endif
#ifndef IMP_CLONES
#define IMP_CLONES __attribute__((target_clones("avx2", "default")))
#endif
IMP_CLONES static void sum_slice_vec(const float *x, const float *y, uint64_t n, chunk_sums *s) {
    float maxe = (float)s->maxe;
    for (uint64_t b = 0; b < n; b += 1024) {
        uint64_t m = n - b < 1024 ? n - b : 1024, i = 0;
        float ax[8] = {0}, ae[8] = {0}, axy[8] = {0}, ay[8] = {0}, mx[8] = {0};
        const float *xb = x + b, *yb = y + b;
        for (; i + 8 <= m; i += 8)
            for (int k = 0; k < 8; k++) {
                float a = xb[i + k], c = yb[i + k], e = a - c;
                ax[k] += a * a;
                ae[k] += e * e;
                axy[k] += a * c;
                ay[k] += c * c;
                float ab = e < 0 ? -e : e;
                mx[k] = ab > mx[k] ? ab : mx[k];
            }
        for (; i < m; i++) {
            float a = xb[i], c = yb[i], e = a - c;
            ax[0] += a * a;
            ae[0] += e * e;
            axy[0] += a * c;
            ay[0] += c * c;
            float ab = e < 0 ? -e : e;
            mx[0] = ab > mx[0] ? ab : mx[0];
        }
        for (int k = 0; k < 8; k++) {
            s->sx2 += ax[k];
            s->se2 += ae[k];
            s->sxy += axy[k];
            s->sy2 += ay[k];
            if (mx[k] > maxe) maxe = mx[k];
        }
    }
    s->maxe = maxe;
}

#ifdef IMP_X86
/* The same sums with AVX-512: two 16-lane accumulators per sum, FMA, blocks of IMP_SUM_BLOCK
 * values (at most 64 per f32 lane) promoted to f64 lanes before the horizontal add. The max error
 * is computed exactly as above (|x - y| in f32), so it is bit-identical. */
#define IMP_SUM_BLOCK 2048u
__attribute__((target("avx512f"))) static double imp_hsum_pd(__m512 a, __m512 b) {
    __m512d lo = _mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(a)),
                               _mm512_cvtps_pd(_mm512_castps512_ps256(b)));
    __m512d hi = _mm512_add_pd(
        _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1))),
        _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(b), 1))));
    return _mm512_reduce_add_pd(_mm512_add_pd(lo, hi));
}

__attribute__((target("avx512f"))) static void sum_slice_avx512(const float *x, const float *y,
                                                                uint64_t n, chunk_sums *s) {
    const __m512 z = _mm512_setzero_ps();
    __m512 mx = _mm512_set1_ps((float)s->maxe);
    for (uint64_t b = 0; b < n; b += IMP_SUM_BLOCK) {
        uint64_t m = n - b < IMP_SUM_BLOCK ? n - b : IMP_SUM_BLOCK, i = 0;
        const float *xb = x + b, *yb = y + b;
        __m512 ax0 = z, ax1 = z, ae0 = z, ae1 = z, axy0 = z, axy1 = z, ay0 = z, ay1 = z;
        for (; i + 32 <= m; i += 32) {
            __m512 a0 = _mm512_loadu_ps(xb + i), c0 = _mm512_loadu_ps(yb + i);
            __m512 a1 = _mm512_loadu_ps(xb + i + 16), c1 = _mm512_loadu_ps(yb + i + 16);
            __m512 e0 = _mm512_sub_ps(a0, c0), e1 = _mm512_sub_ps(a1, c1);
            ax0 = _mm512_fmadd_ps(a0, a0, ax0);
            ax1 = _mm512_fmadd_ps(a1, a1, ax1);
            ae0 = _mm512_fmadd_ps(e0, e0, ae0);
            ae1 = _mm512_fmadd_ps(e1, e1, ae1);
            axy0 = _mm512_fmadd_ps(a0, c0, axy0);
            axy1 = _mm512_fmadd_ps(a1, c1, axy1);
            ay0 = _mm512_fmadd_ps(c0, c0, ay0);
            ay1 = _mm512_fmadd_ps(c1, c1, ay1);
            mx = _mm512_max_ps(mx, _mm512_abs_ps(e0));
            mx = _mm512_max_ps(mx, _mm512_abs_ps(e1));
        }
        for (; i < m; i += 16) {
            __mmask16 k = m - i >= 16 ? 0xffff : (__mmask16)((1u << (m - i)) - 1);
            __m512 a0 = _mm512_maskz_loadu_ps(k, xb + i), c0 = _mm512_maskz_loadu_ps(k, yb + i);
            __m512 e0 = _mm512_sub_ps(a0, c0);
            ax0 = _mm512_fmadd_ps(a0, a0, ax0);
            ae0 = _mm512_fmadd_ps(e0, e0, ae0);
            axy0 = _mm512_fmadd_ps(a0, c0, axy0);
            ay0 = _mm512_fmadd_ps(c0, c0, ay0);
            mx = _mm512_max_ps(mx, _mm512_abs_ps(e0));
        }
        s->sx2 += imp_hsum_pd(ax0, ax1);
        s->se2 += imp_hsum_pd(ae0, ae1);
        s->sxy += imp_hsum_pd(axy0, axy1);
        s->sy2 += imp_hsum_pd(ay0, ay1);
    }
    s->maxe = _mm512_reduce_max_ps(mx);
}
#endif

static void sum_slice(const float *x, const float *y, uint64_t n, chunk_sums *s) {
#ifdef IMP_X86
    if (vt_cpu_features() & VT_CPU_AVX512F) {
        sum_slice_avx512(x, y, n, s);
        return;
    }
#endif
    sum_slice_vec(x, y, n, s);
}

/* The sums of sum_slice for an f64 source @p x (little-endian, as read; any alignment): the
 * error counts the rounding to f32 too, so an f64 tensor stored as f32 is not "exact". */
static void sum_slice_f64(const void *x, const float *y, uint64_t n, chunk_sums *s) {
    for (uint64_t i = 0; i < n; i++) {
        double a;
        memcpy(&a, (const char *)x + 8 * i, 8);
        const double c = y[i], e = a - c, ab = fabs(e);
        s->sx2 += a * a;
        s->se2 += e * e;
        s->sxy += a * c;
        s->sy2 += c * c;
        if (ab > s->maxe) s->maxe = ab;
    }
}

static void report(imp_run *r, const char *tensor, int force) {
    if (!r->o->progress) return;
    double now = vt_now();
    /* last_report is read only under mu: an unlocked pre-check would race with the writer */
    if (force)
        pthread_mutex_lock(&r->mu);
    else if (pthread_mutex_trylock(&r->mu))
        return;
    if (force || now - r->last_report >= 0.05) {
        r->last_report = now;
        vt_import_progress p = {
            atomic_load(&r->bytes_done), r->bytes_total, 0, r->nt, tensor, now - r->t0};
        uint64_t done = atomic_load(&r->chunks_done);
        for (uint32_t i = 0; i < r->nt; i++)
            if (r->job0[i + 1] <= done) p.tensors_done = i + 1; /* approximate: jobs run in order */
        if (r->o->progress(r->o->progress_ctx, &p) && !r->err_code) {
            r->err_code = -ECANCELED;
            snprintf(r->err, sizeof r->err, "import cancelled");
        }
    }
    pthread_mutex_unlock(&r->mu);
}

/* vt_quantize refused value f in the slice of rows starting at tensor row @p row of chunk c:
 * its message, with the tensor's row (f counts rows from the slice). */
static int bad_value_fail(const vt_qfault *f, uint32_t fmt, const char *name, uint64_t c,
                          uint64_t row) {
    char ctx[VT_MAX_NAME + 48];
    snprintf(ctx, sizeof ctx, "tensor '%s' chunk %llu: ", name, (unsigned long long)c);
    return vt_qfault_fail(f, "vt_quantize", fmt, ctx, row, "tensor row");
}

static int do_chunk(imp_run *r, imp_tensor *it, uint64_t c, scratch *sc) {
    const imp_plan *p = &it->plan;
    const vt_tensor_info *ti = &it->ti;
    uint64_t row0 = c * ti->rows_per_chunk;
    uint64_t n = ti->rows - row0 < ti->rows_per_chunk ? ti->rows - row0 : ti->rows_per_chunk;
    uint64_t len = vt_store_format_bytes(p->format, p->src->desc.dtype, n, p->cols);
    int rc = grow(&sc->out, &sc->out_cap, (size_t)len);
    if (rc) return rc;
    if (p->mode == IMP_COPY) {
        rc = vt_pread_full(p->fd, sc->out, (size_t)len, p->src->offset + row0 * p->src_row_bytes);
        if (rc)
            return vt_fail(rc, "tensor '%s' chunk %llu: reading the source: %s", ti->name,
                           (unsigned long long)c, vt_strerror(rc));
    } else {
        uint64_t align = vt_quant_row_align(p->format, p->cols);
        uint64_t slice = SLICE_ELEMS / (p->cols ? p->cols : 1) / align * align;
        if (slice < align) slice = align;
        uint64_t sr = n < slice ? n : slice;
        if ((rc = grow(&sc->src, &sc->src_cap, (size_t)(sr * p->src_row_bytes)))) return rc;
        size_t fneed = (size_t)(sr * p->cols * sizeof(float));
        if (fneed > sc->f_cap) {
            vt_free(sc->x);
            vt_free(sc->y);
            sc->x = vt_malloc(fneed);
            sc->y = vt_malloc(fneed);
            sc->f_cap = sc->x && sc->y ? fneed : 0;
            if (!sc->f_cap)
                return vt_fail(-ENOMEM, "out of memory for a %zu-byte import buffer", fneed);
        }
        chunk_sums *s = &it->sums[c];
        memset(s, 0, sizeof *s);
        for (uint64_t r0 = 0; r0 < n; r0 += slice) {
            uint64_t m = n - r0 < slice ? n - r0 : slice;
            unsigned char *dst = (unsigned char *)sc->out + vt_quant_bytes(p->format, r0, p->cols);
            if ((rc = imp_read_rows_f32(p, row0 + r0, m, sc->src, sc->x))) return rc;
            vt_qfault f;
            rc = vt_quantize_fault(p->format, &p->qp, sc->x, m, p->cols, dst, 1, &f);
            if (f.code) return bad_value_fail(&f, p->format, ti->name, c, row0 + r0);
            if (!rc) rc = vt_dequantize(p->format, &p->qp, dst, m, p->cols, sc->y, 1);
            if (rc)
                return vt_fail(rc, "tensor '%s' chunk %llu: %s", ti->name, (unsigned long long)c,
                               vt_last_error());
            if (p->src->desc.dtype == VT_DTYPE_F64 && p->src->block_fmt == VT_FMT_COUNT)
                sum_slice_f64(sc->src, sc->y, m * p->cols, s); /* sc->src: the rows as read */
            else
                sum_slice(sc->x, sc->y, m * p->cols, s);
        }
    }
    rc = vt_writer_put_chunk(r->w, it->wt, c, sc->out, (size_t)len);
    if (rc)
        return vt_fail(rc, "tensor '%s' chunk %llu: %s", ti->name, (unsigned long long)c,
                       vt_last_error());
    atomic_fetch_add(&r->bytes_done, n * p->src_row_bytes);
    atomic_fetch_add(&r->chunks_done, 1);
    report(r, ti->name, 0);
    return 0;
}

static int chunk_task(void *ctx, uint64_t job, int tid) {
    imp_run *r = ctx;
    if (r->err_code) return r->err_code; /* cancelled */
    uint32_t lo = 0, hi = r->nt;         /* tensor i with job0[i] <= job < job0[i+1] */
    while (hi - lo > 1) {
        uint32_t mid = (lo + hi) / 2;
        if (r->job0[mid] <= job)
            lo = mid;
        else
            hi = mid;
    }
    while (r->job0[lo + 1] <= job) lo++; /* skip tensors without chunks */
    int rc = do_chunk(r, &r->t[lo], job - r->job0[lo], &r->sc[tid]);
    if (rc) {
        pthread_mutex_lock(&r->mu);
        if (!r->err_code) {
            r->err_code = rc;
            snprintf(r->err, sizeof r->err, "%s", vt_last_error());
        }
        pthread_mutex_unlock(&r->mu);
    }
    return rc;
}

static void basename_of(const char *path, char *out) {
    const char *b = strrchr(path, '/');
    snprintf(out, VT_MAX_NAME, "%s", b ? b + 1 : path);
}

/* Plan and declare every tensor. */
static int declare_all(imp_run *r, imp_source *src, imp_awq_stats *awq) {
    uint32_t k = 0;
    for (uint32_t f = 0; f < src->n_files; f++) {
        for (uint32_t i = 0; i < src->files[f].n_tensors; i++, k++) {
            imp_tensor *it = &r->t[k];
            const vt_src_tensor *st = &src->files[f].tensors[i];
            int rc = imp_plan_tensor(r->o, awq, st, src->fds[f], &it->plan);
            if (rc) return rc;
            vt_tensor_info meta;
            memset(&meta, 0, sizeof meta);
            memcpy(meta.name, st->desc.name, sizeof meta.name);
            meta.src_dtype = st->desc.dtype;
            meta.ndim = st->desc.ndim;
            memcpy(meta.dims, st->desc.dims, sizeof meta.dims);
            meta.format = it->plan.format;
            /* unset (NaN) for the formats without one and empty nvfp4 tensors: 1, as ever */
            meta.tensor_scale = isnan(it->plan.qp.tensor_scale) ? 1.0f : it->plan.qp.tensor_scale;
            meta.metrics.sqnr_db = meta.metrics.cosine = meta.metrics.max_err = NAN;
            basename_of(src->files[f].path, meta.source);
            rc = vt_writer_tensor_begin(r->w, &meta, it->plan.aux,
                                        it->plan.aux ? it->plan.cols * sizeof(float) : 0, &it->wt);
            if (!rc) rc = vt_writer_tensor_info(r->w, it->wt, &it->ti);
            if (rc) return vt_fail(rc, "tensor '%s': %s", st->desc.name, vt_last_error());
            if (it->plan.mode == IMP_CONVERT && it->ti.n_chunks) {
                it->sums = vt_calloc(it->ti.n_chunks, sizeof *it->sums);
                if (!it->sums) return vt_fail(-ENOMEM, "out of memory");
            }
            r->job0[k + 1] = r->job0[k] + it->ti.n_chunks;
            r->bytes_total += st->nbytes;
        }
    }
    return 0;
}

static int finish_all(imp_run *r, vt_import_summary *sum) {
    for (uint32_t k = 0; k < r->nt; k++) {
        imp_tensor *it = &r->t[k];
        vt_tensor_metrics m = {NAN, NAN, NAN};
        if (it->plan.mode == IMP_CONVERT) {
            chunk_sums s = {0};
            for (uint64_t c = 0; c < it->ti.n_chunks; c++) {
                s.sx2 += it->sums[c].sx2;
                s.se2 += it->sums[c].se2;
                s.sxy += it->sums[c].sxy;
                s.sy2 += it->sums[c].sy2;
                if (it->sums[c].maxe > s.maxe) s.maxe = it->sums[c].maxe;
            }
            m.sqnr_db = s.se2 > 0 ? 10.0 * log10(s.sx2 / s.se2) : INFINITY;
            m.cosine =
                s.sx2 > 0 && s.sy2 > 0 ? s.sxy / sqrt(s.sx2 * s.sy2) : (s.se2 == 0 ? 1.0 : 0.0);
            m.max_err = s.maxe;
            sum->quantized++;
        } else {
            if (it->plan.src->block_fmt == VT_FMT_COUNT)
                m = (vt_tensor_metrics){INFINITY, 1.0, 0.0};
            sum->kept++;
        }
        int rc = vt_writer_tensor_end(r->w, it->wt, &m);
        if (!rc) rc = vt_writer_tensor_info(r->w, it->wt, &it->ti);
        if (rc) return vt_fail(rc, "tensor '%s': %s", it->ti.name, vt_last_error());
        it->ti.metrics = m;
        sum->tensors++;
        sum->bytes_in += it->plan.src->nbytes;
        sum->bytes_stored += it->ti.stored_bytes;
        if (r->o->on_tensor) r->o->on_tensor(r->o->on_tensor_ctx, &it->ti);
    }
    return 0;
}

int vt_import_file(vt_store *s, const char *path, const vt_import_options *o,
                   vt_import_summary *sum) {
    vt_import_options defaults;
    vt_import_summary local;
    if (!o) {
        vt_import_options_init(&defaults);
        o = &defaults;
    }
    if (!sum) sum = &local;
    memset(sum, 0, sizeof *sum);
    if (!s || !path) return vt_fail(-EINVAL, "vt_import_file: NULL store or path");
    double t0 = vt_now();
    imp_source src;
    imp_awq_stats awq;
    memset(&awq, 0, sizeof awq);
    int rc = imp_source_open(path, o->tensor_name, &src);
    if (rc) return rc;
    if (o->awq_stats_path && (rc = imp_awq_stats_open(o->awq_stats_path, &awq))) {
        imp_source_close(&src);
        return rc;
    }
    imp_run r;
    memset(&r, 0, sizeof r);
    r.o = o;
    r.t0 = t0;
    pthread_mutex_init(&r.mu, NULL);
    for (uint32_t f = 0; f < src.n_files; f++) r.nt += src.files[f].n_tensors;
    r.nthreads = o->nthreads > 0 ? o->nthreads : vt_default_threads();
    r.t = vt_calloc(r.nt ? r.nt : 1, sizeof *r.t);
    r.job0 = vt_calloc(r.nt + 1, sizeof *r.job0);
    r.sc = vt_calloc((size_t)r.nthreads, sizeof *r.sc);
    if (!r.t || !r.job0 || !r.sc) rc = vt_fail(-ENOMEM, "%s: out of memory", path);
    if (!rc) rc = vt_store_writer_begin(s, &r.w);
    if (!rc) rc = declare_all(&r, &src, &awq);
    if (!rc && r.job0[r.nt]) {
        rc = vt_parallel_for(r.job0[r.nt], chunk_task, &r, r.nthreads);
        if (rc) rc = vt_fail(r.err_code ? r.err_code : rc, "%s: %s", path, r.err);
    }
    if (!rc) rc = imp_put_meta(r.w, &src);
    if (!rc) rc = finish_all(&r, sum);
    if (!rc) {
        report(&r, "", 1);
        if (r.err_code) rc = vt_fail(r.err_code, "%s: %s", path, r.err);
    }
    if (!rc) {
        rc = vt_store_writer_commit(r.w);
        r.w = NULL;
        if (rc) rc = vt_fail(rc, "%s: commit failed: %s", path, vt_last_error());
    }
    if (r.w) vt_store_writer_abort(r.w);
    for (uint32_t k = 0; r.t && k < r.nt; k++) {
        imp_plan_free(&r.t[k].plan);
        vt_free(r.t[k].sums);
    }
    for (int i = 0; r.sc && i < r.nthreads; i++) {
        vt_free(r.sc[i].src);
        vt_free(r.sc[i].x);
        vt_free(r.sc[i].y);
        vt_free(r.sc[i].out);
    }
    vt_free(r.sc);
    vt_free(r.t);
    vt_free(r.job0);
    pthread_mutex_destroy(&r.mu);
    sum->files = src.n_files;
    imp_source_close(&src);
    imp_awq_stats_close(&awq);
    sum->seconds = vt_now() - t0;
    if (rc) {
        uint64_t files = sum->files;
        double secs = sum->seconds;
        memset(sum, 0, sizeof *sum);
        sum->files = files;
        sum->seconds = secs;
    }
    return rc;
}
