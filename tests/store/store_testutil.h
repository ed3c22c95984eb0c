/* tests/store/store_testutil.h — helpers of the store tests: self-describing "generation"
 * tensors (u32 raw tensors whose every element is a hash of tensor name, generation, row and
 * column, with the generation in column 0) that a reader can check for completeness and
 * consistency without knowing what was written. */
#ifndef VT_STORE_TESTUTIL_H
#define VT_STORE_TESTUTIL_H

#include <errno.h>

#include "vt_test.h"
#include "vtstore/store.h"

static inline uint32_t tu_hash(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
    uint64_t h = a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull) * 0xBF58476D1CE4E5B9ull;
    h ^= (c + 1) * 0x94D049BB133111EBull;
    h ^= (d + 7) * 0xD6E8FEB86659FD93ull;
    h ^= h >> 31;
    h *= 0x9E3779B97F4A7C15ull;
    return (uint32_t)(h >> 32);
}

static inline uint64_t tu_name_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    while (*s) h = (h ^ (uint8_t)*s++) * 1099511628211ull;
    return h;
}

static inline uint32_t tu_elem(const char *name, uint32_t gen, uint64_t r, uint64_t c) {
    return c == 0 ? gen : tu_hash(tu_name_hash(name), gen, r, c);
}

/* Put a rows x cols u32 generation tensor into writer @p w. Returns 0 or an error. */
static inline int tu_put_gen(vt_store_writer *w, const char *name, uint32_t gen, uint64_t rows,
                             uint64_t cols, uint64_t rows_per_chunk) {
    vt_tensor_info m;
    memset(&m, 0, sizeof m);
    snprintf(m.name, sizeof m.name, "%s", name);
    snprintf(m.source, sizeof m.source, "gen=%u", gen);
    m.src_dtype = VT_DTYPE_U32;
    m.ndim = 2;
    m.dims[0] = rows;
    m.dims[1] = cols;
    m.format = VT_STORE_FMT_RAW;
    m.rows_per_chunk = rows_per_chunk;
    m.tensor_scale = 1;
    vt_writer_tensor *t;
    int rc = vt_writer_tensor_begin(w, &m, NULL, 0, &t);
    if (rc) return rc;
    vt_tensor_info ti;
    vt_writer_tensor_info(w, t, &ti);
    uint64_t most = ti.rows_per_chunk < rows ? ti.rows_per_chunk : rows;
    uint32_t *buf = malloc(most * cols * 4 + 4);
    for (uint64_t i = 0; i < ti.n_chunks && !rc; i++) {
        uint64_t r0 = i * ti.rows_per_chunk,
                 n = rows - r0 < ti.rows_per_chunk ? rows - r0 : ti.rows_per_chunk;
        for (uint64_t r = 0; r < n; r++)
            for (uint64_t c = 0; c < cols; c++) buf[r * cols + c] = tu_elem(name, gen, r0 + r, c);
        rc = vt_writer_put_chunk(w, t, i, buf, n * cols * 4);
    }
    free(buf);
    if (!rc) rc = vt_writer_tensor_end(w, t, NULL);
    return rc;
}

/* Put a 1-D f32 tensor of n values (one chunk, stored as f32) into writer @p w under @p name
 * (any bytes: the writer does not check names as import does). Returns 0 or an error. */
static inline int tu_put_f32(vt_store_writer *w, const char *name, const float *x, uint64_t n) {
    vt_tensor_info m;
    memset(&m, 0, sizeof m);
    snprintf(m.name, sizeof m.name, "%s", name);
    m.src_dtype = VT_DTYPE_F32;
    m.ndim = 1;
    m.dims[0] = n;
    m.format = VT_FMT_F32;
    m.tensor_scale = 1;
    vt_writer_tensor *t;
    int rc = vt_writer_tensor_begin(w, &m, NULL, 0, &t);
    if (!rc) rc = vt_writer_put_chunk(w, t, 0, x, n * sizeof(float));
    if (!rc) rc = vt_writer_tensor_end(w, t, NULL);
    return rc;
}

/* Read a generation tensor in one call and check it is complete and of one generation.
 * Returns 0 when consistent (and *gen_out the generation), 1 when wrong, or a read error. */
static inline int tu_check_gen(vt_store *s, const char *name, uint32_t *gen_out) {
    vt_tensor_info ti;
    int rc = vt_store_stat(s, name, &ti);
    if (rc) return rc;
    /* the tensor may be replaced between stat and read: read with a size bound, then check
     * the content alone */
    size_t cap = ti.raw_bytes + 4;
    uint32_t *buf = malloc(cap);
    rc = vt_store_read_tensor_raw(s, name, buf, cap);
    if (rc == -ERANGE) { /* replaced by a bigger one meanwhile */
        free(buf);
        return tu_check_gen(s, name, gen_out);
    }
    if (rc) {
        free(buf);
        return rc;
    }
    uint64_t rows = ti.rows, cols = ti.cols;
    uint32_t gen = buf[0];
    int bad = 0;
    for (uint64_t r = 0; r < rows && !bad; r++)
        for (uint64_t c = 0; c < cols; c++)
            if (buf[r * cols + c] != tu_elem(name, gen, r, c)) {
                fprintf(stderr, "%s: row %llu col %llu: %u, expected %u (gen %u)\n", name,
                        (unsigned long long)r, (unsigned long long)c, buf[r * cols + c],
                        tu_elem(name, gen, r, c), gen);
                bad = 1;
                break;
            }
    free(buf);
    if (gen_out) *gen_out = gen;
    return bad;
}

/* Count regular files in a directory (shards) — via ls to keep the test short. */
static inline int tu_count_files(const char *dir, const char *glob) {
    char cmd[8600];
    snprintf(cmd, sizeof cmd, "ls %s/%s 2>/dev/null | wc -l", dir, glob);
    FILE *f = popen(cmd, "r");
    int n = -1;
    if (f) {
        if (fscanf(f, "%d", &n) != 1) n = -1;
        pclose(f);
    }
    return n;
}

/* Create the store at @p path with tensors t0, t1, t2 (64 x 200 generation 1, chunks of about
 * 8 KiB), each put by its own writer, so in shards 1, 2, 3 with tensor ids 1, 2, 3. Returns the
 * open RDWR handle, or NULL after a failed check. */
static inline vt_store *tu_three_shards(const char *path) {
    vt_store_options o = {0};
    o.chunk_target_bytes = 8 << 10;
    vt_store *s;
    CHECK_RC(vt_store_open(path, VT_STORE_RDWR | VT_STORE_CREATE, &o, &s));
    if (!s) return NULL;
    for (int i = 0; i < 3; i++) {
        vt_store_writer *w;
        char n[8];
        snprintf(n, sizeof n, "t%d", i);
        CHECK_RC(vt_store_writer_begin(s, &w));
        CHECK_RC(tu_put_gen(w, n, 1, 64, 200, 0));
        CHECK_RC(vt_store_writer_commit(w));
    }
    return s;
}

#endif
