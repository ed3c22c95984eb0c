/* bench_store: import-like write throughput and read throughput of the store, beside the raw
 * sequential read rate of the same shard files measured in the same run.
 *
 *   bench_store [--mb N] [--dir D] [--json out.json] [--zstd L] [--reps R]
 *
 * Write: a synthetic f16 "model" (Llama-like 2-D tensors, N MiB of f16 source) is converted to
 * f32 and quantized to nf4 chunk by chunk on the thread pool, put through a writer and
 * committed (fdatasync included); rate = source bytes / wall time. A second pass stores the
 * f16 bytes as they are (the write path without quantization).
 * Read: vt_store_read_tensor_raw of every tensor (checksums verified), cold (shard pages dropped
 * with posix_fadvise(DONTNEED) — exact only when the files are not mapped elsewhere) and warm,
 * and the same for a plain sequential read() of the shard files. Medians of R repetitions. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <unistd.h>

#include "vtstore/store.h"

typedef struct tens {
    char name[64];
    uint64_t rows, cols;
} tens;

static tens T[512];
static int NT;
static uint64_t rng = 88172645463325252ull;
static uint64_t xr(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void make_model(uint64_t bytes) {
    /* blocks of q,k,v,o (d x d) and up/gate/down (d x 2.75d): d = 1024 */
    const uint64_t d = 1024, f = 2816;
    uint64_t total = 0;
    for (int b = 0; total < bytes && NT < 500; b++) {
        const char *nm[7] = {"attn_q",   "attn_k", "attn_v",  "attn_o",
                             "ffn_gate", "ffn_up", "ffn_down"};
        for (int i = 0; i < 7 && total < bytes; i++) {
            tens *t = &T[NT++];
            snprintf(t->name, sizeof t->name, "blk.%d.%s.weight", b, nm[i]);
            t->rows = i < 4 ? d : i < 6 ? f : d;
            t->cols = i < 4 ? d : i < 6 ? d : f;
            total += t->rows * t->cols * 2;
        }
    }
}

typedef struct job {
    vt_store_writer *w;
    vt_writer_tensor *t;
    const uint16_t *src;
    uint64_t rpc, rows, cols;
    uint32_t fmt;
    vt_quant_params *p;
} job;

static int do_chunk(void *ctx, uint64_t i, int tid) {
    (void)tid;
    job *j = ctx;
    uint64_t r0 = i * j->rpc, n = j->rows - r0 < j->rpc ? j->rows - r0 : j->rpc;
    const uint16_t *s = j->src + r0 * j->cols;
    if (j->fmt == VT_FMT_F16) return vt_writer_put_chunk(j->w, j->t, i, s, n * j->cols * 2);
    float *x = malloc(n * j->cols * 4);
    uint64_t qb = vt_quant_bytes(j->fmt, n, j->cols);
    void *q = malloc(qb);
    vt_f16_to_f32_row(s, x, n * j->cols);
    int rc = vt_quantize(j->fmt, j->p, x, n, j->cols, q, 1);
    if (!rc) rc = vt_writer_put_chunk(j->w, j->t, i, q, qb);
    free(x);
    free(q);
    return rc;
}

static int import(const char *path, uint32_t fmt, int zstd, const uint16_t *src, double *secs) {
    vt_store_options o = {0};
    o.zstd_level = zstd;
    vt_store *s;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd)) return -1;
    int rc = vt_store_open(path, VT_STORE_RDWR | VT_STORE_CREATE, &o, &s);
    if (rc) return rc;
    double t0 = vt_now();
    vt_store_writer *w;
    if ((rc = vt_store_writer_begin(s, &w))) return rc;
    for (int i = 0; i < NT && !rc; i++) {
        vt_tensor_info m;
        memset(&m, 0, sizeof m);
        memcpy(m.name, T[i].name, sizeof T[i].name);
        m.src_dtype = VT_DTYPE_F16;
        m.ndim = 2;
        m.dims[0] = T[i].rows;
        m.dims[1] = T[i].cols;
        m.format = fmt;
        m.tensor_scale = 1;
        vt_writer_tensor *t;
        if ((rc = vt_writer_tensor_begin(w, &m, NULL, 0, &t))) break;
        vt_tensor_info ti;
        vt_writer_tensor_info(w, t, &ti);
        vt_quant_params p;
        vt_quant_params_init(&p);
        job j = {w, t, src, ti.rows_per_chunk, T[i].rows, T[i].cols, fmt, &p};
        rc = vt_parallel_for(ti.n_chunks, do_chunk, &j, 0);
        if (!rc) rc = vt_writer_tensor_end(w, t, NULL);
    }
    if (rc) {
        vt_store_writer_abort(w);
        fprintf(stderr, "import: %s %s\n", vt_strerror(rc), vt_store_errmsg(s));
    } else {
        rc = vt_store_writer_commit(w);
    }
    *secs = vt_now() - t0;
    vt_store_close(s);
    return rc;
}

