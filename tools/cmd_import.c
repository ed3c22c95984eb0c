/* vtstore import SRC STORE [options]: import safetensors / GGUF / .npy into a store. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "store_print.h"
#include "vtstore/import.h"

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: vtstore import SRC STORE [options]\n"
        "  SRC: a .safetensors file, a safetensors index (*.index.json), a .gguf or a .npy\n"
        "  --format F        default format of 2-D tensors: f32 f16 bf16 q8_0 q4_0 q4_1 int8 nf4\n"
        "                    nf4_dq nvfp4 mxfp4 awq_int4, keep (source type; default) or auto\n"
        "  --rule GLOB=F     format for tensors whose name matches GLOB (first match wins;\n"
        "                    repeatable). Norms, biases and 1-D tensors default to f32/f16\n"
        "  --target-sqnr DB  with --format auto: cheapest format reaching DB dB\n"
        "  --bits B          with --format auto: best format within B bits per weight\n"
        "  --sparsity 2:4    2:4 structured sparsity on top of --format\n"
        "  --requantize      re-quantize GGUF blocks (kept byte for byte by default)\n"
        "  --awq-stats FILE  activation statistics for awq_int4 (.npy [cols] or .safetensors)\n"
        "  --name NAME       tensor name for a .npy source (default: the file name)\n"
        "  --zstd N          zstd level N for chunks, 0-19 (0: off; kept when it saves >= 5%%)\n"
        "  --shard-size N    shard size cap (K/M/G suffixes; default 1G)\n"
        "  --chunk-size N    target chunk size (default 2M)\n"
        "  --data-dir DIR    put shards in DIR too (repeatable)\n"
        "  --threads N       worker threads (default: all)\n"
        "  -v, --verbose     one line per tensor;  -q, --quiet  no progress bar\n"
        "exit codes: 0 ok, 1 error (store unchanged), 2 usage\n");
}

typedef struct prog {
    int tty;
    double last;
} prog;

static int on_progress(void *ctx, const vt_import_progress *p) {
    prog *g = ctx;
    if (!g->tty) return 0;
    double frac = p->bytes_total ? (double)p->bytes_done / (double)p->bytes_total : 1.0;
    double rate = p->elapsed_s > 0 ? (double)p->bytes_done / p->elapsed_s : 0;
    double eta = rate > 0 ? (double)(p->bytes_total - p->bytes_done) / rate : 0;
    char a[32], b[32], r[32];
    int w = 30, fill = (int)(frac * w);
    fprintf(stderr, "\r[%.*s%*s] %5.1f%% %s / %s  %s/s  ETA %.0fs  ", fill,
            "##############################", w - fill, "", frac * 100,
            vt_print_bytes(p->bytes_done, a, sizeof a), vt_print_bytes(p->bytes_total, b, sizeof b),
            vt_print_bytes((uint64_t)rate, r, sizeof r), eta);
    fflush(stderr);
    return 0;
}

static void on_tensor(void *ctx, const vt_tensor_info *ti) {
    char f[32], sh[128], by[32], nm[1024];
    if (*(int *)ctx) fputs("\r\033[K", stderr);
    printf("  %-48s %-9s %-14s %10s  sqnr %s%.2f\n", vt_print_safe(ti->name, nm, sizeof nm),
           vt_print_format(ti, f, sizeof f), vt_print_shape(ti, sh, sizeof sh),
           vt_print_bytes(ti->stored_bytes, by, sizeof by),
           isinf(ti->metrics.sqnr_db) ? "exact " : "",
           isinf(ti->metrics.sqnr_db) ? 0.0 : ti->metrics.sqnr_db);
}

/* --target-sqnr DB (0, 300], --bits B (0, 32], --zstd N [0, 19], --threads N [0, 4096]. */
static int num_opt(const char *a, const char *v, vt_import_options *o, vt_store_options *so) {
    static const struct {
        const char *name;
        double lo, hi;
        int integer;
        const char *what;
    } spec[] = {
        {"--target-sqnr", 1e-9, 300, 0, "a positive SQNR in dB (at most 300)"},
        {"--bits", 1e-9, 32, 0, "bits per weight in (0, 32]"},
        {"--zstd", 0, 19, 1, "a zstd level 0-19 (0: no compression)"},
        {"--threads", 0, 4096, 1, "a thread count 0-4096 (0: all cores)"},
    };
    for (size_t k = 0; k < sizeof spec / sizeof spec[0]; k++) {
        if (strcmp(a, spec[k].name)) continue;
        double x;
        if (vt_cli_parse_num(v, spec[k].lo, spec[k].hi, &x) ||
            (spec[k].integer && x != (double)(int)x)) {
            fprintf(stderr, "vtstore import: %s '%s': expected %s\n", a, v, spec[k].what);
            return -1;
        }
        if (k == 0)
            o->target_sqnr_db = x;
        else if (k == 1)
            o->max_bits = x;
        else if (k == 2)
            so->zstd_level = (int)x;
        else
            o->nthreads = (int)x;
        return 0;
    }
    return -1;
}

static int parse_format(const char *s, uint32_t *out) {
    if (!strcmp(s, "keep"))
        *out = VT_IMPORT_KEEP;
    else if (!strcmp(s, "auto"))
        *out = VT_IMPORT_AUTO;
    else if (vt_format_from_name(s, out))
        return -1;
    return 0;
}

