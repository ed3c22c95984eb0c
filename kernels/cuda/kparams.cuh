/* kernels/cuda/kparams.cuh — the by-value kernel parameters built from a vt_kdesc, row
 * addressing, byte staging into shared memory with 16-byte loads, and the run-time format to
 * template dispatch shared by dequant.cu, gemv.cu and gemm.cu. */
#ifndef VT_KPARAMS_CUH
#define VT_KPARAMS_CUH

#include <stdint.h>

#include "dequant_dev.cuh"
#include "kern_internal.h"

struct vt_kp {
    const uint8_t *data; /* device bytes of the handle */
    uint64_t bytes;      /* valid bytes at data (loads never go past) */
    uint64_t rows, cols, row_bytes, bpr, ccols, idx_off;
    float tensor_scale;
    const float *aux;
};

static inline vt_kp vt_kp_from(const vt_kdesc *d) {
    vt_kp p;
    p.data = d->data;
    p.rows = d->rows;
    p.cols = d->cols;
    p.row_bytes = d->row_bytes;
    p.bpr = d->bpr;
    p.ccols = d->ccols;
    p.idx_off = d->idx_off;
    p.tensor_scale = d->tensor_scale;
    p.aux = d->aux;
    uint32_t fmt = d->fmt | (d->sparse ? VT_FMT_SPARSE24 : 0u);
    p.bytes = vt_quant_bytes(fmt, d->rows, d->cols);
    return p;
}

/* Units (32 values) of a dense row; compressed units (64 dense columns) of a sparse row. */
__host__ __device__ inline uint64_t vt_units(uint64_t cols) {
    return (cols + 31) / 32;
}
__host__ __device__ inline uint64_t vt_sparse_units(uint64_t cols) {
    return (cols + 63) / 64;
}

/* The byte end, in a row of `units` units whose bytes (of the kind unit offsets count) end at
 * limit, of the units before u1: the end of the block holding unit u1 - 1 (the start of u1's
 * block when u1 starts one; past u1's start when a block holds more than one unit and u1 is
 * inside it), or limit from the last unit on; never past limit. A tile of units [u0, u1) of a
 * row is bytes [vt_dq_unit_off(u0), this). */
template <int F> VT_HD uint64_t vt_units_end(uint64_t u1, uint64_t units, uint64_t limit) {
    constexpr int BE = vt_fmt_traits<F>::BE, BB = vt_fmt_traits<F>::BB;
    const uint64_t e = u1 >= units ? limit
                       : BE > 32   ? (u1 * 32 + BE - 1) / BE * BB
                                   : vt_dq_unit_off<F>(u1);
    return e < limit ? e : limit;
}

/* Where staging the units of row r from u0 on (vt_stage / vt_stage_async from byte *b0 =
 * vt_dq_unit_off(u0) of the row) puts that first byte in shared memory: its misalignment. */
template <int F> VT_HD uint32_t vt_stage_at(const vt_kp &p, uint64_t r, uint64_t u0, uint64_t *b0) {
    *b0 = vt_dq_unit_off<F>(u0);
    return (uint32_t)((uintptr_t)(p.data + r * p.row_bytes + *b0) & 15);
}

/* The 16 bytes at ca (16-byte aligned) of the buffer [lo, hi): one load when they lie inside it,
 * else byte by byte with bytes outside it as 0 (only at the buffer's ends). */
VT_HD uint4 vt_stage_ld(uintptr_t ca, uintptr_t lo, uintptr_t hi) {
    uint4 q;
    if (ca >= lo && ca + 16 <= hi) {
#ifdef __CUDA_ARCH__
        q = __ldg((const uint4 *)ca);
#else
        q = *(const uint4 *)ca;
#endif
    } else {
        uint8_t b[16];
        for (int i = 0; i < 16; i++)
            b[i] = ca + i >= lo && ca + i < hi ? *(const uint8_t *)(ca + i) : 0;
        memcpy(&q, b, 16);
    }
    return q;
}

/* Copy bytes [off, off + len) of the buffer (base, total) into smem with aligned 16-byte loads
 * (bytewise only where a 16-byte chunk would leave the buffer; bytes outside it staged as 0).
 * Threads tid of nthr share the work, four chunks per thread loaded before any is stored so
 * that they are in flight together (a load-store loop waited for each load in turn). Returns
 * the offset in smem where byte off landed (off's misalignment, 0..15); smem must hold
 * len + 32 bytes. The caller synchronizes afterwards. */
VT_HD uint32_t vt_stage(uint8_t *smem, const uint8_t *base, uint64_t total, uint64_t off,
                        uint32_t len, int tid, int nthr) {
    uintptr_t a = (uintptr_t)(base + off), a0 = a & ~(uintptr_t)15;
    uintptr_t lo = (uintptr_t)base, hi = (uintptr_t)(base + total);
    uint32_t nch = (uint32_t)((a + len - a0 + 15) / 16);
    for (uint32_t c = tid; c < nch; c += 4 * (uint32_t)nthr) {
        uint4 q[4];
        VT_UNROLL
        for (int i = 0; i < 4; i++)
            if (c + i * nthr < nch) q[i] = vt_stage_ld(a0 + 16 * (uintptr_t)(c + i * nthr), lo, hi);
        VT_UNROLL
        for (int i = 0; i < 4; i++)
            if (c + i * nthr < nch) *(uint4 *)(smem + 16 * (c + i * nthr)) = q[i];
    }
    return (uint32_t)(a - a0);
}

