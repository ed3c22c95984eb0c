/* vtstore get STORE TENSOR[ROWS] -o FILE.npy [--dtype f32|f16]: dequantize to .npy. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "store_print.h"
#include "vtstore/import.h"

static const char *use = "usage: vtstore get STORE TENSOR[ROWS] -o FILE.npy [--dtype f32|f16|raw]\n"
                         "  ROWS: [a:b] rows a..b-1, [a:] from a, [:b] up to b, [i] one row\n"
                         "  --dtype raw: integer tensors in their own dtype (default f32)\n";

/* A row number: decimal digits only (no sign, no spaces), at most VT_GET_MAX_ROW. Returns 0,
 * -1 if @p s is not a number, -2 if it is one but out of range. */
#define VT_GET_MAX_ROW (INT64_MAX - 1) /* so that a single row [i] still has an end i + 1 */
static int parse_row(const char *s, int64_t *out) {
    if (*s < '0' || *s > '9') return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end) return -1;
    if (errno == ERANGE || v > (unsigned long long)VT_GET_MAX_ROW) return -2;
    *out = (int64_t)v;
    return 0;
}

/* Split "name[a:b]" into the name and a row range (rows unknown until stat: -1 = open).
 * Returns 0, -1 for a malformed range, -2 for a row number beyond VT_GET_MAX_ROW. */
static int parse_rows(char *spec, int64_t *a, int64_t *b) {
    *a = 0;
    *b = -1;
    size_t n = strlen(spec);
    char *lb = strrchr(spec, '[');
    if (!lb || n == 0 || spec[n - 1] != ']') return 0;
    spec[n - 1] = 0;
    *lb = 0;
    char *r = lb + 1, *colon = strchr(r, ':');
    int rc;
    if (!colon) {
        if ((rc = parse_row(r, a))) return rc;
        *b = *a + 1;
        return 0;
    }
    *colon = 0;
    if (*r && (rc = parse_row(r, a))) return rc;
    if (colon[1] && (rc = parse_row(colon + 1, b))) return rc;
    return 0;
}

int vt_cmd_get(int argc, char **argv) {
    if (vt_cli_wants_help(argc, argv)) {
        fputs(use, stdout);
        return VT_EXIT_OK;
    }
    const char *pos[2] = {0}, *out = NULL, *dts = "f32";
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc)
            out = argv[++i];
        else if (!strcmp(argv[i], "--dtype") && i + 1 < argc)
            dts = argv[++i];
        else if (argv[i][0] != '-' && npos < 2)
            pos[npos++] = argv[i];
        else {
            fputs(use, stderr);
            return VT_EXIT_USAGE;
        }
    }
    if (npos != 2 || !out) {
        fputs(use, stderr);
        return VT_EXIT_USAGE;
    }
    char name[VT_MAX_NAME + 64];
    snprintf(name, sizeof name, "%s", pos[1]);
    int64_t a, b;
    int prc = parse_rows(name, &a, &b);
    if (prc == -2) {
        fprintf(stderr,
                "vtstore get: row number out of range in '%s' (row numbers are at most %lld)\n%s",
                pos[1], (long long)VT_GET_MAX_ROW, use);
        return VT_EXIT_USAGE;
    }
    if (prc) {
        fprintf(stderr, "vtstore get: bad row range in '%s'\n%s", pos[1], use);
        return VT_EXIT_USAGE;
    }
    /* a usage error is one whatever the store holds: checked before opening it */
    if (strcmp(dts, "raw") && strcmp(dts, "f32") && strcmp(dts, "f16")) {
        fprintf(stderr, "vtstore get: --dtype must be f32, f16 or raw\n");
        return VT_EXIT_USAGE;
    }
    vt_store *s = vt_print_open("get", pos[0], 0);
    if (!s) return VT_EXIT_ERROR;
    vt_tensor_info ti;
    int rc = vt_store_stat(s, name, &ti);
    if (rc) {
        vt_cli_error("get", rc, "%s", name);
        vt_store_close(s);
        return VT_EXIT_ERROR;
    }
    vt_dtype dt = !strcmp(dts, "raw")   ? ti.src_dtype
                  : !strcmp(dts, "f32") ? VT_DTYPE_F32
                                        : VT_DTYPE_F16;
    if (b < 0) b = (int64_t)ti.rows;
    if (b < a || (uint64_t)b > ti.rows) {
        char nm[1024];
        fprintf(stderr, "vtstore get: rows [%lld:%lld] out of range for %s (%llu rows)\n",
                (long long)a, (long long)b, vt_print_safe(name, nm, sizeof nm),
                (unsigned long long)ti.rows);
        vt_store_close(s);
        return VT_EXIT_ERROR;
    }
    rc = vt_export_npy(s, name, (uint64_t)a, (uint64_t)(b - a), dt, out);
    if (rc)
        vt_cli_error("get", rc, "writing %s rows %lld..%lld to %s", name, (long long)a,
                     (long long)b, out);
    vt_store_close(s);
    return rc ? VT_EXIT_ERROR : VT_EXIT_OK;
}
