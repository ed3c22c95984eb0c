/* kernels/cpu/gemm_cpu.c — host GEMM, Y = X W^T with W in any stored format, f32 accumulation.
 *
 * Blocking (names as in gemm_cpu.h; MR x NR is the microkernel's register tile). X is packed once
 * per call, in chunks of at most GEMM_MCH rows: each MR-row panel interleaved over the whole depth
 * (f16 X converted here), so the microkernel broadcasts from one contiguous stream.
 *
 * A task owns GEMM_NC weight rows (fewer for short weights, down to 32, so that each thread gets
 * several tasks; when there are still too few, also a share of the X panels). Per VT_KC columns
 * it decodes its rows once with the fast row decoders, G rows at a time into a small buffer (L1),
 * transposed into NR-row W panels (GEMM_NC x VT_KC f32, 256 KiB: L2), then runs the microkernel
 * for every X panel (MR x VT_KC, reused from L1 across the W panels) against every W panel,
 * accumulating the partial sums in a per-thread f32 tile C [rows of X][GEMM_NC]. After the last
 * columns C is written to Y (f32, or f16 rounded once), so every element of Y is written exactly
 * once.
 *
 * Each W element is decoded once per X chunk, instead of once per (weight row, X row) pair. All
 * scratch is allocated per call (one block per thread) and freed on every path. */
#include <errno.h>
#include <string.h>

#include "gemm_cpu.h"

#define GEMM_NC  128  /* most weight rows per task (a multiple of every NR) */
#define GEMM_MCH 1024 /* most X rows packed at once (bounds the X and C scratch) */
#define GEMM_ALN 64   /* scratch alignment (a cache line, a zmm) */

/* ---- plain C microkernel (4 x 16) ----------------------------------------------------------- */

enum { C_MR = 4, C_NR = 16 };

static void ukern_c(int mr, uint32_t kc, const float *xp, const float *wp, float *c, uint32_t ldc,
                    int acc) {
    float a[C_MR][C_NR];
    memset(a, 0, sizeof a);
    for (uint32_t k = 0; k < kc; k++, xp += C_MR, wp += C_NR)
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < C_NR; j++) a[i][j] += xp[i] * wp[j];
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < C_NR; j++) c[i * ldc + j] = (acc ? c[i * ldc + j] : 0.0f) + a[i][j];
}

static void pack_c(const float *rows, uint32_t kc, float *wp, uint32_t nr) {
    for (uint32_t g = 0; g < C_NR; g++)
        for (uint32_t k = 0; k < kc; k++) wp[(uint64_t)k * nr + g] = rows[g * VT_KC + k];
}

const vt_gemm_isa vt_gemm_isa_c = {"c 4x16", C_MR, C_NR, C_NR, ukern_c, pack_c};

const vt_gemm_isa *vt_gemm_isa_best(void) {
#if defined(__x86_64__)
    if (vt_kcpu_avx512()) return &vt_gemm_isa_avx512;
    if (vt_kcpu_avx2()) return &vt_gemm_isa_avx2;
#endif
    return &vt_gemm_isa_c;
}

/* ---- driver --------------------------------------------------------------------------------- */

typedef struct gemm_job {
    const vt_gemm_isa *isa;
    vt_kdesc d;
    vt_kdecode_fn dec;
    const void *X;
    vt_dtype xt, yt;
    void *Y;
    uint64_t m0, mc;     /* X rows of the current chunk */
    uint64_t npm;        /* X panels in the chunk */
    uint32_t nc;         /* weight rows per task: GEMM_NC, less for short weights */
    uint64_t nblk, nspl; /* row blocks; X-panel shares per block */
    float *xp;           /* [npm][cols][MR] */
    uint8_t *scr;        /* per-thread scratch, stride scr_bytes */
    size_t scr_bytes, tmp_off, wp_off, c_off;
} gemm_job;

static size_t align_up(size_t n) {
    return (n + GEMM_ALN - 1) / GEMM_ALN * GEMM_ALN;
}

