/* libFuzzer target of the CLI's --where expression parser (tools/filter.c): parse the input
 * as an expression and, when it parses, evaluate it against a few tensor records. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *expr = malloc(size + 1);
    if (!expr) return 0;
    memcpy(expr, data, size);
    expr[size] = 0;
    char err[256];
    vt_filter *f = NULL;
    if (vt_filter_parse(expr, &f, err, sizeof err) == 0 && f) {
        vt_tensor_info ti;
        memset(&ti, 0, sizeof ti);
        strcpy(ti.name, "blk.12.attn_q.weight");
        ti.ndim = 2;
        ti.dims[0] = ti.rows = 4096;
        ti.dims[1] = ti.cols = 4096;
        ti.format = 9;
        ti.stored_bytes = 1 << 20;
        ti.metrics.sqnr_db = 20.5;
        (void)vt_filter_eval(f, &ti);
        strcpy(ti.name, "output_norm.weight");
        ti.ndim = 1;
        ti.format = 0x200;
        ti.metrics.sqnr_db = 1.0 / 0.0;
        (void)vt_filter_eval(f, &ti);
        vt_filter_free(f);
    }
    (void)vt_filter_layer(expr);
    free(expr);
    return 0;
}
