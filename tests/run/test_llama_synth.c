/* test_llama_synth — the model runner on a small random Llama model written into a store
 * (2 layers, dim 64, 4 query / 2 KV heads, head dim 16, ffn 96, vocab 300, q8_0/q4_1 matrices,
 * tied head), against a plain f64 forward in this file over the same dequantized weights:
 *  - prefill logits of 7 tokens and 3 single-token decode steps (the last two greedy, which
 *    takes the head's kept argmax row): max relative error < 1e-3 with an f16 KV cache (the
 *    oracle rounds K/V to f16 as well; see F16KV_TOL), < 1e-4 with an f32 one;
 *  - a RAM budget far below the model (token_embd streamed in parts) gives bit-identical logits;
 *  - a VRAM tier below the model (host memory without a GPU) with RAM-pinned tensors passing
 *    through its ring, and budgets down to 2 ring slots of the largest piece: bit-identical
 *    logits (skipped on a GPU: its attention does not take head dim 16); a page less is
 *    refused at open, with the tensor and the sizes; vt_llama_ring_slots picks the slots;
 *  - a prefill split into chunks of 3 tokens agrees as well;
 *  - a q8_0 KV cache stays within 3e-2 relative of the oracle (and is not exact);
 *  - Llama 3's RoPE scaling: the same model with a rope_freqs.weight tensor (the divisors, as
 *    convert_hf_to_gguf computes them) against the oracle with the scaled frequencies computed
 *    here as transformers does (inv_freq / factor, smoothed between): max relative error < 1e-3,
 *    while the unscaled oracle is far off (> 1e-2: the factors matter at these positions);
 *    a GGUF rope.scaling.type other than none and linear is refused; linear scaling (factor 4)
 *    against the oracle with the frequencies / 4 (< 1e-3; unscaled far off);
 *  - Qwen2: the architecture "qwen2" with f32 q/k/v biases, against the oracle with the biases
 *    and NEOX RoPE (rotate_half pairs): max relative error < 1e-3; the oracle without the biases
 *    is far off (> 1e-2);
 *  - Qwen3: per-head q/k RMSNorm before NEOX RoPE, head dim 24 with dim 64 / 4 heads (GGUF
 *    key_length / value_length), against the oracle with the norms (< 1e-3; without them far
 *    off), and streamed through half the model's bytes with the same bits; an attn_output.bias
 *    added to that store is refused by name.
 * No Python, no download: runs everywhere (label quick). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llama.h"
#include "store/store_testutil.h"
#include "vt_test.h"
#include "vtstore/kernels.h"
#include "vtstore/meta.h"
#include "vtstore/quant.h"
#include "vtstore/store.h"

/* fatal checks: a failure ends the test (exit 1) with the location and the library's detail */
#define REQ(c)                                                                                     \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: FAIL: %s\n", __FILE__, __LINE__, #c);                          \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)
#define REQ_RC(e)                                                                                  \
    do {                                                                                           \
        int r_ = (e);                                                                              \
        if (r_) {                                                                                  \
            fprintf(stderr, "%s:%d: FAIL: %s = %s (%s)\n", __FILE__, __LINE__, #e,                 \
                    vt_strerror(r_), vt_last_error());                                             \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

enum { NL = 2, DIM = 64, H = 4, HKV = 2, HDM = 24, FFN = 96, VOCAB = 300, NT = 7, ND = 3 };
static int hd = 16; /* head dim: DIM / H, or 24 for the qwen3 store (H * hd = 96, not DIM) */
#define THETA 10000.0
#define EPS   1e-5

#define SEED 0x9e3779b97f4a7c15ull
static uint64_t rng = SEED;
static double urand(void) { /* xorshift64*, uniform in [-1, 1) */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (double)((rng * 2685821657736338717ull) >> 11) / 9007199254740992.0 * 2 - 1;
}

typedef struct {
    float *w; /* dequantized [rows][cols] */
    uint64_t rows, cols;
} mat;

static mat embd, onorm, lw[NL][9];
static mat lb[NL][3];       /* qwen2: q/k/v biases [1][H*hd], [1][HKV*hd] x2 */
static mat ln[NL][2];       /* qwen3: q/k norms [1][hd] */
static int qwen2;           /* the store is a qwen2 one; the oracle uses NEOX RoPE */
static int qwen3;           /* a qwen3 one: q/k norms, NEOX RoPE, head dim hd */
static int oracle_bias = 1; /* the oracle adds the biases (qwen2) */
static int oracle_qkn = 1;  /* the oracle applies the q/k norms (qwen3) */

/* Llama 3 RoPE scaling of the rope test (a short original context, so that the scaling changes
 * the angles at the few positions the test runs) */
#define L3_FACTOR 8.0
#define L3_LOW    1.0
#define L3_HIGH   4.0
#define L3_ORIG   64.0
static double inv_freq[HDM / 2]; /* the oracle's RoPE frequencies */

/* transformers' _compute_llama3_parameters on the default frequencies (scaled) or these alone */
static void set_inv_freq(int scaled) {
    const double pi = 3.14159265358979323846, low_wl = L3_ORIG / L3_LOW,
                 high_wl = L3_ORIG / L3_HIGH;
    for (int i = 0; i < hd / 2; i++) {
        double f = 1.0 / pow(THETA, 2.0 * i / hd), wl = 2 * pi / f;
        if (!scaled) {
            inv_freq[i] = f;
            continue;
        }
        double fl = wl > low_wl ? f / L3_FACTOR : f;
        double sm = (L3_ORIG / wl - L3_LOW) / (L3_HIGH - L3_LOW);
        int medium = !(wl < high_wl) && !(wl > low_wl);
        inv_freq[i] = medium ? (1 - sm) * fl / L3_FACTOR + sm * fl : fl;
    }
}

/* convert_hf_to_gguf's rope_freqs.weight for the same parameters */
static void gguf_rope_factors(float *out) {
    const double pi = 3.14159265358979323846;
    for (int i = 0; i < hd / 2; i++) {
        double freq = 1.0 / pow(THETA, (2.0 * i) / hd), wavelen = 2 * pi / freq;
        if (wavelen < L3_ORIG / L3_HIGH) {
            out[i] = 1;
        } else if (wavelen > L3_ORIG / L3_LOW) {
            out[i] = (float)L3_FACTOR;
        } else {
            double smooth = (L3_ORIG / wavelen - L3_LOW) / (L3_HIGH - L3_LOW);
            out[i] = (float)(1 / ((1 - smooth) / L3_FACTOR + smooth));
        }
    }
}

/* Quantize random data, store it, keep the dequantized values for the oracle. */
static int put(vt_store_writer *w, const char *name, uint64_t rows, uint64_t cols, uint32_t fmt,
               double scale, double offset, mat *out) {
    size_t n = rows * cols;
    float *x = malloc(n * sizeof(float));
    uint64_t qb = vt_quant_bytes(fmt, rows, cols);
    uint8_t *q = malloc(qb);
    REQ(x && q);
    for (size_t i = 0; i < n; i++) x[i] = (float)(offset + scale * urand());
    REQ_RC(vt_quantize(fmt, NULL, x, rows, cols, q, 1));
    REQ_RC(vt_dequantize(fmt, NULL, q, rows, cols, x, 1));
    vt_tensor_info meta = {0};
    snprintf(meta.name, sizeof meta.name, "%s", name);
    meta.src_dtype = VT_DTYPE_F32;
    meta.ndim = rows == 1 ? 1 : 2;
    meta.dims[0] = rows == 1 ? cols : rows;
    meta.dims[1] = cols;
    meta.format = fmt;
    meta.tensor_scale = 1;
    /* small chunks, so a tight budget streams token_embd in several parts */
    meta.rows_per_chunk = rows >= 64 ? 64 : 0;
    vt_writer_tensor *t;
    vt_tensor_info ti;
    REQ_RC(vt_writer_tensor_begin(w, &meta, NULL, 0, &t));
    REQ_RC(vt_writer_tensor_info(w, t, &ti));
    uint64_t off = 0;
    for (uint64_t c = 0; c < ti.n_chunks; c++) {
        uint64_t r0 = c * ti.rows_per_chunk, nr = ti.rows - r0;
        if (nr > ti.rows_per_chunk) nr = ti.rows_per_chunk;
        uint64_t len = vt_quant_bytes(fmt, nr, cols);
        REQ_RC(vt_writer_put_chunk(w, t, c, q + off, len));
        off += len;
    }
    REQ_RC(vt_writer_tensor_end(w, t, NULL));
    free(q);
    out->w = x;
    out->rows = rows;
    out->cols = cols;
    return 0;
}

static int put_meta(vt_store_writer *w, const char *key, uint32_t type, const void *v, size_t n) {
    uint8_t buf[64];
    memcpy(buf, &type, 4);
    memcpy(buf + 4, v, n);
    REQ_RC(vt_writer_put_meta(w, key, buf, n + 4));
    return 0;
}

static int make_store(const char *path, int rope_scaled) {
    vt_store *s;
    vt_store_writer *w;
    REQ_RC(vt_store_open(path, VT_STORE_RDWR | VT_STORE_CREATE, NULL, &s));
    REQ_RC(vt_store_writer_begin(s, &w));
    static const char *const suf[9] = {"attn_norm", "attn_q",   "attn_k", "attn_v",  "attn_output",
                                       "ffn_norm",  "ffn_gate", "ffn_up", "ffn_down"};
    const uint64_t rows[9] = {1, H * hd, HKV * hd, HKV * hd, DIM, 1, FFN, FFN, DIM};
    const uint64_t cols[9] = {DIM, DIM, DIM, DIM, H * hd, DIM, DIM, DIM, FFN};
    REQ(!put(w, "token_embd.weight", VOCAB, DIM, VT_FMT_Q8_0, 1.0, 0, &embd));
    for (int l = 0; l < NL; l++)
        for (int t = 0; t < 9; t++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, suf[t]);
            int norm = rows[t] == 1;
            REQ(!put(w, name, rows[t], cols[t],
                     norm ? VT_FMT_F32 : (t % 2 ? VT_FMT_Q4_1 : VT_FMT_Q8_0), norm ? 0.2 : 0.25,
                     norm ? 1.0 : 0, &lw[l][t]));
        }
    for (int l = 0; l < NL && qwen2; l++)
        for (int t = 0; t < 3; t++) {
            static const char *const r[3] = {"q", "k", "v"};
            char name[64];
            snprintf(name, sizeof name, "blk.%d.attn_%s.bias", l, r[t]);
            REQ(!put(w, name, 1, t ? HKV * hd : H * hd, VT_FMT_F32, 0.5, 0, &lb[l][t]));
        }
    for (int l = 0; l < NL && qwen3; l++)
        for (int t = 0; t < 2; t++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%d.attn_%s_norm.weight", l, t ? "k" : "q");
            REQ(!put(w, name, 1, hd, VT_FMT_F32, 0.5, 1.0, &ln[l][t]));
        }
    REQ(!put(w, "output_norm.weight", 1, DIM, VT_FMT_F32, 0.2, 1.0, &onorm));
    if (rope_scaled) { /* a 1-D f32 tensor [hd / 2], as imported from a Llama 3.1 GGUF */
        float ff[HDM / 2];
        gguf_rope_factors(ff);
        REQ_RC(tu_put_f32(w, "rope_freqs.weight", ff, hd / 2));
    }
    const char *arch = qwen2 ? "qwen2" : qwen3 ? "qwen3" : "llama";
    uint8_t sv[16];
    uint64_t len = strlen(arch);
    memcpy(sv, &len, 8);
    memcpy(sv + 8, arch, len);
    REQ(!put_meta(w, "gguf.general.architecture", 8, sv, 8 + len));
    struct {
        const char *k;
        uint32_t v;
    } u[] = {
        {"block_count", NL},         {"embedding_length", DIM},        {"feed_forward_length", FFN},
        {"attention.head_count", H}, {"attention.head_count_kv", HKV}, {"context_length", 64}};
    char key[96];
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++) {
        snprintf(key, sizeof key, "gguf.%s.%s", arch, u[i].k);
        REQ(!put_meta(w, key, 4, &u[i].v, 4));
    }
    for (int i = 0; i < 2 && hd != DIM / H; i++) { /* as convert_hf_to_gguf writes head_dim */
        uint32_t v = (uint32_t)hd;
        snprintf(key, sizeof key, "gguf.%s.attention.%s_length", arch, i ? "value" : "key");
        REQ(!put_meta(w, key, 4, &v, 4));
    }
    float theta = (float)THETA, eps = (float)EPS;
    snprintf(key, sizeof key, "gguf.%s.rope.freq_base", arch);
    REQ(!put_meta(w, key, 6, &theta, 4));
    snprintf(key, sizeof key, "gguf.%s.attention.layer_norm_rms_epsilon", arch);
    REQ(!put_meta(w, key, 6, &eps, 4));
    REQ_RC(vt_store_writer_commit(w));
    vt_store_close(s);
    return 0;
}

