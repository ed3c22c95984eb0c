/* Store round trips on fresh random data, with zstd off and on: f32/f16/bf16 bit-exact, raw
 * integer tensors, quantized tensors (bytes identical, rows equal to vt_dequantize of the same
 * bytes), awq aux blobs, nf4_dq row alignment, scalars and empty tensors, metadata, listing,
 * chunk placement (4096-aligned, readable through shard_open + chunk_decode), read-only
 * reopen. */
#include <errno.h>
#include <fcntl.h>
#include <float.h>

#include "store_testutil.h"

typedef struct expect {
    char name[64];
    uint32_t fmt;
    vt_dtype dt;
    uint64_t rows, cols;
    void *raw; /* quantized bytes as put */
    size_t raw_len;
    float *aux;  /* awq scales or NULL */
    float scale; /* tensor scale */
} expect;

static expect ex[32];
static int n_ex;

static void put_tensor(vt_store_writer *w, const char *name, uint32_t fmt, vt_dtype dt,
                       uint64_t rows, uint64_t cols, const void *raw, size_t raw_len,
                       const float *aux, float scale, uint64_t rpc) {
    vt_tensor_info m;
    memset(&m, 0, sizeof m);
    snprintf(m.name, sizeof m.name, "%s", name);
    snprintf(m.source, sizeof m.source, "test.safetensors");
    m.src_dtype = dt;
    m.ndim = 2;
    m.dims[0] = rows;
    m.dims[1] = cols;
    m.format = fmt;
    m.tensor_scale = scale;
    m.rows_per_chunk = rpc;
    m.metrics.sqnr_db = 21.5;
    m.metrics.cosine = 0.99;
    m.metrics.max_err = 0.25;
    vt_writer_tensor *t;
    CHECK_RC(vt_writer_tensor_begin(w, &m, aux, aux ? cols * 4 : 0, &t));
    vt_tensor_info ti;
    CHECK_RC(vt_writer_tensor_info(w, t, &ti));
    CHECK(ti.rows == rows && ti.cols == cols && ti.raw_bytes == raw_len);
    /* put chunks in reverse order: order must not matter */
    size_t off_total = 0;
    for (uint64_t i = ti.n_chunks; i-- > 0;) {
        uint64_t r0 = i * ti.rows_per_chunk,
                 n = rows - r0 < ti.rows_per_chunk ? rows - r0 : ti.rows_per_chunk;
        uint64_t off = vt_store_format_bytes(fmt, dt, r0, cols);
        uint64_t len = vt_store_format_bytes(fmt, dt, n, cols);
        CHECK_RC(vt_writer_put_chunk(w, t, i, (const char *)raw + off, len));
        off_total += len;
    }
    CHECK(off_total == raw_len);
    CHECK(vt_writer_put_chunk(
              w, t, 0, raw,
              vt_store_format_bytes(fmt, dt, ti.rows_per_chunk < rows ? ti.rows_per_chunk : rows,
                                    cols)) == VT_EEXIST);
    CHECK_RC(vt_writer_tensor_end(w, t, NULL));
    expect *e = &ex[n_ex++];
    snprintf(e->name, sizeof e->name, "%s", name);
    e->fmt = fmt;
    e->dt = dt;
    e->rows = rows;
    e->cols = cols;
    e->raw = malloc(raw_len + 1);
    memcpy(e->raw, raw, raw_len);
    e->raw_len = raw_len;
    e->aux = NULL;
    if (aux) {
        e->aux = malloc(cols * 4);
        memcpy(e->aux, aux, cols * 4);
    }
    e->scale = scale;
}

static void quantized(vt_store_writer *w, const char *name, uint32_t fmt, uint64_t rows,
                      uint64_t cols, uint64_t rpc) {
    float *x = malloc(rows * cols * 4);
    for (uint64_t i = 0; i < rows * cols; i++) x[i] = vt_rand_normal();
    vt_quant_params p;
    vt_quant_params_init(&p);
    float *scales = NULL;
    if (VT_FMT_BASE(fmt) == VT_FMT_AWQ_INT4) {
        scales = malloc(cols * 4);
        for (uint64_t j = 0; j < cols; j++) scales[j] = 0.5f + (float)vt_rand_uniform();
        p.channel_scale = scales;
        p.channel_count = cols;
    }
    CHECK_RC(vt_quant_observe(fmt, &p, x, rows * cols));
    size_t n = vt_quant_bytes(fmt, rows, cols);
    void *q = malloc(n);
    CHECK_RC(vt_quantize(fmt, &p, x, rows, cols, q, 1));
    put_tensor(w, name, fmt, VT_DTYPE_F32, rows, cols, q, n, scales, p.tensor_scale, rpc);
    free(q);
    free(x);
    free(scales);
}

