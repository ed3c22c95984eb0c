/* vtstore — command-line entry point: dispatches to one function per subcommand. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "store_print.h"
#include "vtstore/core.h"

/* Subcommands not yet built into this binary answer with a clear message. A real definition in
 * cmd_<name>.c replaces these weak ones at link time. */
#define VT_CMD_STUB(fn, name)                                                                      \
    __attribute__((weak)) int fn(int argc, char **argv) {                                          \
        (void)argc;                                                                                \
        (void)argv;                                                                                \
        fprintf(stderr, "vtstore %s: not available in this build\n", name);                        \
        return VT_EXIT_ERROR;                                                                      \
    }
VT_CMD_STUB(vt_cmd_import, "import")
VT_CMD_STUB(vt_cmd_ls, "ls")
VT_CMD_STUB(vt_cmd_query, "query")
VT_CMD_STUB(vt_cmd_info, "info")
VT_CMD_STUB(vt_cmd_get, "get")
VT_CMD_STUB(vt_cmd_export, "export")
VT_CMD_STUB(vt_cmd_verify, "verify")
VT_CMD_STUB(vt_cmd_gc, "gc")
VT_CMD_STUB(vt_cmd_upgrade, "upgrade")
VT_CMD_STUB(vt_cmd_rm, "rm")
VT_CMD_STUB(vt_cmd_stream, "stream")
VT_CMD_STUB(vt_cmd_run, "run")
VT_CMD_STUB(vt_cmd_attn, "attn")
VT_CMD_STUB(vt_cmd_quant, "quant")
VT_CMD_STUB(vt_cmd_bench, "bench")

static const struct {
    const char *name;
    vt_cmd_fn fn;
    const char *help;
} cmds[] = {
    {"import", vt_cmd_import, "import safetensors/GGUF/.npy into a store, quantizing"},
    {"ls", vt_cmd_ls, "list tensors (glob, --where filter, --json)"},
    {"query", vt_cmd_query, "same as ls"},
    {"info", vt_cmd_info, "store totals or one tensor's record"},
    {"get", vt_cmd_get, "dequantize a tensor or row range to .npy"},
    {"export", vt_cmd_export, "write safetensors (dequantized) or GGUF"},
    {"verify", vt_cmd_verify, "check every chunk checksum and the index"},
    {"gc", vt_cmd_gc, "reclaim space of removed or orphaned chunks"},
    {"upgrade", vt_cmd_upgrade, "rewrite an older store's index in the newest format"},
    {"rm", vt_cmd_rm, "remove tensors matching a glob"},
    {"stream", vt_cmd_stream, "stream the store through RAM/VRAM tiers in schedule order"},
    {"run", vt_cmd_run, "run a Llama-family model from a store"},
    {"attn", vt_cmd_attn, "flash attention on .npy inputs (quantized K/V optional)"},
    {"quant", vt_cmd_quant,
     "quantization report (SQNR, bits, throughput) on generated or given data"},
    {"bench", vt_cmd_bench, "benchmarks: bench kernels (quantization: vtstore quant)"},
};

static void usage(FILE *f) {
    fprintf(f,
            "usage: vtstore COMMAND [ARGS]   (vtstore COMMAND --help for details)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        fprintf(f, "  %-8s %s\n", cmds[i].name, cmds[i].help);
}

int vt_cli_wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return 1;
    return 0;
}

int vt_cli_fixed_args(int argc, char **argv, int nargs, const char *use) {
    if (vt_cli_wants_help(argc, argv)) {
        fputs(use, stdout);
        return VT_EXIT_OK;
    }
    if (argc != nargs + 1 || argv[1][0] == '-') {
        fputs(use, stderr);
        return VT_EXIT_USAGE;
    }
    return -1;
}

int vt_cli_parse_num(const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !(v >= lo && v <= hi)) return -1;
    *out = v;
    return 0;
}

int vt_cli_parse_bytes(const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || v < 0) return -1;
    double mul = 1;
    switch (toupper((unsigned char)*end)) {
    case 'K':
        mul = 1024.0;
        end++;
        break;
    case 'M':
        mul = 1024.0 * 1024;
        end++;
        break;
    case 'G':
        mul = 1024.0 * 1024 * 1024;
        end++;
        break;
    case 'T':
        mul = 1024.0 * 1024 * 1024 * 1024;
        end++;
        break;
    default:
        break;
    }
    if (toupper((unsigned char)*end) == 'I') end++;
    if (toupper((unsigned char)*end) == 'B') end++;
    if (*end) return -1;
    /* converting a double >= 2^64 (or NaN) to uint64_t is undefined: refuse it */
    if (!(v * mul < 18446744073709551616.0)) return -1;
    *out = (uint64_t)(v * mul);
    return 0;
}

/* safe_text.c's vt_print_safe replaces this weak copy, which serves programs that link main.c
 * without it (tests/fuzz's filter target, for vt_cli_parse_bytes). */
__attribute__((weak)) const char *vt_print_safe(const char *s, char *out, size_t cap) {
    snprintf(out, cap, "%s", s);
    return out;
}

void vt_cli_error(const char *cmd, int rc, const char *fmt, ...) {
    /* the message names tensors, whose names may hold control characters: escaped */
    static char msg[8192], safe[4 * sizeof msg];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t k = n < 0 ? 0 : (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1;
    const char *detail = vt_last_error();
    if (rc) k += (size_t)snprintf(msg + k, sizeof msg - k, ": %s", vt_strerror(rc));
    if (k < sizeof msg && detail && *detail) snprintf(msg + k, sizeof msg - k, " (%s)", detail);
    fprintf(stderr, "vtstore %s: %s\n", cmd, vt_print_safe(msg, safe, sizeof safe));
}

/* The exit code of subcommand @p cmd, which returned @p ex, once stdout is flushed. Output lost
 * on the way (a full disk, a closed pipe with SIGPIPE ignored) is an error, never exit 0 with a
 * truncated result. EPIPE: the reader went away (`vtstore ls S | head -1` where SIGPIPE is
 * ignored); nobody is left to read a message, so exit 1 quietly, as a SIGPIPE death would. */
static int finish_stdout(const char *cmd, int ex) {
    errno = 0;
    int bad = fflush(stdout) != 0;
    int err = errno;
    bad |= ferror(stdout);
    if (!bad) return ex;
    if (err != EPIPE)
        fprintf(stderr, "vtstore %s: writing the output failed: %s\n", cmd,
                err ? strerror(err) : "an earlier write failed; the output is incomplete");
    return ex == VT_EXIT_OK ? VT_EXIT_ERROR : ex;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return VT_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return finish_stdout("help", VT_EXIT_OK);
    }
    if (!strcmp(argv[1], "--version")) {
        printf("vtstore %s\n", vt_version());
        return finish_stdout("--version", VT_EXIT_OK);
    }
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(argv[1], cmds[i].name))
            return finish_stdout(cmds[i].name, cmds[i].fn(argc - 1, argv + 1));
    fprintf(stderr, "vtstore: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return VT_EXIT_USAGE;
}
