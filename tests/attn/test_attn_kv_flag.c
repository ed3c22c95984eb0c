/* tests/attn/test_attn_kv_flag.c — the device KV cache's check protocol (kernels/attn_cache.c:
 * the flag word a device append sets, the epoch a reset advances, vt_kv_cache_check's report
 * and cut) without a GPU. attn_cache.c is compiled here with its device path on and its five
 * CUDA entry points replaced by a host stand-in: the "device" is host memory, the append kernel
 * keeps the smallest VT_KV_BAD_KEY of the non-finite values it is given (atomicMin), a queued
 * clear or a take happens at once (one stream). The keying itself is the kernel's own test's
 * (test_attn_quant_host, test_attn_kv_badkey); this one drives random resets (thousands at a
 * time, across blocks of 4096 epochs), appends with and without a NaN, and checks, and compares
 * each check with a model kept here: the smallest bad place appended since the last check in the
 * current epoch, the cache cut back to the start of its append. */
#ifndef VT_HAVE_CUDA
#define VT_HAVE_CUDA 1
#endif
/* the file's public functions and the CUDA entry points it calls, under test names */
#define vt_kv_cache_create     emu_kv_cache_create
#define vt_kv_cache_destroy    emu_kv_cache_destroy
#define vt_kv_cache_len        emu_kv_cache_len
#define vt_kv_cache_reset      emu_kv_cache_reset
#define vt_kv_cache_check      emu_kv_cache_check
#define vt_kv_cache_view       emu_kv_cache_view
#define vt_kv_cache_append     emu_kv_cache_append
#define vt_kv_cache_read       emu_kv_cache_read
#define vt_attn_cuda_alloc     emu_cuda_alloc
#define vt_attn_cuda_free      emu_cuda_free
#define vt_attn_cuda_bad_take  emu_cuda_bad_take
#define vt_attn_cuda_bad_clear emu_cuda_bad_clear
#define vt_attn_cuda_append    emu_cuda_append
#include "attn_cache.c"

#include "vt_test.h"

static uint64_t n_clears; /* queued clears of the flag word */

int emu_cuda_alloc(void **p, size_t n, int fill) {
    *p = malloc(n);
    if (!*p) return vt_fail(-ENOMEM, "emulated device allocation");
    memset(*p, fill, n);
    return 0;
}

void emu_cuda_free(void *p) {
    free(p);
}

int emu_cuda_bad_take(void *p, void *stream, uint64_t *key) {
    (void)stream;
    memcpy(key, p, sizeof *key);
    if (*key != VT_KV_BAD_NONE) memset(p, 0xff, sizeof *key);
    return 0;
}

int emu_cuda_bad_clear(void *p, void *stream) {
    (void)stream;
    memset(p, 0xff, sizeof(uint64_t));
    n_clears++;
    return 0;
}

/* The append kernel's flag, as vt_attn_cuda_append passes it: the epoch mod 4096, K then V,
 * every non-finite value of [Hkv][n][D] f32 (no rows are written: this test reads none). */
int emu_cuda_append(const vt_kv_cache *c, const void *k, const void *v, vt_dtype dtype,
                    uint64_t n_tokens, void *stream) {
    (void)stream;
    if (dtype != VT_DTYPE_F32) return vt_fail(-EINVAL, "emulated append: f32 only");
    uint64_t *bad = c->bad;
    const unsigned epoch = (unsigned)(c->epoch & 4095u);
    const uint32_t H = c->cfg.n_kv_heads, D = c->cfg.head_dim;
    for (int is_v = 0; is_v < 2; is_v++) {
        const float *x = is_v ? v : k;
        for (uint32_t h = 0; h < H; h++)
            for (uint64_t t = 0; t < n_tokens; t++)
                for (uint32_t col = 0; col < D; col++)
                    if (!isfinite(x[((uint64_t)h * n_tokens + t) * D + col])) {
                        const uint64_t key = VT_KV_BAD_KEY(epoch, c->len + t, is_v, h, col, 0);
                        if (key < *bad) *bad = key;
                    }
    }
    return 0;
}

/* ---- the model ----------------------------------------------------------------------------- */

typedef struct place {
    uint64_t token;
    uint32_t is_v, head, col;
} place;

static int place_less(const place *a, const place *b) {
    if (a->token != b->token) return a->token < b->token;
    if (a->is_v != b->is_v) return a->is_v < b->is_v;
    if (a->head != b->head) return a->head < b->head;
    return a->col < b->col;
}

enum { HKV = 2, D = 64, CAP = 48, MAX_N = 5 };