static char shard_files[256][4700];
static int n_shards;

static void list_shards(const char *path) {
    char d[4300];
    snprintf(d, sizeof d, "%s/data", path);
    DIR *dp = opendir(d);
    struct dirent *de;
    n_shards = 0;
    while (dp && (de = readdir(dp)))
        if (strncmp(de->d_name, "shard-", 6) == 0 && n_shards < 256)
            snprintf(shard_files[n_shards++], sizeof shard_files[0], "%s/%s", d, de->d_name);
    if (dp) closedir(dp);
}

static void drop_cache(void) {
    for (int i = 0; i < n_shards; i++) {
        int fd = open(shard_files[i], O_RDONLY);
        if (fd < 0) continue;
        fdatasync(fd);
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
}

static double raw_read(uint64_t *bytes) {
    static char buf[4 << 20];
    double t0 = vt_now();
    *bytes = 0;
    for (int i = 0; i < n_shards; i++) {
        int fd = open(shard_files[i], O_RDONLY);
        if (fd < 0) continue;
        posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        ssize_t r;
        while ((r = read(fd, buf, sizeof buf)) > 0) *bytes += (uint64_t)r;
        close(fd);
    }
    return vt_now() - t0;
}

typedef struct rctx {
    vt_store *s;
    void *buf[64];
    uint64_t cap;
    int rc;
} rctx;

static int read_one(void *ctx, uint64_t i, int tid) {
    rctx *c = ctx;
    return vt_store_read_tensor_raw(c->s, T[i].name, c->buf[tid], c->cap);
}

static double store_read(const char *path, uint64_t *bytes, int threads) {
    vt_store *s;
    if (vt_store_open(path, VT_STORE_RDONLY, NULL, &s)) return -1;
    rctx c = {s, {0}, 0, 0};
    *bytes = 0;
    for (int i = 0; i < NT; i++) {
        vt_tensor_info ti;
        vt_store_stat(s, T[i].name, &ti);
        if (ti.raw_bytes > c.cap) c.cap = ti.raw_bytes;
        *bytes += ti.stored_bytes;
    }
    for (int i = 0; i < 64; i++) c.buf[i] = malloc(c.cap);
    double t0 = vt_now();
    int rc = vt_parallel_for((uint64_t)NT, read_one, &c, threads);
    double dt = vt_now() - t0;
    if (rc) fprintf(stderr, "read: %s %s\n", vt_strerror(rc), vt_last_error());
    for (int i = 0; i < 64; i++) free(c.buf[i]);
    vt_store_close(s);
    return rc ? -1 : dt;
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmpd);
    return v[n / 2];
}