/* X panel t of the chunk: xp[t][k][i] = X[m0 + t * MR + i][k], i < the panel's rows. */
static int pack_x_task(void *ctx, uint64_t t, int tid) {
    gemm_job *j = ctx;
    const uint64_t K = j->d.cols, MR = (uint64_t)j->isa->mr, r0 = j->m0 + t * MR;
    uint64_t mr = j->mc - t * MR < MR ? j->mc - t * MR : MR;
    float *xp = j->xp + t * K * MR;
    for (uint64_t i = 0; i < mr; i++) {
        if (j->xt == VT_DTYPE_F32) {
            const float *x = (const float *)j->X + (r0 + i) * K;
            for (uint64_t k = 0; k < K; k++) xp[k * MR + i] = x[k];
        } else { /* converted by runs (the row converter is vectorised) */
            const uint16_t *x = (const uint16_t *)j->X + (r0 + i) * K;
            float buf[256];
            for (uint64_t k0 = 0; k0 < K; k0 += 256) {
                size_t n = K - k0 < 256 ? (size_t)(K - k0) : 256;
                vt_f16_to_f32_row(x + k0, buf, n);
                for (size_t k = 0; k < n; k++) xp[(k0 + k) * MR + i] = buf[k];
            }
        }
    }
    return 0;
}

static int gemm_task(void *ctx, uint64_t t, int tid) {
    gemm_job *j = ctx;
    const vt_gemm_isa *isa = j->isa;
    const uint64_t K = j->d.cols, rows = j->d.rows;
    const uint32_t NR = (uint32_t)isa->nr, MR = (uint32_t)isa->mr, G = (uint32_t)isa->g;
    uint8_t *s = j->scr + (size_t)tid * j->scr_bytes;
    float *tmp = (float *)(s + j->tmp_off), *wp = (float *)(s + j->wp_off);
    float *c = (float *)(s + j->c_off);
    const uint64_t blk = t / j->nspl, spl = t % j->nspl;
    const uint64_t r0 = blk * j->nc, p0 = spl * j->npm / j->nspl, p1 = (spl + 1) * j->npm / j->nspl;
    const uint32_t nc = (uint32_t)(rows - r0 < j->nc ? rows - r0 : j->nc);
    const uint32_t npan = (nc + NR - 1) / NR;
    for (uint64_t k0 = 0; k0 < K; k0 += VT_KC) {
        uint32_t kc = (uint32_t)(K - k0 < VT_KC ? K - k0 : VT_KC);
        for (uint32_t g0 = 0; g0 < npan * NR; g0 += G) {
            for (uint32_t g = 0; g < G; g++) {
                if (g0 + g < nc)
                    j->dec(&j->d, r0 + g0 + g, k0, kc, tmp + (size_t)g * VT_KC);
                else
                    memset(tmp + (size_t)g * VT_KC, 0, VT_KC * sizeof(float));
            }
            isa->pack(tmp, kc, wp + (size_t)(g0 / NR) * NR * VT_KC + g0 % NR, NR);
        }
        for (uint64_t p = p0; p < p1; p++) {
            uint64_t m = p * MR;
            int mr = (int)(j->mc - m < MR ? j->mc - m : MR);
            const float *xs = j->xp + (p * K + k0) * MR;
            float *cp = c + (m - p0 * MR) * GEMM_NC;
            for (uint32_t q = 0; q < npan; q++)
                isa->ukern(mr, kc, xs, wp + (size_t)q * NR * VT_KC, cp + q * NR, GEMM_NC, k0 > 0);
        }
    }
    uint64_t m1 = p1 * MR < j->mc ? p1 * MR : j->mc;
    for (uint64_t m = p0 * MR; m < m1; m++) {
        const float *cr = c + (m - p0 * MR) * GEMM_NC;
        uint64_t yo = (j->m0 + m) * rows + r0;
        if (j->yt == VT_DTYPE_F32)
            memcpy((float *)j->Y + yo, cr, (size_t)nc * sizeof(float));
        else
            vt_f32_to_f16_row(cr, (uint16_t *)j->Y + yo, nc);
    }
    return 0;
}