/* ---- f64 oracle --------------------------------------------------------------------------- */

static double kc[NL][16][HKV * HDM], vc[NL][16][HKV * HDM];
static int npast;

static void mv(const mat *m, const double *x, double *y) {
    for (uint64_t r = 0; r < m->rows; r++) {
        double s = 0;
        for (uint64_t c = 0; c < m->cols; c++) s += (double)m->w[r * m->cols + c] * x[c];
        y[r] = s;
    }
}

static void normn(const double *x, const mat *g, int n, double *y) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    double inv = 1 / sqrt(ss / n + EPS);
    for (int i = 0; i < n; i++) y[i] = x[i] * inv * g->w[i];
}
static void norm(const double *x, const mat *g, double *y) {
    normn(x, g, DIM, y);
}

/* adjacent pairs (x[2i], x[2i+1]) for llama; qwen2, qwen3 (NEOX): (x[i], x[i + hd/2]) */
static void rope(double *v, int heads, int pos) {
    const int neox = qwen2 || qwen3, step = neox ? 1 : 2, off = neox ? hd / 2 : 1;
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < hd / 2; i++) {
            double a = pos * inv_freq[i], c = cos(a), s = sin(a);
            double *p = v + h * hd + step * i, x0 = p[0], x1 = p[off];
            p[0] = x0 * c - x1 * s;
            p[off] = x0 * s + x1 * c;
        }
}