typedef struct par_ctx {
    vt_store_writer *w;
    vt_writer_tensor *t;
    const uint8_t *raw;
    uint64_t rpc, rows, cols;
} par_ctx;

static int par_put(void *ctx, uint64_t i, int thread_id) {
    (void)thread_id;
    par_ctx *c = ctx;
    uint64_t r0 = i * c->rpc, n = c->rows - r0 < c->rpc ? c->rows - r0 : c->rpc;
    return vt_writer_put_chunk(c->w, c->t, i, c->raw + r0 * c->cols * 4, n * c->cols * 4);
}

/* Chunks of one tensor put concurrently from the thread pool. */
static void threaded(vt_store_writer *w) {
    uint64_t rows = 200 + vt_rand_u64() % 100, cols = 64;
    float *x = malloc(rows * cols * 4);
    for (uint64_t i = 0; i < rows * cols; i++) x[i] = vt_rand_normal();
    vt_tensor_info m;
    memset(&m, 0, sizeof m);
    snprintf(m.name, sizeof m.name, "threaded");
    snprintf(m.source, sizeof m.source, "test.safetensors");
    m.src_dtype = VT_DTYPE_F32;
    m.ndim = 2;
    m.dims[0] = rows;
    m.dims[1] = cols;
    m.format = VT_FMT_F32;
    m.tensor_scale = 1;
    m.rows_per_chunk = 9;
    m.metrics.sqnr_db = 21.5;
    vt_writer_tensor *t;
    CHECK_RC(vt_writer_tensor_begin(w, &m, NULL, 0, &t));
    par_ctx c = {w, t, (const uint8_t *)x, 9, rows, cols};
    vt_tensor_info ti;
    CHECK_RC(vt_writer_tensor_info(w, t, &ti));
    CHECK_RC(vt_parallel_for(ti.n_chunks, par_put, &c, 4));
    CHECK_RC(vt_writer_tensor_end(w, t, NULL));
    expect *e = &ex[n_ex++];
    snprintf(e->name, sizeof e->name, "threaded");
    e->fmt = VT_FMT_F32;
    e->dt = VT_DTYPE_F32;
    e->rows = rows;
    e->cols = cols;
    e->raw = x;
    e->raw_len = rows * cols * 4;
    e->aux = NULL;
    e->scale = 1.0f;
}

static int list_count;
static char list_last[VT_MAX_NAME];
static int list_fn(void *ctx, const vt_tensor_info *ti) {
    (void)ctx;
    CHECK(strcmp(list_last, ti->name) < 0); /* name order */
    snprintf(list_last, sizeof list_last, "%s", ti->name);
    list_count++;
    return 0;
}
static int meta_count;
static int meta_fn(void *ctx, const char *key, const void *val, size_t len) {
    (void)ctx;
    (void)val;
    CHECK(strncmp(key, "general.", 8) == 0 && len > 0);
    meta_count++;
    return 0;
}

