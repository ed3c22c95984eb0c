/* tests/kernels/test_ptx_emul_xcheck.c — an independent check of the two host emulations of warp
 * PTX that the kernel host tests rely on (tests/kernels/mma_tile_host.cu: mma.sync for the GEMM;
 * tests/attn/attn_kern_host.cu: mma.sync f16/bf16, ldmatrix .x4 (.trans) and shfl.xor for
 * attention), and of the kernels' own fragment index math (mma_tile.cuh's helpers, gathers and
 * epilogue; attn_prefill.cuh's ldmatrix addresses and P re-pack), against the fragment layouts
 * derived here from the PTX ISA text (not from either emulator or kernel). A kernel and its
 * emulator written from one misreading of the layouts would pass their host test and fail on a GPU;
 * this test shares no code with them. Fresh random inputs each run. Needs nvcc (the helpers), not a
 * GPU; ctest name test_ptx_emul_xcheck_host. Result when written: emulators, kernels and derivation
 * agree.
 *
 * Sources (PTX ISA, "Warp Level Matrix Multiply-Accumulate Instructions"):
 *   https://docs.nvidia.com/cuda/parallel-thread-execution/#matrix-fragments-for-mma-m16n8k16-with-floating-point-type
 *     ("Matrix Fragments for mma.m16n8k16 with floating point type")
 *   https://docs.nvidia.com/cuda/parallel-thread-execution/#warp-level-matrix-instructions-ldmatrix
 *     (ldmatrix: the .num table of address threads, Figure "ldmatrix fragment layout for one 8x8
 *     Matrix with 16-bit elements", .trans = the matrix loaded in column-major format)
 *   and, as a second reading, https://tvm.apache.org/docs/tirx/tile_ops/mma_sync.html and
 *   https://tvm.apache.org/docs/tirx/tile_ops/ldmatrix_stmatrix.html.
 *
 * Derivation used here. groupID g = lane >> 2, threadID_in_group t = lane % 4. A 32-bit register
 * holds elements 2j (low 16 bits) and 2j + 1 (high) of a fragment.
 *   mma.m16n8k16 .f16/.bf16, .f32 accumulators:
 *     A 16x16 (row), a0..a7 in 4 regs: row = g for a0,a1,a4,a5, g + 8 for a2,a3,a6,a7;
 *       col = 2t + (i & 1), + 8 for i >= 4.   Reg 0 = A[g][2t..], 1 = A[g+8][2t..],
 *       2 = A[g][2t+8..], 3 = A[g+8][2t+8..].
 *     B 16x8 (col, K x N), b0..b3 in 2 regs: k = 2t + (i & 1), + 8 for i >= 2; n = g.
 *     C, D 16x8 f32, c0..c3: row = g for c0,c1, g + 8 for c2,c3; col = 2t + (i & 1).
 *   Inverted (which lane and element hold a matrix entry), the form this test distributes and
 *   collects with:
 *     A[r][c] -> lane 4 (r % 8) + (c % 8) / 2, element (c & 1) + 2 (r >= 8) + 4 (c >= 8)
 *     B[k][n] -> lane 4 n + (k % 8) / 2,       element (k & 1) + 2 (k >= 8)
 *     C[r][c] -> lane 4 (r % 8) + c / 2,       element (c & 1) + 2 (r >= 8)
 *   ldmatrix.sync.aligned.m8n8.x4(.trans).shared.b16: lane 8m + r gives the address of row r of
 *   matrix m (16 bytes, 16-byte aligned); matrix m lands in destination register m of every lane.
 *     no .trans: entry (r, c) of matrix m -> lane 4 r + c / 2, half c & 1 (a group of four lanes
 *       holds a row, lane 0 the first pair);
 *     .trans: the matrix as stored is delivered transposed: stored entry (r, c) -> lane
 *       4 c + r / 2, half r & 1 (lane L gets rows 2 (L % 4), 2 (L % 4) + 1 of column L / 4). */
#include <stdint.h>

#include "vt_test.h"

/* ptx_xcheck_gemm_host.cu */
int xg_emul_mma(const uint32_t a[32][4], const uint32_t b[32][2], float c[32][4]);
int xg_sk(void);
void xg_idx(int lane, int reg, int out[6]);
void xg_load_a(const uint16_t *Xs, int R, int kk, int lane, uint32_t a[4]);
void xg_load_b(const uint16_t *Ws, int N, int kk, int lane, uint32_t b[2]);
void xg_store(float *Y, uint64_t M, uint64_t rows, uint64_t m0, uint64_t n0, int warp, int lane,
              const float acc[2][4][4]);
