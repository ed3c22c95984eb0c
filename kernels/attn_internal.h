/* kernels/attn_internal.h — private pieces of the attention module (not public): the KV cache
 * struct, the K/V row codec shared by the CPU kernels and the cache, and the C entry points of
 * the CUDA attention kernels (kernels/cuda/attn_*.cu, present only with VT_HAVE_CUDA). */
#ifndef VT_ATTN_INTERNAL_H
#define VT_ATTN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "vtstore/attn.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vt_kv_cache {
    vt_kv_cache_config cfg;
    uint64_t row_bytes; /* stored bytes of one token's head vector */
    uint64_t len;       /* tokens held */
    void *k, *v;        /* [n_kv_heads][capacity][row_bytes], host or device */
    /* device caches: the first value an append could not hold (vt_kv_cache_check) */
    void *bad;           /* device uint64: the smallest VT_KV_BAD key flagged (all ones: none) */
    uint64_t epoch;      /* vt_kv_cache_reset's count: keys of earlier epochs are stale */
    uint64_t flag_block; /* the block of 4096 epochs whose keys the flag word may hold */
    uint64_t *starts;    /* the first token of each append since the last check or reset */
    size_t nstarts, capstarts;
};

/* A device append's flag: one 64-bit key per value the host append would refuse, of which the
 * append kernel keeps the smallest (atomicMin), so that the first token flagged wins (then K
 * before V, head, column; a NaN/Inf before a range error at the same place). From the top bit:
 * [4095 - epoch mod 4096: 12][token: 32][V: 1][head: 11][column: 7][range: 1]. A reset's newer
 * epoch gives smaller keys, so a stale key hides no new one within a block of 4096 epochs; the
 * first device append of another block clears the word on its stream first (vt_kv_flag_stale),
 * so the word never holds keys of two blocks, and a check before that append ignores the word
 * (vt_kv_flag_current). (Before 2026-11-27 the word was not cleared: where the epoch passed a
 * multiple of 4096, a stale key of epoch 4095 mod 4096 beat every new key and hid the report.)
 * Appends on several streams must be ordered by the caller, as for the cache's rows. A device
 * cache has at most 2^32 - 1 tokens, 2048 heads and head_dim 128 (vt_kv_cache_create refuses
 * more). */
#define VT_KV_BAD_NONE       UINT64_MAX
#define VT_KV_BAD_MAX_TOKENS 0xffffffffull
#define VT_KV_BAD_MAX_HEADS  2048u
#define VT_KV_BAD_KEY(epoch, token, is_v, head, col, range)                                        \
    ((unsigned long long)(4095u - ((unsigned)(epoch)&4095u)) << 52 |                               \
     ((unsigned long long)(token)&0xffffffffull) << 20 | (unsigned long long)((is_v) != 0) << 19 | \
     (unsigned long long)((unsigned)(head)&2047u) << 8 |                                           \
     (unsigned long long)((unsigned)(col)&127u) << 1 | (unsigned long long)((range) != 0))

/* The fields of a VT_KV_BAD_KEY (its epoch mod 4096). */
typedef struct vt_kv_bad {
    uint32_t epoch, head, col;
    uint64_t token;
    int is_v, range;
} vt_kv_bad;

static inline vt_kv_bad vt_kv_bad_decode(uint64_t key) {
    vt_kv_bad b;
    b.epoch = (uint32_t)(4095u - (key >> 52));
    b.token = key >> 20 & 0xffffffffull;
    b.is_v = (int)(key >> 19 & 1);
    b.head = (uint32_t)(key >> 8 & 2047u);
    b.col = (uint32_t)(key >> 1 & 127u);
    b.range = (int)(key & 1);
    return b;
}

/* 1 when the flag word may hold keys of a block of epochs other than @p epoch's: the next device
 * append clears it (to VT_KV_BAD_NONE) on its stream before its kernels and sets flag_block. */
static inline int vt_kv_flag_stale(uint64_t epoch, uint64_t flag_block) {
    return epoch >> 12 != flag_block;
}

/* 1 when @p key, read from the flag word, names a value appended in the current @p epoch. */
static inline int vt_kv_flag_current(uint64_t key, uint64_t epoch, uint64_t flag_block) {
    return key != VT_KV_BAD_NONE && !vt_kv_flag_stale(epoch, flag_block) &&
           vt_kv_bad_decode(key).epoch == (uint32_t)(epoch & 4095u);
}

/* ---- K/V row codec (kernels/cpu/attn_kvcodec.c) ------------------------------------------- */

/** Name of a format for messages ("q8_0"; thread-local buffer). */
const char *vt_attn_fmt_name(uint32_t fmt);

/** Quantize @p rows contiguous rows of @p d f32 values (vt_quantize on one thread): 0 or the
 *  quant module's code (VT_ENONFINITE names row and column). */
int vt_attn_kv_quantize_rows(uint32_t fmt, const float *x, uint64_t rows, uint32_t d,
                             float tensor_scale, void *dst);