static void check_all(vt_store *s, int zstd) {
    for (int i = 0; i < n_ex; i++) {
        expect *e = &ex[i];
        vt_tensor_info ti;
        CHECK_RC(vt_store_stat(s, e->name, &ti));
        CHECK(ti.format == e->fmt && ti.rows == e->rows && ti.cols == e->cols &&
              ti.raw_bytes == e->raw_len);
        CHECK(strcmp(ti.source, "test.safetensors") == 0 && ti.metrics.sqnr_db == 21.5 &&
              ti.tensor_scale == e->scale);
        CHECK(ti.id > 0 && ti.commit_time > 0);
        void *raw = malloc(e->raw_len + 1);
        CHECK_RC(vt_store_read_tensor_raw(s, e->name, raw, e->raw_len));
        CHECKF(memcmp(raw, e->raw, e->raw_len) == 0, "%s raw bytes differ", e->name);
        /* chunk by chunk, through the public reader path an I/O engine would use */
        uint64_t nch = 0;
        vt_chunk_info cis[64];
        int crc = vt_store_chunks(s, e->name, cis, 64, &nch);
        CHECK(crc == 0 || (crc == -ERANGE && nch > 64));
        CHECK(nch == ti.n_chunks);
        uint64_t off = 0;
        int any_z = 0;
        for (uint64_t c = 0; c < nch && c < 64; c++) {
            vt_chunk_info *ci = &cis[c];
            CHECK(ci->offset % 4096 == 0 && ci->padded_len % 4096 == 0 &&
                  ci->padded_len >= ci->stored_len);
            CHECK(ci->row0 == c * ti.rows_per_chunk);
            any_z |= ci->codec == VT_CODEC_ZSTD;
            if (!zstd) CHECK(ci->codec == VT_CODEC_NONE);
            int fd;
            CHECK_RC(vt_store_shard_open(s, ci->shard_id, 0, &fd));
            void *st = malloc(ci->padded_len), *dec = malloc(ci->raw_len);
            CHECK(pread(fd, st, ci->padded_len, (off_t)ci->offset) == (ssize_t)ci->padded_len);
            close(fd);
            CHECK_RC(vt_store_chunk_decode(s, ci, st, dec, ci->raw_len));
            CHECK(memcmp(dec, (char *)e->raw + off, ci->raw_len) == 0);
            size_t len = 0;
            CHECK_RC(vt_store_read_chunk(s, e->name, c, dec, ci->raw_len, &len));
            CHECK(len == ci->raw_len && memcmp(dec, (char *)e->raw + off, len) == 0);
            off += ci->raw_len;
            free(st);
            free(dec);
        }
        (void)any_z;
        /* dequantized rows equal vt_dequantize of the same bytes, for a random sub-range */
        if (e->rows && e->cols) {
            float *want = malloc(e->rows * e->cols * 4), *got = malloc(e->rows * e->cols * 4);
            if (e->fmt == VT_STORE_FMT_RAW) {
                CHECK_RC(vt_convert_to_f32(e->dt, e->raw, want, e->rows * e->cols));
            } else {
                vt_quant_params p;
                vt_store_tensor_params(&ti, e->aux, &p);
                CHECK_RC(vt_dequantize_ref(e->fmt, &p, e->raw, e->rows, e->cols, want));
            }
            uint64_t r0 = vt_rand_u64() % e->rows, n = 1 + vt_rand_u64() % (e->rows - r0);
            CHECK_RC(vt_store_read_rows(s, e->name, r0, n, VT_DTYPE_F32, got, n * e->cols * 4));
            CHECKF(memcmp(got, want + r0 * e->cols, n * e->cols * 4) == 0,
                   "%s rows %llu+%llu differ", e->name, (unsigned long long)r0,
                   (unsigned long long)n);
            CHECK(vt_store_read_rows(s, e->name, 0, e->rows, VT_DTYPE_F32, got,
                                     e->rows * e->cols * 4 - 1) == -ERANGE);
            CHECK(vt_store_read_rows(s, e->name, e->rows, 1, VT_DTYPE_F32, got, e->cols * 4) ==
                  -ERANGE);
            if (e->fmt == VT_FMT_F16) { /* f16 out of an f16 tensor: the source bits */
                uint16_t *h = malloc(e->rows * e->cols * 2);
                CHECK_RC(vt_store_read_rows(s, e->name, 0, e->rows, VT_DTYPE_F16, h,
                                            e->rows * e->cols * 2));
                CHECK(memcmp(h, e->raw, e->raw_len) == 0);
                free(h);
            }
            free(want);
            free(got);
        }
        if (e->aux) {
            float a[4096];
            size_t len;
            CHECK_RC(vt_store_read_aux(s, e->name, a, sizeof a, &len));
            size_t ql = 0;
            CHECK(vt_store_read_aux(s, e->name, NULL, 0, &ql) == 0 && ql == len);
            CHECK(vt_store_read_aux(s, e->name, a, len - 1, &ql) == -ERANGE && ql == len);
            CHECK(len == e->cols * 4 && memcmp(a, e->aux, len) == 0);
        }
        free(raw);
    }
    vt_tensor_info ti;
    CHECK(vt_store_stat(s, "nope", &ti) == VT_ENOTFOUND);
    CHECK(strstr(vt_store_errmsg(s), "nope") != NULL);
    list_count = 0;
    list_last[0] = 0;
    CHECK_RC(vt_store_list(s, NULL, list_fn, NULL));
    CHECK(list_count == n_ex);
    list_count = 0;
    list_last[0] = 0;
    CHECK_RC(vt_store_list(s, "blk.1.*", list_fn, NULL));
    CHECK(list_count == 2);
    char v[64];
    size_t len;
    CHECK_RC(vt_store_get_meta(s, "general.name", v, sizeof v, &len));
    CHECK(len == 5 && memcmp(v, "llama", 5) == 0);
    CHECK(vt_store_get_meta(s, "general.none", v, sizeof v, &len) == VT_ENOTFOUND);
    /* a size query (NULL, 0) succeeds; a buffer too small is -ERANGE, the size still given */
    size_t qlen = 0;
    CHECK(vt_store_get_meta(s, "general.name", NULL, 0, &qlen) == 0 && qlen == len);
    CHECK(vt_store_get_meta(s, "general.name", v, len - 1, &qlen) == -ERANGE && qlen == len);
    meta_count = 0;
    CHECK_RC(vt_store_meta_list(s, "general.", meta_fn, NULL));
    CHECK(meta_count == 2);
}