/* ptx_xcheck_attn_host.cu */
int xa_emul_mma(int bf, const uint32_t a[32][4], const uint32_t b[32][2], float d[32][4], char *why,
                size_t cap);
int xa_emul_ldsm(int trans, const uint8_t *smem, size_t bytes, const size_t off[32],
                 uint32_t r[32][4], char *why, size_t cap);
int xa_emul_shfl_xor(const float in[32], int mask, float out[32], char *why, size_t cap);

/* ---- the derivation ---- */

typedef struct {
    int lane, elem;
} owner;

static owner a_owner(int r, int c) {
    owner o = {4 * (r % 8) + (c % 8) / 2, (c & 1) + 2 * (r >= 8) + 4 * (c >= 8)};
    return o;
}
static owner b_owner(int k, int n) {
    owner o = {4 * n + (k % 8) / 2, (k & 1) + 2 * (k >= 8)};
    return o;
}
static owner c_owner(int r, int c) {
    owner o = {4 * (r % 8) + c / 2, (c & 1) + 2 * (r >= 8)};
    return o;
}
/* ldmatrix: entry (r, c) of an 8x8 matrix as stored -> lane, half */
static owner ldsm_owner(int r, int c, int trans) {
    owner o = trans ? (owner){4 * c + r / 2, r & 1} : (owner){4 * r + c / 2, c & 1};
    return o;
}

/* the positions each (lane, element) holds, from the owners; 1 when the owners are not a
 * bijection onto lanes x elements */
static int apos[32][8][2], bpos[32][4][2], cpos[32][4][2];
static int build_positions(void) {
    int na[32][8] = {{0}}, nb[32][4] = {{0}}, nc[32][4] = {{0}}, bad = 0;
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++) {
            owner o = a_owner(r, c);
            apos[o.lane][o.elem][0] = r, apos[o.lane][o.elem][1] = c, na[o.lane][o.elem]++;
            if (c < 8) {
                o = c_owner(r, c);
                cpos[o.lane][o.elem][0] = r, cpos[o.lane][o.elem][1] = c, nc[o.lane][o.elem]++;
            }
            if (c < 8) { /* B: k = r, n = c */
                o = b_owner(r, c);
                bpos[o.lane][o.elem][0] = r, bpos[o.lane][o.elem][1] = c, nb[o.lane][o.elem]++;
            }
        }
    for (int l = 0; l < 32; l++) {
        for (int e = 0; e < 8; e++) bad |= na[l][e] != 1;
        for (int e = 0; e < 4; e++) bad |= nb[l][e] != 1 || nc[l][e] != 1;
    }
    return bad;
}

/* ---- 16-bit values (decoded here, not by cuda_fp16) ---- */

static double f16_val(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e ? ldexp(1.0 + m / 1024.0, e - 15) : ldexp(m / 1024.0, -14);
    return s ? -v : v;
}
static double bf16_val(uint16_t h) {
    int s = h >> 15, e = (h >> 7) & 255, m = h & 127;
    double v = e ? ldexp(1.0 + m / 128.0, e - 127) : ldexp(m / 128.0, -126);
    return s ? -v : v;
}
/* random normal numbers in [1/8, 8) of either sign, one in 16 zero */
static uint16_t rand16(int bf) {
    uint64_t u = vt_rand_u64();
    uint16_t s = (uint16_t)((u & 1) << 15);
    if ((u >> 1) % 16 == 0) return s;
    int e = (int)((u >> 5) % 6);
    if (bf) return (uint16_t)(s | (124 + e) << 7 | ((u >> 8) & 127));
    return (uint16_t)(s | (12 + e) << 10 | ((u >> 8) & 1023));
}
static double val16(uint16_t h, int bf) {
    return bf ? bf16_val(h) : f16_val(h);
}
static uint16_t half_of(uint32_t r, int hi) {
    return (uint16_t)(hi ? r >> 16 : r & 0xffff);
}
static void put_half(uint32_t *r, int hi, uint16_t v) {
    *r = hi ? (*r & 0xffffu) | (uint32_t)v << 16 : (*r & 0xffff0000u) | v;
}

/* ---- (a) mma.sync: both emulators against the derivation and each other ---- */

typedef struct {
    uint16_t A[16][16], B[16][8];
    float C[16][8];
    uint32_t a[32][4], b[32][2];
    float c[32][4];
} mma_case;

