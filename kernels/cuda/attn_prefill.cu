/* Flash attention prefill on tensor cores (FlashAttention-2 structure, sm_80+).
 *
 * One CTA = 4 warps = 64 queries of one head; each warp owns 16 query rows. Q is staged through
 * shared memory into registers (A fragments) once. For each tile of 64 keys the CTA reads K and
 * V rows in their stored format from global memory, dequantizes them in registers and writes
 * f16/bf16 tiles to shared memory; then S = Q K^T (mma.sync m16n8k16, f32 accumulators), the
 * online softmax on the S fragments in registers (running max and sum per row, accumulator
 * rescale), P re-packed as A fragments, O += P V (V fragments by ldmatrix.trans). Causal tiles
 * past the block's last visible key are skipped; masking is applied only on tiles that cross the
 * diagonal or the ragged end. The compute type follows Q: bf16 Q runs bf16 MMAs, f16 and f32 Q
 * run f16 MMAs (f32 Q rounded to f16). */
#include <errno.h>
#include <math.h>

#include <atomic>

#include "attn_common.cuh"

namespace {

constexpr int BM = 64, BN = 64, NWARPS = 4, NTHREADS = NWARPS * 32;

template <int D, typename T> struct prefill_smem {
    static constexpr int LD = D + 8; /* padded row: ldmatrix rows hit distinct banks */
    T kv[2][BN][LD];                 /* K tile, V tile; Q is staged in kv[0] first */
    vt_attn_lut lut;
};

template <int D, typename T, int FMT>
__global__ void __launch_bounds__(NTHREADS) prefill_kernel(vt_attn_dev_args a) {
    constexpr int LD = D + 8, KS = D / 16, NT = BN / 8, DT = D / 8;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    auto &sm = *reinterpret_cast<prefill_smem<D, T> *>(smem_raw);
    T(*Ks)[LD] = sm.kv[0];
    T(*Vs)[LD] = sm.kv[1];

    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int g = lane / 4, t4 = lane % 4;
    const int h = blockIdx.y, hk = h / a.group;
    const long long q0 = (long long)blockIdx.x * BM;
    vt_attn_lut_load(&sm.lut);

    /* ---- Q tile -> registers ---- */
    for (int idx = tid; idx < BM * D / 8; idx += NTHREADS) {
        int r = idx / (D / 8), c = (idx % (D / 8)) * 8;
        float f[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        if (q0 + r < a.nq) vt_load_q8(a.q, a.q_dtype, ((size_t)h * a.nq + q0 + r) * D + c, f);
        uint4 u = {vt_pack2<T>(f[0], f[1]), vt_pack2<T>(f[2], f[3]), vt_pack2<T>(f[4], f[5]),
                   vt_pack2<T>(f[6], f[7])};
        *reinterpret_cast<uint4 *>(&Ks[r][c]) = u;
    }
    __syncthreads();
    uint32_t qf[KS][4];
#pragma unroll
    for (int ks = 0; ks < KS; ks++)
        vt_ldmatrix_x4(qf[ks], &Ks[warp * 16 + (lane % 16)][ks * 16 + (lane / 16) * 8]);
    __syncthreads();

    /* rows of this thread: qa = row g, qb = row g + 8 of the warp's 16 */
    const long long qa = q0 + warp * 16 + g, qb = qa + 8;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    float acc[DT][4];
#pragma unroll
    for (int i = 0; i < DT; i++) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.0f;

    long long last_q = q0 + BM - 1 < a.nq - 1 ? q0 + BM - 1 : a.nq - 1;
    long long n_end = a.causal ? vt_visible(a, last_q) : a.nk;
    /* tiles starting at or after this key need no causal mask for any row of the block */
    long long diag0 = a.causal ? q0 + a.nk - a.nq + 1 : a.nk;
    const uint8_t *kb = a.k + (size_t)hk * a.head_stride, *vb = a.v + (size_t)hk * a.head_stride;
    const long long lim_a = vt_visible(a, qa), lim_b = vt_visible(a, qb);

    for (long long j0 = 0; j0 < n_end; j0 += BN) {
        /* ---- K, V tiles: stored format -> registers -> f16/bf16 shared ---- */
        for (int idx = tid; idx < BN * D / 8; idx += NTHREADS) {
            int r = idx / (D / 8), c = (idx % (D / 8)) * 8;
            float fk[8] = {0, 0, 0, 0, 0, 0, 0, 0}, fv[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            if (j0 + r < a.nk) {
                vt_deq8<FMT>(kb + (size_t)(j0 + r) * a.row_bytes, c, a.ts, &sm.lut, fk);
                vt_deq8<FMT>(vb + (size_t)(j0 + r) * a.row_bytes, c, a.ts, &sm.lut, fv);
            }
            *reinterpret_cast<uint4 *>(&Ks[r][c]) =
                make_uint4(vt_pack2<T>(fk[0], fk[1]), vt_pack2<T>(fk[2], fk[3]),
                           vt_pack2<T>(fk[4], fk[5]), vt_pack2<T>(fk[6], fk[7]));
            *reinterpret_cast<uint4 *>(&Vs[r][c]) =
                make_uint4(vt_pack2<T>(fv[0], fv[1]), vt_pack2<T>(fv[2], fv[3]),
                           vt_pack2<T>(fv[4], fv[5]), vt_pack2<T>(fv[6], fv[7]));
        }
        __syncthreads();

        /* ---- S = Q K^T ---- */
        float s[NT][4];
#pragma unroll
        for (int i = 0; i < NT; i++) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.0f;
#pragma unroll
        for (int ks = 0; ks < KS; ks++)
#pragma unroll
            for (int n2 = 0; n2 < NT / 2; n2++) {
                uint32_t b[4];
                vt_ldmatrix_x4(
                    b, &Ks[n2 * 16 + (lane / 16) * 8 + (lane % 8)][ks * 16 + ((lane / 8) % 2) * 8]);
                vt_mma16816<T>(s[2 * n2], qf[ks], b[0], b[1]);
                vt_mma16816<T>(s[2 * n2 + 1], qf[ks], b[2], b[3]);
            }

        /* ---- scale, mask, online softmax (rows g and g+8; a quad shares a row) ---- */
        const bool need_mask = j0 + BN > a.nk || j0 + BN > diag0;
        float mx[2] = {m[0], m[1]};
#pragma unroll
        for (int nt = 0; nt < NT; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                float v = s[nt][e] * a.scale_log2;
                if (need_mask) {
                    long long key = j0 + nt * 8 + 2 * t4 + (e & 1);
                    if (key >= (e < 2 ? lim_a : lim_b)) v = -INFINITY;
                }
                s[nt][e] = v;
                mx[e >> 1] = fmaxf(mx[e >> 1], v);
            }
        float alpha[2], mu[2];
#pragma unroll
        for (int r = 0; r < 2; r++) {
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
            mu[r] = mx[r] == -INFINITY ? 0.0f : mx[r]; /* no visible key yet: keep exp finite */
            alpha[r] = exp2f(m[r] - mu[r]);
            m[r] = mx[r];
            l[r] *= alpha[r];
        }
#pragma unroll
        for (int nt = 0; nt < NT; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                float p = exp2f(s[nt][e] - mu[e >> 1]);
                s[nt][e] = p;
                l[e >> 1] += p;
            }
#pragma unroll
        for (int dt = 0; dt < DT; dt++) {
            acc[dt][0] *= alpha[0], acc[dt][1] *= alpha[0];
            acc[dt][2] *= alpha[1], acc[dt][3] *= alpha[1];
        }

        /* ---- O += P V ---- */
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++) {
            uint32_t pa[4] = {vt_pack2<T>(s[2 * kk][0], s[2 * kk][1]),
                              vt_pack2<T>(s[2 * kk][2], s[2 * kk][3]),
                              vt_pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                              vt_pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
            for (int d2 = 0; d2 < D / 16; d2++) {
                uint32_t b[4];
                vt_ldmatrix_x4_trans(
                    b, &Vs[kk * 16 + ((lane / 8) % 2) * 8 + (lane % 8)][d2 * 16 + (lane / 16) * 8]);
                vt_mma16816<T>(acc[2 * d2], pa, b[0], b[1]);
                vt_mma16816<T>(acc[2 * d2 + 1], pa, b[2], b[3]);
            }
        }
        __syncthreads();
    }

    /* ---- epilogue: O / l, LSE ---- */
#pragma unroll
    for (int r = 0; r < 2; r++) {
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        long long qi = r ? qb : qa;
        if (qi >= a.nq) continue;
        float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
        size_t ob = ((size_t)h * a.nq + qi) * D;
#pragma unroll
        for (int dt = 0; dt < DT; dt++) {
            float x0 = acc[dt][2 * r] * inv, x1 = acc[dt][2 * r + 1] * inv;
            size_t idx = ob + dt * 8 + 2 * t4;
            if (a.o_dtype == 0)
                *reinterpret_cast<float2 *>(static_cast<float *>(a.o) + idx) = make_float2(x0, x1);
            else
                *reinterpret_cast<__half2 *>(static_cast<__half *>(a.o) + idx) =
                    __floats2half2_rn(x0, x1);
        }
        if (a.lse && t4 == 0)
            a.lse[(size_t)h * a.nq + qi] = l[r] > 0.0f ? (m[r] + log2f(l[r])) * VT_LN2 : -INFINITY;
    }
}

template <int D, typename T, int FMT> int launch(const vt_attn_dev_args &a, cudaStream_t st) {
    size_t smem = sizeof(prefill_smem<D, T>);
    auto kern = prefill_kernel<D, T, FMT>;
    /* the shared-memory opt-in once per (kernel, smem size) = template instance, per device
     * (devices 0..63; others set it on every launch) */
    static std::atomic<unsigned long long> attr_set{0};
    int dev = 0;
    VT_CUDA_TRY(cudaGetDevice(&dev), "attn prefill: current device");
    unsigned long long bit = dev >= 0 && dev < 64 ? 1ULL << dev : 0;
    if (!bit || !(attr_set.load(std::memory_order_acquire) & bit)) {
        VT_CUDA_TRY(
            cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem),
            "attn prefill: shared memory");
        attr_set.fetch_or(bit, std::memory_order_release);
    }
    dim3 grid((unsigned)((a.nq + BM - 1) / BM), (unsigned)a.H);
    kern<<<grid, NTHREADS, smem, st>>>(a);
    VT_CUDA_TRY(cudaGetLastError(), "attn prefill: launch");
    return 0;
}

template <int D, typename T>
int launch_fmt(const vt_attn_dev_args &a, uint32_t fmt, cudaStream_t st) {
    switch (fmt) {
    case VT_FMT_F32:
        return launch<D, T, VT_FMT_F32>(a, st);
    case VT_FMT_F16:
        return launch<D, T, VT_FMT_F16>(a, st);
    case VT_FMT_BF16:
        return launch<D, T, VT_FMT_BF16>(a, st);
    case VT_FMT_Q8_0:
        return launch<D, T, VT_FMT_Q8_0>(a, st);
    case VT_FMT_INT8:
        return launch<D, T, VT_FMT_INT8>(a, st);
    case VT_FMT_Q4_0:
        return launch<D, T, VT_FMT_Q4_0>(a, st);
    case VT_FMT_NF4:
        return launch<D, T, VT_FMT_NF4>(a, st);
    case VT_FMT_NVFP4:
        return launch<D, T, VT_FMT_NVFP4>(a, st);
    case VT_FMT_MXFP4:
        return launch<D, T, VT_FMT_MXFP4>(a, st);
    default:
        return vt_fail(VT_EUNSUPPORTED, "attn prefill: K/V format %u", fmt);
    }
}

} // namespace

extern "C" int vt_attn_cuda_prefill(const vt_attn_dev_args *a, void *stream) {
    if (a->nq > 65535ll * BM || a->H > 65535)
        return vt_fail(VT_EUNSUPPORTED, "attn prefill: Nq %lld / H %d exceed the grid", a->nq,
                       a->H);
    int rc = vt_attn_check_align(a, "attn prefill");
    if (rc) return rc;
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    bool bf = a->q_dtype == VT_DTYPE_BF16;
    if (a->D == 64)
        return bf ? launch_fmt<64, __nv_bfloat16>(*a, a->fmt, st)
                  : launch_fmt<64, __half>(*a, a->fmt, st);
    return bf ? launch_fmt<128, __nv_bfloat16>(*a, a->fmt, st)
              : launch_fmt<128, __half>(*a, a->fmt, st);
}