int vt_cmd_import(int argc, char **argv) {
    if (vt_cli_wants_help(argc, argv)) {
        usage(stdout);
        return VT_EXIT_OK;
    }
    vt_import_options o;
    vt_import_options_init(&o);
    vt_store_options so = {0};
    vt_import_rule rules[64];
    const char *dirs[VT_STORE_MAX_DIRS];
    const char *pos[2];
    int npos = 0, sparse = 0, verbose = 0, quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n;
        if (a[0] != '-') {
            if (npos == 2) goto bad;
            pos[npos++] = a;
            continue;
        }
        if (!strcmp(a, "-v") || !strcmp(a, "--verbose"))
            verbose = 1;
        else if (!strcmp(a, "-q") || !strcmp(a, "--quiet"))
            quiet = 1;
        else if (!strcmp(a, "--requantize"))
            o.requantize = 1;
        else if (!v)
            goto bad;
        else if (!strcmp(a, "--format")) {
            if (parse_format(v, &o.format)) {
                fprintf(stderr, "vtstore import: unknown format '%s'\n", v);
                return VT_EXIT_USAGE;
            }
            i++;
        } else if (!strcmp(a, "--rule")) {
            char *eq = strrchr(argv[i + 1], '=');
            if (!eq || o.n_rules == 64) goto bad;
            *eq = 0;
            rules[o.n_rules].glob = argv[i + 1];
            if (parse_format(eq + 1, &rules[o.n_rules].format)) {
                fprintf(stderr, "vtstore import: unknown format '%s' in --rule\n", eq + 1);
                return VT_EXIT_USAGE;
            }
            o.n_rules++;
            i++;
        } else if (!strcmp(a, "--target-sqnr") || !strcmp(a, "--bits") || !strcmp(a, "--zstd") ||
                   !strcmp(a, "--threads")) {
            if (num_opt(a, v, &o, &so)) return VT_EXIT_USAGE;
            i++;
        } else if (!strcmp(a, "--sparsity")) {
            if (strcmp(v, "2:4")) {
                fprintf(stderr, "vtstore import: --sparsity '%s': only 2:4 is supported\n", v);
                return VT_EXIT_USAGE;
            }
            sparse = 1;
            i++;
        } else if (!strcmp(a, "--awq-stats"))
            o.awq_stats_path = argv[++i];
        else if (!strcmp(a, "--name"))
            o.tensor_name = argv[++i];
        else if (!strcmp(a, "--shard-size") && !vt_cli_parse_bytes(v, &n))
            so.shard_cap_bytes = n, i++;
        else if (!strcmp(a, "--chunk-size") && !vt_cli_parse_bytes(v, &n))
            so.chunk_target_bytes = n, i++;
        else if (!strcmp(a, "--data-dir") && so.n_data_dirs < VT_STORE_MAX_DIRS)
            dirs[so.n_data_dirs++] = argv[++i];
        else
            goto bad;
    }
    if (npos != 2) goto bad;
    int any_auto = o.format == VT_IMPORT_AUTO;
    for (uint32_t k = 0; k < o.n_rules; k++) any_auto |= rules[k].format == VT_IMPORT_AUTO;
    if ((o.target_sqnr_db > 0 || o.max_bits > 0) && !any_auto) {
        fprintf(stderr, "vtstore import: --target-sqnr and --bits need --format auto (or a --rule "
                        "GLOB=auto)\n");
        return VT_EXIT_USAGE;
    }
    if (sparse) {
        if (o.format >= VT_FMT_COUNT) {
            fprintf(stderr,
                    "vtstore import: --sparsity 2:4 needs an explicit quantized --format\n");
            return VT_EXIT_USAGE;
        }
        o.format |= VT_FMT_SPARSE24;
    }
    o.rules = rules;
    so.data_dirs = dirs;
    vt_store *s = NULL;
    int rc = vt_store_open(pos[1], VT_STORE_RDWR | VT_STORE_CREATE, &so, &s);
    if (rc) {
        vt_cli_error("import", rc, "cannot open or create store %s", pos[1]);
        return VT_EXIT_ERROR;
    }
    prog g = {!quiet && isatty(2), 0};
    o.progress = on_progress;
    o.progress_ctx = &g;
    if (verbose) {
        o.on_tensor = on_tensor;
        o.on_tensor_ctx = &g.tty;
    }
    vt_import_summary sum;
    rc = vt_import_file(s, pos[0], &o, &sum);
    if (g.tty) fputs("\r\033[K", stderr);
    if (rc) {
        vt_cli_error("import", rc, "importing %s into %s failed (store unchanged)", pos[0], pos[1]);
        /* a store this import created goes again (`vtstore import typo.safetensors new.vts`
         * used to leave an empty new.vts), unless another process wrote into it meanwhile */
        if (vt_store_discard_new(s) < 0) fprintf(stderr, "vtstore import: %s\n", vt_last_error());
        vt_store_close(s);
        return VT_EXIT_ERROR;
    }
    char a[32], b[32], r[32];
    printf(
        "imported %llu tensors (%llu converted, %llu kept) from %llu file(s): %s in, %s stored, "
        "ratio %.2f, %.2f s, %s/s\n",
        (unsigned long long)sum.tensors, (unsigned long long)sum.quantized,
        (unsigned long long)sum.kept, (unsigned long long)sum.files,
        vt_print_bytes(sum.bytes_in, a, sizeof a), vt_print_bytes(sum.bytes_stored, b, sizeof b),
        sum.bytes_stored ? (double)sum.bytes_in / (double)sum.bytes_stored : 0.0, sum.seconds,
        vt_print_bytes(sum.seconds > 0 ? (uint64_t)(sum.bytes_in / sum.seconds) : 0, r, sizeof r));
    vt_store_close(s);
    return VT_EXIT_OK;
bad:
    usage(stderr);
    return VT_EXIT_USAGE;
}
