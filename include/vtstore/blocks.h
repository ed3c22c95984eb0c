/*
 * vtstore/blocks.h — packed block layouts of every stored format, compiled by both the C
 * compiler and nvcc. Each struct's size is checked at compile time; the on-disk spec
 * (docs/FORMAT.md) refers to these definitions.
 *
 * Layout rules shared by all block formats:
 *  - A tensor is viewed as rows x cols (cols = last dimension). Blocks run along a row; each row
 *    is padded with zeros to a whole number of blocks (the pad is never read back: dequantize
 *    writes exactly cols values per row).
 *  - f16 fields are IEEE binary16 bit patterns stored as uint16_t (little-endian on disk).
 *  - nf4_dq groups 256 consecutive 64-element blocks of the row-major padded block sequence into
 *    one super-block (it is the only format whose unit crosses rows; see vt_quant_row_align).
 *  - 2:4 sparsity: per row, the base format's blocks of the compressed row (cols/2 kept values,
 *    cols padded to a multiple of 4 first) followed by the row's index bytes: per group of 4
 *    inputs, two 2-bit indices (first kept < second kept) in one nibble (bits 0-1 the first
 *    index, bits 2-3 the second); group g uses byte g/2, the low nibble when g is even.
 *    Index bytes per row: ceil(ceil(cols/4)/2).
 */
#ifndef VTSTORE_BLOCKS_H
#define VTSTORE_BLOCKS_H

#include <stdint.h>

#if defined(__cplusplus)
#define VT_STATIC_ASSERT(c, m) static_assert(c, m)
#else
#include <assert.h>
#define VT_STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif

/* GGUF Q8_0: x = d * qs[j], d = amax / 127. */
#define VT_QK8_0 32
typedef struct vt_block_q8_0 {
    uint16_t d;          /* f16 scale */
    int8_t qs[VT_QK8_0]; /* [32] */
} vt_block_q8_0;
VT_STATIC_ASSERT(sizeof(vt_block_q8_0) == 34, "q8_0 block size");

/* GGUF Q4_0: x = d * (q - 8); byte j holds element j (low nibble) and j+16 (high nibble). */
#define VT_QK4_0 32
typedef struct vt_block_q4_0 {
    uint16_t d;               /* f16 scale */
    uint8_t qs[VT_QK4_0 / 2]; /* [16] nibbles */
} vt_block_q4_0;
VT_STATIC_ASSERT(sizeof(vt_block_q4_0) == 18, "q4_0 block size");

/* GGUF Q4_1: x = d * q + m; nibble order as q4_0. */
#define VT_QK4_1 32
typedef struct vt_block_q4_1 {
    uint16_t d;               /* f16 scale */
    uint16_t m;               /* f16 minimum */
    uint8_t qs[VT_QK4_1 / 2]; /* [16] */
} vt_block_q4_1;
VT_STATIC_ASSERT(sizeof(vt_block_q4_1) == 20, "q4_1 block size");

/* GGUF K-quants: super-blocks of 256. */
#define VT_QK_K         256
#define VT_K_SCALE_SIZE 12
typedef struct vt_block_q4_k {
    uint16_t d;                      /* f16 super-block scale for the 6-bit scales */
    uint16_t dmin;                   /* f16 super-block scale for the 6-bit mins */
    uint8_t scales[VT_K_SCALE_SIZE]; /* 8 scales + 8 mins, 6 bits each, packed */
    uint8_t qs[VT_QK_K / 2];         /* [128] 4-bit quants */
} vt_block_q4_k;
VT_STATIC_ASSERT(sizeof(vt_block_q4_k) == 144, "q4_k block size");

typedef struct vt_block_q6_k {
    uint8_t ql[VT_QK_K / 2];     /* [128] low 4 bits */
    uint8_t qh[VT_QK_K / 4];     /* [64] high 2 bits */
    int8_t scales[VT_QK_K / 16]; /* [16] 8-bit scales */
    uint16_t d;                  /* f16 super-block scale */
} vt_block_q6_k;
VT_STATIC_ASSERT(sizeof(vt_block_q6_k) == 210, "q6_k block size");

/* int8: symmetric absmax per 64, x = d * qs[j], d = amax / 127 (f32). */
#define VT_QK_INT8 64
typedef struct vt_block_int8 {
    float d;
    int8_t qs[VT_QK_INT8]; /* [64] */
} vt_block_int8;
VT_STATIC_ASSERT(sizeof(vt_block_int8) == 68, "int8 block size");

/* bitsandbytes NF4: x = absmax * NF4[code]; element 2i in the HIGH nibble of byte i, 2i+1 in
 * the low nibble (bitsandbytes' packing). */
#define VT_QK_NF4 64
typedef struct vt_block_nf4 {
    float absmax;
    uint8_t qs[VT_QK_NF4 / 2]; /* [32] */
} vt_block_nf4;
VT_STATIC_ASSERT(sizeof(vt_block_nf4) == 36, "nf4 block size");

/* NF4 with double quantization (QLoRA): 256 blocks of 64 share one super-block.
 * absmax_b = offset + scale * absmax_q[b]  (absmax_q signed 8-bit, scale = max|absmax-offset|/127,
 * offset = mean of the 256 absmax values); codes as nf4. 8456 bytes / 16384 weights = 4.129 b/w. */
#define VT_NF4DQ_GROUP 256
typedef struct vt_block_nf4_dq {
    float offset;                               /* mean of the group's absmax values */
    float scale;                                /* step of the 8-bit absmax codes */
    int8_t absmax_q[VT_NF4DQ_GROUP];            /* [256] */
    uint8_t qs[VT_NF4DQ_GROUP * VT_QK_NF4 / 2]; /* [256*32] codes, block b at qs[32*b] */
} vt_block_nf4_dq;
VT_STATIC_ASSERT(sizeof(vt_block_nf4_dq) == 8456, "nf4_dq super-block size");

/* NVFP4: x = tensor_scale * e4m3(scale) * e2m1(code); element 2i in the LOW nibble. */
#define VT_QK_NVFP4 16
typedef struct vt_block_nvfp4 {
    uint8_t scale;               /* FP8 E4M3 block scale */
    uint8_t qs[VT_QK_NVFP4 / 2]; /* [8] */
} vt_block_nvfp4;
VT_STATIC_ASSERT(sizeof(vt_block_nvfp4) == 9, "nvfp4 block size");

/* MXFP4 (OCP MX): x = 2^(e-127) * e2m1(code); element 2i in the LOW nibble. */
#define VT_QK_MXFP4 32
typedef struct vt_block_mxfp4 {
    uint8_t e;                   /* E8M0 shared scale */
    uint8_t qs[VT_QK_MXFP4 / 2]; /* [16] */
} vt_block_mxfp4;
VT_STATIC_ASSERT(sizeof(vt_block_mxfp4) == 17, "mxfp4 block size");

/* AWQ int4, group 128 along the row, asymmetric: w' = d * (q - z), where w' = w * s[col] and
 * s is the per-input-channel AWQ scale kept in the tensor record; dequantized w = w' / s[col].
 * Element 2i in the LOW nibble. */
#define VT_QK_AWQ 128
typedef struct vt_block_awq {
    uint16_t d;                /* f16 scale */
    uint8_t z;                 /* zero point 0..15 */
    uint8_t pad;               /* 0 */
    uint8_t qs[VT_QK_AWQ / 2]; /* [64] */
} vt_block_awq;
VT_STATIC_ASSERT(sizeof(vt_block_awq) == 68, "awq block size");

#endif /* VTSTORE_BLOCKS_H */
