/* tests/kernels/simt_host.cuh — a CUDA CTA emulated on the host, for running kernel bodies
 * written as templates over a thread context (vt_simt_dev on the GPU, host_cx here) without a
 * GPU: every thread of a CTA is a coroutine (ucontext), and the collectives are emulated from the
 * PTX ISA's definitions, not from the kernels' code:
 *   - __syncthreads: all threads of the CTA; __syncwarp, shfl.xor, ldmatrix and mma.sync: all 32
 *     lanes of the warp must reach the same kind of collective (else: reported as divergence);
 *   - ldmatrix .x4 (.trans): lanes 8i..8i+7 give the row addresses of matrix i (16-byte aligned,
 *     inside the CTA's shared memory); lane L receives row L/4, columns 2(L%4), 2(L%4)+1 of
 *     each matrix (.trans: rows 2(L%4), 2(L%4)+1 of column L/4);
 *   - mma.m16n8k16.row.col f32 += {f16, bf16}: the A, B, C fragment layouts of PTX ISA
 *     "Matrix Fragments for mma.m16n8k16 with floating point type" (groupID = lane >> 2,
 *     threadID_in_group = lane % 4);
 *   - cp.async 16 bytes (zero fill), commit_group, wait_group N: per thread; a copy lands when
 *     issued when the CTA's cp_late is false, and only when its wait_group retires it when true
 *     (run both: early landing catches a buffer overwritten while others still read it, late
 *     landing a buffer read before its wait and barrier).
 * A deadlock (a thread waits at a barrier that the others never reach) is reported; smem_buf
 * puts a guard after the shared memory that must stay untouched. Used by
 * tests/attn/attn_kern_host.cu and tests/kernels/gemv_cta_host.cu; include once per program
 * (its definitions are in an anonymous namespace). */
#ifndef VT_SIMT_HOST_CUH
#define VT_SIMT_HOST_CUH

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include <type_traits>
#include <vector>

#include <cuda_fp16.h>

namespace {

enum { K_SYNCWARP, K_SHFL, K_LDSM, K_LDSM_T, K_MMA_F16, K_MMA_BF16 };

struct warp_state {
    unsigned gen = 0;
    int arrived = 0, kind = -1;
    const void *ptr[32];     /* ldmatrix row addresses */
    uint32_t *rout[32];      /* ldmatrix destinations */
    float fin[32], fout[32]; /* shfl */
    int arg[32];             /* shfl lane mask */
    const uint32_t *a[32];   /* mma A fragments */
    uint32_t b[32][2];       /* mma B fragments */
    float *d[32];            /* mma accumulators (in and out) */
};

struct cta {
    int nth = 0;
    std::vector<ucontext_t> uc;
    std::vector<std::vector<char>> stack;
    std::vector<char> done;
    ucontext_t sched;
    int cur = 0;
    unsigned cta_gen = 0;
    int cta_arrived = 0;
    unsigned long long events = 0;
    std::vector<warp_state> w;
    const uint8_t *smem_lo = nullptr, *smem_hi = nullptr;
    bool cp_late = false; /* host_cx::cp16 */
    char err[300] = "";
    void (*fn)(void *ctx, int tid) = nullptr;
    void *ctx = nullptr;

    void fail(const char *msg) {
        if (!err[0]) snprintf(err, sizeof err, "%s", msg);
    }
    void yield() { swapcontext(&uc[cur], &sched); }

    void barrier() {
        unsigned g = cta_gen;
        events++;
        if (++cta_arrived == nth) {
            cta_arrived = 0;
            cta_gen++;
            return;
        }
        while (cta_gen == g && !err[0]) yield();
    }

