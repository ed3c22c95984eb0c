/* Short fuzz run for CI without libFuzzer: links one target's LLVMFuzzerTestOneInput, replays
 * every file of the committed seed corpus (argv[1]), then feeds VT_FUZZ_ITERS (default 100000)
 * random mutations of the seeds (bit flips, interesting integers at random offsets, inserted,
 * deleted and duplicated runs, truncation). A crash, sanitizer report or hang fails the test;
 * the seed is printed so a failure can be replayed (VT_SEED). */
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

#include "vt_test.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SEEDS 256
#define MAX_LEN   (1u << 20)

static uint8_t *seed[MAX_SEEDS];
static size_t seed_len[MAX_SEEDS];
static size_t n_seeds;

static void load(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "cannot open corpus %s: %s\n", dir, strerror(errno));
        exit(1);
    }
    struct dirent *e;
    while ((e = readdir(d)) && n_seeds < MAX_SEEDS) {
        if (e->d_name[0] == '.') continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        FILE *f = fopen(p, "rb");
        if (!f) continue;
        uint8_t *b = malloc(MAX_LEN);
        size_t n = fread(b, 1, MAX_LEN, f);
        fclose(f);
        seed[n_seeds] = b;
        seed_len[n_seeds++] = n;
    }
    closedir(d);
}

static const uint64_t interesting[] = {0,          1,          0x7f,           0x80,
                                       0xff,       0x7fff,     0xffff,         0x7fffffff,
                                       0x80000000, 0xffffffff, 1ull << 32,     1ull << 40,
                                       1ull << 62, UINT64_MAX, UINT64_MAX - 7, 4096};

static size_t mutate(uint8_t *b, size_t n, size_t cap) {
    int k = 1 + (int)(vt_rand_u64() % 6);
    for (int i = 0; i < k; i++) {
        size_t at = n ? vt_rand_u64() % n : 0;
        switch (vt_rand_u64() % 7) {
        case 0: /* bit flip */
            if (n) b[at] ^= (uint8_t)(1u << (vt_rand_u64() % 8));
            break;
        case 1: /* random byte */
            if (n) b[at] = (uint8_t)vt_rand_u64();
            break;
        case 2: { /* interesting little-endian integer of 1, 2, 4 or 8 bytes */
            uint64_t v = interesting[vt_rand_u64() % (sizeof interesting / sizeof *interesting)];
            size_t w = (size_t)1 << (vt_rand_u64() % 4);
            for (size_t j = 0; j < w && at + j < n; j++) b[at + j] = (uint8_t)(v >> (8 * j));
            break;
        }
        case 3: { /* insert a run of random bytes */
            size_t m = 1 + vt_rand_u64() % 16;
            if (n + m > cap) break;
            memmove(b + at + m, b + at, n - at);
            for (size_t j = 0; j < m; j++) b[at + j] = (uint8_t)vt_rand_u64();
            n += m;
            break;
        }
        case 4: { /* delete a run */
            size_t m = 1 + vt_rand_u64() % 16;
            if (at + m > n) m = n - at;
            memmove(b + at, b + at + m, n - at - m);
            n -= m;
            break;
        }
        case 5: { /* duplicate a run elsewhere */
            size_t m = 1 + vt_rand_u64() % 32;
            if (at + m > n || n + m > cap) break;
            uint8_t run[32];
            memcpy(run, b + at, m);
            size_t to = vt_rand_u64() % (n + 1);
            memmove(b + to + m, b + to, n - to);
            memcpy(b + to, run, m);
            n += m;
            break;
        }
        case 6: /* truncate */
            n = at;
            break;
        }
    }
    return n;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    vt_test_seed();
    load(argv[1]);
    CHECKF(n_seeds > 0, "empty corpus %s", argv[1]);
    if (!n_seeds) return vt_test_done(argv[0]);
    for (size_t i = 0; i < n_seeds; i++) LLVMFuzzerTestOneInput(seed[i], seed_len[i]);
    const char *e = getenv("VT_FUZZ_ITERS");
    long iters = e ? atol(e) : 100000;
    size_t cap = MAX_LEN + 4096;
    uint8_t *b = malloc(cap);
    for (long it = 0; it < iters; it++) {
        size_t s = vt_rand_u64() % n_seeds;
        memcpy(b, seed[s], seed_len[s]);
        size_t n = mutate(b, seed_len[s], cap);
        /* exact-size copy so ASan sees reads past the end */
        uint8_t *x = malloc(n ? n : 1);
        memcpy(x, b, n);
        LLVMFuzzerTestOneInput(x, n);
        free(x);
    }
    free(b);
    for (size_t i = 0; i < n_seeds; i++) free(seed[i]);
    printf("%zu seeds, %ld mutations, no crash\n", n_seeds, iters);
    return vt_test_done(argv[0]);
}