/* the oracle's K/V as the cache stores them: f16 (kv_f16), or f32 */
static int kv_f16 = 1;
static double f16r(double x) {
    return kv_f16 ? vt_f16_to_f32(vt_f32_to_f16((float)x)) : (double)(float)x;
}

static void oracle_step(int tok, double *logits) {
    double x[DIM], h[DIM], q[H * HDM], k[HKV * HDM], v[HKV * HDM], o[H * HDM], y[FFN], g[FFN],
        u[FFN];
    for (int i = 0; i < DIM; i++) x[i] = embd.w[(size_t)tok * DIM + i];
    int pos = npast;
    for (int l = 0; l < NL; l++) {
        norm(x, &lw[l][0], h);
        mv(&lw[l][1], h, q);
        mv(&lw[l][2], h, k);
        mv(&lw[l][3], h, v);
        for (int i = 0; qwen2 && oracle_bias && i < H * hd; i++) {
            q[i] += lb[l][0].w[i];
            if (i < HKV * hd) k[i] += lb[l][1].w[i], v[i] += lb[l][2].w[i];
        }
        for (int hh = 0; qwen3 && oracle_qkn && hh < H; hh++) { /* Qwen3RMSNorm per head */
            normn(q + hh * hd, &ln[l][0], hd, q + hh * hd);
            if (hh < HKV) normn(k + hh * hd, &ln[l][1], hd, k + hh * hd);
        }
        rope(q, H, pos);
        rope(k, HKV, pos);
        for (int i = 0; i < HKV * hd; i++) {
            kc[l][pos][i] = f16r(k[i]);
            vc[l][pos][i] = f16r(v[i]);
        }
        for (int hh = 0; hh < H; hh++) {
            int kh = hh / (H / HKV);
            double sc[16], mx = -1e300, sum = 0;
            for (int j = 0; j <= pos; j++) {
                double d = 0;
                for (int e = 0; e < hd; e++) d += q[hh * hd + e] * kc[l][j][kh * hd + e];
                sc[j] = d / sqrt((double)hd);
                if (sc[j] > mx) mx = sc[j];
            }
            for (int j = 0; j <= pos; j++) sum += sc[j] = exp(sc[j] - mx);
            for (int e = 0; e < hd; e++) {
                double a = 0;
                for (int j = 0; j <= pos; j++) a += sc[j] * vc[l][j][kh * hd + e];
                o[hh * hd + e] = a / sum;
            }
        }
        mv(&lw[l][4], o, y);
        for (int i = 0; i < DIM; i++) x[i] += y[i];
        norm(x, &lw[l][5], h);
        mv(&lw[l][6], h, g);
        mv(&lw[l][7], h, u);
        for (int i = 0; i < FFN; i++) g[i] = g[i] / (1 + exp(-g[i])) * u[i];
        mv(&lw[l][8], g, y);
        for (int i = 0; i < DIM; i++) x[i] += y[i];
    }
    npast++;
    norm(x, &onorm, h);
    mv(&embd, h, logits);
}