    /* Lane `lane` of warp `wi` has stored its operands; the last lane to arrive runs op on the
     * whole warp. */
    template <class OP> void warp_coll(int wi, int kind, OP op) {
        warp_state &s = w[wi];
        if (s.arrived == 0)
            s.kind = kind;
        else if (s.kind != kind) {
            char m[120];
            snprintf(m, sizeof m, "warp %d: lanes at different collectives (kinds %d and %d)", wi,
                     s.kind, kind);
            fail(m);
        }
        unsigned g = s.gen;
        events++;
        if (++s.arrived == 32) {
            op(s);
            s.arrived = 0;
            s.gen++;
            return;
        }
        while (s.gen == g && !err[0]) yield();
    }
};

thread_local cta *g_cta;

void thread_entry() {
    cta *c = g_cta;
    int t = c->cur;
    c->fn(c->ctx, t);
    c->done[t] = 1;
    c->events++;
    /* returns to uc_link = the scheduler */
}

/* Run one CTA of nth threads, each calling fn(ctx, tid) on its own stack of @p stack bytes (a
 * cta reused for the next CTA keeps its stacks). 0 or 1 with c.err set. */
int run_cta(cta &c, int nth, void (*fn)(void *, int), void *ctx, size_t stack = 256 * 1024) {
    c.nth = nth;
    c.fn = fn;
    c.ctx = ctx;
    c.uc.assign(nth, ucontext_t());
    c.stack.resize(nth);
    c.done.assign(nth, 0);
    c.w.assign((nth + 31) / 32, warp_state());
    c.cta_gen = 0, c.cta_arrived = 0;
    g_cta = &c;
    for (int t = 0; t < nth; t++) {
        c.stack[t].resize(stack); /* the same size again: no reallocation */
        getcontext(&c.uc[t]);
        c.uc[t].uc_stack.ss_sp = c.stack[t].data();
        c.uc[t].uc_stack.ss_size = c.stack[t].size();
        c.uc[t].uc_link = &c.sched;
        makecontext(&c.uc[t], thread_entry, 0);
    }
    int left = nth;
    while (left && !c.err[0]) {
        unsigned long long ev = c.events;
        left = 0;
        for (int t = 0; t < nth && !c.err[0]; t++) {
            if (c.done[t]) continue;
            c.cur = t;
            swapcontext(&c.sched, &c.uc[t]);
            left += !c.done[t];
        }
        if (left && c.events == ev) {
            int waiting = 0;
            for (int t = 0; t < nth; t++) waiting += !c.done[t];
            char m[160];
            snprintf(m, sizeof m,
                     "deadlock: %d of %d threads wait at a barrier or collective that the others "
                     "never reach (%d arrived at __syncthreads)",
                     waiting, nth, c.cta_arrived);
            c.fail(m);
        }
    }
    /* a failed CTA leaves coroutines mid-body; their stacks are simply dropped */
    return c.err[0] ? 1 : 0;
}

float h2f(uint16_t h, bool bf) {
    if (bf) {
        uint32_t u = (uint32_t)h << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    return __half2float(__ushort_as_half(h));
}
uint16_t half_of(uint32_t r, int hi) {
    return (uint16_t)(hi ? r >> 16 : r & 0xffff);
}

/* One cp.async of 16 bytes (src NULL: zero fill). */
struct cp_req {
    uint8_t *dst;
    const uint8_t *src;
};

/* The thread context of the bodies on the host. */
struct host_cx {
    cta *c;
    int t;
    /* cp.async: committed groups not yet retired (oldest first) and the open group */
    std::vector<std::vector<cp_req>> groups;
    std::vector<cp_req> open;
    static void land(const cp_req &r) {
        if (r.src)
            memcpy(r.dst, r.src, 16);
        else
            memset(r.dst, 0, 16);
    }
    /* The copy lands at the latest moment the PTX ISA allows (the wait_group that retires its
     * group) when the CTA's cp_late is set, else at once: late catches a tile read before its
     * wait and barrier, early a tile overwritten while other threads still read it. */
    void cp16(void *dst, const void *src, bool valid) {
        uint8_t *d = static_cast<uint8_t *>(dst);
        const uint8_t *q = static_cast<const uint8_t *>(src);
        if (((uintptr_t)(d - c->smem_lo) & 15) || d < c->smem_lo || d + 16 > c->smem_hi) {
            c->fail("cp.async: shared destination not a 16-byte aligned piece of the CTA's "
                    "shared memory");
            return;
        }
        if (valid && ((uintptr_t)q & 15)) {
            c->fail("cp.async: global source not 16-byte aligned");
            return;
        }
        cp_req r = {d, valid ? q : nullptr};
        if (c->cp_late)
            open.push_back(r);
        else
            land(r);
    }
    void commit() {
        groups.push_back(open);
        open.clear();
    }
    template <int N> void wait() {
        while (groups.size() > (size_t)N) {
            for (const cp_req &r : groups.front()) land(r);
            groups.erase(groups.begin());
        }
    }
    /* at the end of the body: nothing may still be in flight */
    bool cp_idle() const {
        if (!open.empty()) return false;
        for (const auto &g : groups)
            if (!g.empty()) return false;
        return true;
    }
    int tid() const { return t; }
    void sync() { c->barrier(); }
    void syncwarp() {
        c->warp_coll(t / 32, K_SYNCWARP, [](warp_state &) {});
    }
    float shfl_xor(float v, int m) {
        warp_state &s = c->w[t / 32];
        int lane = t % 32;
        s.fin[lane] = v;
        s.arg[lane] = m;
        c->warp_coll(t / 32, K_SHFL, [this](warp_state &s) {
            for (int l = 0; l < 32; l++) {
                if (s.arg[l] != s.arg[0]) c->fail("shfl_xor: lanes give different masks");
                s.fout[l] = s.fin[(l ^ s.arg[l]) & 31];
            }
        });
        return s.fout[lane];
    }
    void ldsm(uint32_t r[4], const void *p, bool trans) {
        warp_state &s = c->w[t / 32];
        int lane = t % 32;
        s.ptr[lane] = p;
        s.rout[lane] = r;
        c->warp_coll(t / 32, trans ? K_LDSM_T : K_LDSM, [this, trans](warp_state &s) {
            for (int l = 0; l < 32; l++) {
                const uint8_t *q = static_cast<const uint8_t *>(s.ptr[l]);
                if (((uintptr_t)(q - c->smem_lo) & 15) || q < c->smem_lo || q + 16 > c->smem_hi) {
                    char m[160];
                    snprintf(m, sizeof m,
                             "ldmatrix: lane %d row address at shared offset %lld is not a "
                             "16-byte aligned row inside the %lld bytes",
                             l, (long long)(q - c->smem_lo), (long long)(c->smem_hi - c->smem_lo));
                    c->fail(m);
                    return;
                }
            }
            for (int l = 0; l < 32; l++)
                for (int i = 0; i < 4; i++) {
                    uint16_t lo, hi;
                    if (!trans) {
                        const uint16_t *row = static_cast<const uint16_t *>(s.ptr[8 * i + l / 4]);
                        lo = row[2 * (l % 4)], hi = row[2 * (l % 4) + 1];
                    } else {
                        lo = static_cast<const uint16_t *>(s.ptr[8 * i + 2 * (l % 4)])[l / 4];
                        hi = static_cast<const uint16_t *>(s.ptr[8 * i + 2 * (l % 4) + 1])[l / 4];
                    }
                    s.rout[l][i] = (uint32_t)lo | (uint32_t)hi << 16;
                }
        });
    }
    void ldsm_x4(uint32_t r[4], const void *p) { ldsm(r, p, false); }
    void ldsm_x4_t(uint32_t r[4], const void *p) { ldsm(r, p, true); }
    template <typename T> void mma(float d[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
        const bool bf = sizeof(T) == 2 && !std::is_same<T, __half>::value;
        warp_state &s = c->w[t / 32];
        int lane = t % 32;
        s.a[lane] = a;
        s.b[lane][0] = b0, s.b[lane][1] = b1;
        s.d[lane] = d;
        c->warp_coll(t / 32, bf ? K_MMA_BF16 : K_MMA_F16, [bf](warp_state &s) {
            float A[16][16], B[16][8], C[16][8];
            for (int l = 0; l < 32; l++) {
                int g = l >> 2, tg = l % 4;
                for (int i = 0; i < 8; i++) {
                    int row = (i < 2 || (i >= 4 && i < 6)) ? g : g + 8;
                    int col = tg * 2 + (i & 1) + (i >= 4 ? 8 : 0);
                    A[row][col] = h2f(half_of(s.a[l][i / 2], i & 1), bf);
                }
                for (int i = 0; i < 4; i++) {
                    int row = tg * 2 + (i & 1) + (i >= 2 ? 8 : 0);
                    B[row][g] = h2f(half_of(s.b[l][i / 2], i & 1), bf);
                }
                for (int i = 0; i < 4; i++) C[i < 2 ? g : g + 8][tg * 2 + (i & 1)] = s.d[l][i];
            }
            for (int l = 0; l < 32; l++) {
                int g = l >> 2, tg = l % 4;
                for (int i = 0; i < 4; i++) {
                    int row = i < 2 ? g : g + 8, col = tg * 2 + (i & 1);
                    float acc = C[row][col];
                    for (int k = 0; k < 16; k++) acc += A[row][k] * B[k][col];
                    s.d[l][i] = acc;
                }
            }
        });
    }
};

/* Shared memory of a CTA with a guard after it. */
struct smem_buf {
    std::vector<uint8_t> raw;
    uint8_t *p;
    size_t n;
    static constexpr size_t GUARD = 256;
    explicit smem_buf(size_t bytes) : raw(bytes + GUARD + 16), n(bytes) {
        p = raw.data() + ((16 - ((uintptr_t)raw.data() & 15)) & 15);
        memset(p, 0xA5, bytes + GUARD); /* garbage the kernel must not read before writing */
    }
    bool guard_ok() const {
        for (size_t i = 0; i < GUARD; i++)
            if (p[n + i] != 0xA5) return false;
        return true;
    }
};

} // namespace

#endif
