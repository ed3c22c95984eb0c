/* tests/reliability/rel_util.h — helpers of the reliability tests: safetensors sources of
 * self-describing f32 tensors (element 0 of each tensor is its generation, every other element a
 * small integer hashed from name, generation and position: exact in f32, so a read-back can tell
 * which import wrote a tensor and whether it is whole), and snapshots of a store's committed
 * contents (name + hash of the stored bytes) to compare before and after a fault. */
#ifndef VT_REL_UTIL_H
#define VT_REL_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "vt_test.h"
#include "vtstore/import.h"
#include "vtstore/store.h"

static inline uint64_t rel_hash(const char *s, uint64_t a, uint64_t b) {
    uint64_t h = 1469598103934665603ull;
    while (*s) h = (h ^ (uint8_t)*s++) * 1099511628211ull;
    h ^= (a + 0x9E3779B97F4A7C15ull) * 0xBF58476D1CE4E5B9ull;
    h ^= (b + 0x632BE59BD9B4E019ull) * 0x94D049BB133111EBull;
    h ^= h >> 31;
    h *= 0xD6E8FEB86659FD93ull;
    return h ^ (h >> 29);
}

/* Element k of tensor @p name at generation @p gen. */
static inline float rel_elem(const char *name, uint32_t gen, uint64_t k) {
    if (k == 0) return (float)gen;
    return (float)((int)(rel_hash(name, gen, k) % 65536) - 32768);
}

/* Write a safetensors file of @p n f32 tensors "<prefix><i>" [rows, cols] of generation @p gen
 * (names[] may override the names). Returns 0 or -errno. */
static inline int rel_write_st(const char *path, const char *prefix, const char *const *names,
                               int n, uint64_t rows, uint64_t cols, uint32_t gen) {
    char *hdr = malloc(64 + (size_t)n * 600);
    size_t hl = 0;
    hl += sprintf(hdr + hl, "{\"__metadata__\":{\"gen\":\"%u\"}", gen);
    uint64_t nb = rows * cols * 4;
    char nm[300];
    for (int i = 0; i < n; i++) {
        if (names)
            snprintf(nm, sizeof nm, "%s", names[i]);
        else
            snprintf(nm, sizeof nm, "%s%d", prefix, i);
        hl += sprintf(
            hdr + hl,
            ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%llu,%llu],\"data_offsets\":[%llu,%llu]}", nm,
            (unsigned long long)rows, (unsigned long long)cols, (unsigned long long)(nb * i),
            (unsigned long long)(nb * (i + 1)));
    }
    hdr[hl++] = '}';
    while (hl % 8) hdr[hl++] = ' ';
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(hdr);
        return -errno;
    }
    uint64_t l = hl;
    fwrite(&l, 8, 1, f);
    fwrite(hdr, 1, hl, f);
    float *row = malloc(cols * 4);
    for (int i = 0; i < n; i++) {
        if (names)
            snprintf(nm, sizeof nm, "%s", names[i]);
        else
            snprintf(nm, sizeof nm, "%s%d", prefix, i);
        for (uint64_t r = 0; r < rows; r++) {
            for (uint64_t c = 0; c < cols; c++) row[c] = rel_elem(nm, gen, r * cols + c);
            fwrite(row, 4, cols, f);
        }
    }
    free(row);
    free(hdr);
    int rc = ferror(f) ? -EIO : 0;
    if (fclose(f)) rc = -errno;
    return rc;
}

/* Read tensor @p name as f32 and check it is whole and of one generation; *gen gets it.
 * Returns 0 consistent, 1 wrong bytes, or the read error. */
static inline int rel_check_tensor(vt_store *s, const char *name, uint32_t *gen) {
    vt_tensor_info ti;
    int rc = vt_store_stat(s, name, &ti);
    if (rc) return rc;
    size_t n = ti.rows * ti.cols;
    float *b = malloc(n * 4 + 4);
    rc = vt_store_read_rows(s, name, 0, ti.rows, VT_DTYPE_F32, b, n * 4);
    if (rc) {
        free(b);
        return rc;
    }
    uint32_t g = (uint32_t)b[0];
    for (size_t k = 1; k < n && !rc; k++)
        if (b[k] != rel_elem(name, g, k)) rc = 1;
    free(b);
    if (gen) *gen = g;
    return rc;
}