/* The oracle over toks[NT + ND] from an empty cache: ref[i] = logits after toks[0..i]; the
 * tokens after the first decode token are the greedy choices (so the runner's tied head reuses
 * its kept argmax row) and are written back to toks. */
static void oracle_run(int32_t *toks, double (*ref)[VOCAB]) {
    npast = 0;
    for (int i = 0; i < NT + ND; i++) {
        if (i > NT) {
            int b = 0;
            for (int j = 1; j < VOCAB; j++)
                if (ref[i - 1][j] > ref[i - 1][b]) b = j;
            toks[i] = b;
        }
        oracle_step(toks[i], ref[i]);
    }
}

/* The oracle from toks (its greedy tokens into tnear) into near, and with *feature off (0) on
 * the same tokens into far; *feature is 1 again after. */
static void oracle_near_far(const int32_t *toks, int32_t *tnear, double (*near)[VOCAB],
                            double (*far)[VOCAB], int *feature) {
    int32_t tfar[NT + ND];
    memcpy(tnear, toks, sizeof tfar);
    oracle_run(tnear, near);
    *feature = 0;
    memcpy(tfar, tnear, sizeof tfar);
    oracle_run(tfar, far);
    *feature = 1;
}

static void free_mats(void) {
    for (int l = 0; l < NL; l++)
        for (int t = 0; t < 9; t++) free(lw[l][t].w);
    for (int l = 0; l < NL; l++)
        for (int t = 0; t < 3; t++) {
            free(lb[l][t].w);
            lb[l][t].w = NULL;
            if (t < 2) {
                free(ln[l][t].w);
                ln[l][t].w = NULL;
            }
        }
    free(embd.w);
    free(onorm.w);
}

static double rel_err(const float *a, const double *b, size_t n) {
    double mx = 0, bm = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]);
        if (d > mx || isnan(d)) mx = isnan(d) ? INFINITY : d;
        if (fabs(b[i]) > bm) bm = fabs(b[i]);
    }
    return mx / bm;
}

/* Runs the model: prefill NT tokens (all logits), then ND decode steps; out [(NT+ND)][VOCAB]. */
/* Bound on the worst relative logit error against the oracle with an f16 KV cache. Both round
 * K and V to f16, but a K or V value within f32 rounding of an f16 rounding boundary goes to
 * one neighbour in the runner (f32 sums, in its kernel's order) and the other in the oracle
 * (f64): one f16 ulp, 2^-11 of that value. The AVX2 q8_0 GEMV, which sums in another order than
 * the AVX-512 one, flips such a value in this model: 1.5e-4 at most, against 3e-7 on AVX-512
 * (2026-11-27). With an f32 cache (no such boundary) the bound is F32KV_TOL: the q4_1 products
 * in integers on AVX-512 with VNNI (x as int16 per 64 columns, each off by up to 1/32768 of its
 * group's largest) put 6.7e-5 there, 4e-7 under VT_GEMV_CPU_INT=0 (2026-11-27). */
#define F16KV_TOL 1e-3
#define F32KV_TOL 1e-4

/* The runner's logits @p a must be within F16KV_TOL (worst relative error) of @p ref over all
 * positions and more than 1e-2 from the oracle variant @p far (a feature left out) over the
 * prefill positions, so that the check would see that feature ignored. */
static void check_near_far(const char *what, const float *a, double (*ref)[VOCAB],
                           double (*far)[VOCAB], const char *far_name) {
    double w = 0, wf = 0;
    for (int i = 0; i < NT + ND; i++) {
        double e = rel_err(a + (size_t)i * VOCAB, ref[i], VOCAB);
        if (e > w) w = e;
        if (i < NT && (e = rel_err(a + (size_t)i * VOCAB, far[i], VOCAB)) > wf) wf = e;
    }
    printf("%s: max relative error %.3g vs the oracle, %.3g vs the oracle %s\n", what, w, wf,
           far_name);
    REQ(w < F16KV_TOL);
    REQ(wf > 1e-2);
}

