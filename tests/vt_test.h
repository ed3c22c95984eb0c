/* tests/vt_test.h — tiny helpers shared by the test programs (exit 0 pass, 1 fail, 77 skip). */
#ifndef VT_TEST_H
#define VT_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>
#include <unistd.h>

static int vt_test_failures;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            vt_test_failures++;                                                                    \
        }                                                                                          \
    } while (0)

#define CHECKF(cond, ...)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            vt_test_failures++;                                                                    \
        }                                                                                          \
    } while (0)

#define CHECK_RC(expr)                                                                             \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != 0) {                                                                            \
            fprintf(stderr, "%s:%d: %s returned %d (%s) %s\n", __FILE__, __LINE__, #expr, rc_,     \
                    vt_strerror(rc_), vt_last_error());                                            \
            vt_test_failures++;                                                                    \
        }                                                                                          \
    } while (0)

#define TEST_SKIP(...)                                                                             \
    do {                                                                                           \
        printf("SKIP: ");                                                                          \
        printf(__VA_ARGS__);                                                                       \
        printf("\n");                                                                              \
        exit(77);                                                                                  \
    } while (0)

/* VT_TEST_TSAN: 1 in a ThreadSanitizer build (gcc defines __SANITIZE_THREAD__; clang has
 * __has_feature), for the few tests whose harness TSan cannot run (see their mains). */
#if defined(__SANITIZE_THREAD__)
#define VT_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define VT_TEST_TSAN 1
#endif
#endif
#ifndef VT_TEST_TSAN
#define VT_TEST_TSAN 0
#endif

static inline int vt_test_done(const char *name) {
    if (vt_test_failures) {
        printf("%s: %d check(s) failed\n", name, vt_test_failures);
        return 1;
    }
    printf("%s: ok\n", name);
    return 0;
}

/* Fresh random inputs each run (seed printed for reproduction; VT_SEED overrides). */
static uint64_t vt_rng_state;
static inline uint64_t vt_test_seed(void) {
    const char *e = getenv("VT_SEED");
    uint64_t s = e ? strtoull(e, NULL, 0) : ((uint64_t)time(NULL) ^ ((uint64_t)clock() << 20));
    printf("seed %llu (set VT_SEED to reproduce)\n", (unsigned long long)s);
    vt_rng_state = s ? s : 1;
    return s;
}
static inline uint64_t vt_rand_u64(void) { /* xorshift64* */
    vt_rng_state ^= vt_rng_state >> 12;
    vt_rng_state ^= vt_rng_state << 25;
    vt_rng_state ^= vt_rng_state >> 27;
    return vt_rng_state * 0x2545F4914F6CDD1DULL;
}
static inline double vt_rand_uniform(void) {
    return (vt_rand_u64() >> 11) * 0x1.0p-53;
}
static inline float vt_rand_normal(void) {
    double u1 = vt_rand_uniform(), u2 = vt_rand_uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* Scratch directory for a test: $VT_TEST_TMP/<name>.<pid>, created fresh. It is removed when the
 * process that made it exits with no failed CHECK (atexit; a forked child's exit leaves it
 * alone), unless VT_TEST_KEEP is set; a test that fails keeps it for a look. Tests that end with
 * exit(1) without counting a CHECK lose theirs: run them with VT_TEST_KEEP=1 to keep it. */
#define VT_TEST_MAX_TMP 16
static char vt_test_tmp_path[VT_TEST_MAX_TMP][1024];
static int vt_test_tmp_n;
static pid_t vt_test_tmp_owner;
static void vt_test_tmp_cleanup(void) {
    if (getpid() != vt_test_tmp_owner || vt_test_failures || getenv("VT_TEST_KEEP")) return;
    for (int i = 0; i < vt_test_tmp_n; i++) {
        char cmd[1100];
        snprintf(cmd, sizeof cmd, "rm -rf '%.1023s'", vt_test_tmp_path[i]);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", vt_test_tmp_path[i]);
    }
}
static inline void vt_test_tmpdir(const char *name, char *out, size_t cap) {
    const char *base = getenv("VT_TEST_TMP");
    if (!base) base = "/tmp";
    snprintf(out, cap, "%s/%s.%d", base, name, (int)getpid());
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", out, out);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot create %s\n", out);
        exit(1);
    }
    if (vt_test_tmp_n && vt_test_tmp_owner != getpid()) vt_test_tmp_n = 0; /* a forked child */
    if (vt_test_tmp_n < VT_TEST_MAX_TMP && strlen(out) < sizeof vt_test_tmp_path[0]) {
        if (!vt_test_tmp_n && vt_test_tmp_owner != getpid()) atexit(vt_test_tmp_cleanup);
        vt_test_tmp_owner = getpid();
        snprintf(vt_test_tmp_path[vt_test_tmp_n++], sizeof vt_test_tmp_path[0], "%s", out);
    }
}

#endif