/* ---- snapshots of committed contents ---- */
typedef struct rel_snap_ent {
    char name[VT_MAX_NAME];
    uint64_t raw_bytes, hash;
    uint32_t format;
} rel_snap_ent;

typedef struct rel_snap {
    rel_snap_ent *e;
    size_t n, cap;
    int err;
    vt_store *s;
} rel_snap;

static inline int rel_snap_fn(void *ctx, const vt_tensor_info *ti) {
    rel_snap *sn = ctx;
    if (sn->n == sn->cap) {
        sn->cap = sn->cap ? 2 * sn->cap : 16;
        sn->e = realloc(sn->e, sn->cap * sizeof *sn->e);
    }
    rel_snap_ent *e = &sn->e[sn->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", ti->name);
    e->raw_bytes = ti->raw_bytes;
    e->format = ti->format;
    uint8_t *b = malloc(ti->raw_bytes + 1);
    int rc = vt_store_read_tensor_raw(sn->s, ti->name, b, ti->raw_bytes);
    if (rc) sn->err = rc;
    uint64_t h = 1469598103934665603ull;
    for (uint64_t i = 0; i < ti->raw_bytes && !rc; i++) h = (h ^ b[i]) * 1099511628211ull;
    e->hash = h;
    free(b);
    return 0;
}

/* Snapshot every tensor of @p s (names, formats, hash of stored bytes). 0 or the first error. */
static inline int rel_snapshot(vt_store *s, rel_snap *sn) {
    memset(sn, 0, sizeof *sn);
    sn->s = s;
    int rc = vt_store_list(s, NULL, rel_snap_fn, sn);
    return rc ? rc : sn->err;
}

static inline void rel_snap_free(rel_snap *sn) {
    free(sn->e);
    memset(sn, 0, sizeof *sn);
}

/* 1 when equal; otherwise prints the first difference and returns 0. */
static inline int rel_snap_equal(const rel_snap *a, const rel_snap *b, const char *what) {
    if (a->n != b->n) {
        fprintf(stderr, "%s: %zu tensors, expected %zu\n", what, b->n, a->n);
        return 0;
    }
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->e[i].name, b->e[i].name) || a->e[i].hash != b->e[i].hash ||
            a->e[i].raw_bytes != b->e[i].raw_bytes || a->e[i].format != b->e[i].format) {
            fprintf(stderr, "%s: tensor %s differs from %s\n", what, b->e[i].name, a->e[i].name);
            return 0;
        }
    return 1;
}

/* Open @p path (flags), snapshot it and verify it; 0 when it opens and verifies clean. */
static inline int rel_open_check(const char *path, rel_snap *sn, const char *what) {
    vt_store *s;
    int rc = vt_store_open(path, VT_STORE_RDONLY, NULL, &s);
    if (rc) {
        fprintf(stderr, "%s: open: %s %s\n", what, vt_strerror(rc), vt_last_error());
        return rc;
    }
    vt_verify_report rep;
    rc = vt_store_verify(s, NULL, NULL, &rep);
    if (rc) fprintf(stderr, "%s: verify: %s %s\n", what, vt_strerror(rc), vt_store_errmsg(s));
    if (!rc && sn) {
        rc = rel_snapshot(s, sn);
        if (rc) fprintf(stderr, "%s: read-back: %s %s\n", what, vt_strerror(rc), vt_last_error());
    }
    vt_store_close(s);
    return rc;
}

/* Run a shell command, return its exit status (-1 if it did not exit). */
static inline int rel_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int rel_sh(const char *fmt, ...) {
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static inline long rel_env_long(const char *name, long def) {
    const char *e = getenv(name);
    return e && *e ? atol(e) : def;
}

static inline double rel_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#endif
