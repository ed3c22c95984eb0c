/* tests/tier/tier_util.h — build a store of random tensors through store.h's writer and keep the
 * raw bytes for comparison. */
#ifndef VT_TIER_UTIL_H
#define VT_TIER_UTIL_H

#include <signal.h>
#include <unistd.h>

#include "vt_test.h"
#include "weight_eq.h"
#include "vtstore/store.h"
#include "vtstore/tier.h"

/* A watchdog for tests whose failure is a hang: tu_watchdog(test, seconds) arms SIGALRM, and
 * the alarm prints "TEST: hang (watchdog) in step: STEP" and exits 1. Name each step in tu_step
 * before it; alarm(0) disarms. A hang, not a speed goal: steps take milliseconds. */
static const char *volatile tu_step __attribute__((unused)) = "setup";
static const char *tu_watch_test __attribute__((unused)) = "";

static inline void tu_on_alarm(int sig) {
    (void)sig;
    static const char m[] = ": hang (watchdog) in step: ";
    const char *step = tu_step;
    if (write(2, tu_watch_test, strlen(tu_watch_test)) < 0 || write(2, m, sizeof m - 1) < 0 ||
        write(2, step, strlen(step)) < 0 || write(2, "\n", 1) < 0)
        _exit(1);
    _exit(1);
}

static inline void tu_watchdog(const char *test, unsigned seconds) {
    tu_watch_test = test;
    signal(SIGALRM, tu_on_alarm);
    alarm(seconds);
}

typedef struct tu_store {
    char dir[4200];
    int n;
    char names[64][32];
    unsigned char *raw[64]; /* [bytes[i]] quantized (here: f32) bytes of tensor i */
    uint64_t bytes[64], rows[64], cols;
    vt_store *s;
} tu_store;

/* n tensors "t.NNN" of f32 [rows_i, cols], rows_i = rows[i] (rows NULL: drawn in [rmin, rmax]);
 * odd tensors hold small integers (compressible: stored as zstd chunks when zstd > 0), even ones
 * random bits. */
static inline void tu_make_rows(tu_store *ts, const char *dir, int n, const uint64_t *rows,
                                uint64_t rmin, uint64_t rmax, uint64_t cols, uint64_t chunk_bytes,
                                int zstd) {
    memset(ts, 0, sizeof *ts);
    snprintf(ts->dir, sizeof ts->dir, "%s/store", dir);
    ts->n = n;
    ts->cols = cols;
    vt_store_options o = {
        .chunk_target_bytes = chunk_bytes, .zstd_level = zstd, .shard_cap_bytes = 4u << 20};
    vt_store *s = NULL;
    int rc = vt_store_open(ts->dir, VT_STORE_RDWR | VT_STORE_CREATE, &o, &s);
    if (rc) {
        fprintf(stderr, "store create %s: %s %s\n", ts->dir, vt_strerror(rc), vt_last_error());
        exit(1);
    }
    vt_store_writer *w = NULL;
    CHECK_RC(vt_store_writer_begin(s, &w));
    for (int i = 0; i < n; i++) {
        snprintf(ts->names[i], sizeof ts->names[i], "t.%03d", i);
        ts->rows[i] = rows ? rows[i] : rmin + vt_rand_u64() % (rmax - rmin + 1);
        ts->bytes[i] = ts->rows[i] * cols * 4;
        ts->raw[i] = malloc(ts->bytes[i]);
        float *f = (float *)ts->raw[i];
        for (uint64_t k = 0; k < ts->rows[i] * cols; k++)
            f[k] = (i & 1) ? (float)(vt_rand_u64() % 4) : vt_rand_normal();
        vt_tensor_info m;
        memset(&m, 0, sizeof m);
        snprintf(m.name, sizeof m.name, "%s", ts->names[i]);
        m.src_dtype = VT_DTYPE_F32;
        m.ndim = 2;
        m.dims[0] = ts->rows[i];
        m.dims[1] = cols;
        m.format = VT_FMT_F32;
        m.tensor_scale = 1.0f;
        vt_writer_tensor *t = NULL;
        CHECK_RC(vt_writer_tensor_begin(w, &m, NULL, 0, &t));
        vt_tensor_info ti;
        CHECK_RC(vt_writer_tensor_info(w, t, &ti));
        for (uint64_t c = 0; c < ti.n_chunks; c++) {
            uint64_t r0 = c * ti.rows_per_chunk;
            uint64_t nr = ti.rows - r0 < ti.rows_per_chunk ? ti.rows - r0 : ti.rows_per_chunk;
            CHECK_RC(vt_writer_put_chunk(w, t, c, ts->raw[i] + r0 * cols * 4, nr * cols * 4));
        }
        CHECK_RC(vt_writer_tensor_end(w, t, NULL));
    }
    rc = vt_store_writer_commit(w);
    if (rc) {
        fprintf(stderr, "commit: %s %s\n", vt_strerror(rc), vt_last_error());
        exit(1);
    }
    vt_store_close(s);
    rc = vt_store_open(ts->dir, VT_STORE_RDONLY, NULL, &ts->s);
    if (rc) {
        fprintf(stderr, "store open: %s %s\n", vt_strerror(rc), vt_last_error());
        exit(1);
    }
}

static inline void tu_make(tu_store *ts, const char *dir, int n, uint64_t rmin, uint64_t rmax,
                           uint64_t cols, uint64_t chunk_bytes, int zstd) {
    tu_make_rows(ts, dir, n, NULL, rmin, rmax, cols, chunk_bytes, zstd);
}

static inline void tu_free(tu_store *ts) {
    vt_store_close(ts->s);
    for (int i = 0; i < ts->n; i++) free(ts->raw[i]);
}

static inline int tu_index(const tu_store *ts, const char *name) {
    for (int i = 0; i < ts->n; i++)
        if (!strcmp(ts->names[i], name)) return i;
    return -1;
}

/* 1 if a handle (host or device) holds exactly the reference rows of tensor i. */
static inline int tu_match(const tu_store *ts, int i, const vt_weight *w) {
    uint64_t rb = ts->cols * 4;
    if (w->cols != ts->cols || w->total_rows != ts->rows[i] || w->row0 + w->rows > ts->rows[i])
        return 0;
    if (w->bytes != w->rows * rb) return 0;
    return vt_test_weight_eq(w, ts->raw[i] + w->row0 * rb, w->bytes);
}

#endif