static void mma_case_make(mma_case *m, int bf) {
    memset(m, 0, sizeof *m);
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++) {
            m->A[r][c] = rand16(bf);
            owner o = a_owner(r, c);
            put_half(&m->a[o.lane][o.elem / 2], o.elem & 1, m->A[r][c]);
        }
    for (int k = 0; k < 16; k++)
        for (int n = 0; n < 8; n++) {
            m->B[k][n] = rand16(bf);
            owner o = b_owner(k, n);
            put_half(&m->b[o.lane][o.elem / 2], o.elem & 1, m->B[k][n]);
        }
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 8; c++) {
            m->C[r][c] = vt_rand_normal() * 4.0f;
            owner o = c_owner(r, c);
            m->c[o.lane][o.elem] = m->C[r][c];
        }
}

/* entries of D where the lanes' outputs d differ from A B + C (f64) by more than f32 summation
 * in any order allows; the first is described in why */
static int mma_compare(const mma_case *m, int bf, const float d[32][4], const char *who, char *why,
                       size_t cap) {
    int bad = 0;
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 8; c++) {
            double s = m->C[r][c], sa = fabs(s);
            for (int k = 0; k < 16; k++) {
                double p = val16(m->A[r][k], bf) * val16(m->B[k][c], bf);
                s += p, sa += fabs(p);
            }
            owner o = c_owner(r, c);
            double got = d[o.lane][o.elem];
            if (!(fabs(got - s) <= 4e-6 * sa + 1e-30)) {
                if (!bad++)
                    snprintf(why, cap, "%s: D[%d][%d] (lane %d c%d) = %.9g, A B + C = %.9g", who, r,
                             c, o.lane, o.elem, got, s);
            }
        }
    return bad;
}

static void check_mma(int rounds) {
    char why[300];
    for (int it = 0; it < rounds; it++)
        for (int bf = 0; bf < 2; bf++) {
            mma_case m;
            mma_case_make(&m, bf);
            float dg[32][4], da[32][4];
            memcpy(da, m.c, sizeof da);
            why[0] = 0;
            CHECKF(xa_emul_mma(bf, (const uint32_t(*)[4])m.a, (const uint32_t(*)[2])m.b, da, why,
                               sizeof why) == 0,
                   "attn emulator mma: %s", why);
            CHECKF(mma_compare(&m, bf, (const float(*)[4])da, bf ? "attn mma bf16" : "attn mma f16",
                               why, sizeof why) == 0,
                   "%s", why);
            if (bf) continue; /* the GEMM emulator is f16 only */
            memcpy(dg, m.c, sizeof dg);
            CHECKF(xg_emul_mma((const uint32_t(*)[4])m.a, (const uint32_t(*)[2])m.b, dg) == 0,
                   "GEMM emulator mma: fragment coverage check failed");
            CHECKF(mma_compare(&m, 0, (const float(*)[4])dg, "GEMM mma f16", why, sizeof why) == 0,
                   "%s", why);
            /* (c) the two emulators on the same fragments */
            int diff = 0;
            for (int l = 0; l < 32; l++)
                for (int e = 0; e < 4; e++) {
                    double s = fabs(m.c[l][e]);
                    int r = cpos[l][e][0], c = cpos[l][e][1];
                    for (int k = 0; k < 16; k++) s += fabs(f16_val(m.A[r][k]) * f16_val(m.B[k][c]));
                    diff += !(fabs((double)dg[l][e] - da[l][e]) <= 8e-6 * s + 1e-30);
                }
            CHECKF(diff == 0, "GEMM and attention emulators differ in %d of 128 outputs", diff);
        }
}

/* The check must be able to fail: the same fragments with A's registers 1 and 2 swapped (rows
 * g + 8 and columns 2t + 8 exchanged), and with B's two registers swapped, must not pass. */
static void check_mma_sensitivity(void) {
    char why[300];
    mma_case m;
    mma_case_make(&m, 0);
    for (int v = 0; v < 2; v++) {
        mma_case w = m;
        for (int l = 0; l < 32; l++) {
            if (v == 0) {
                uint32_t x = w.a[l][1];
                w.a[l][1] = w.a[l][2], w.a[l][2] = x;
            } else {
                uint32_t x = w.b[l][0];
                w.b[l][0] = w.b[l][1], w.b[l][1] = x;
            }
        }
        float dg[32][4], da[32][4];
        memcpy(dg, m.c, sizeof dg);
        memcpy(da, m.c, sizeof da);
        xg_emul_mma((const uint32_t(*)[4])w.a, (const uint32_t(*)[2])w.b, dg);
        xa_emul_mma(0, (const uint32_t(*)[4])w.a, (const uint32_t(*)[2])w.b, da, why, sizeof why);
        CHECKF(mma_compare(&m, 0, (const float(*)[4])dg, "x", why, sizeof why) > 0,
               "a swapped %s register went unnoticed (GEMM emulator)", v ? "B" : "A");
        CHECKF(mma_compare(&m, 0, (const float(*)[4])da, "x", why, sizeof why) > 0,
               "a swapped %s register went unnoticed (attention emulator)", v ? "B" : "A");
    }
}

