/* kernels/cpu/gemv_fused.c — choice of the fused GEMV kernel for the 4-bit formats: the AVX-512
 * kernel (gemv_fused_avx512.c, also q6_k, q8_0 and int8) when the CPU has AVX-512F, else the
 * AVX2/FMA one (gemv_fused_avx2x4.c, 4-bit only), else none (the caller decodes and dots). CPU
 * features come from the cached vt_cpu_features()/vt_kcpu_avx2(), never cpuid per call. */
#include <stdlib.h>
#include <string.h>

#include "kern_internal.h"

int vt_kcpu_avx512(void) {
    /* every thread computes the same answer; atomic so that the check is not a data race */
    static int cached = -1;
    int c = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (c < 0) {
        const char *e = getenv("VT_KERNELS_AVX512");
        int off = e && strcmp(e, "0") == 0;
        c = !off && vt_kcpu_avx2() && (vt_cpu_features() & VT_CPU_AVX512F) != 0;
        __atomic_store_n(&cached, c, __ATOMIC_RELAXED);
    }
    return c;
}

uint64_t vt_kfused_rows(const vt_kdesc *d, uint64_t r0, int nr, const float *x, int batch,
                        float *out) {
    if (d->sparse) return 0;
    if (vt_kcpu_avx512()) return vt_kfused_rows512(d, r0, nr, x, batch, out);
    if (vt_kcpu_avx2()) return vt_kfused_rows_avx2(d, r0, nr, x, batch, out);
    return 0;
}
