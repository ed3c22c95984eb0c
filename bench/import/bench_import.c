/* bench_import: import throughput of an f16 safetensors model (Llama-like shapes) to nf4 on all
 * threads, beside the raw sequential read rate of the same file in the same run (both from the
 * page cache: the file was just written), and the CPU time the import used (user + system of
 * the process: on a shared machine wall time swings with the load, CPU time much less). Prints
 * a table and writes bench_import.json.
 *   bench_import [--layers N] [--hidden H] [--inter I] [--dir DIR] [--runs R] [--format F] */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "vtstore/import.h"

static double cpu_seconds(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    int layers = 4, runs = 3;
    uint64_t hidden = 2048, inter = 5632, kv = 256;
    const char *dir = "/tmp/vt_bench_import", *fname = "nf4";
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: bench_import [--layers N] [--hidden H] [--inter I] [--dir DIR] "
                   "[--runs R (<= 16)] [--format F]\n"
                   "Writes an f16 safetensors model to DIR, then R times: a raw read of it and "
                   "vt_import_file to format F (default nf4) on all threads.\n");
            return 0;
        }
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--layers"))
            layers = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--hidden"))
            hidden = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--inter"))
            inter = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--dir"))
            dir = argv[i + 1];
        else if (!strcmp(argv[i], "--runs"))
            runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--format"))
            fname = argv[i + 1];
    }
    uint32_t fmt;
    if (vt_format_from_name(fname, &fmt)) {
        fprintf(stderr, "unknown format %s\n", fname);
        return 2;
    }
    char cmd[8800], path[4300], store[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    if (system(cmd)) return 1;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    /* header */
    static const char *parts[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                  "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                  "mlp.down_proj",    "input_layernorm"};
    uint64_t shp[8][2] = {{hidden, hidden}, {kv, hidden},    {kv, hidden},    {hidden, hidden},
                          {inter, hidden},  {inter, hidden}, {hidden, inter}, {1, hidden}};
    size_t hcap = 1 << 20, hn = 0;
    char *h = malloc(hcap);
    uint64_t off = 0;
    hn += (size_t)snprintf(h + hn, hcap - hn, "{");
    for (int l = 0; l < layers; l++)
        for (int p = 0; p < 8; p++) {
            uint64_t n = shp[p][0] * shp[p][1] * 2;
            if (p == 7)
                hn += (size_t)snprintf(h + hn, hcap - hn,
                                       "%s\"model.layers.%d.%s.weight\":{\"dtype\":\"F16\","
                                       "\"shape\":[%llu],\"data_offsets\":[%llu,%llu]}",
                                       off ? "," : "", l, parts[p], (unsigned long long)hidden,
                                       (unsigned long long)off, (unsigned long long)(off + n));
            else
                hn += (size_t)snprintf(h + hn, hcap - hn,
                                       "%s\"model.layers.%d.%s.weight\":{\"dtype\":\"F16\","
                                       "\"shape\":[%llu,%llu],\"data_offsets\":[%llu,%llu]}",
                                       off ? "," : "", l, parts[p], (unsigned long long)shp[p][0],
                                       (unsigned long long)shp[p][1], (unsigned long long)off,
                                       (unsigned long long)(off + n));
            off += n;
        }
    hn += (size_t)snprintf(h + hn, hcap - hn, "}");
    while (hn % 8) h[hn++] = ' ';
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    uint64_t hl = hn;
    if (fd < 0 || write(fd, &hl, 8) != 8 || write(fd, h, hn) != (ssize_t)hn) return 1;
    /* data: N(0, 0.02) f16 from a table, indexed by an LCG */
    uint16_t table[4096];
    uint64_t st = 88172645463325252ull;
    for (int i = 0; i < 4096; i++) {
        double u1 = ((st = st * 6364136223846793005ull + 1) >> 11) * 0x1.0p-53 + 1e-12;
        double u2 = ((st = st * 6364136223846793005ull + 1) >> 11) * 0x1.0p-53;
        table[i] = vt_f32_to_f16((float)(0.02 * sqrt(-2 * log(u1)) * cos(6.283185307 * u2)));
    }
    size_t blk = 8u << 20;
    uint16_t *buf = malloc(blk);
    for (uint64_t done = 0; done < off;) {
        size_t n = off - done < blk ? (size_t)(off - done) : blk;
        for (size_t i = 0; i < n / 2; i++)
            buf[i] = table[((st = st * 6364136223846793005ull + 1) >> 52)];
        if (write(fd, buf, n) != (ssize_t)n) return 1;
        done += n;
    }
    close(fd);
    uint64_t fsize = 8 + hn + off;
    double raw[16], imp[16], cpu[16];
    if (runs > 16) runs = 16;
    for (int r = 0; r < runs; r++) {
        fd = open(path, O_RDONLY);
        double t0 = vt_now();
        uint64_t pos = 0;
        ssize_t got;
        while ((got = pread(fd, buf, blk, (off_t)pos)) > 0) pos += (uint64_t)got;
        raw[r] = (double)pos / (vt_now() - t0) / 1e9;
        close(fd);
        snprintf(store, sizeof store, "%s/s%d.vts", dir, r);
        vt_store *s;
        if (vt_store_open(store, VT_STORE_RDWR | VT_STORE_CREATE, NULL, &s)) return 1;
        vt_import_options o;
        vt_import_options_init(&o);
        o.format = fmt;
        vt_import_summary sum;
        double c0 = cpu_seconds();
        int rc = vt_import_file(s, path, &o, &sum);
        cpu[r] = cpu_seconds() - c0;
        vt_store_close(s);
        if (rc) {
            fprintf(stderr, "import failed: %s %s\n", vt_strerror(rc), vt_last_error());
            return 1;
        }
        imp[r] = (double)sum.bytes_in / sum.seconds / 1e9;
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", store);
        if (system(cmd)) return 1;
    }
    qsort(raw, (size_t)runs, sizeof raw[0], cmpd);
    qsort(imp, (size_t)runs, sizeof imp[0], cmpd);
    qsort(cpu, (size_t)runs, sizeof cpu[0], cmpd);
    double rm = raw[runs / 2], im = imp[runs / 2], cm = cpu[runs / 2];
    printf("bench_import: f16 safetensors %.1f MB (%d layers, hidden %llu, inter %llu) -> %s, %d "
           "threads, median of %d\n",
           fsize / 1e6, layers, (unsigned long long)hidden, (unsigned long long)inter, fname,
           vt_default_threads(), runs);
    printf("%-38s %10s\n", "what", "value");
    printf("%-38s %10.3f\n", "raw sequential read, page cache GB/s", rm);
    printf("%-38s %10.3f\n", "import to store, GB/s of source", im);
    printf("%-38s %10.3f\n", "ratio import / raw", im / rm);
    printf("%-38s %10.3f\n", "import CPU seconds (user + sys)", cm);
    printf("%-38s %10.3f\n", "import GB of source per CPU second",
           (double)(fsize - 8 - hn) / cm / 1e9);
    snprintf(cmd, sizeof cmd, "%s/bench_import.json", dir);
    FILE *j = fopen(cmd, "w");
    if (j) {
        fprintf(j,
                "{\"file_bytes\":%llu,\"format\":\"%s\",\"threads\":%d,\"runs\":%d,\"raw_read_"
                "gbps\":%.4f,"
                "\"import_gbps\":%.4f,\"import_cpu_s\":%.4f}\n",
                (unsigned long long)fsize, fname, vt_default_threads(), runs, rm, im, cm);
        fclose(j);
        printf("wrote %s\n", cmd);
    }
    free(buf);
    free(h);
    return 0;
}