/* ---- (b) ldmatrix ---- */

enum { SROWS = 64, SLD = 72 }; /* a shared tile of 64 rows of 72 halves (144 bytes) */

/* the derivation's ldmatrix.x4 from row addresses (row, first column) per lane */
static void my_ldsm(const uint16_t *sm, const int addr[32][2], int trans, uint32_t r[32][4]) {
    memset(r, 0, 32 * 4 * sizeof(uint32_t));
    for (int mtx = 0; mtx < 4; mtx++)
        for (int i = 0; i < 8; i++)
            for (int j = 0; j < 8; j++) {
                const int *ad = addr[8 * mtx + i];
                owner o = ldsm_owner(i, j, trans);
                put_half(&r[o.lane][mtx], o.elem, sm[ad[0] * SLD + ad[1] + j]);
            }
}

static void check_ldsm(int rounds) {
    static uint16_t sm[SROWS * SLD + 64] __attribute__((aligned(16)));
    char why[300];
    for (int it = 0; it < rounds; it++)
        for (int trans = 0; trans < 2; trans++) {
            for (int i = 0; i < SROWS * SLD; i++) sm[i] = (uint16_t)vt_rand_u64();
            int addr[32][2];
            size_t off[32];
            for (int l = 0; l < 32; l++) {
                addr[l][0] = (int)(vt_rand_u64() % SROWS);
                addr[l][1] = 8 * (int)(vt_rand_u64() % (SLD / 8));
                off[l] = (size_t)(addr[l][0] * SLD + addr[l][1]) * 2;
            }
            uint32_t want[32][4], got[32][4];
            my_ldsm(sm, (const int(*)[2])addr, trans, want);
            why[0] = 0;
            memset(got, 0, sizeof got);
            CHECKF(xa_emul_ldsm(trans, (const uint8_t *)sm, sizeof(uint16_t) * SROWS * SLD, off,
                                got, why, sizeof why) == 0,
                   "attn emulator ldmatrix: %s", why);
            int bad = 0;
            for (int l = 0; l < 32; l++)
                for (int m = 0; m < 4; m++)
                    if (got[l][m] != want[l][m] && !bad++)
                        fprintf(stderr, "ldmatrix%s: lane %d reg %d: %08x, derivation %08x\n",
                                trans ? ".trans" : "", l, m, got[l][m], want[l][m]);
            CHECKF(bad == 0, "attn emulator ldmatrix.x4%s: %d registers differ",
                   trans ? ".trans" : "", bad);
        }
}

/* shfl.sync.bfly (__shfl_xor_sync, all 32 lanes, width 32): lane l receives lane l ^ mask's
 * value (PTX ISA, "Data Movement and Conversion Instructions: shfl.sync") */
static void check_shfl(void) {
    char why[300];
    for (int mask = 1; mask < 32; mask++) {
        float in[32], out[32];
        for (int l = 0; l < 32; l++) in[l] = vt_rand_normal();
        why[0] = 0;
        CHECKF(xa_emul_shfl_xor(in, mask, out, why, sizeof why) == 0, "attn emulator shfl: %s",
               why);
        for (int l = 0; l < 32; l++)
            CHECKF(out[l] == in[l ^ mask], "attn emulator shfl.xor %d: lane %d", mask, l);
    }
}

/* ---- kernels' fragment index math ---- */

