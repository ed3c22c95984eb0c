/* examples/store_gemv.c — the library end to end, as a program outside the source tree uses it:
 * write a tensor quantized to q4_0 into a new store (three chunks), reopen the store read-only,
 * stream the tensor through the RAM tier, multiply it by a vector with vt_gemv on the CPU, and
 * check y against a double-precision product of the dequantized weights.
 *
 *     cc store_gemv.c $(pkg-config --cflags --libs vtstore) -o store_gemv
 *     ./store_gemv /tmp/example.vts      # created if missing; its tensor "w" is replaced
 *
 * Exit status 0 when every check holds, 1 with a message otherwise. tests/install builds it
 * against an installed prefix (pkg-config, shared and static, and find_package(vtstore)). */
#include <vtstore/vtstore.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROWS           96
#define COLS           256
#define ROWS_PER_CHUNK 32
#define FORMAT         VT_FMT_Q4_0

static int fail(const char *what, int rc) {
    fprintf(stderr, "store_gemv: %s: %s (%s)\n", what, vt_strerror(rc), vt_last_error());
    return 1;
}

/* A deterministic pseudo-random value in [-1, 1) (xorshift32). */
static float next_value(uint32_t *state) {
    uint32_t s = *state;
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    *state = s;
    return (float)(s >> 8) / 8388608.0f - 1.0f;
}

/* Run one library call; on an error remember which and go to the cleanup. */
#define TRY(call)                                                                                  \
    do {                                                                                           \
        step = #call;                                                                              \
        if ((rc = (call)) != 0) goto out;                                                          \
    } while (0)

/* Write w [ROWS][COLS] into a new store at path as tensor "w", quantized to FORMAT in chunks of
 * ROWS_PER_CHUNK rows; q gets the quantized bytes. */
static int write_store(const char *path, const float *w, void *q, size_t qbytes) {
    const char *step = "";
    vt_store *s = NULL;
    vt_store_writer *wr = NULL;
    vt_writer_tensor *t;
    vt_tensor_info meta, ti;
    memset(&meta, 0, sizeof meta);
    strcpy(meta.name, "w");
    meta.src_dtype = VT_DTYPE_F32;
    meta.ndim = 2;
    meta.dims[0] = ROWS;
    meta.dims[1] = COLS;
    meta.format = FORMAT;
    meta.rows_per_chunk = ROWS_PER_CHUNK;
    meta.tensor_scale = 1.0f;
    meta.metrics.sqnr_db = meta.metrics.cosine = meta.metrics.max_err = NAN; /* not measured */
    size_t row_bytes = (size_t)vt_quant_row_bytes(FORMAT, COLS);
    int rc;

    TRY(vt_quantize(FORMAT, NULL, w, ROWS, COLS, q, 0));
    TRY(vt_store_open(path, VT_STORE_RDWR | VT_STORE_CREATE, NULL, &s));
    TRY(vt_store_writer_begin(s, &wr));
    TRY(vt_writer_tensor_begin(wr, &meta, NULL, 0, &t));
    TRY(vt_writer_tensor_info(wr, t, &ti));
    if (ti.n_chunks != ROWS / ROWS_PER_CHUNK || ti.raw_bytes != qbytes) {
        fprintf(stderr, "store_gemv: tensor record: %llu chunks of %llu bytes in all\n",
                (unsigned long long)ti.n_chunks, (unsigned long long)ti.raw_bytes);
        vt_store_writer_abort(wr);
        vt_store_close(s);
        return 1;
    }
    for (uint64_t i = 0; i < ti.n_chunks; i++) { /* rows [i * rpc, min((i + 1) * rpc, ROWS)) */
        uint64_t row0 = i * ti.rows_per_chunk;
        uint64_t n = ROWS - row0 < ti.rows_per_chunk ? ROWS - row0 : ti.rows_per_chunk;
        TRY(vt_writer_put_chunk(wr, t, i, (const char *)q + row0 * row_bytes, n * row_bytes));
    }
    TRY(vt_writer_tensor_end(wr, t, NULL));
    step = "vt_store_writer_commit";
    rc = vt_store_writer_commit(wr); /* frees the writer whatever the outcome */
    wr = NULL;
out:
    vt_store_writer_abort(wr); /* nothing becomes visible; NULL is a no-op */
    vt_store_close(s);
    return rc ? fail(step, rc) : 0;
}

/* Stream "w" from the store at path and compute y = W x with vt_gemv; also check that the
 * streamed bytes are the ones written (q). */
