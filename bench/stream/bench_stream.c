/* bench_stream — streaming a store larger than the tier budgets, against baselines measured in
 * the same run on the same shard files:
 *   raw      O_DIRECT reads of the whole shard files through the io engine (queue-depth and
 *            read-size sweep; the best point is the reference rate)
 *   buffered plain read() of the files with a cold page cache, one thread
 *   cold     vtstore streaming, pass 1 (page cache dropped, nothing resident)
 *   warm     vtstore streaming, later passes (pinned tensors hit; the rest streams)
 * and per-pass hits against the pinned fraction (LRU would get 0 on this loop).
 * Prints a table and writes JSON (--json FILE). Not a test.
 *
 * The sweep's best point is a maximum over noisy medians, so each cold run is also compared with
 * a raw read at the same queue depth and read size done just before it (paired ratio).
 *
 *   bench_stream [--mib 384] [--tensors 48] [--dir DIR] [--passes 4] [--runs 3] [--slots 4]
 *                [--prefetch 2] [--json out.json]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../bench_util.h"
#include "tiering/io_engine.h"
#include "vtstore/store.h"
#include "vtstore/tier.h"

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

typedef struct {
    char path[64][4096];
    uint64_t size[64];
    int n;
} shard_set;

static void drop_cache(const shard_set *ss) {
    for (int i = 0; i < ss->n; i++) {
        int fd = open(ss->path[i], O_RDONLY);
        if (fd < 0) continue;
        fdatasync(fd);
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
}

/* whole files through the engine, O_DIRECT, into one registered buffer ring */
static double raw_rate(const shard_set *ss, vt_io_engine eng, uint32_t qd, uint32_t rs,
                       uint64_t *bytes) {
    drop_cache(ss);
    vt_io_config c = {.engine = eng, .queue_depth = qd, .read_size = rs};
    vt_io *io;
    if (vt_io_open(&c, &io)) return 0;
    size_t buf_len = (size_t)qd * rs;
    char *buf = mmap(NULL, buf_len, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    vt_io_register_memory(io, buf, buf_len);
    int fid[64];
    for (int i = 0; i < ss->n; i++) vt_io_add_path(io, ss->path[i], &fid[i]);
    vt_io_req *reqs = calloc(qd, sizeof *reqs);
    double t0 = vt_now();
    uint64_t total = 0;
    int f = 0;
    uint64_t off = 0;
    uint32_t inflight = 0, next_slot = 0;
    int *free_slot = calloc(qd, sizeof *free_slot);
    for (uint32_t i = 0; i < qd; i++) free_slot[i] = (int)i;
    uint32_t nfree = qd;
    for (;;) {
        while (nfree && f < ss->n) {
            uint64_t len = ss->size[f] - off < rs ? ss->size[f] - off : rs;
            int slot = free_slot[--nfree];
            reqs[slot] = (vt_io_req){.file = fid[f],
                                     .off = off,
                                     .len = len,
                                     .buf = buf + (size_t)slot * rs,
                                     .user = (void *)(intptr_t)slot};
            vt_io_submit(io, &reqs[slot]);
            inflight++;
            off += len;
            if (off >= ss->size[f]) f++, off = 0;
        }
        if (!inflight) break;
        vt_io_req *d[256];
        int k = vt_io_reap(io, d, 256, 1);
        if (k < 0) break;
        for (int i = 0; i < k; i++) {
            total += d[i]->len;
            free_slot[nfree++] = (int)(intptr_t)d[i]->user;
            inflight--;
        }
    }
    double dt = vt_now() - t0;
    (void)next_slot;
    vt_io_close(io);
    munmap(buf, buf_len);
    free(reqs);
    free(free_slot);
    *bytes = total;
    return total / dt / 1e9;
}

static double buffered_rate(const shard_set *ss) {
    drop_cache(ss);
    char *buf = malloc(1 << 20);
    double t0 = vt_now();
    uint64_t total = 0;
    for (int i = 0; i < ss->n; i++) {
        int fd = open(ss->path[i], O_RDONLY);
        ssize_t r;
        while ((r = read(fd, buf, 1 << 20)) > 0) total += (uint64_t)r;
        close(fd);
    }
    double dt = vt_now() - t0;
    free(buf);
    return total / dt / 1e9;
}

static int make_store(const char *dir, uint64_t mib, int ntensors) {
    vt_store_options o = {.chunk_target_bytes = 2u << 20, .shard_cap_bytes = 256u << 20};
    vt_store *s;
    int rc = vt_store_open(dir, VT_STORE_RDWR | VT_STORE_CREATE, &o, &s);
    if (rc) return rc;
    vt_store_writer *w;
    if ((rc = vt_store_writer_begin(s, &w))) goto out;
    uint64_t cols = 4096, rows = (mib << 20) / (uint64_t)ntensors / (cols * 2);
    uint16_t *data = malloc(rows * cols * 2);
    for (int t = 0; t < ntensors && !rc; t++) {
        for (uint64_t i = 0; i < rows * cols / 4; i++)
            ((uint64_t *)data)[i] = rnd() & 0x3fff3fff3fff3fffull;
        vt_tensor_info m;
        memset(&m, 0, sizeof m);
        snprintf(m.name, sizeof m.name, "blk.%03d.weight", t);
        m.src_dtype = VT_DTYPE_F16;
        m.ndim = 2;
        m.dims[0] = rows;
        m.dims[1] = cols;
        m.format = VT_FMT_F16;
        m.tensor_scale = 1;
        vt_writer_tensor *wt;
        vt_tensor_info ti;
        if ((rc = vt_writer_tensor_begin(w, &m, NULL, 0, &wt)) ||
            (rc = vt_writer_tensor_info(w, wt, &ti)))
            break;
        for (uint64_t c = 0; c < ti.n_chunks && !rc; c++) {
            uint64_t r0 = c * ti.rows_per_chunk,
                     nr = rows - r0 < ti.rows_per_chunk ? rows - r0 : ti.rows_per_chunk;
            rc = vt_writer_put_chunk(w, wt, c, data + r0 * cols, nr * cols * 2);
        }
        if (!rc) rc = vt_writer_tensor_end(w, wt, NULL);
    }
    free(data);
    if (rc)
        vt_store_writer_abort(w);
    else
        rc = vt_store_writer_commit(w);
out:
    vt_store_close(s);
    return rc;
}

typedef struct {
    const char *json;
    uint64_t mib;
    int tensors, passes, runs;
    uint32_t slots, prefetch; /* streamer ring slots and prefetch depth */
    char dir[4096];
} opts;

int main(int argc, char **argv) {
    opts o = {.mib = 384, .tensors = 48, .passes = 4, .runs = 3, .slots = 4, .prefetch = 2};
    snprintf(o.dir, sizeof o.dir, "/tmp/vt_bench_stream");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--mib") && i + 1 < argc)
            o.mib = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--tensors") && i + 1 < argc)
            o.tensors = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--passes") && i + 1 < argc)
            o.passes = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            o.runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--slots") && i + 1 < argc)
            o.slots = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--prefetch") && i + 1 < argc)
            o.prefetch = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            snprintf(o.dir, sizeof o.dir, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--json") && i + 1 < argc)
            o.json = argv[++i];
        else {
            fprintf(stderr, "usage: bench_stream [--mib N] [--tensors N] [--passes N] [--runs N] "
                            "[--slots K] [--prefetch D] [--dir DIR] [--json F]\n");
            return 2;
        }
    }
    if (o.runs < 1 || o.runs > 15 || o.passes < 2 || o.tensors < 4 || o.tensors > 4096) return 2;
    char cmd[8300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", o.dir);
    if (system(cmd)) return 1;
    double t0 = vt_now();
    int rc = make_store(o.dir, o.mib, o.tensors);
    if (rc) {
        fprintf(stderr, "bench_stream: building the store: %s (%s)\n", vt_strerror(rc),
                vt_last_error());
        return 1;
    }
    printf("store %s: %llu MiB in %d f16 tensors, written in %.1f s\n", o.dir,
           (unsigned long long)o.mib, o.tensors, vt_now() - t0);
    vt_store *s;
    if ((rc = vt_store_open(o.dir, VT_STORE_RDONLY, NULL, &s))) return 1;
    shard_set ss = {0};
    for (uint32_t id = 0; id < 100000 && ss.n < 64; id++) {
        if (vt_store_shard_path(s, id, ss.path[ss.n], sizeof ss.path[0])) continue;
        int fd = open(ss.path[ss.n], O_RDONLY);
        if (fd < 0) continue;
        ss.size[ss.n] = (uint64_t)lseek(fd, 0, SEEK_END) / 4096 * 4096;
        close(fd);
        ss.n++;
    }
    FILE *js = o.json ? fopen(o.json, "w") : NULL;
    if (js)
        fprintf(js, "{\"bench\":\"stream\",\"model_mib\":%llu,\"tensors\":%d,\"sweep\":[",
                (unsigned long long)o.mib, o.tensors);

    /* 1. raw O_DIRECT: queue depth x read size sweep */
    printf(
        "\nraw O_DIRECT read of %d shard files (io_uring unless refused), GB/s, median of %d:\n%6s",
        ss.n, o.runs, "qd");
    uint32_t qds[] = {1, 4, 16, 32, 64}, rss[] = {256u << 10, 1u << 20, 4u << 20};
    for (int r = 0; r < 3; r++) printf(" %9uK", rss[r] >> 10);
    printf("\n");
    double best = 0;
    uint32_t best_qd = 0, best_rs = 0;
    int first = 1;
    for (int q = 0; q < 5; q++) {
        printf("%6u", qds[q]);
        for (int r = 0; r < 3; r++) {
            double v[15];
            uint64_t bytes = 0;
            for (int k = 0; k < o.runs; k++)
                v[k] = raw_rate(&ss, VT_IO_AUTO, qds[q], rss[r], &bytes);
            double m = bench_median(v, o.runs);
            printf(" %10.3f", m);
            if (m > best) best = m, best_qd = qds[q], best_rs = rss[r];
            if (js)
                fprintf(js, "%s{\"qd\":%u,\"read_size\":%u,\"gbps\":%.4f}", first ? "" : ",",
                        qds[q], rss[r], m);
            first = 0;
        }
        printf("\n");
    }
    double v[15];
    uint64_t bytes = 0;
    for (int k = 0; k < o.runs; k++) v[k] = raw_rate(&ss, VT_IO_PREAD, best_qd, best_rs, &bytes);
    double raw_pread = bench_median(v, o.runs);
    for (int k = 0; k < o.runs; k++) v[k] = buffered_rate(&ss);
    double buffered = bench_median(v, o.runs);

    /* 2. streaming: budgets so the model is 3.4x RAM + VRAM */
    uint64_t model = o.mib << 20;
    vt_tier_config cfg = {.vram_bytes = model / 8,
                          .ram_bytes = model / 6,
                          .prefetch = o.prefetch,
                          .ring_slots = o.slots,
                          .queue_depth = best_qd,
                          .read_size = best_rs};
    char **names = calloc((size_t)o.tensors, sizeof *names);
    for (int t = 0; t < o.tensors; t++) {
        names[t] = malloc(32);
        snprintf(names[t], 32, "blk.%03d.weight", t);
    }
    double cold[15], warm[15], cold_disk[15], paired[15], paired_ratio[15];
    double hit_frac = 0, pinned_frac = 0, stall_cold = 0, stall_warm = 0;
    vt_streamer_stats fin = {0};
    for (int k = 0; k < o.runs; k++) {
        /* paired baseline: raw O_DIRECT at the streamer's qd/read size right before this run */
        uint64_t pb = 0;
        paired[k] = raw_rate(&ss, VT_IO_AUTO, best_qd, best_rs, &pb);
        drop_cache(&ss);
        vt_streamer *st;
        if ((rc = vt_streamer_open(s, &cfg, &st)) ||
            (rc = vt_streamer_plan(st, (const char *const *)names, (size_t)o.tensors,
                                   VT_SCHEDULE_CYCLIC))) {
            fprintf(stderr, "bench_stream: streamer: %s (%s)\n", vt_strerror(rc), vt_last_error());
            return 1;
        }
        double wsum = 0;
        uint64_t wbytes = 0, hit_bytes = 0;
        vt_streamer_stats prev;
        vt_streamer_get_stats(st, &prev);
        for (int p = 0; p < o.passes; p++) {
            double p0 = vt_now();
            uint64_t consumed = 0;
            for (int t = 0; t < o.tensors; t++) {
                vt_weight w;
                if ((rc = vt_streamer_acquire(st, names[t], &w))) {
                    fprintf(stderr, "bench_stream: %s\n", vt_last_error());
                    return 1;
                }
                consumed += w.bytes;
                vt_streamer_release(st, &w);
            }
            double dt = vt_now() - p0;
            vt_streamer_stats c;
            vt_streamer_get_stats(st, &c);
            if (p == 0) {
                cold[k] = consumed / dt / 1e9;
                cold_disk[k] = (c.bytes_read - prev.bytes_read) / dt / 1e9;
                paired_ratio[k] = paired[k] > 0 ? cold_disk[k] / paired[k] : 0;
                stall_cold = c.stall_seconds - prev.stall_seconds;
            } else {
                wsum += dt;
                wbytes += consumed;
                uint64_t hits = (c.vram.hits - prev.vram.hits) + (c.ram.hits - prev.ram.hits);
                hit_bytes += hits * (model / (uint64_t)o.tensors);
                stall_warm = c.stall_seconds - prev.stall_seconds;
            }
            prev = c;
        }
        warm[k] = wbytes / wsum / 1e9;
        hit_frac = (double)hit_bytes / (double)(model * (uint64_t)(o.passes - 1));
        vt_streamer_get_stats(st, &fin);
        pinned_frac =
            (double)(fin.vram.pinned_bytes + fin.ram.pinned_bytes) / (double)fin.model_bytes;
        vt_streamer_close(st);
    }
    double c_m = bench_median(cold, o.runs), c_d = bench_median(cold_disk, o.runs),
           w_m = bench_median(warm, o.runs);
    double p_m = bench_median(paired, o.runs), p_r = bench_median(paired_ratio, o.runs);
    const char *eng = fin.engine == VT_IO_URING ? "io_uring" : "pread";
    printf("\n%-44s %10s\n", "measurement", "GB/s");
    printf("%-44s %10.3f   (qd %u, %u KiB reads)\n", "raw O_DIRECT, best of sweep", best, best_qd,
           best_rs >> 10);
    printf("%-44s %10.3f\n", "raw O_DIRECT, pread pool (same qd/size)", raw_pread);
    printf("%-44s %10.3f\n", "buffered read(), cold cache, 1 thread", buffered);
    printf("%-44s %10.3f   (same qd/size, read just before each cold run)\n",
           "raw O_DIRECT, paired with the cold runs", p_m);
    printf("%-44s %10.3f   (disk %.3f GB/s, %.1f%% of best raw, %.1f%% of paired raw; stall "
           "%.3f s)\n",
           "vtstore stream cold (pass 1, consumed)", c_m, c_d, 100 * c_d / best, 100 * p_r,
           stall_cold);
    printf("%-44s %10.3f   (stall %.3f s in the last pass)\n",
           "vtstore stream warm (passes 2+, consumed)", w_m, stall_warm);
    printf("\nbudgets: vram %.1f MiB (%s), ram %.1f MiB, model %.1f MiB (%.1fx the budgets), "
           "engine %s%s\n",
           cfg.vram_bytes / 1048576.0, fin.device_is_gpu ? "GPU" : "host memory: no GPU",
           cfg.ram_bytes / 1048576.0, model / 1048576.0,
           (double)model / (cfg.vram_bytes + cfg.ram_bytes), eng,
           fin.registered_buffers ? ", registered buffers" : "");
    printf("per-pass hits (bytes) %.3f of the model; pinned fraction %.3f; LRU on this loop: 0\n",
           hit_frac, pinned_frac);
    if (js) {
        fprintf(
            js,
            "],\"raw_direct_gbps\":%.4f,\"raw_qd\":%u,\"raw_read_size\":%u,\"raw_pread_gbps\":%.4f,"
            "\"buffered_gbps\":%.4f,\"stream_cold_gbps\":%.4f,\"stream_cold_disk_gbps\":%.4f,"
            "\"stream_warm_gbps\":%.4f,\"raw_paired_gbps\":%.4f,\"cold_vs_paired\":%.4f,"
            "\"slots\":%u,\"prefetch\":%u,\"cold_vs_raw\":%.4f,\"hit_fraction\":%.4f,\"pinned_"
            "fraction\":%.4f,\"engine\":\"%s\","
            "\"device_is_gpu\":%d,"
            "\"vram_bytes\":%llu,\"ram_bytes\":%llu,\"runs\":%d}\n",
            best, best_qd, best_rs, raw_pread, buffered, c_m, c_d, w_m, p_m, p_r, o.slots,
            o.prefetch, c_d / best, hit_frac, pinned_frac, eng, fin.device_is_gpu,
            (unsigned long long)cfg.vram_bytes, (unsigned long long)cfg.ram_bytes, o.runs);
        fclose(js);
    }
    for (int t = 0; t < o.tensors; t++) free(names[t]);
    free(names);
    vt_store_close(s);
    return 0;
}