static void run(int zstd) {
    char dir[4096];
    vt_test_tmpdir(zstd ? "test_store_roundtrip_z" : "test_store_roundtrip", dir, sizeof dir);
    char path[4200];
    snprintf(path, sizeof path, "%s/s.vts", dir);
    vt_store_options o = {0};
    o.chunk_target_bytes = 48 << 10;
    o.zstd_level = zstd ? 3 : 0;
    vt_store *s;
    CHECK_RC(vt_store_open(path, VT_STORE_RDWR | VT_STORE_CREATE, &o, &s));
    if (!s) return;
    vt_store_writer *w;
    CHECK_RC(vt_store_writer_begin(s, &w));
    vt_store_writer *w2;
    CHECK(vt_store_writer_begin(s, &w2) == -EBUSY);
    n_ex = 0;
    uint64_t rows = 20 + vt_rand_u64() % 60, cols = 100 + vt_rand_u64() % 400;
    /* f32: random bits of finite values, bit-exact */
    float *f = malloc(rows * cols * 4);
    for (uint64_t i = 0; i < rows * cols; i++) f[i] = vt_rand_normal() * 100.0f;
    put_tensor(w, "blk.0.f32", VT_FMT_F32, VT_DTYPE_F32, rows, cols, f, rows * cols * 4, NULL, 1.0f,
               0);
    uint16_t *h = malloc(rows * cols * 2);
    for (uint64_t i = 0; i < rows * cols; i++) {
        h[i] = (uint16_t)vt_rand_u64();
        if ((h[i] & 0x7c00) == 0x7c00) h[i] &= 0xbfff; /* finite */
    }
    put_tensor(w, "blk.0.f16", VT_FMT_F16, VT_DTYPE_F16, rows, cols, h, rows * cols * 2, NULL, 1.0f,
               3);
    for (uint64_t i = 0; i < rows * cols; i++) h[i] = vt_f32_to_bf16(vt_rand_normal());
    put_tensor(w, "blk.1.bf16", VT_FMT_BF16, VT_DTYPE_BF16, rows, cols, h, rows * cols * 2, NULL,
               1.0f, 0);
    int32_t *iv = malloc(rows * cols * 4);
    for (uint64_t i = 0; i < rows * cols; i++) iv[i] = (int32_t)(vt_rand_u64() % 2000001) - 1000000;
    put_tensor(w, "blk.1.i32", VT_STORE_FMT_RAW, VT_DTYPE_I32, rows, cols, iv, rows * cols * 4,
               NULL, 1.0f, 7);
    /* compressible: most values zero */
    memset(f, 0, rows * cols * 4);
    for (uint64_t i = 0; i < rows * cols; i += 97) f[i] = vt_rand_normal();
    put_tensor(w, "sparse.f32", VT_FMT_F32, VT_DTYPE_F32, rows, cols, f, rows * cols * 4, NULL,
               1.0f, 0);
    quantized(w, "q.q4_0", VT_FMT_Q4_0, rows, 256, 0);
    quantized(w, "q.nf4", VT_FMT_NF4, rows, 320, 5);
    quantized(w, "q.nvfp4", VT_FMT_NVFP4, rows, 128, 0);
    quantized(w, "q.awq", VT_FMT_AWQ_INT4, rows, 256, 0);
    quantized(w, "q.q8_0+2:4", VT_FMT_Q8_0 | VT_FMT_SPARSE24, rows, 256, 0);
    uint64_t al = vt_quant_row_align(VT_FMT_NF4_DQ, 192);
    quantized(w, "q.nf4_dq", VT_FMT_NF4_DQ, al * 3 + 5, 192, al);
    threaded(w);
    /* scalar and empty */
    float one = 3.5f;
    vt_tensor_info m;
    memset(&m, 0, sizeof m);
    snprintf(m.name, sizeof m.name, "scalar");
    snprintf(m.source, sizeof m.source, "test.safetensors");
    m.src_dtype = VT_DTYPE_F32;
    m.format = VT_FMT_F32;
    m.tensor_scale = 1;
    m.metrics.sqnr_db = 21.5;
    vt_writer_tensor *t;
    CHECK_RC(vt_writer_tensor_begin(w, &m, NULL, 0, &t));
    CHECK(vt_writer_tensor_end(w, t, NULL) == VT_EUSAGE); /* chunk 0 missing */
    CHECK_RC(vt_writer_put_chunk(w, t, 0, &one, 4));
    CHECK_RC(vt_writer_tensor_end(w, t, NULL));
    ex[n_ex++] = (expect){"scalar", VT_FMT_F32, VT_DTYPE_F32, 1, 1, malloc(4), 4, NULL, 1.0f};
    memcpy(ex[n_ex - 1].raw, &one, 4);
    snprintf(m.name, sizeof m.name, "empty");
    m.ndim = 2;
    m.dims[0] = 0;
    m.dims[1] = 16;
    CHECK_RC(vt_writer_tensor_begin(w, &m, NULL, 0, &t));
    CHECK_RC(vt_writer_tensor_end(w, t, NULL));
    ex[n_ex++] = (expect){"empty", VT_FMT_F32, VT_DTYPE_F32, 0, 16, malloc(1), 0, NULL, 1.0f};
    CHECK(vt_writer_tensor_begin(w, &m, NULL, 0, &t) == VT_EEXIST);
    /* a bad declaration is refused */
    m.format = 0x77;
    snprintf(m.name, sizeof m.name, "bad");
    CHECK(vt_writer_tensor_begin(w, &m, NULL, 0, &t) == -EINVAL);
    CHECK_RC(vt_writer_put_meta(w, "general.name", "llama", 5));
    CHECK_RC(vt_writer_put_meta(w, "general.arch", "x", 1));
    CHECK_RC(vt_store_writer_commit(w));
    free(f);
    free(h);
    free(iv);

    if (zstd) { /* the compressible tensor is stored compressed */
        vt_tensor_info ti;
        CHECK_RC(vt_store_stat(s, "sparse.f32", &ti));
        CHECK(ti.stored_bytes < ti.raw_bytes / 2);
    }
    check_all(s, zstd);
    vt_verify_report rep;
    CHECK_RC(vt_store_verify(s, NULL, NULL, &rep));
    CHECK(rep.tensors == (uint64_t)n_ex && rep.problems == 0);
    vt_store_close(s);
    /* read-only reopen */
    CHECK_RC(vt_store_open(path, VT_STORE_RDONLY, NULL, &s));
    if (s) {
        check_all(s, zstd);
        CHECK(vt_store_writer_begin(s, &w) == -EBADF);
        vt_store_close(s);
    }
    for (int i = 0; i < n_ex; i++) {
        free(ex[i].raw);
        free(ex[i].aux);
    }
}

