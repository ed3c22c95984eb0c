/* Record formatting shared by ls, query, info and import. */
#include <math.h>
#include <string.h>

#include "cli.h"
#include "store_print.h"

const char *vt_print_format(const vt_tensor_info *ti, char *buf, size_t cap) {
    if (ti->format == VT_STORE_FMT_RAW) {
        snprintf(buf, cap, "raw");
        return buf;
    }
    return vt_format_name(ti->format, buf, cap);
}

const char *vt_print_shape(const vt_tensor_info *ti, char *buf, size_t cap) {
    size_t k = 0;
    buf[0] = 0;
    if (ti->ndim == 0) snprintf(buf, cap, "scalar");
    for (uint32_t d = 0; d < ti->ndim && k + 24 < cap; d++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%llu", d ? "x" : "",
                              (unsigned long long)ti->dims[d]);
    return buf;
}

const char *vt_print_bytes(uint64_t n, char *buf, size_t cap) {
    static const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int i = 0;
    while (v >= 1024 && i < 4) v /= 1024, i++;
    if (i == 0)
        snprintf(buf, cap, "%llu B", (unsigned long long)n);
    else
        snprintf(buf, cap, "%.1f %s", v, u[i]);
    return buf;
}

static void num(FILE *f, double v) {
    if (isnan(v))
        fputs("null", f);
    else if (isinf(v))
        fputs(v > 0 ? "\"inf\"" : "\"-inf\"", f);
    else
        fprintf(f, "%.6g", v);
}

void vt_print_record_json(FILE *f, const vt_tensor_info *ti) {
    char b[64];
    fputs("{\"name\":", f);
    vt_print_json_str(f, ti->name);
    fprintf(f, ",\"format\":\"%s\",\"dtype\":\"%s\",\"shape\":[", vt_print_format(ti, b, sizeof b),
            vt_dtype_name(ti->src_dtype));
    for (uint32_t d = 0; d < ti->ndim; d++)
        fprintf(f, "%s%llu", d ? "," : "", (unsigned long long)ti->dims[d]);
    fprintf(
        f,
        "],\"rows\":%llu,\"cols\":%llu,\"chunks\":%llu,\"rows_per_chunk\":%llu,\"raw_bytes\":%llu,"
        "\"stored_bytes\":%llu,\"sqnr_db\":",
        (unsigned long long)ti->rows, (unsigned long long)ti->cols,
        (unsigned long long)ti->n_chunks, (unsigned long long)ti->rows_per_chunk,
        (unsigned long long)ti->raw_bytes, (unsigned long long)ti->stored_bytes);
    num(f, ti->metrics.sqnr_db);
    fputs(",\"cosine\":", f);
    num(f, ti->metrics.cosine);
    fputs(",\"max_err\":", f);
    num(f, ti->metrics.max_err);
    fputs(",\"source\":", f);
    vt_print_json_str(f, ti->source);
    fprintf(f, ",\"id\":%llu}", (unsigned long long)ti->id);
}

vt_store *vt_print_open(const char *cmd, const char *path, int rdwr) {
    vt_store *s = NULL;
    int rc = vt_store_open(path, rdwr ? VT_STORE_RDWR : VT_STORE_RDONLY, NULL, &s);
    if (rc) {
        vt_cli_error(cmd, rc, "cannot open store %s", path);
        return NULL;
    }
    return s;
}
