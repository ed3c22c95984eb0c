/* quant/qrow_common.h — helpers shared by the block formats of quant-A: walking a row block by
 * block with the zero padding of the last, partial block (blocks.h), and CPU feature checks. */
#ifndef VT_QROW_COMMON_H
#define VT_QROW_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "quant_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define VT_QA_X86 1
/* 1 if the running CPU has AVX2 (the fast paths below use AVX2 without FMA: contracting a
 * multiply and an add would change the rounding against the reference). */
static inline int vt_qa_have_avx2(void) {
    return __builtin_cpu_supports("avx2");
}
#else
static inline int vt_qa_have_avx2(void) {
    return 0;
}
#endif

#define VT_QA_MAX_BLOCK 256

/* Blocks may sit at any byte offset (a 2:4 sparse row's index bytes can make the next row's
 * blocks odd-aligned), so fields are reached through byte pointers, never struct members. */
#define VT_QA_F(T, p, f)  ((uint8_t *)(p) + offsetof(T, f))
#define VT_QA_CF(T, p, f) ((const uint8_t *)(p) + offsetof(T, f))

typedef void (*vt_qa_qblock_fn)(const float *x, void *y);
typedef void (*vt_qa_dqblock_fn)(const void *x, float *y);

/* Quantize the blocks of one row from block index @p b0 on (the full ones in place, the last
 * partial one from a zero-padded copy). */
static inline void vt_qa_quantize_row(const float *x, void *dst, uint64_t cols, uint64_t b0,
                                      uint32_t qk, uint32_t bb, vt_qa_qblock_fn fn) {
    uint8_t *y = dst;
    uint64_t nfull = cols / qk;
    for (uint64_t b = b0; b < nfull; b++) fn(x + b * qk, y + b * bb);
    uint64_t rem = cols - nfull * qk;
    if (rem) {
        float tmp[VT_QA_MAX_BLOCK];
        memset(tmp, 0, sizeof tmp);
        memcpy(tmp, x + nfull * qk, rem * sizeof(float));
        fn(tmp, y + nfull * bb);
    }
}

/* Dequantize the blocks of one row from block index @p b0 on, writing exactly cols values. */
static inline void vt_qa_dequantize_row(const void *src, float *y, uint64_t cols, uint64_t b0,
                                        uint32_t qk, uint32_t bb, vt_qa_dqblock_fn fn) {
    const uint8_t *s = src;
    uint64_t nfull = cols / qk;
    for (uint64_t b = b0; b < nfull; b++) fn(s + b * bb, y + b * qk);
    uint64_t rem = cols - nfull * qk;
    if (rem) {
        float tmp[VT_QA_MAX_BLOCK];
        fn(s + nfull * bb, tmp);
        memcpy(y + nfull * qk, tmp, rem * sizeof(float));
    }
}

#endif
