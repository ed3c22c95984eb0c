/* tests/attn/attn_quant_host.cu — runs the KV cache append kernel's work items
 * (kernels/cuda/attn_quant.cuh, __host__ __device__) and the attention kernels' K/V row decoder
 * (attn_common.cuh vt_deq8) on the host, for test_attn_quant_host.c. No GPU needed. */
#include "attn_common.cuh"
#include "attn_quant.cuh"

extern "C" int aqh_append(uint32_t fmt, const void *src, int dtype, void *dst, long long capacity,
                          long long len, long long n, int Hkv, int D, long long row_bytes, float ts,
                          unsigned long long *bad, unsigned epoch, int is_v);
extern "C" int aqh_deq_row(uint32_t fmt, const void *row, int D, float ts, float *out);

namespace {

/* Every work item of the append kernel, in reverse order (items must not depend on order). */
struct host_append {
    vt_attn_append_args a;
    template <int FMT, int BE> int go(int block_bytes) {
        a.nb = (a.D + BE - 1) / BE;
        a.block_bytes = block_bytes;
        long long total = (long long)a.Hkv * a.n * a.nb;
        for (long long i = total - 1; i >= 0; i--) vt_attn_append_one<FMT, BE>(a, i);
        return 0;
    }
};

struct host_deq {
    const uint8_t *row;
    int D;
    float ts;
    float *out;
    template <int FMT, int BE> int go(int) {
        vt_attn_lut lut;
        for (int t = 0; t < 32; t++) vt_attn_lut_load(&lut, t);
        for (int d0 = 0; d0 < D; d0 += 8) vt_deq8<FMT>(row, d0, ts, &lut, out + d0);
        return 0;
    }
};

} // namespace

extern "C" int aqh_append(uint32_t fmt, const void *src, int dtype, void *dst, long long capacity,
                          long long len, long long n, int Hkv, int D, long long row_bytes, float ts,
                          unsigned long long *bad, unsigned epoch, int is_v) {
    host_append h;
    h.a.bad = bad, h.a.epoch = epoch, h.a.is_v = is_v;
    h.a.src = src;
    h.a.dtype = dtype;
    h.a.dst = static_cast<uint8_t *>(dst);
    h.a.capacity = capacity, h.a.len = len, h.a.n = n;
    h.a.Hkv = Hkv, h.a.D = D, h.a.row_bytes = row_bytes;
    h.a.ts = ts > 0.0f ? ts : 1.0f;
    return vt_attn_fmt_dispatch(fmt, h);
}

extern "C" int aqh_deq_row(uint32_t fmt, const void *row, int D, float ts, float *out) {
    host_deq h{static_cast<const uint8_t *>(row), D, ts > 0.0f ? ts : 1.0f, out};
    return vt_attn_fmt_dispatch(fmt, h);
}