int main(void) {
    vt_test_seed();
    vt_kv_cache_config cc = {.location = VT_LOC_DEVICE,
                             .format = VT_FMT_Q8_0,
                             .n_kv_heads = HKV,
                             .head_dim = D,
                             .capacity = CAP};
    vt_kv_cache *c = NULL;
    CHECK_RC(emu_kv_cache_create(&cc, &c));
    if (!c) return vt_test_done("test_attn_kv_flag");
    static float x[HKV * MAX_N * D];
    /* the model: the length, the appends since the last check or reset (their starts) and the
     * smallest bad place among them */
    uint64_t len = 0, epoch = 0, starts[CAP + 1];
    size_t nstarts = 0;
    int has_bad = 0;
    place first = {0, 0, 0, 0};
    uint64_t n_reports = 0, n_clean = 0, n_wrap_reports = 0, n_resets = 0;
    for (int it = 0; it < 60000 && vt_test_failures < 10; it++) {
        const unsigned op = (unsigned)(vt_rand_u64() % 16);
        if (op < 2 ||
            len == CAP) { /* reset: once, to a block's end or start, by whole blocks, or many */
            uint64_t k = 1;
            switch (vt_rand_u64() % 4) {
            case 0:
                k = 4095 - (epoch & 4095) + (vt_rand_u64() % 2); /* to 4095 or 0 mod 4096 */
                if (!k) k = 4096;
                break;
            case 1:
                k = 1 + vt_rand_u64() % 9000;
                break;
            case 2: /* the same epoch mod 4096, one or two blocks on */
                k = 4096 * (1 + vt_rand_u64() % 2);
                break;
            default:
                break;
            }
            for (uint64_t i = 0; i < k; i++) emu_kv_cache_reset(c);
            epoch += k;
            n_resets += k;
            len = 0, nstarts = 0, has_bad = 0;
        } else if (op < 11) { /* append 1..MAX_N tokens, a third with a NaN or infinity */
            uint64_t n = 1 + vt_rand_u64() % MAX_N;
            if (n > CAP - len) n = CAP - len;
            for (size_t i = 0; i < HKV * n * D; i++) x[i] = (float)vt_rand_normal();
            if (vt_rand_u64() % 3 == 0) {
                /* K and V share x here: a value set in K is in V too, so K is the place */
                const place p = {len + vt_rand_u64() % n, 0, (uint32_t)(vt_rand_u64() % HKV),
                                 (uint32_t)(vt_rand_u64() % D)};
                x[((uint64_t)p.head * n + (p.token - len)) * D + p.col] =
                    vt_rand_u64() % 2 ? NAN : -INFINITY;
                if (!has_bad || place_less(&p, &first)) first = p;
                has_bad = 1;
            }
            CHECK_RC(emu_kv_cache_append(c, x, x, VT_DTYPE_F32, n, NULL));
            starts[nstarts++] = len;
            len += n;
        } else { /* check */
            const int rc = emu_kv_cache_check(c, NULL);
            if (!has_bad) {
                CHECKF(rc == 0, "epoch %llu, length %llu: check returned %d (%s), want 0",
                       (unsigned long long)epoch, (unsigned long long)len, rc, vt_last_error());
                n_clean++;
            } else {
                size_t i = nstarts; /* the append that holds the first bad token */
                while (i > 0 && starts[i - 1] > first.token) i--;
                const uint64_t start = starts[i - 1];
                const uint64_t end = i < nstarts ? starts[i] : len;
                char want[160];
                snprintf(want, sizeof want,
                         "K head %u, token %llu, column %u: NaN or infinity; "
                         "the append of tokens %llu..%llu",
                         first.head, (unsigned long long)first.token, first.col,
                         (unsigned long long)start, (unsigned long long)(end - 1));
                CHECKF(rc == VT_ENONFINITE && strstr(vt_last_error(), want),
                       "epoch %llu: check returned %d (%s), want \"%s\"", (unsigned long long)epoch,
                       rc, rc ? vt_last_error() : "", want);
                len = start;
                n_reports++;
                if (epoch >= 4096) n_wrap_reports++;
            }
            nstarts = 0, has_bad = 0;
        }
        CHECKF(emu_kv_cache_len(c) == len, "epoch %llu: cache length %llu, model %llu",
               (unsigned long long)epoch, (unsigned long long)emu_kv_cache_len(c),
               (unsigned long long)len);
    }
    printf("%llu resets (to epoch %llu), %llu reports (%llu past epoch 4096), %llu clean "
           "checks, %llu flag clears\n",
           (unsigned long long)n_resets, (unsigned long long)epoch, (unsigned long long)n_reports,
           (unsigned long long)n_wrap_reports, (unsigned long long)n_clean,
           (unsigned long long)n_clears);
    CHECK(n_wrap_reports > 100 && n_clean > 100); /* the run reached what it is about */
    emu_kv_cache_destroy(c);
    return vt_test_done("test_attn_kv_flag");
}
