/* tests/kernels/ptx_xcheck_attn_host.cu — exposes, for test_ptx_emul_xcheck.c, the attention
 * test's warp emulation (tests/attn/attn_kern_host.cu, included here as it is: its collectives
 * live in an anonymous namespace): mma.sync m16n8k16 f16/bf16 and ldmatrix .x4 (.trans), each
 * run by a 32-thread emulated CTA, one call per lane. No GPU needed. */
#include "attn/attn_kern_host.cu"

namespace {

struct xa_job {
    cta *c;
    int op; /* 0 mma f16, 1 mma bf16, 2 ldmatrix, 3 ldmatrix.trans, 4 shfl.xor */
    const uint32_t (*a)[4];
    const uint32_t (*b)[2];
    float (*d)[4];
    const uint8_t *smem;
    const size_t *off;
    uint32_t (*r)[4];
    const float *sin;
    float *sout;
    int mask;
};

void xa_thread(void *ctx, int tid) {
    xa_job *j = static_cast<xa_job *>(ctx);
    host_cx cx{j->c, tid};
    switch (j->op) {
    case 0:
        cx.mma<__half>(j->d[tid], j->a[tid], j->b[tid][0], j->b[tid][1]);
        break;
    case 1:
        cx.mma<__nv_bfloat16>(j->d[tid], j->a[tid], j->b[tid][0], j->b[tid][1]);
        break;
    case 2:
        cx.ldsm_x4(j->r[tid], j->smem + j->off[tid]);
        break;
    case 3:
        cx.ldsm_x4_t(j->r[tid], j->smem + j->off[tid]);
        break;
    default:
        j->sout[tid] = cx.shfl_xor(j->sin[tid], j->mask);
        break;
    }
}

int xa_run(xa_job &j, const uint8_t *smem, size_t bytes, char *why, size_t cap) {
    cta c;
    c.smem_lo = smem, c.smem_hi = smem + bytes;
    j.c = &c;
    if (run_cta(c, 32, xa_thread, &j)) {
        snprintf(why, cap, "%s", c.err);
        return 1;
    }
    return 0;
}

} // namespace

extern "C" {

/* attn_kern_host.cu's d += a b (bf: bf16 inputs, else f16) for one warp; 1 with why filled */
int xa_emul_mma(int bf, const uint32_t a[32][4], const uint32_t b[32][2], float d[32][4], char *why,
                size_t cap) {
    xa_job j{};
    j.op = bf ? 1 : 0, j.a = a, j.b = b, j.d = d;
    static const uint8_t none[16] = {0};
    return xa_run(j, none, sizeof none, why, cap);
}

/* attn_kern_host.cu's ldmatrix.x4 (.trans) of one warp: lane l gives the row address
 * smem + off[l] (smem 16-byte aligned, `bytes` long) and receives r[l][0..3] */
int xa_emul_ldsm(int trans, const uint8_t *smem, size_t bytes, const size_t off[32],
                 uint32_t r[32][4], char *why, size_t cap) {
    xa_job j{};
    j.op = trans ? 3 : 2, j.smem = smem, j.off = off, j.r = r;
    return xa_run(j, smem, bytes, why, cap);
}

/* attn_kern_host.cu's __shfl_xor_sync(full mask, in[lane], mask) of one warp */
int xa_emul_shfl_xor(const float in[32], int mask, float out[32], char *why, size_t cap) {
    xa_job j{};
    j.op = 4, j.sin = in, j.sout = out, j.mask = mask;
    static const uint8_t none[16] = {0};
    return xa_run(j, none, sizeof none, why, cap);
}

} /* extern "C" */
