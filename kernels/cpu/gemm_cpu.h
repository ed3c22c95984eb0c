/* kernels/cpu/gemm_cpu.h — the host GEMM's microkernels, private to kernels/cpu: one register-
 * blocked kernel per ISA (gemm_avx512.c, gemm_avx2.c, the plain C one in gemm_cpu.c) and the
 * transposes that pack decoded weight rows for it. The driver (gemm_cpu.c) owns the blocking.
 *
 * Packed layouts (f32):
 *   X panel: up to MR rows of X interleaved, xp[k * MR + i] = X[m0 + i][k];
 *   W panel: NR weight rows interleaved, wp[k * NR + j] = W[r0 + j][k].
 * A microkernel keeps an mr x NR tile of Y in registers over kc steps of k: per k, one load of
 * NR packed weights (the vector direction is W's rows, so Y's rows are written contiguously)
 * and mr broadcasts of X. */
#ifndef VT_GEMM_CPU_H
#define VT_GEMM_CPU_H

#include <stdint.h>

#include "kern_internal.h"

/* c[i * ldc + j] (+)= sum_{k < kc} xp[k * MR + i] * wp[k * NR + j] for i < mr <= MR, j < NR;
 * adds to c when @p acc, else overwrites it. */
typedef void (*vt_gemm_ukern_fn)(int mr, uint32_t kc, const float *xp, const float *wp, float *c,
                                 uint32_t ldc, int acc);
/* Transpose G decoded rows (rows[g * VT_KC + k], g < G) into columns [0, G) of a W panel with
 * NR columns: wp[k * nr + g] = rows[g * VT_KC + k] for k < kc rounded up to G's multiple (rows
 * holds VT_KC values each). */
typedef void (*vt_gemm_pack_fn)(const float *rows, uint32_t kc, float *wp, uint32_t nr);

typedef struct vt_gemm_isa {
    const char *name;
    int mr, nr; /* tile: rows of X, rows of W (a multiple of g) */
    int g;      /* rows per pack call */
    vt_gemm_ukern_fn ukern;
    vt_gemm_pack_fn pack;
} vt_gemm_isa;

/* The AVX-512F kernels (14 x 32) and the AVX2+FMA ones (6 x 16), x86-64 only: the caller checks
 * the CPU; the plain C ones (4 x 16) run anywhere. */
extern const vt_gemm_isa vt_gemm_isa_avx512, vt_gemm_isa_avx2, vt_gemm_isa_c;
/* The kernels vt_cpu_gemm uses: AVX-512 when vt_kcpu_avx512, else AVX2 when vt_kcpu_avx2, else C.
 */
const vt_gemm_isa *vt_gemm_isa_best(void);
/* vt_cpu_gemm with the given kernels on @p nthreads threads (0: vt_default_threads), for tests
 * and benchmarks. Returns 0, an error of vt_kdesc_init, or -ENOMEM. */
int vt_gemm_cpu_run(const vt_gemm_isa *isa, const vt_weight *w, const void *X, vt_dtype xt, void *Y,
                    vt_dtype yt, uint64_t M, int nthreads);

#endif
