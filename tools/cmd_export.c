/* vtstore export STORE OUT.safetensors|OUT.gguf [--format safetensors|gguf] [--dtype D] [--pattern
 * G] */
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "store_print.h"
#include "vtstore/import.h"

static const char *use =
    "usage: vtstore export STORE OUT [--format safetensors|gguf] [--dtype f32|f16|bf16] [--pattern "
    "GLOB]\n"
    "  safetensors: f32/f16/bf16 tensors as stored, quantized ones dequantized (--dtype, default "
    "f32)\n"
    "  gguf: GGUF-native formats keep their blocks; others dequantized (--dtype, default f16);\n"
    "        the GGUF metadata the store kept is written back\n"
    "  the format defaults from OUT's extension (.gguf in any case, else safetensors)\n";

int vt_cmd_export(int argc, char **argv) {
    if (vt_cli_wants_help(argc, argv)) {
        fputs(use, stdout);
        return VT_EXIT_OK;
    }
    const char *pos[2] = {0}, *fmt = NULL, *dts = NULL, *pattern = NULL;
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--format") && i + 1 < argc)
            fmt = argv[++i];
        else if (!strcmp(argv[i], "--dtype") && i + 1 < argc)
            dts = argv[++i];
        else if (!strcmp(argv[i], "--pattern") && i + 1 < argc)
            pattern = argv[++i];
        else if (argv[i][0] != '-' && npos < 2)
            pos[npos++] = argv[i];
        else {
            fputs(use, stderr);
            return VT_EXIT_USAGE;
        }
    }
    if (npos != 2) {
        fputs(use, stderr);
        return VT_EXIT_USAGE;
    }
    size_t n = strlen(pos[1]);
    int gguf = fmt ? !strcmp(fmt, "gguf") : (n > 5 && !strcasecmp(pos[1] + n - 5, ".gguf"));
    if (fmt && !gguf && strcmp(fmt, "safetensors")) {
        fputs(use, stderr);
        return VT_EXIT_USAGE;
    }
    vt_export_options o = {pattern, gguf ? VT_DTYPE_F16 : VT_DTYPE_F32, 0};
    if (dts && (vt_dtype_from_name(dts, &o.dtype) ||
                (o.dtype != VT_DTYPE_F32 && o.dtype != VT_DTYPE_F16 && o.dtype != VT_DTYPE_BF16))) {
        fprintf(stderr, "vtstore export: --dtype '%s': expected f32, f16 or bf16\n", dts);
        return VT_EXIT_USAGE;
    }
    vt_store *s = vt_print_open("export", pos[0], 0);
    if (!s) return VT_EXIT_ERROR;
    int rc = gguf ? vt_export_gguf(s, pos[1], &o) : vt_export_safetensors(s, pos[1], &o);
    if (rc)
        vt_cli_error("export", rc, "writing %s", pos[1]);
    else
        printf("wrote %s\n", pos[1]);
    vt_store_close(s);
    return rc ? VT_EXIT_ERROR : VT_EXIT_OK;
}