/* vt_stage by cp.async through the thread context cx (cx.cp16: 16 bytes global -> shared,
 * landing by the thread's cp.async wait_group): the 16-byte chunks inside the buffer as async
 * copies, the chunks at the buffer's ends byte by byte at once (bytes outside it as 0). Same
 * layout and return value as vt_stage; no registers hold the data in flight. */
#pragma nv_exec_check_disable
template <class CX>
VT_HD uint32_t vt_stage_async(CX &cx, uint8_t *smem, const uint8_t *base, uint64_t total,
                              uint64_t off, uint32_t len, int tid, int nthr) {
    uintptr_t a = (uintptr_t)(base + off), a0 = a & ~(uintptr_t)15;
    uintptr_t lo = (uintptr_t)base, hi = (uintptr_t)(base + total);
    uint32_t nch = (uint32_t)((a + len - a0 + 15) / 16);
    for (uint32_t c = tid; c < nch; c += (uint32_t)nthr) {
        const uintptr_t ca = a0 + 16 * (uintptr_t)c;
        if (ca >= lo && ca + 16 <= hi)
            cx.cp16(smem + 16 * c, (const void *)ca, true);
        else
            *(uint4 *)(smem + 16 * c) = vt_stage_ld(ca, lo, hi);
    }
    return (uint32_t)(a - a0);
}

/* Call f.template operator()<FMT>() for the run-time base format. */
#define VT_FMT_CASE(F)                                                                             \
    case F:                                                                                        \
        return f.template run<F>();
template <class Fn> static inline int vt_fmt_dispatch(uint32_t fmt, Fn &f) {
    switch (fmt) {
        VT_FMT_CASE(VT_FMT_F32)
        VT_FMT_CASE(VT_FMT_F16)
        VT_FMT_CASE(VT_FMT_BF16)
        VT_FMT_CASE(VT_FMT_Q8_0)
        VT_FMT_CASE(VT_FMT_Q4_0)
        VT_FMT_CASE(VT_FMT_Q4_1)
        VT_FMT_CASE(VT_FMT_Q4_K)
        VT_FMT_CASE(VT_FMT_Q6_K)
        VT_FMT_CASE(VT_FMT_INT8)
        VT_FMT_CASE(VT_FMT_NF4)
        VT_FMT_CASE(VT_FMT_NF4_DQ)
        VT_FMT_CASE(VT_FMT_NVFP4)
        VT_FMT_CASE(VT_FMT_MXFP4)
        VT_FMT_CASE(VT_FMT_AWQ_INT4)
    default:
        return vt_fail(VT_EUNSUPPORTED, "CUDA kernels: format %u", fmt);
    }
}
#undef VT_FMT_CASE

/* Decode 64 dense columns [64 h, 64 h + 64) of row r into v (zeros at columns >= cols), for
 * any format and layout, reading global memory directly. Used where staging does not apply
 * (nf4_dq, 2:4) and by the GEMM tile loader. */
template <int F, bool SPARSE>
VT_HD void vt_decode64(const vt_kp &p, const vt_dq_ctx &c, uint64_t r, uint64_t h, float v[64]) {
    if constexpr (SPARSE) {
        float cv[32];
        uint8_t pos[32];
        const uint8_t *row = p.data + r * p.row_bytes;
        vt_dq_unit_sparse<F>(row, row + p.idx_off, h, p.ccols, c, cv, pos);
        /* Expand with selects, not v[pos[i]] = cv[i]: a store at a run-time index puts all of v
         * in local memory (256 bytes of stack per thread). The second kept value wins a tie, as
         * in the indexed store. */
        VT_UNROLL
        for (int g = 0; g < 16; g++) {
            const int lo = pos[2 * g] & 3, hi = pos[2 * g + 1] & 3;
            VT_UNROLL
            for (int j = 0; j < 4; j++)
                v[4 * g + j] = j == hi ? cv[2 * g + 1] : j == lo ? cv[2 * g] : 0.0f;
        }
    } else {
        VT_UNROLL
        for (int s = 0; s < 2; s++) {
            uint64_t u = 2 * h + s;
            if (32 * u >= p.cols) {
                VT_UNROLL
                for (int i = 0; i < 32; i++) v[32 * s + i] = 0.0f;
                continue;
            }
            if constexpr (F == VT_FMT_NF4_DQ)
                vt_dq_unit_nf4dq(p.data, p.bpr, r, u, c, v + 32 * s);
            else
                vt_dq_unit<F>(vt_dq_unit_ptr<F>(p.data + r * p.row_bytes, u), u, 32 * u, c,
                              v + 32 * s);
        }
    }
    VT_UNROLL
    for (int i = 0; i < 64; i++)
        if (64 * h + i >= p.cols) v[i] = 0.0f;
}

#endif
