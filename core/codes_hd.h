/* core/codes_hd.h — scalar 4-bit code searches shared by the host library and the CUDA kernels
 * (private). Plain comparisons only, so the host and device builds (--use_fast_math included)
 * pick the same code: core/dtype.c (vt_f32_to_e2m1), quant/nf4_codes.h (the NF4 reference search)
 * and kernels/cuda/attn_quant.cuh (the GPU KV cache append) all call these. */
#ifndef VT_CORE_CODES_HD_H
#define VT_CORE_CODES_HD_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define VT_CODES_FN static inline __host__ __device__
#else
#define VT_CODES_FN static inline
#endif

/* Nearest FP4 E2M1 code of f (sign in bit 3); ties go to the even code; NaN maps to 0. */
VT_CODES_FN uint8_t vt_e2m1_code(float f) {
    uint8_t sign = signbit(f) ? 8 : 0;
    float a = fabsf(f);
    uint8_t c;
    if (!(a > 0.25f))
        c = 0;
    else if (a < 0.75f)
        c = 1;
    else if (a <= 1.25f)
        c = 2;
    else if (a < 1.75f)
        c = 3;
    else if (a <= 2.5f)
        c = 4;
    else if (a < 3.5f)
        c = 5;
    else if (a <= 5.0f)
        c = 6;
    else
        c = 7;
    return sign | c;
}

/* NF4 code of x (already divided by the block absmax): bitsandbytes' dQuantizeNF4 decision tree
 * (csrc/kernels.cu), verbatim in structure. Each threshold is the midpoint (computed in double,
 * rounded to float) of two neighbouring code values; `x > t` picks the upper code. */
VT_CODES_FN uint8_t vt_nf4_code_ref(float x) {
    if (x > 0.03979014977812767f) {
        if (x > 0.3893125355243683f) {
            if (x > 0.6427869200706482f) return x > 0.8614784181118011f ? 15 : 14;
            return x > 0.5016634166240692f ? 13 : 12;
        }
        if (x > 0.2035212516784668f) return x > 0.2920137718319893f ? 11 : 10;
        return x > 0.1202552504837513f ? 9 : 8;
    }
    if (x > -0.33967943489551544f) {
        if (x > -0.13791173323988914f) return x > -0.045525018125772476f ? 7 : 6;
        return x > -0.23460740596055984f ? 5 : 4;
    }
    if (x > -0.6106329262256622f) return x > -0.4599952697753906f ? 3 : 2;
    return x > -0.8480964004993439f ? 1 : 0;
}

#endif