static uint32_t ubatch; /* tokens per forward chunk (0 = default) */
static uint64_t vram;   /* VRAM tier budget (0 = none): the streamer's device tier in host
                           memory, with the host kernels (a machine without a GPU) */
static vt_streamer_stats last_stats; /* of the last run_model, after its prefill */
static uint32_t last_ram_pins;       /* RAM-pinned tensors of its plan */

static int run_model(vt_store *s, uint64_t ram, uint32_t kv_fmt, const int32_t *toks, float *out,
                     uint64_t *bytes_read) {
    vt_llama_opts o;
    vt_llama_opts_init(&o);
    o.ram_bytes = ram;
    o.vram_bytes = vram;
    o.kv_format = kv_fmt;
    o.max_ctx = 16;
    o.ubatch = ubatch;
    vt_llama *m;
    REQ_RC(vt_llama_open(s, &o, &m));
    last_ram_pins = 0;
    for (int l = 0; l < NL; l++)
        for (int t = 0; t < 9; t++) {
            static const char *const suf[9] = {"attn_norm", "attn_q",      "attn_k",
                                               "attn_v",    "attn_output", "ffn_norm",
                                               "ffn_gate",  "ffn_up",      "ffn_down"};
            char name[64];
            vt_placement pl;
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, suf[t]);
            REQ_RC(vt_streamer_placement(vt_llama_streamer(m), name, &pl));
            last_ram_pins += pl == VT_PLACE_RAM_PIN;
        }
    if (ram) { /* chunkwise streamer: token_embd is served in parts (its store chunks) */
        vt_placement pl;
        uint64_t parts;
        REQ_RC(vt_streamer_placement(vt_llama_streamer(m), "token_embd.weight", &pl));
        REQ_RC(vt_streamer_parts(vt_llama_streamer(m), "token_embd.weight", &parts));
        printf("token_embd: placement %s, %llu parts\n", vt_placement_name(pl),
               (unsigned long long)parts);
        REQ(parts == (VOCAB + 63) / 64); /* head and embedding go through the part path */
    }
    REQ_RC(vt_llama_eval(m, toks, NT, out, 1));
    REQ_RC(vt_streamer_get_stats(vt_llama_streamer(m), &last_stats));
    for (int i = 0; i < ND; i++)
        REQ_RC(vt_llama_eval(m, &toks[NT + i], 1, out + (size_t)(NT + i) * VOCAB, 0));
    REQ(vt_llama_n_past(m) == NT + ND);
    vt_streamer_stats st;
    REQ_RC(vt_streamer_get_stats(vt_llama_streamer(m), &st));
    *bytes_read = st.bytes_read;
    int32_t bad = VOCAB;
    REQ(vt_llama_eval(m, &bad, 1, NULL, 0) == -EINVAL);
    vt_llama_close(m);
    return 0;
}

/* Set the string metadata @p key of the store at @p path to @p val; 0 when vt_llama_hparams_load
 * then refuses it with VT_EUNSUPPORTED and a message containing @p expect. */
static int refused_with(const char *path, const char *key, const char *val, const char *expect) {
    vt_store *s;
    vt_store_writer *w;
    vt_llama_hparams hp;
    REQ_RC(vt_store_open(path, VT_STORE_RDWR, NULL, &s));
    REQ_RC(vt_store_writer_begin(s, &w));
    uint8_t sv[64];
    uint64_t len = strlen(val);
    memcpy(sv, &len, 8);
    memcpy(sv + 8, val, len);
    REQ(!put_meta(w, key, 8, sv, 8 + len));
    REQ_RC(vt_store_writer_commit(w));
    int rc = vt_llama_hparams_load(s, &hp);
    printf("%s %s: %s (%s)\n", key, val, vt_strerror(rc), vt_last_error());
    vt_store_close(s);
    REQ(rc == VT_EUNSUPPORTED && strstr(vt_last_error(), expect));
    return 0;
}

/* vt_llama_ring_slots: the default (prefetch + 2) when the smaller budget holds that many
 * pieces (budgets rounded up to pages, as the tiers are), else as many as it holds, at least 2. */
static void test_ring_slots(void) {
    const uint64_t P = 8192;
    REQ(vt_llama_ring_slots(1ull << 30, 0, P, 0) == 4);
    REQ(vt_llama_ring_slots(1ull << 30, 1ull << 30, P, 0) == 4);
    REQ(vt_llama_ring_slots(1ull << 30, 0, P, 6) == 8);
    REQ(vt_llama_ring_slots(4 * P, 0, P, 0) == 4);
    REQ(vt_llama_ring_slots(4 * P - 1, 0, P, 0) == 4); /* the tier rounds up to 4 P */
    REQ(vt_llama_ring_slots(4 * P - 4096, 0, P, 0) == 3);
    REQ(vt_llama_ring_slots(1ull << 30, 3 * P, P, 0) == 3); /* the VRAM budget is the smaller */
    REQ(vt_llama_ring_slots(3 * P, 1ull << 30, P, 0) == 3); /* the RAM budget is */
    REQ(vt_llama_ring_slots(1ull << 30, 2 * P, P, 0) == 2);
    REQ(vt_llama_ring_slots(1ull << 30, P, P, 0) == 2); /* never below 2 */
    REQ(vt_llama_ring_slots(1ull << 30, 1, P, 0) == 2);
    REQ(vt_llama_ring_slots(1ull << 30, 5 * P, P, 6) == 5);
    REQ(vt_llama_ring_slots(1ull << 30, 0, 0, 1) == 3); /* nothing streams: the default */
    printf("ring slots: ok\n");
}