int main(int argc, char **argv) {
    uint64_t mb = 256;
    const char *dir = "/tmp", *json = "bench_store.json";
    int zstd = 0, reps = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--mb") && i + 1 < argc)
            mb = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--json") && i + 1 < argc)
            json = argv[++i];
        else if (!strcmp(argv[i], "--zstd") && i + 1 < argc)
            zstd = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else {
            fprintf(stderr,
                    "usage: bench_store [--mb N] [--dir D] [--json F] [--zstd L] [--reps R]\n");
            return 2;
        }
    }
    if (reps < 1 || reps > 50) reps = 3;
    make_model(mb << 20);
    uint64_t maxel = 0, src_bytes = 0;
    for (int i = 0; i < NT; i++) {
        if (T[i].rows * T[i].cols > maxel) maxel = T[i].rows * T[i].cols;
        src_bytes += T[i].rows * T[i].cols * 2;
    }
    /* one source buffer of N(0,1) f16 values reused for every tensor (content does not change
     * the write path's cost; quantization cost is data-independent) */
    uint16_t *src = malloc(maxel * 2);
    for (uint64_t i = 0; i < maxel; i++) {
        double u1 = ((xr() >> 11) + 1) * 0x1.0p-53, u2 = (xr() >> 11) * 0x1.0p-53;
        src[i] = vt_f32_to_f16((float)(sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2)));
    }
    char p_nf4[4200], p_f16[4200];
    snprintf(p_nf4, sizeof p_nf4, "%s/bench_store_nf4.%d.vts", dir, (int)getpid());
    snprintf(p_f16, sizeof p_f16, "%s/bench_store_f16.%d.vts", dir, (int)getpid());
    double w_nf4[50], w_f16[50];
    for (int r = 0; r < reps; r++) {
        if (import(p_nf4, VT_FMT_NF4, zstd, src, &w_nf4[r]) ||
            import(p_f16, VT_FMT_F16, zstd, src, &w_f16[r])) {
            fprintf(stderr, "import failed\n");
            return 1;
        }
    }
    double wn = median(w_nf4, reps), wf = median(w_f16, reps);

    /* reads of the f16 store (largest, closest to a raw-read comparison) */
    list_shards(p_f16);
    double rc_cold[50], rc_warm[50], raw_cold[50], raw_warm[50], rs_cold[50], rs_warm[50];
    uint64_t stored = 0, rawb = 0;
    for (int r = 0; r < reps; r++) {
        drop_cache();
        raw_cold[r] = raw_read(&rawb);
        raw_warm[r] = raw_read(&rawb);
        drop_cache();
        rc_cold[r] = store_read(p_f16, &stored, 0);
        rc_warm[r] = store_read(p_f16, &stored, 0);
        drop_cache();
        rs_cold[r] = store_read(p_f16, &stored, 1);
        rs_warm[r] = store_read(p_f16, &stored, 1);
    }
    double g = 1e9;
    double v_raw_c = rawb / median(raw_cold, reps) / g, v_raw_w = rawb / median(raw_warm, reps) / g;
    double v_st_c = stored / median(rc_cold, reps) / g, v_st_w = stored / median(rc_warm, reps) / g;
    double v_s1_c = stored / median(rs_cold, reps) / g, v_s1_w = stored / median(rs_warm, reps) / g;
    printf("bench_store: %d tensors, %.1f MiB f16 source, zstd %d, %d threads, median of %d\n", NT,
           src_bytes / 1048576.0, zstd, vt_default_threads(), reps);
    printf("%-44s %10s %8s\n", "measurement", "GB/s", "vs raw");
    printf("%-44s %10.3f %8s\n", "import f16 -> nf4 (source bytes, incl. sync)", src_bytes / wn / g,
           "");
    printf("%-44s %10.3f %8s\n", "import f16 -> f16 (source bytes, incl. sync)", src_bytes / wf / g,
           "");
    printf("%-44s %10.3f %8s\n", "raw sequential read of shards, cold", v_raw_c, "1.00");
    printf("%-44s %10.3f %8.2f\n", "store read_tensor_raw, cold, pool threads", v_st_c,
           v_st_c / v_raw_c);
    printf("%-44s %10.3f %8.2f\n", "store read_tensor_raw, cold, 1 thread", v_s1_c,
           v_s1_c / v_raw_c);
    printf("%-44s %10.3f %8s\n", "raw sequential read of shards, warm", v_raw_w, "1.00");
    printf("%-44s %10.3f %8.2f\n", "store read_tensor_raw, warm, pool threads", v_st_w,
           v_st_w / v_raw_w);
    printf("%-44s %10.3f %8.2f\n", "store read_tensor_raw, warm, 1 thread", v_s1_w,
           v_s1_w / v_raw_w);
    FILE *f = fopen(json, "w");
    if (f) {
        fprintf(f,
                "{\"bench\":\"store\",\"tensors\":%d,\"source_bytes\":%llu,\"zstd\":%d,\"threads\":"
                "%d,\"reps\":%d,"
                "\"import_nf4_gbps\":%.4f,\"import_f16_gbps\":%.4f,\"raw_read_cold_gbps\":%.4f,"
                "\"store_read_cold_gbps\":%.4f,\"store_read_cold_1t_gbps\":%.4f,\"raw_read_warm_"
                "gbps\":%.4f,"
                "\"store_read_warm_gbps\":%.4f,\"store_read_warm_1t_gbps\":%.4f}\n",
                NT, (unsigned long long)src_bytes, zstd, vt_default_threads(), reps,
                src_bytes / wn / g, src_bytes / wf / g, v_raw_c, v_st_c, v_s1_c, v_raw_w, v_st_w,
                v_s1_w);
        fclose(f);
        printf("wrote %s\n", json);
    }
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", p_nf4, p_f16);
    if (system(cmd)) return 1;
    free(src);
    return 0;
}