/* mma_tile.cuh: index helpers, fragment gathers and epilogue against the derivation */
static void check_mma_tile(void) {
    const int SK = xg_sk();
    for (int l = 0; l < 32; l++)
        for (int reg = 0; reg < 4; reg++) {
            int o[6];
            xg_idx(l, reg, o);
            /* a register's pair is elements 2 reg, 2 reg + 1: same row, next column */
            CHECKF(o[0] == apos[l][2 * reg][0] && o[1] == apos[l][2 * reg][1] &&
                       apos[l][2 * reg + 1][0] == o[0] && apos[l][2 * reg + 1][1] == o[1] + 1,
                   "mma_tile.cuh A lane %d reg %d: (%d, %d)", l, reg, o[0], o[1]);
            if (reg < 2)
                CHECKF(o[2] == bpos[l][2 * reg][0] && o[3] == bpos[l][2 * reg][1] &&
                           bpos[l][2 * reg + 1][0] == o[2] + 1 && bpos[l][2 * reg + 1][1] == o[3],
                       "mma_tile.cuh B lane %d reg %d: (k %d, n %d)", l, reg, o[2], o[3]);
            CHECKF(o[4] == cpos[l][reg][0] && o[5] == cpos[l][reg][1],
                   "mma_tile.cuh C lane %d element %d: (%d, %d)", l, reg, o[4], o[5]);
        }
    /* gathers from a 64-row tile: A block rows R.., B[k][n] = W[N + n][kk + k] */
    uint16_t *T = malloc(sizeof(uint16_t) * 64 * SK);
    for (int i = 0; i < 64 * SK; i++) T[i] = (uint16_t)vt_rand_u64();
    int bad_a = 0, bad_b = 0;
    for (int R = 0; R < 64; R += 16)
        for (int kk = 0; kk < 64; kk += 16)
            for (int l = 0; l < 32; l++) {
                uint32_t a[4], want[4] = {0, 0, 0, 0};
                xg_load_a(T, R, kk, l, a);
                for (int e = 0; e < 8; e++)
                    put_half(&want[e / 2], e & 1, T[(R + apos[l][e][0]) * SK + kk + apos[l][e][1]]);
                bad_a += memcmp(a, want, sizeof a) != 0;
            }
    for (int N = 0; N < 64; N += 8)
        for (int kk = 0; kk < 64; kk += 16)
            for (int l = 0; l < 32; l++) {
                uint32_t b[2], want[2] = {0, 0};
                xg_load_b(T, N, kk, l, b);
                for (int e = 0; e < 4; e++)
                    put_half(&want[e / 2], e & 1, T[(N + bpos[l][e][1]) * SK + kk + bpos[l][e][0]]);
                bad_b += memcmp(b, want, sizeof b) != 0;
            }
    CHECKF(bad_a == 0, "vt_mma_load_a: %d lane fragments differ from the derivation", bad_a);
    CHECKF(bad_b == 0, "vt_mma_load_b: %d lane fragments differ from the derivation", bad_b);
    free(T);
    /* epilogue: a 64 x 64 tile at (64, 64) of a 128 x 128 Y, every entry written once */
    enum { YN = 128 };
    float *Y = malloc(sizeof(float) * YN * YN), acc[4][32][2][4][4];
    for (int i = 0; i < YN * YN; i++) Y[i] = NAN;
    for (int w = 0; w < 4; w++)
        for (int l = 0; l < 32; l++) {
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 4; j++)
                    for (int e = 0; e < 4; e++) acc[w][l][i][j][e] = vt_rand_normal();
            xg_store(Y, YN, YN, 64, 64, w, l, (const float(*)[4][4])acc[w][l]);
        }
    int bad_y = 0, seen = 0;
    for (int w = 0; w < 4; w++)
        for (int l = 0; l < 32; l++)
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 4; j++)
                    for (int e = 0; e < 4; e++) {
                        int m = 64 + 32 * (w >> 1) + 16 * i + cpos[l][e][0];
                        int n = 64 + 32 * (w & 1) + 8 * j + cpos[l][e][1];
                        bad_y += Y[m * YN + n] != acc[w][l][i][j][e];
                    }
    for (int i = 0; i < YN * YN; i++) seen += !isnan(Y[i]);
    CHECKF(bad_y == 0 && seen == 64 * 64,
           "vt_mma_store: %d accumulators not where the derivation puts them, %d of 4096 written",
           bad_y, seen);
    free(Y);
}

/* attn_prefill.cuh's fragment use. Its ldmatrix row addresses and the P re-pack are inline in the
 * body (not separable), so they are restated here from the body (keep in sync: Q, K, V lines
 * below) and pushed through the derivation's ldmatrix: they must yield the derivation's A and B
 * fragments of Q, K^T and V. (test_attn_kern_host runs the body itself against the emulator,
 * which the checks above tie to the derivation.) */
