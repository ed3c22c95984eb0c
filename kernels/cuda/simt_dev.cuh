/* kernels/cuda/simt_dev.cuh — the device side of the kernel bodies written as templates over a
 * thread context (attn_prefill.cuh, attn_decode.cuh, gemv_cta.cuh): tensor-core fragments
 * (ldmatrix + mma.sync m16n8k16 for f16 and bf16), cp.async, and vt_simt_dev, the context on the
 * GPU. tests/kernels/simt_host.cuh is the same context emulated on the host. */
#ifndef VT_SIMT_DEV_CUH
#define VT_SIMT_DEV_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

/* ---- tensor-core fragments ----------------------------------------------------------------- */

/* d += a * b, m16n8k16, row.col, f32 accumulators. */
template <typename T>
__device__ __forceinline__ void vt_mma16816(float d[4], const uint32_t a[4], uint32_t b0,
                                            uint32_t b1);
template <>
__device__ __forceinline__ void vt_mma16816<__half>(float d[4], const uint32_t a[4], uint32_t b0,
                                                    uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void vt_mma16816<__nv_bfloat16>(float d[4], const uint32_t a[4],
                                                           uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void vt_ldmatrix_x4(uint32_t r[4], const void *smem_row) {
    uint32_t a = (uint32_t)__cvta_generic_to_shared(smem_row);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}

__device__ __forceinline__ void vt_ldmatrix_x4_trans(uint32_t r[4], const void *smem_row) {
    uint32_t a = (uint32_t)__cvta_generic_to_shared(smem_row);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}

/* cp.async (sm_80+): 16 bytes global -> shared without registers, zero-filled when !valid (no
 * global byte is read then); commit closes the thread's group of copies issued since the last
 * commit; wait<N> returns when at most the N newest groups are still in flight. The copies of
 * other threads are visible after the wait and a __syncthreads. */
__device__ __forceinline__ void vt_cp_async16(void *smem, const void *gmem, bool valid) {
    uint32_t a = (uint32_t)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(a), "l"(gmem),
                 "r"(valid ? 16 : 0)
                 : "memory");
}

/* The thread's view of the CTA for the kernel bodies (attn_prefill.cuh, attn_decode.cuh): its
 * index and the collectives they use. The bodies are templates over this context so that
 * tests/attn/attn_kern_host.cu can run them on the host with an emulated warp (every lane of a
 * warp must reach each collective, ldmatrix/mma per the PTX ISA fragment layouts). */
struct vt_simt_dev {
    __device__ __forceinline__ int tid() const { return (int)threadIdx.x; }
    __device__ __forceinline__ void sync() { __syncthreads(); }
    __device__ __forceinline__ void syncwarp() { __syncwarp(); }
    __device__ __forceinline__ float shfl_xor(float v, int m) {
        return __shfl_xor_sync(0xffffffffu, v, m);
    }
    __device__ __forceinline__ void ldsm_x4(uint32_t r[4], const void *p) { vt_ldmatrix_x4(r, p); }
    __device__ __forceinline__ void ldsm_x4_t(uint32_t r[4], const void *p) {
        vt_ldmatrix_x4_trans(r, p);
    }
    __device__ __forceinline__ void cp16(void *smem, const void *gmem, bool valid) {
        vt_cp_async16(smem, gmem, valid);
    }
    __device__ __forceinline__ void commit() {
        asm volatile("cp.async.commit_group;\n" ::: "memory");
    }
    template <int N> __device__ __forceinline__ void wait() {
        asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
    }
    template <typename T>
    __device__ __forceinline__ void mma(float d[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
        vt_mma16816<T>(d, a, b0, b1);
    }
};

#endif
