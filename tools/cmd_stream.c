/* vtstore stream — walk a store's tensors in schedule order N times through the RAM and VRAM
 * tiers, as a forward pass would, and report per-pass time, hit rates, GB/s and stall time. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "store_print.h"
#include "vtstore/store.h"
#include "vtstore/tier.h"

static void help(FILE *f) {
    fprintf(
        f,
        "usage: vtstore stream STORE --ram BYTES [--vram BYTES] [--passes N]\n"
        "                      [--schedule FILE | --order name|size] [--prefetch D] [--slots K]\n"
        "                      [--qd N] [--read-size BYTES] [--engine uring|pread] [--chunkwise]\n"
        "                      [--json]\n\n"
        "Streams every tensor of STORE (or the names in FILE, one per line, in that order) N\n"
        "times through a pinned RAM tier of --ram bytes and a device tier of --vram bytes (0 or\n"
        "absent: host only; without a GPU the device tier is host memory). Prints per pass the\n"
        "time, hits per tier, the consumed rate in GB/s (tensor bytes handed out per second), the\n"
        "disk read rate and the time acquire waited. BYTES take K/M/G/T suffixes (powers of "
        "1024).\n");
}

#define VT_STREAM_MAX_READ (1u << 30) /* io engine's cap on read_size */

typedef struct {
    char **v;
    size_t n, cap;
    uint64_t *size;
} name_list;

static int push(name_list *l, const char *s, uint64_t size) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 64;
        char **v = realloc(l->v, nc * sizeof *v);
        uint64_t *sz = realloc(l->size, nc * sizeof *sz);
        if (!v || !sz) {
            free(v ? v : l->v);
            return -ENOMEM;
        }
        l->v = v;
        l->size = sz;
        l->cap = nc;
    }
    l->v[l->n] = strdup(s);
    if (!l->v[l->n]) return -ENOMEM;
    l->size[l->n++] = size;
    return 0;
}

static int on_tensor(void *ctx, const vt_tensor_info *ti) {
    return push(ctx, ti->name, ti->raw_bytes);
}

static name_list *sort_names;
static int by_size(const void *a, const void *b) {
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    uint64_t x = sort_names->size[i], y = sort_names->size[j];
    return x < y ? 1 : x > y ? -1 : (i > j) - (i < j);
}

int vt_cmd_stream(int argc, char **argv) {
    if (vt_cli_wants_help(argc, argv)) {
        help(stdout);
        return VT_EXIT_OK;
    }
    const char *path = NULL, *sched_file = NULL, *order = "name";
    vt_tier_config cfg = {0};
    int passes = 3, json = 0, have_ram = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t b;
        if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--chunkwise")) {
            cfg.chunkwise = 1;
        } else if (a[0] == '-' && a[1] == '-' && !v) {
            fprintf(stderr, "vtstore stream: %s needs a value\n", a);
            return VT_EXIT_USAGE;
        } else if (!strcmp(a, "--vram") || !strcmp(a, "--ram") || !strcmp(a, "--read-size")) {
            if (vt_cli_parse_bytes(v, &b)) {
                fprintf(stderr, "vtstore stream: %s: '%s' is not a byte count\n", a, v);
                return VT_EXIT_USAGE;
            }
            if (!strcmp(a, "--vram")) cfg.vram_bytes = b;
            if (!strcmp(a, "--ram")) cfg.ram_bytes = b, have_ram = 1;
            if (!strcmp(a, "--read-size")) {
                /* the engine's limits (multiple of 4096, at most 1 GiB) checked here, so 4G is
                 * refused rather than cut to 32 bits (it would read as 0: the default) */
                if (b > VT_STREAM_MAX_READ || b % 4096) {
                    fprintf(stderr,
                            "vtstore stream: --read-size '%s': expected 0 (default) or a "
                            "multiple of 4096 bytes up to 1G\n",
                            v);
                    return VT_EXIT_USAGE;
                }
                cfg.read_size = (uint32_t)b;
            }
            i++;
        } else if (!strcmp(a, "--passes") || !strcmp(a, "--prefetch") || !strcmp(a, "--slots") ||
                   !strcmp(a, "--qd")) {
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || n < 0 || n > 1000000) {
                fprintf(stderr, "vtstore stream: %s: '%s' is not a count\n", a, v);
                return VT_EXIT_USAGE;
            }
            if (!strcmp(a, "--passes")) passes = (int)n;
            if (!strcmp(a, "--prefetch")) cfg.prefetch = (uint32_t)n;
            if (!strcmp(a, "--slots")) cfg.ring_slots = (uint32_t)n;
            if (!strcmp(a, "--qd")) cfg.queue_depth = (uint32_t)n;
            i++;
        } else if (!strcmp(a, "--schedule")) {
            sched_file = v;
            i++;
        } else if (!strcmp(a, "--order")) {
            order = v;
            if (strcmp(order, "name") && strcmp(order, "size")) {
                fprintf(stderr, "vtstore stream: --order %s: expected name or size\n", order);
                return VT_EXIT_USAGE;
            }
            i++;
        } else if (!strcmp(a, "--engine")) {
            if (!strcmp(v, "uring"))
                cfg.io_engine = VT_IO_URING;
            else if (!strcmp(v, "pread"))
                cfg.io_engine = VT_IO_PREAD;
            else {
                fprintf(stderr, "vtstore stream: --engine %s: expected uring or pread\n", v);
                return VT_EXIT_USAGE;
            }
            i++;
        } else if (a[0] == '-') {
            fprintf(stderr, "vtstore stream: unknown option %s\n", a);
            return VT_EXIT_USAGE;
        } else if (!path) {
            path = a;
        } else {
            fprintf(stderr, "vtstore stream: unexpected argument %s\n", a);
            return VT_EXIT_USAGE;
        }
    }
    if (!path || !have_ram || passes < 1) {
        help(stderr);
        return VT_EXIT_USAGE;
    }

    vt_store *s = NULL;
    int rc = vt_store_open(path, VT_STORE_RDONLY, NULL, &s);
    if (rc) {
        vt_cli_error("stream", rc, "cannot open store %s", path);
        return VT_EXIT_ERROR;
    }
    name_list names = {0};
    int ret = VT_EXIT_ERROR;
    vt_streamer *st = NULL;
    FILE *js = NULL;
    char *js_buf = NULL;
    size_t js_len = 0;
    int attempt = 0;
