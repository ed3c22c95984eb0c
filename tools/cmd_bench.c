/* tools/cmd_bench.c — `vtstore bench AREA [ARGS]`: a thin dispatcher to the benchmark code in
 * bench/<area>/. Each area's entry point is compiled into this binary by including its source
 * here (the CLI target globs only tools/); to add an area, include its file and add a row. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

#include "../bench/kernels/bench_kernels.c"

static const struct {
    const char *name;
    int (*main_fn)(int argc, char **argv);
    const char *help;
} areas[] = {
    {"kernels", vt_bench_kernels_main,
     "CPU fused GEMV vs memory read; GPU dequant/GEMV/GEMM vs memcpy and cuBLAS"},
};

static void bench_usage(FILE *f) {
    fprintf(f, "usage: vtstore bench AREA [ARGS]   (vtstore bench AREA --help)\n\nareas:\n");
    for (size_t i = 0; i < sizeof areas / sizeof areas[0]; i++)
        fprintf(f, "  %-8s %s\n", areas[i].name, areas[i].help);
}

int vt_cmd_bench(int argc, char **argv) {
    if (argc < 2) {
        bench_usage(stderr);
        return VT_EXIT_USAGE;
    }
    int help = vt_cli_wants_help(argc, argv);
    for (size_t i = 0; i < sizeof areas / sizeof areas[0]; i++) {
        if (strcmp(argv[1], areas[i].name)) continue;
        if (help) {
            /* -h/--help anywhere after AREA: that area's usage, whatever else is given */
            char *hv[] = {argv[1], "--help", NULL};
            return areas[i].main_fn(2, hv);
        }
        return areas[i].main_fn(argc - 1, argv + 1);
    }
    if (help) {
        bench_usage(stdout);
        return VT_EXIT_OK;
    }
    fprintf(stderr, "vtstore bench: unknown area '%s'\n", argv[1]);
    bench_usage(stderr);
    return VT_EXIT_USAGE;
}