int main(void) {
    test_ring_slots();
    char dir[512];
    vt_test_tmpdir("llama_synth", dir, sizeof dir);
    char path[600];
    snprintf(path, sizeof path, "%s/model.vts", dir);
    set_inv_freq(0);
    REQ(!make_store(path, 0));
    vt_store *s;
    REQ_RC(vt_store_open(path, VT_STORE_RDONLY, NULL, &s));
    vt_llama_hparams hp;
    REQ_RC(vt_llama_hparams_load(s, &hp));
    REQ(hp.n_layers == NL && hp.dim == DIM && hp.n_heads == H && hp.n_kv_heads == HKV &&
        hp.head_dim == (uint32_t)hd && hp.vocab == VOCAB && hp.tied_output &&
        hp.rope_dim == (uint32_t)hd);
    uint64_t model_bytes, resident;
    REQ_RC(vt_llama_plan_bytes(s, &model_bytes, &resident));

    int32_t toks[NT + ND] = {5, 17, 299, 0, 42, 42, 123, 7, 250, 1};
    static double ref[NT + ND][VOCAB];
    oracle_run(toks, ref);
    printf("greedy decode ids: %d %d\n", toks[NT + 1], toks[NT + 2]);

    size_t n = (size_t)(NT + ND) * VOCAB;
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float)),
          *c = malloc(n * sizeof(float));
    REQ(a && b && c);
    uint64_t read_all, read_small, read_q8;
    REQ(!run_model(s, 0, VT_FMT_F16, toks, a, &read_all));
    double worst = 0;
    for (int i = 0; i < NT + ND; i++) {
        double e = rel_err(a + (size_t)i * VOCAB, ref[i], VOCAB);
        if (e > worst) worst = e;
    }
    printf("f16 KV, all resident: max relative error vs f64 oracle %.3g over %d positions\n", worst,
           NT + ND);
    REQ(worst < F16KV_TOL);
    { /* f32 KV against the oracle keeping K/V in f32: the tight bound */
        static double ref32[NT + ND][VOCAB];
        int32_t t32[NT + ND];
        memcpy(t32, toks, sizeof t32);
        kv_f16 = 0;
        oracle_run(t32, ref32);
        kv_f16 = 1;
        uint64_t rd;
        REQ(!run_model(s, 0, VT_FMT_F32, t32, c, &rd));
        double w32 = 0;
        for (int i = 0; i < NT + ND; i++) {
            double e = rel_err(c + (size_t)i * VOCAB, ref32[i], VOCAB);
            if (e > w32) w32 = e;
        }
        printf("f32 KV: max relative error vs f64 oracle %.3g\n", w32);
        REQ(w32 < F32KV_TOL);
    }

    /* a budget of half the model: token_embd (the largest) streams part by part */
    uint64_t small = model_bytes / 2;
    REQ(!run_model(s, small, VT_FMT_F16, toks, b, &read_small));
    printf("budget %llu of %llu model bytes: read %llu bytes (all resident: %llu)\n",
           (unsigned long long)small, (unsigned long long)model_bytes,
           (unsigned long long)read_small, (unsigned long long)read_all);
    REQ(read_small > read_all); /* it really streamed */
    REQ(memcmp(a, b, n * sizeof(float)) == 0);

    /* A VRAM tier below the model with everything resident in RAM: the plan pins some tensors
     * in VRAM and the rest in RAM, each RAM-pinned one copied into a VRAM ring slot when
     * acquired. The run once cached every handle of such a plan for good ("all pinned") and so
     * kept a VRAM slot per RAM-pinned tensor: the fifth found all 4 slots held (VT_EBUDGET in
     * the prefill). Then budgets that hold fewer than the default 4 slots of the largest piece:
     * the run plans with fewer slots, down to 2 (vt_llama_min_tier_bytes); below that,
     * vt_llama_open refuses with VT_EBUDGET naming the tensor and the sizes. Without a GPU the
     * device tier is host memory and the host kernels run: logits bit-identical. On a GPU a VRAM
     * budget needs the CUDA device, whose attention does not take this model's head dim: only
     * the refusals run there (tests/run/vram_budget.sh covers the rest on the real model). */
    {
        uint64_t min_tier = 0;
        char big[64];
        REQ_RC(vt_llama_min_tier_bytes(s, &min_tier, big, sizeof big));
        printf("min tier budget %llu bytes (2 slots of %s's largest piece); model %llu, "
               "resident %llu\n",
               (unsigned long long)min_tier, big, (unsigned long long)model_bytes,
               (unsigned long long)resident);
        REQ(min_tier == 2 * 8192 && !strcmp(big, "token_embd.weight")); /* a 64-row q8_0 chunk */
        int gpu = vt_kernels_cuda_available();
        if (gpu)
            printf("a GPU is present: a VRAM budget needs the CUDA device, whose attention takes "
                   "head dim 64 or 128, not %d: the VRAM-tier runs are skipped\n",
                   hd);
        const struct {
            uint64_t vram, ram;
            uint32_t slots; /* expected in the VRAM tier */
        } cases[] = {
            {model_bytes, 0, 4},      /* RAM-pinned tensors through the VRAM ring (the bug) */
            {min_tier * 3 / 2, 0, 3}, /* 3 slots of the largest piece fit */
            {min_tier, 0, 2},         /* the least that streams */
            {min_tier, min_tier, 2},  /* and the RAM tier as small: read from disk */
            {resident, 0, 0},         /* all in VRAM: nothing streams (handles held) */
        };
        for (size_t i = 0; !gpu && i < sizeof cases / sizeof cases[0]; i++) {
            vram = cases[i].vram;
            REQ(!run_model(s, cases[i].ram, VT_FMT_F16, toks, c, &read_q8));
            vram = 0;
            double e = 0;
            for (int p = 0; p < NT + ND; p++) {
                double ep = rel_err(c + (size_t)p * VOCAB, ref[p], VOCAB);
                if (ep > e) e = ep;
            }
            printf("vram %llu, ram %llu: %u VRAM pins, %u RAM pins, %u VRAM slots of %llu, "
                   "%u RAM slots; max relative error %.3g, %s\n",
                   (unsigned long long)cases[i].vram, (unsigned long long)cases[i].ram,
                   (unsigned)last_stats.vram.pinned_tensors, last_ram_pins, last_stats.vram.slots,
                   (unsigned long long)last_stats.vram.slot_bytes, last_stats.ram.slots, e,
                   memcmp(a, c, n * sizeof(float)) ? "DIFFERS" : "identical");
            REQ(last_stats.vram.capacity >= cases[i].vram);
            if (cases[i].slots) REQ(last_stats.vram.slots == cases[i].slots);
            if (i == 0) REQ(last_ram_pins > 4 && last_stats.vram.pinned_tensors > 0);
            REQ(memcmp(a, c, n * sizeof(float)) == 0);
        }
        /* a page below the least: refused at open, naming the tensor, the budget and the need */
        const struct {
            uint64_t vram, ram;
            const char *tier;
        } small[] = {{min_tier - 4096, 0, "VRAM budget of"},
                     {0, min_tier - 4096, "RAM budget of"},
                     {min_tier, min_tier - 4096, "RAM budget of"}};
        for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) {
            vt_llama_opts o;
            vt_llama_opts_init(&o);
            o.ram_bytes = small[i].ram;
            o.vram_bytes = small[i].vram;
            o.use_cuda = small[i].vram && gpu;
            o.max_ctx = 16;
            vt_llama *m = NULL;
            int rc = vt_llama_open(s, &o, &m);
            printf("vram %llu, ram %llu: %s (%s)\n", (unsigned long long)small[i].vram,
                   (unsigned long long)small[i].ram, vt_strerror(rc), vt_last_error());
            char need[32];
            snprintf(need, sizeof need, "%llu bytes needed", (unsigned long long)min_tier);
            REQ(rc == VT_EBUDGET && !m && strstr(vt_last_error(), "token_embd.weight") &&
                strstr(vt_last_error(), small[i].tier) && strstr(vt_last_error(), need));
        }
    }

    /* the 7-token prefill in chunks of 3 (then 3 + 3 + 1): same results within rounding */
    ubatch = 3;
    REQ(!run_model(s, 0, VT_FMT_F16, toks, c, &read_q8));
    ubatch = 0;
    double wu = 0;
    for (int i = 0; i < NT + ND; i++) {
        double e = rel_err(c + (size_t)i * VOCAB, ref[i], VOCAB);
        if (e > wu) wu = e;
    }
    printf("prefill in chunks of 3: max relative error %.3g\n", wu);
    REQ(wu < F16KV_TOL);

    REQ(!run_model(s, 0, VT_FMT_Q8_0, toks, c, &read_q8));
    double wq = 0;
    for (int i = 0; i < NT + ND; i++) {
        double e = rel_err(c + (size_t)i * VOCAB, ref[i], VOCAB);
        if (e > wq) wq = e;
    }
    printf("q8_0 KV: max relative error %.3g\n", wq);
    REQ(wq < 3e-2 && wq > 0);

    vt_store_close(s);

    /* Llama 3 RoPE scaling: the same weights (same seed) plus rope_freqs.weight */
    char path2[600];
    snprintf(path2, sizeof path2, "%s/model_rope.vts", dir);
    free_mats();
    rng = SEED;
    REQ(!make_store(path2, 1));
    REQ_RC(vt_store_open(path2, VT_STORE_RDONLY, NULL, &s));
    REQ_RC(vt_llama_hparams_load(s, &hp));
    REQ(hp.rope_scaled && hp.rope_ff[0] == 1.0f && hp.rope_ff[hd / 2 - 1] == (float)L3_FACTOR);
    set_inv_freq(1);
    static double ref2[NT + ND][VOCAB];
    int32_t toks2[NT + ND];
    memcpy(toks2, toks, sizeof toks);
    oracle_run(toks2, ref2);
    REQ(!run_model(s, 0, VT_FMT_F16, toks2, a, &read_all));
    check_near_far("llama3 RoPE scaling", a, ref2, ref, "without scaling");
    vt_store_close(s);
    /* another GGUF RoPE scaling type is refused, not ignored */
    REQ(!refused_with(path2, "gguf.llama.rope.scaling.type", "yarn", "yarn"));

    /* linear RoPE scaling (llama.cpp: rope.scaling.factor without a type, or type linear): every
     * frequency / factor; the same weights as the first store */
    {
        vt_store_writer *w;
        REQ_RC(vt_store_open(path, VT_STORE_RDWR, NULL, &s));
        REQ_RC(vt_store_writer_begin(s, &w));
        float f4 = 4.0f;
        REQ(!put_meta(w, "gguf.llama.rope.scaling.factor", 6, &f4, 4));
        REQ_RC(vt_store_writer_commit(w));
        REQ_RC(vt_llama_hparams_load(s, &hp));
        REQ(hp.rope_scaled && hp.rope_ff[0] == 4.0f && hp.rope_ff[hd / 2 - 1] == 4.0f);
        set_inv_freq(0);
        for (int i = 0; i < hd / 2; i++) inv_freq[i] /= 4;
        static double ref7[NT + ND][VOCAB];
        int32_t toks7[NT + ND];
        memcpy(toks7, toks, sizeof toks);
        oracle_run(toks7, ref7);
        REQ(!run_model(s, 0, VT_FMT_F16, toks7, a, &read_all));
        check_near_far("linear RoPE scaling (factor 4)", a, ref7, ref, "without scaling");
        vt_store_close(s);
        set_inv_freq(0);
    }

    /* Qwen2: q/k/v biases and NEOX RoPE */
    snprintf(path2, sizeof path2, "%s/model_qwen2.vts", dir);
    free_mats();
    rng = SEED;
    qwen2 = 1;
    set_inv_freq(0);
    REQ(!make_store(path2, 0));
    REQ_RC(vt_store_open(path2, VT_STORE_RDONLY, NULL, &s));
    REQ_RC(vt_llama_hparams_load(s, &hp));
    REQ(hp.qkv_bias && hp.rope_neox && !strcmp(hp.arch, "qwen2"));
    static double ref3[NT + ND][VOCAB], ref4[NT + ND][VOCAB];
    int32_t toks3[NT + ND];
    oracle_near_far(toks, toks3, ref3, ref4, &oracle_bias);
    REQ(!run_model(s, 0, VT_FMT_F16, toks3, a, &read_all));
    check_near_far("qwen2 (q/k/v biases, NEOX RoPE)", a, ref3, ref4, "without biases");
    vt_store_close(s);
    qwen2 = 0;

    /* Qwen3: per-head q/k RMSNorm before RoPE, NEOX RoPE, and a head dimension (24) with
     * H * hd = 96 != DIM (GGUF key_length / value_length) */
    snprintf(path2, sizeof path2, "%s/model_qwen3.vts", dir);
    free_mats();
    rng = SEED;
    qwen3 = 1;
    hd = HDM;
    set_inv_freq(0);
    REQ(!make_store(path2, 0));
    REQ_RC(vt_store_open(path2, VT_STORE_RDONLY, NULL, &s));
    REQ_RC(vt_llama_hparams_load(s, &hp));
    REQ(hp.qk_norm && hp.rope_neox && !hp.qkv_bias && hp.head_dim == HDM && hp.rope_dim == HDM &&
        !strcmp(hp.arch, "qwen3"));
    static double ref5[NT + ND][VOCAB], ref6[NT + ND][VOCAB];
    int32_t toks5[NT + ND];
    oracle_near_far(toks, toks5, ref5, ref6, &oracle_qkn);
    REQ(!run_model(s, 0, VT_FMT_F16, toks5, a, &read_all));
    check_near_far("qwen3 (q/k norms, head dim 24 with dim 64)", a, ref5, ref6,
                   "without q/k norms");
    /* streamed (token_embd in parts) through half the model's bytes: the same bits */
    uint64_t mb3, read_part;
    REQ_RC(vt_llama_plan_bytes(s, &mb3, NULL));
    REQ(!run_model(s, mb3 / 2, VT_FMT_F16, toks5, b, &read_part));
    REQ(read_part > read_all && !memcmp(a, b, sizeof(float) * (NT + ND) * VOCAB));
    vt_store_close(s);
    /* a bias the graph does not add is refused by name, not ignored (llama.cpp adds an
     * attn_output.bias where a llama GGUF has one) */
    {
        vt_store_writer *w;
        mat extra;
        REQ_RC(vt_store_open(path2, VT_STORE_RDWR, NULL, &s));
        REQ_RC(vt_store_writer_begin(s, &w));
        REQ(!put(w, "blk.0.attn_output.bias", 1, DIM, VT_FMT_F32, 0.1, 0, &extra));
        REQ_RC(vt_store_writer_commit(w));
        free(extra.w);
        int rc = vt_llama_hparams_load(s, &hp);
        printf("with blk.0.attn_output.bias: %s (%s)\n", vt_strerror(rc), vt_last_error());
        REQ(rc == VT_EUNSUPPORTED && strstr(vt_last_error(), "blk.0.attn_output.bias"));
        vt_store_close(s);
    }
    qwen3 = 0;
    hd = DIM / H;

    /* another architecture with the same tensor names is refused, not run as llama */
    REQ(!refused_with(path2, "gguf.general.architecture", "gemma", "'gemma' is not supported"));

    free(a);
    free(b);
    free(c);
    free_mats();
    printf("ok\n");
    return 0;
}