retry:
    if (sched_file) {
        FILE *f = fopen(sched_file, "r");
        if (!f) {
            fprintf(stderr, "vtstore stream: cannot read schedule %s: %s\n", sched_file,
                    strerror(errno));
            goto out;
        }
        char line[1024];
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\r\n")] = 0;
            if (!line[0] || line[0] == '#') continue;
            vt_tensor_info ti;
            rc = vt_store_stat(s, line, &ti);
            if (rc) {
                vt_cli_error("stream", rc, "schedule %s: tensor %s", sched_file, line);
                fclose(f);
                goto out;
            }
            if (push(&names, line, ti.raw_bytes)) break;
        }
        fclose(f);
    } else {
        rc = vt_store_list(s, NULL, on_tensor, &names);
        if (rc) {
            vt_cli_error("stream", rc, "listing %s", path);
            goto out;
        }
        if (!strcmp(order, "size")) {
            size_t *ix = malloc(names.n * sizeof *ix);
            char **v = malloc(names.n * sizeof *v);
            uint64_t *sz = malloc(names.n * sizeof *sz);
            if (!ix || !v || !sz) goto out;
            for (size_t i = 0; i < names.n; i++) ix[i] = i;
            sort_names = &names;
            qsort(ix, names.n, sizeof *ix, by_size);
            for (size_t i = 0; i < names.n; i++) v[i] = names.v[ix[i]], sz[i] = names.size[ix[i]];
            free(names.v);
            free(names.size);
            names.v = v;
            names.size = sz;
            free(ix);
        }
    }
    if (!names.n) {
        fprintf(stderr, "vtstore stream: %s: no tensors to stream\n",
                sched_file ? sched_file : path);
        goto out;
    }
    rc = vt_streamer_open(s, &cfg, &st);
    if (rc) {
        vt_cli_error("stream", rc, "cannot open a streamer on %s", path);
        goto out;
    }
    rc = vt_streamer_plan(st, (const char *const *)names.v, names.n, VT_SCHEDULE_CYCLIC);
    if (rc == VT_ENOTFOUND && !sched_file && ++attempt < 8) {
        /* a writer removed a listed tensor before the streamer took its snapshot: list again */
        vt_streamer_close(st);
        st = NULL;
        for (size_t i = 0; i < names.n; i++) free(names.v[i]);
        free(names.v);
        free(names.size);
        names = (name_list){0};
        goto retry;
    }
    if (rc) {
        vt_cli_error("stream", rc, "plan");
        goto out;
    }
    vt_streamer_stats s0;
    vt_streamer_get_stats(st, &s0);
    const char *eng = s0.engine == VT_IO_URING ? "io_uring" : "pread";
    /* --json: the object is built in memory and printed only once every pass succeeded, so a
     * failure leaves stdout empty (the error goes to stderr) instead of a partial object */
    if (json && !(js = open_memstream(&js_buf, &js_len))) {
        vt_cli_error("stream", -ENOMEM, "JSON output buffer");
        goto out;
    }
    if (json) {
        fputs("{\"store\":", js);
        vt_print_json_str(js, path);
        fprintf(js,
                ",\"engine\":\"%s\",\"device_is_gpu\":%d,\"vram_bytes\":%llu,\"ram_"
                "bytes\":%llu,"
                "\"model_bytes\":%llu,\"tensors\":%zu,\"vram_pinned_bytes\":%llu,\"ram_pinned_"
                "bytes\":%llu,\"passes\":[",
                eng, s0.device_is_gpu, (unsigned long long)cfg.vram_bytes,
                (unsigned long long)cfg.ram_bytes, (unsigned long long)s0.model_bytes, names.n,
                (unsigned long long)s0.vram.pinned_bytes, (unsigned long long)s0.ram.pinned_bytes);
    } else
        printf("store %s: %zu tensors, %.1f MiB per pass; engine %s%s; vram %.1f MiB (pinned "
               "%.1f)%s, ram %.1f MiB "
               "(pinned %.1f)\n%4s %9s %9s %9s %9s %9s %10s %10s %9s\n",
               path, names.n, s0.model_bytes / 1048576.0, eng,
               s0.registered_buffers ? " (registered buffers)" : "", cfg.vram_bytes / 1048576.0,
               s0.vram.pinned_bytes / 1048576.0,
               cfg.vram_bytes && !s0.device_is_gpu ? " [host memory: no GPU]" : "",
               cfg.ram_bytes / 1048576.0, s0.ram.pinned_bytes / 1048576.0, "pass", "time_s",
               "vram_hit", "ram_hit", "disk", "GB/s", "disk_GB/s", "read_MiB", "stall_s");
    vt_streamer_stats prev = s0;
    for (int p = 0; p < passes; p++) {
        double t0 = vt_now();
        uint64_t consumed = 0;
        for (size_t i = 0; i < names.n; i++) {
            uint64_t np = 1;
            vt_streamer_parts(st, names.v[i], &np);
            for (uint64_t k = 0; k < np; k++) {
                vt_weight w;
                rc = np > 1 ? vt_streamer_acquire_part(st, names.v[i], k, &w)
                            : vt_streamer_acquire(st, names.v[i], &w);
                if (rc) {
                    vt_cli_error("stream", rc, "pass %d: tensor %s", p + 1, names.v[i]);
                    goto out;
                }
                consumed += w.bytes;
                vt_streamer_release(st, &w);
            }
        }
        double dt = vt_now() - t0;
        vt_streamer_stats c;
        vt_streamer_get_stats(st, &c);
        uint64_t acq = c.acquires - prev.acquires;
        uint64_t vh = c.vram.hits - prev.vram.hits, rh = c.ram.hits - prev.ram.hits;
        uint64_t disk = c.ram.misses - prev.ram.misses;
        uint64_t rd = c.bytes_read - prev.bytes_read;
        double stall = c.stall_seconds - prev.stall_seconds;
        if (json)
            fprintf(js,
                    "%s{\"pass\":%d,\"seconds\":%.6f,\"acquires\":%llu,\"vram_hits\":%llu,\"ram_"
                    "hits\":%llu,"
                    "\"disk_reads\":%llu,\"consumed_bytes\":%llu,\"gbps\":%.4f,\"bytes_read\":%llu,"
                    "\"disk_gbps\":%.4f,"
                    "\"stall_seconds\":%.6f}",
                    p ? "," : "", p + 1, dt, (unsigned long long)acq, (unsigned long long)vh,
                    (unsigned long long)rh, (unsigned long long)disk, (unsigned long long)consumed,
                    consumed / dt / 1e9, (unsigned long long)rd, rd / dt / 1e9, stall);
        else
            printf("%4d %9.4f %8.1f%% %8.1f%% %8.1f%% %9.3f %10.3f %10.1f %9.4f\n", p + 1, dt,
                   acq ? 100.0 * vh / acq : 0, acq ? 100.0 * rh / acq : 0,
                   acq ? 100.0 * disk / acq : 0, consumed / dt / 1e9, rd / dt / 1e9, rd / 1048576.0,
                   stall);
        prev = c;
    }
    if (json) {
        fputs("]}\n", js);
        if (fclose(js)) {
            js = NULL;
            vt_cli_error("stream", -ENOMEM, "JSON output buffer");
            goto out;
        }
        js = NULL;
        fwrite(js_buf, 1, js_len, stdout);
        if (fflush(stdout)) {
            fprintf(stderr, "vtstore stream: writing stdout: %s\n", strerror(errno));
            goto out;
        }
    }
    ret = VT_EXIT_OK;
out:
    if (js) fclose(js);
    free(js_buf);
    vt_streamer_close(st);
    vt_store_close(s);
    for (size_t i = 0; i < names.n; i++) free(names.v[i]);
    free(names.v);
    free(names.size);
    return ret;
}
