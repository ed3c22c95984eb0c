/* CPU feature detection, answered once per process: cpuid is slow under virtualisation (a trap
 * to the hypervisor), so hot paths must never issue it per row. */
#include <cpuid.h>
#include <stdatomic.h>

#include "vtstore/core.h"

static _Atomic int cpu_flags = -1;

static int detect(void) {
    int f = 0;
    unsigned a, b, c, d;
    if (__builtin_cpu_supports("avx2")) f |= VT_CPU_AVX2;
    if (__builtin_cpu_supports("fma")) f |= VT_CPU_FMA;
    if (__builtin_cpu_supports("avx512f")) f |= VT_CPU_AVX512F;
    /* clang < 15 has no "f16c" for __builtin_cpu_supports */
    if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C)) f |= VT_CPU_F16C;
    return f;
}

int vt_cpu_features(void) {
    int f = atomic_load_explicit(&cpu_flags, memory_order_relaxed);
    if (f < 0) {
        f = detect();
        atomic_store(&cpu_flags, f);
    }
    return f;
}