int vt_gemm_cpu_run(const vt_gemm_isa *isa, const vt_weight *w, const void *X, vt_dtype xt, void *Y,
                    vt_dtype yt, uint64_t M, int nthreads) {
    gemm_job j;
    memset(&j, 0, sizeof j);
    int rc = vt_kdesc_init(&j.d, w, "vt_gemm");
    if (rc) return rc;
    if (nthreads <= 0) nthreads = vt_default_threads();
    j.isa = isa;
    j.dec = vt_kdecode_get(&j.d, 1);
    j.X = X;
    j.xt = xt;
    j.yt = yt;
    j.Y = Y;
    const uint64_t K = j.d.cols, MR = (uint64_t)isa->mr;
    /* X chunks of equal size (a multiple of MR, the last one shorter) */
    const uint64_t nch = (M + GEMM_MCH / MR * MR - 1) / (GEMM_MCH / MR * MR);
    const uint64_t mch = ((M + nch - 1) / nch + MR - 1) / MR * MR;
    const uint64_t npm_max = mch / MR;
    /* smaller row blocks for short weights, so that every thread gets several */
    j.nc = GEMM_NC;
    while (j.nc > 32 && (j.d.rows + j.nc - 1) / j.nc < 4 * (uint64_t)nthreads) j.nc /= 2;
    j.nblk = (j.d.rows + j.nc - 1) / j.nc;
    /* no scratch for threads that could not get a task */
    if ((uint64_t)nthreads > j.nblk * npm_max) nthreads = (int)(j.nblk * npm_max);
    j.tmp_off = 0;
    j.wp_off = align_up((size_t)isa->g * VT_KC * sizeof(float));
    j.c_off = j.wp_off + align_up((size_t)GEMM_NC * VT_KC * sizeof(float));
    j.scr_bytes = j.c_off + align_up((size_t)(npm_max * MR) * GEMM_NC * sizeof(float));
    size_t xp_bytes = (size_t)(npm_max * MR * K) * sizeof(float);
    j.scr = vt_malloc_aligned(GEMM_ALN, j.scr_bytes * (size_t)nthreads);
    j.xp = vt_malloc_aligned(GEMM_ALN, xp_bytes);
    if (!j.scr || !j.xp) {
        vt_free_aligned(j.scr);
        vt_free_aligned(j.xp);
        return vt_fail(-ENOMEM, "vt_gemm: no memory for %zu bytes of GEMM scratch",
                       j.scr_bytes * (size_t)nthreads + xp_bytes);
    }
    /* decoded tails of partial rows are read (never used) by the transposes: keep them defined */
    for (int t = 0; t < nthreads; t++) memset(j.scr + (size_t)t * j.scr_bytes, 0, j.wp_off);
    for (j.m0 = 0; j.m0 < M && !rc; j.m0 += j.mc) {
        j.mc = M - j.m0 < mch ? M - j.m0 : mch;
        j.npm = (j.mc + MR - 1) / MR;
        /* too few row blocks for the threads: also split the X panels (each share decodes its
         * own copy of W, so only as far as needed) */
        j.nspl = 1;
        while (j.nblk * j.nspl < 4 * (uint64_t)nthreads && j.npm >= 4 * j.nspl) j.nspl *= 2;
        rc = vt_parallel_for(j.npm, pack_x_task, &j, nthreads);
        if (!rc) rc = vt_parallel_for(j.nblk * j.nspl, gemm_task, &j, nthreads);
    }
    vt_free_aligned(j.scr);
    vt_free_aligned(j.xp);
    return rc;
}

int vt_cpu_gemm(const vt_weight *w, const void *X, vt_dtype xt, void *Y, vt_dtype yt, uint64_t M) {
    return vt_gemm_cpu_run(vt_gemm_isa_best(), w, X, xt, Y, yt, M, 0);
}
