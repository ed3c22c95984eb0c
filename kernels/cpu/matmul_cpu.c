/* kernels/cpu/matmul_cpu.c — fast host kernels: dequantize and fused GEMV (GEMM: gemm_cpu.c). Each
 * row is decoded VT_KC columns at a time into an L1-resident stack buffer (no heap allocation) and
 * consumed at once by the dot products; work is spread over rows with vt_parallel_for. The fused
 * GEMV kernels read x as prepared once per call (vt_kfused_prep: reordered, awq-scaled, padded;
 * a heap buffer freed before the call returns). Small GEMVs run on the calling thread alone. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kern_internal.h"

/* GEMVs with fewer weights x batch than this run on the calling thread only. With the pool's
 * workers spinning between jobs (vt_pool_spin_us > 0, the default) a hand-off costs well under
 * a microsecond and only tiny products stay inline; with sleeping workers a hand-off (a futex
 * wake-up and wait, tens of us in a VM) costs about what it shares of a 1536 x 576 q4_1 product
 * (0.5 MB), so products below 2M weights stay inline. Tuned on the 2-core VM with SmolLM2-135M
 * decode (BENCHMARKS.md, "Model run"); each row is computed the same way on any thread, so the
 * output does not change. VT_GEMV_INLINE_WORK in the environment overrides both. */
#define VT_GEMV_INLINE_SPIN  (64u << 10)
#define VT_GEMV_INLINE_SLEEP (2u << 20)

/* The inline threshold (weights x batch), read once. */
static uint64_t inline_work(void) {
    static _Atomic uint64_t v; /* 0: not read yet; the value + 1 */
    uint64_t w = atomic_load_explicit(&v, memory_order_relaxed);
    if (!w) {
        const char *e = getenv("VT_GEMV_INLINE_WORK");
        w = (e && *e                 ? strtoull(e, NULL, 0)
             : vt_pool_spin_us() > 0 ? VT_GEMV_INLINE_SPIN
                                     : VT_GEMV_INLINE_SLEEP) +
            1;
        atomic_store_explicit(&v, w, memory_order_relaxed);
    }
    return w - 1;
}

/* Rows per task: enough tasks to balance threads, few enough to amortise the hand-out. */
static uint64_t rows_per_task(uint64_t rows, uint64_t cols) {
    uint64_t t = (uint64_t)vt_default_threads() * 8;
    uint64_t r = (rows + t - 1) / t;
    uint64_t min_rows = cols >= 4096 ? 1 : (4096 + cols - 1) / cols;
    if (r < min_rows) r = min_rows;
    return r ? r : 1;
}

/* ---- dequantize ----------------------------------------------------------------------------- */

typedef struct dq_job {
    vt_kdesc d;
    vt_kdecode_fn dec;
    vt_dtype ot;
    void *out;
    uint64_t rpt;
} dq_job;

static int dq_task(void *ctx, uint64_t t, int tid) {
    dq_job *j = ctx;
    float buf[VT_KC];
    uint64_t r1 = (t + 1) * j->rpt < j->d.rows ? (t + 1) * j->rpt : j->d.rows;
    for (uint64_t r = t * j->rpt; r < r1; r++)
        for (uint64_t k0 = 0; k0 < j->d.cols; k0 += VT_KC) {
            uint32_t n = (uint32_t)(j->d.cols - k0 < VT_KC ? j->d.cols - k0 : VT_KC);
            uint64_t o = r * j->d.cols + k0;
            if (j->ot == VT_DTYPE_F32) {
                j->dec(&j->d, r, k0, n, buf);
                memcpy((float *)j->out + o, buf, (size_t)n * 4);
            } else {
                j->dec(&j->d, r, k0, n, buf);
                if (j->ot == VT_DTYPE_F16)
                    vt_f32_to_f16_row(buf, (uint16_t *)j->out + o, n);
                else
                    vt_f32_to_bf16_row(buf, (uint16_t *)j->out + o, n);
            }
        }
    return 0;
}

int vt_cpu_dequant(const vt_weight *w, vt_dtype ot, void *out) {
    dq_job j;
    int rc = vt_kdesc_init(&j.d, w, "vt_dequant");
    if (rc) return rc;
    j.dec = vt_kdecode_get(&j.d, 1);
    j.ot = ot;
    j.out = out;
    j.rpt = rows_per_task(j.d.rows, j.d.cols);
    return vt_parallel_for((j.d.rows + j.rpt - 1) / j.rpt, dq_task, &j, 0);
}

/* ---- GEMV ----------------------------------------------------------------------------------- */

typedef struct gemv_job {
    vt_kdesc d;
    vt_kdecode_fn dec;
    const float *x; /* [batch][cols] as given: the decoded tail columns use it */
    vt_kx xp;       /* x as the fused kernel reads it, prepared once per call */
    float *y;
    int batch, fused;
    uint64_t rpt;
} gemv_job;

static int gemv_task(void *ctx, uint64_t t, int tid) {
    gemv_job *j = ctx;
    float buf[VT_KC];
    const uint64_t cols = j->d.cols, rows = j->d.rows;
    const int B = j->batch;
    uint64_t r1 = (t + 1) * j->rpt < rows ? (t + 1) * j->rpt : rows;
    for (uint64_t r0 = t * j->rpt; r0 < r1; r0 += VT_KFUSE_ROWS) {
        int nr = (int)(r1 - r0 < VT_KFUSE_ROWS ? r1 - r0 : VT_KFUSE_ROWS);
        float acc[VT_KFUSE_ROWS * VT_GEMV_MAX_BATCH] = {0}; /* [nr][B] */
        uint64_t kf = j->fused ? vt_kfused_rows(&j->d, r0, nr, &j->xp, acc) : 0;
        for (int i = 0; i < nr; i++) {
            uint64_t r = r0 + (uint64_t)i;
            for (uint64_t k0 = kf; k0 < cols; k0 += VT_KC) { /* kf: a block multiple */
                uint32_t n = (uint32_t)(cols - k0 < VT_KC ? cols - k0 : VT_KC);
                j->dec(&j->d, r, k0, n, buf);
                for (int b = 0; b < B; b++)
                    acc[i * B + b] += vt_kdot_f32(buf, j->x + b * cols + k0, n);
            }
            for (int b = 0; b < B; b++) j->y[b * rows + r] = acc[i * B + b];
        }
    }
    return 0;
}

int vt_cpu_gemv(const vt_weight *w, const float *x, float *y, int batch) {
    gemv_job j;
    int rc = vt_kdesc_init(&j.d, w, "vt_gemv");
    if (rc) return rc;
    j.dec = vt_kdecode_get(&j.d, 1);
    j.x = x;
    j.y = y;
    j.batch = batch;
    j.fused = !j.d.sparse; /* vt_kfused_rows returns 0 where it has no path */
    j.rpt = rows_per_task(j.d.rows, j.d.cols);
    if (j.fused && vt_kfused_prep(&j.d, x, batch, &j.xp))
        return vt_fail(-ENOMEM, "vt_gemv: no memory for the prepared x (%d x %llu f32)", batch,
                       (unsigned long long)j.d.cols);
    /* small products run on the calling thread: waking the pool costs more than it shares */
    int nt = j.d.rows * j.d.cols * (uint64_t)batch < inline_work() ? 1 : 0;
    rc = vt_parallel_for((j.d.rows + j.rpt - 1) / j.rpt, gemv_task, &j, nt);
    if (j.fused) vt_kfused_unprep(&j.xp);
    return rc;
}