static void check_prefill_frags(void) {
    static uint16_t sm[SROWS * SLD + 64] __attribute__((aligned(16)));
    for (int i = 0; i < SROWS * SLD; i++) sm[i] = (uint16_t)vt_rand_u64();
    int bad = 0;
    for (int warp = 0; warp < 4; warp++)
        for (int ks = 0; ks < 4; ks++) {
            int ad[32][2];
            uint32_t r[32][4];
            /* Q: &Ks[warp * 16 + (lane % 16)][ks * 16 + (lane / 16) * 8] -> A of Q rows warp*16..,
             * columns ks*16.. */
            for (int l = 0; l < 32; l++)
                ad[l][0] = warp * 16 + l % 16, ad[l][1] = ks * 16 + l / 16 * 8;
            my_ldsm(sm, (const int(*)[2])ad, 0, r);
            for (int l = 0; l < 32; l++)
                for (int e = 0; e < 8; e++)
                    bad += half_of(r[l][e / 2], e & 1) !=
                           sm[(warp * 16 + apos[l][e][0]) * SLD + ks * 16 + apos[l][e][1]];
            /* K: &Ks[n2 * 16 + (lane / 16) * 8 + (lane % 8)][ks * 16 + ((lane / 8) % 2) * 8];
             * b[0..1]: B of key tile 2 n2, b[2..3]: tile 2 n2 + 1 (B[k][n] = K[key n][dim k]) */
            int n2 = warp;
            for (int l = 0; l < 32; l++)
                ad[l][0] = n2 * 16 + (l / 16) * 8 + l % 8, ad[l][1] = ks * 16 + ((l / 8) % 2) * 8;
            my_ldsm(sm, (const int(*)[2])ad, 0, r);
            for (int l = 0; l < 32; l++)
                for (int h = 0; h < 2; h++)
                    for (int e = 0; e < 4; e++)
                        bad +=
                            half_of(r[l][2 * h + e / 2], e & 1) !=
                            sm[(n2 * 16 + 8 * h + bpos[l][e][1]) * SLD + ks * 16 + bpos[l][e][0]];
            /* V: ldmatrix.trans at &Vs[kk * 16 + ((lane / 8) % 2) * 8 + (lane % 8)][d2 * 16 +
             * (lane / 16) * 8]; b[0..1]: B of dims d2*16.., b[2..3]: d2*16+8.. (B[k][n] =
             * V[key k][dim n]) */
            int kk = warp, d2 = ks;
            for (int l = 0; l < 32; l++)
                ad[l][0] = kk * 16 + ((l / 8) % 2) * 8 + l % 8, ad[l][1] = d2 * 16 + (l / 16) * 8;
            my_ldsm(sm, (const int(*)[2])ad, 1, r);
            for (int l = 0; l < 32; l++)
                for (int h = 0; h < 2; h++)
                    for (int e = 0; e < 4; e++)
                        bad +=
                            half_of(r[l][2 * h + e / 2], e & 1) !=
                            sm[(kk * 16 + bpos[l][e][0]) * SLD + d2 * 16 + 8 * h + bpos[l][e][1]];
        }
    CHECKF(bad == 0, "attn_prefill ldmatrix addressing: %d halves differ from the derivation", bad);
    /* P re-pack: pa = {p0[0..1], p0[2..3], p1[0..1], p1[2..3]} with p0, p1 the S accumulators of
     * key tiles 2 kk, 2 kk + 1: A element e of a lane must be C element e & 3 of tile e >= 4,
     * the same (row, key) */
    for (int l = 0; l < 32; l++)
        for (int e = 0; e < 8; e++) {
            int ce = e & 3, tile = e >= 4;
            CHECKF(apos[l][e][0] == cpos[l][ce][0] && apos[l][e][1] == 8 * tile + cpos[l][ce][1],
                   "attn_prefill P re-pack: lane %d A element %d", l, e);
        }
    /* mask / epilogue: element e of S tile nt is (row g + 8 (e >= 2), key nt * 8 + 2 t4 + (e & 1))
     */
    for (int l = 0; l < 32; l++)
        for (int e = 0; e < 4; e++)
            CHECKF(cpos[l][e][0] == l / 4 + 8 * (e >= 2) && cpos[l][e][1] == 2 * (l % 4) + (e & 1),
                   "attn_prefill accumulator (row, key) of lane %d element %d", l, e);
}

int main(void) {
    vt_test_seed();
    CHECKF(build_positions() == 0, "the derivation's owners are not a bijection");
    check_mma(200);
    check_mma_sensitivity();
    check_ldsm(100);
    check_shfl();
    check_mma_tile();
    check_prefill_frags();
    return vt_test_done("test_ptx_emul_xcheck");
}