/* Rows read in a dtype that cannot hold a value: -ERANGE naming tensor, row and column, where
 * f16 and bf16 output and f32 out of raw f64 used to turn it into an infinity. Infinities that
 * are stored stay infinities. */
static void narrow_reads(void) {
    char dir[4096], path[4200];
    vt_test_tmpdir("test_store_narrow", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/s.vts", dir);
    vt_store *s;
    CHECK_RC(vt_store_open(path, VT_STORE_RDWR | VT_STORE_CREATE, NULL, &s));
    if (!s) return;
    vt_store_writer *w;
    CHECK_RC(vt_store_writer_begin(s, &w));
    n_ex = 0;
    enum { R = 6, C = 40 };
    float f[R * C], big[R * C];
    double d[R * C], d2[R * C];
    for (int i = 0; i < R * C; i++)
        f[i] = big[i] = vt_rand_normal(), d[i] = vt_rand_normal(), d2[i] = vt_rand_normal();
    f[7] = -INFINITY;         /* stored: stays -inf in every dtype */
    big[3 * C + 11] = 1e5f;   /* beyond f16 */
    big[4 * C + 2] = FLT_MAX; /* rounds past bf16's largest */
    d[5 * C + 30] = -1e300;   /* beyond f32 */
    /* the hint follows where the overflow comes from, not the magnitude (2 rows a chunk) */
    d2[2 * C + 3] = 3.4e38;  /* fits f32, rounds past bf16's largest */
    d2[3 * C + 7] = 3.45e38; /* beyond f32, though below 3.5e38; in the same chunk */
    d2[4 * C + 1] = 1e5;     /* beyond f16 only */
    put_tensor(w, "inf", VT_FMT_F32, VT_DTYPE_F32, R, C, f, sizeof f, NULL, 1.0f, 2);
    put_tensor(w, "big", VT_FMT_F32, VT_DTYPE_F32, R, C, big, sizeof big, NULL, 1.0f, 2);
    put_tensor(w, "f64", VT_STORE_FMT_RAW, VT_DTYPE_F64, R, C, d, sizeof d, NULL, 1.0f, 2);
    put_tensor(w, "f64b", VT_STORE_FMT_RAW, VT_DTYPE_F64, R, C, d2, sizeof d2, NULL, 1.0f, 2);
    CHECK_RC(vt_store_writer_commit(w));
    uint16_t h[R * C];
    float g[R * C];
    CHECK_RC(vt_store_read_rows(s, "inf", 0, R, VT_DTYPE_F16, h, sizeof h));
    CHECK(h[7] == 0xfc00);
    CHECK_RC(vt_store_read_rows(s, "inf", 0, R, VT_DTYPE_BF16, h, sizeof h));
    CHECK(h[7] == 0xff80);
    static const struct {
        const char *name;
        vt_dtype dt;
        uint64_t row0, n;
        const char *msg; /* NULL: reads */
    } cases[] = {
        {"big", VT_DTYPE_F16, 0, R, "tensor big row 3, column 11: value 100000 does not fit f16"},
        {"big", VT_DTYPE_F16, 0, 3, NULL}, /* rows before it */
        {"big", VT_DTYPE_F16, 3, 1, "row 3, column 11"},
        {"big", VT_DTYPE_BF16, 0, R,
         "tensor big row 4, column 2: value 3.40282e+38 does not fit bf16"},
        {"big", VT_DTYPE_F32, 0, R, NULL},
        {"f64", VT_DTYPE_F32, 0, R, "tensor f64 row 5, column 30: value -1e+300 does not fit f32"},
        {"f64", VT_DTYPE_F32, 5, 1, "row 5, column 30"},
        {"f64", VT_DTYPE_F16, 0, 5, NULL},
        {"f64", VT_DTYPE_F16, 0, R,
         "value -1e+300 does not fit f16 (it would read as infinite; "
         "only its raw f64 bytes hold it (vt_store_read_tensor_raw))"},
        {"big", VT_DTYPE_F16, 4, 1,
         "row 4, column 2: value 3.40282e+38 does not fit f16 (it would read as infinite; read it "
         "as f32)"},
        {"f64b", VT_DTYPE_F32, 0, R,
         "tensor f64b row 3, column 7: value 3.45e+38 does not fit f32 (it would read as "
         "infinite; only its raw f64 bytes hold it (vt_store_read_tensor_raw))"},
        {"f64b", VT_DTYPE_BF16, 3, 1,
         "row 3, column 7: value 3.45e+38 does not fit bf16 (it would read as infinite; only its "
         "raw f64 bytes hold it (vt_store_read_tensor_raw))"},
        {"f64b", VT_DTYPE_F16, 3, 1,
         "row 3, column 7: value 3.45e+38 does not fit f16 (it would "
         "read as infinite; only its raw f64 bytes hold it"},
        /* the first value in row order, whichever check finds it */
        {"f64b", VT_DTYPE_BF16, 0, R,
         "row 2, column 3: value 3.4e+38 does not fit bf16 (it would read as infinite; read it "
         "as f32)"},
        {"f64b", VT_DTYPE_F16, 2, 1,
         "row 2, column 3: value 3.4e+38 does not fit f16 (it would read as infinite; read it as "
         "f32)"},
        {"f64b", VT_DTYPE_F16, 4, 2,
         "row 4, column 1: value 100000 does not fit f16 (it would read as infinite; read it as "
         "bf16 or f32)"},
        {"f64b", VT_DTYPE_BF16, 4, 2, NULL},
        {"f64b", VT_DTYPE_F32, 0, 3, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        void *dst = cases[i].dt == VT_DTYPE_F32 ? (void *)g : (void *)h;
        int rc = vt_store_read_rows(s, cases[i].name, cases[i].row0, cases[i].n, cases[i].dt, dst,
                                    sizeof g);
        if (cases[i].msg)
            CHECKF(rc == -ERANGE && strstr(vt_last_error(), cases[i].msg), "case %zu: %d %s", i, rc,
                   vt_last_error());
        else
            CHECKF(rc == 0, "case %zu: %d %s", i, rc, vt_last_error());
    }
    vt_store_close(s);
    for (int i = 0; i < n_ex; i++) free(ex[i].raw), free(ex[i].aux);
}

/* A store created with a map far too small for its first commit grows the map (it failed
 * with MDB_MAP_FULL at creation) and takes tensors bigger than the initial map. */
static void tiny_map(void) {
    char dir[4096], path[4200];
    vt_test_tmpdir("test_store_tinymap", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/s.vts", dir);
    vt_store_options o = {0};
    o.map_size = 16 << 10;
    o.chunk_target_bytes = 4096;
    vt_store *s;
    CHECK_RC(vt_store_open(path, VT_STORE_RDWR | VT_STORE_CREATE, &o, &s));
    if (!s) return;
    vt_store_writer *w;
    CHECK_RC(vt_store_writer_begin(s, &w));
    CHECK_RC(tu_put_gen(w, "t", 5, 4000, 64, 0)); /* 250 chunk records */
    CHECK_RC(vt_store_writer_commit(w));
    vt_store_close(s);
    CHECK_RC(vt_store_open(path, VT_STORE_RDONLY, &o, &s));
    uint32_t gen = 0;
    CHECK(s && tu_check_gen(s, "t", &gen) == 0 && gen == 5);
    CHECK_RC(vt_store_verify(s, NULL, NULL, NULL));
    vt_store_close(s);
}

/* The writer refuses an nvfp4 tensor without its tensor scale (vt_quant_params_init leaves it
 * unset, NaN: the record would make the tensor unreadable) and records an unset scale of
 * another format as 1. */
static void unset_scale(void) {
    char dir[4096], path[4200];
    vt_test_tmpdir("test_store_scale", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/s.vts", dir);
    vt_store *s;
    CHECK_RC(vt_store_open(path, VT_STORE_RDWR | VT_STORE_CREATE, NULL, &s));
    if (!s) return;
    vt_quant_params p;
    vt_quant_params_init(&p);
    vt_store_writer *w;
    CHECK_RC(vt_store_writer_begin(s, &w));
    vt_tensor_info m;
    memset(&m, 0, sizeof m);
    snprintf(m.name, sizeof m.name, "w");
    m.src_dtype = VT_DTYPE_F32;
    m.ndim = 2;
    m.dims[0] = 4;
    m.dims[1] = 64;
    m.format = VT_FMT_NVFP4;
    vt_writer_tensor *t;
    const float bad[] = {p.tensor_scale, 0.0f, -1.0f, INFINITY};
    for (int i = 0; i < 4; i++) {
        m.tensor_scale = bad[i];
        CHECK(vt_writer_tensor_begin(w, &m, NULL, 0, &t) == -EINVAL);
        CHECK(strstr(vt_store_errmsg(s), "tensor w: nvfp4 needs the tensor_scale"));
    }
    m.format = VT_FMT_Q8_0;
    m.tensor_scale = p.tensor_scale;
    CHECK_RC(vt_writer_tensor_begin(w, &m, NULL, 0, &t));
    uint8_t q[4 * 68] = {0};
    CHECK_RC(vt_writer_put_chunk(w, t, 0, q, vt_quant_bytes(VT_FMT_Q8_0, 4, 64)));
    CHECK_RC(vt_writer_tensor_end(w, t, NULL));
    CHECK_RC(vt_store_writer_commit(w));
    vt_tensor_info ti;
    CHECK_RC(vt_store_stat(s, "w", &ti));
    CHECK(ti.tensor_scale == 1.0f);
    vt_store_close(s);
}

int main(void) {
    vt_test_seed();
    tiny_map();
    unset_scale();
    narrow_reads();
    run(0);
    run(1);
    vt_store_close(NULL);
    return vt_test_done("test_store_roundtrip");
}