/** Dequantize @p rows contiguous stored rows into rows x d f32 values (one thread). */
int vt_attn_kv_dequantize_rows(uint32_t fmt, const void *src, uint64_t rows, uint32_t d,
                               float tensor_scale, float *y);

/** Bytes between heads of a descriptor (head_stride or n_tokens packed rows). */
uint64_t vt_attn_kv_head_stride(const vt_attn_kv *kv);

/** Check Q/O/K/V descriptors shared by every path. Returns 0 or a code with vt_fail detail. */
int vt_attn_validate(const vt_attn_params *p);

/* ---- CPU kernels (kernels/cpu/attn_naive.c, attn_flash.c) --------------------------------- */

/** Reference: materialises the [Nq][Nk] scores of each head; @p f64 does all math in double. */
int vt_attn_cpu_naive(const vt_attn_params *p, int f64);
/** Tiled flash attention with online softmax, K/V dequantized per tile, threaded. */
int vt_attn_cpu_flash(const vt_attn_params *p);

/* ---- CUDA (kernels/cuda/attn_*.cu) -------------------------------------------------------- */

/* Kernel arguments, filled by the C dispatcher (so the CUDA library never calls back into
 * vt_kernels) and passed by value to the kernels. Plain C types only. */
typedef struct vt_attn_dev_args {
    const void *q;        /* [H][nq][D] */
    int q_dtype;          /* vt_dtype: f32, f16 or bf16 */
    const uint8_t *k, *v; /* [Hkv][..][row_bytes] */
    long long head_stride, row_bytes;
    int H, Hkv, group, D;
    uint32_t fmt;
    long long nq, nk;
    int causal;
    float scale_log2; /* softmax scale * log2(e) */
    float ts;         /* nvfp4 tensor scale */
    void *o;          /* [H][nq][D] */
    int o_dtype;      /* f32 or f16 */
    float *lse;       /* [H][nq] or NULL */
    void *ws;         /* decode split workspace (caller's device memory) or NULL: one split */
    size_t ws_bytes;  /* bytes at ws */
} vt_attn_dev_args;

#if defined(VT_HAVE_CUDA) || defined(__CUDACC__)
/** The kernels' arguments for @p p (valid shapes: H % Hkv == 0, Hkv > 0) with softmax scale
 *  @p scale (already resolved from 0). Pointers are copied as they are. */
void vt_attn_dev_args_fill(const vt_attn_params *p, float scale, vt_attn_dev_args *a);
/** 1 when the GPU call takes the split-KV decode kernel (algo DECODE, or AUTO with at most 16
 *  query rows per K/V head), 0 for the prefill kernel. */
int vt_attn_takes_decode(const vt_attn_params *p);
/** Number of CUDA devices (0 when none or the driver is missing). */
int vt_attn_cuda_device_count(void);
/** Device allocation with every byte @p fill (0 for K/V; 0xff for the flag word: all ones is
 *  VT_KV_BAD_NONE); VT_ENODEV, -ENOMEM or VT_ECUDA with detail. */
int vt_attn_cuda_alloc(void **p, size_t n, int fill);
void vt_attn_cuda_free(void *p);
/** The device flag word: read it after synchronizing @p stream and set it to VT_KV_BAD_NONE
 *  again (VT_ECUDA with detail). */
int vt_attn_cuda_bad_take(void *p, void *stream, uint64_t *key);
/** Set the flag word to VT_KV_BAD_NONE, queued on @p stream (VT_ECUDA with detail). */
int vt_attn_cuda_bad_clear(void *p, void *stream);
/** Tensor-core prefill kernel (D 64/128), queued on @p stream. */
int vt_attn_cuda_prefill(const vt_attn_dev_args *a, void *stream);
/** Split-KV decode kernel + combine (@p num_splits 0 = from the SM count). The partials of
 *  several splits go to a->ws; with a->ws NULL it runs one split; VT_EBUDGET when a->ws_bytes
 *  is too small. Allocates nothing. */
int vt_attn_cuda_decode(const vt_attn_dev_args *a, int num_splits, void *stream);
/** Workspace bytes vt_attn_cuda_decode needs for @p num_splits at most (an upper bound over
 *  the split plan, non-decreasing in a->nk; 0 for one split). Reads H, Hkv, group, D, nq, nk. */
size_t vt_attn_cuda_decode_ws_bytes(const vt_attn_dev_args *a, int num_splits);
/** Quantize n_tokens rows per head of k/v (device, f32 or f16 [Hkv][n][D]) into the cache
 *  rows [len, len + n) (the caller advances len); values the host append would refuse are
 *  flagged at c->bad (vt_kv_bad_key). */
int vt_attn_cuda_append(const vt_kv_cache *c, const void *k, const void *v, vt_dtype dtype,
                        uint64_t n_tokens, void *stream);
#endif

#ifdef __cplusplus
}
#endif
#endif