static int stream_gemv(const char *path, const void *q, size_t qbytes, const float *x, float *y) {
    const char *step = "";
    vt_store *s = NULL;
    vt_streamer *st = NULL;
    vt_weight w;
    int held = 0, bad = 0, rc;
    vt_tier_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.ram_bytes = 16u << 20; /* host tier only (vram_bytes = 0): handles point to host memory */
    const char *names[] = {"w"};

    TRY(vt_store_open(path, VT_STORE_RDONLY, NULL, &s));
    TRY(vt_streamer_open(s, &cfg, &st));
    TRY(vt_streamer_plan(st, names, 1, VT_SCHEDULE_CYCLIC));
    TRY(vt_streamer_acquire(st, "w", &w));
    held = 1;
    if (w.location != VT_LOC_HOST || w.format != FORMAT || w.rows != ROWS || w.cols != COLS ||
        w.bytes != qbytes || memcmp(w.data, q, qbytes) != 0) {
        fprintf(stderr, "store_gemv: the streamed tensor differs from the one written\n");
        bad = 1;
    }
    TRY(vt_gemv(&w, x, y, 1, NULL)); /* y[ROWS] = W x[COLS] */
    held = 0;
    TRY(vt_streamer_release(st, &w));
out:
    if (held) vt_streamer_release(st, &w);
    if (rc) fail(step, rc);
    vt_streamer_close(st); /* NULL is a no-op */
    vt_store_close(s);
    return rc || bad;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s NEW_STORE_DIR\n", argv[0]);
        return 2;
    }
    printf("vtstore %s, CPU kernels: %s\n", vt_version(), vt_kernels_cpu_isa());
    size_t qbytes = (size_t)vt_quant_bytes(FORMAT, ROWS, COLS);
    float *w = malloc(sizeof(float) * ROWS * COLS), *wdq = malloc(sizeof(float) * ROWS * COLS);
    float *x = malloc(sizeof(float) * COLS), *y = malloc(sizeof(float) * ROWS);
    void *q = malloc(qbytes);
    int bad = !w || !wdq || !x || !y || !q;
    if (bad) fprintf(stderr, "store_gemv: out of memory\n");
    uint32_t state = 12345u;
    for (size_t i = 0; !bad && i < (size_t)ROWS * COLS; i++) w[i] = next_value(&state);
    for (size_t j = 0; !bad && j < COLS; j++) x[j] = next_value(&state);

    if (!bad) bad = write_store(argv[1], w, q, qbytes);
    if (!bad) bad = stream_gemv(argv[1], q, qbytes, x, y);

    /* the reference: the dequantized weights (also checked against the source), in f64 */
    int rc = bad ? 0 : vt_dequantize(FORMAT, NULL, q, ROWS, COLS, wdq, 1);
    if (rc) bad = fail("vt_dequantize", rc);
    vt_metrics m;
    if (!bad && (rc = vt_metrics_compute(w, wdq, (uint64_t)ROWS * COLS, &m)) != 0)
        bad = fail("vt_metrics_compute", rc);
    if (!bad && !(m.sqnr_db > 15.0)) {
        fprintf(stderr, "store_gemv: q4_0 SQNR %.2f dB, expected > 15 dB\n", m.sqnr_db);
        bad = 1;
    }
    double max_err = 0.0, max_ref = 0.0;
    for (size_t r = 0; !bad && r < ROWS; r++) {
        double ref = 0.0;
        for (size_t c = 0; c < COLS; c++) ref += (double)wdq[r * COLS + c] * (double)x[c];
        double err = fabs((double)y[r] - ref);
        if (!(err <= max_err) && !isnan(max_err)) max_err = err; /* a NaN stays */
        if (fabs(ref) > max_ref) max_ref = fabs(ref);
    }
    double rel = max_ref > 0.0 ? max_err / max_ref : max_err;
    if (!bad && !(rel <= 1e-3)) {
        fprintf(stderr, "store_gemv: vt_gemv is %.3g (relative) from the f64 reference\n", rel);
        bad = 1;
    }
    if (!bad)
        printf("q4_0 %dx%d in %d chunks: SQNR %.1f dB, vt_gemv within %.2g of the f64 "
               "reference: ok\n",
               ROWS, COLS, ROWS / ROWS_PER_CHUNK, m.sqnr_db, rel);
    free(w);
    free(wdq);
    free(x);
    free(y);
    free(q);
    return bad ? 1 : 0;
}
