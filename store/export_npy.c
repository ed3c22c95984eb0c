/* Export one tensor (or a row range) to .npy v1. */
#include <errno.h>
#include <string.h>

#include "export_internal.h"

int vt_export_npy(vt_store *s, const char *name, uint64_t row0, uint64_t nrows, vt_dtype dtype,
                  const char *path) {
    vt_tensor_info ti;
    int rc = vt_store_stat(s, name, &ti);
    if (rc) return rc;
    if (row0 > ti.rows || nrows > ti.rows - row0)
        return vt_fail(-ERANGE, "tensor '%s': rows %llu..%llu out of range (it has %llu rows)",
                       name, (unsigned long long)row0, (unsigned long long)(row0 + nrows),
                       (unsigned long long)ti.rows);
    int raw_copy = ti.format == VT_STORE_FMT_RAW && dtype == ti.src_dtype;
    const char *descr = vt_npy_descr(dtype);
    if (!raw_copy && dtype != VT_DTYPE_F32 && dtype != VT_DTYPE_F16)
        return vt_fail(VT_EUNSUPPORTED, "tensor '%s': cannot write it as %s (f32 or f16%s)", name,
                       vt_dtype_name(dtype),
                       ti.format == VT_STORE_FMT_RAW ? " or its own dtype" : "");
    if (!descr)
        return vt_fail(VT_EUNSUPPORTED, "tensor '%s': .npy has no dtype %s", name,
                       vt_dtype_name(dtype));
    exp_buf h = {0};
    exp_printf(&h, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    if (row0 == 0 && nrows == ti.rows) {
        for (uint32_t d = 0; d < ti.ndim; d++)
            exp_printf(&h, "%llu, ", (unsigned long long)ti.dims[d]);
    } else if (ti.ndim <= 1) {
        exp_printf(&h, "%llu, ", (unsigned long long)nrows);
    } else {
        exp_printf(&h, "%llu, %llu, ", (unsigned long long)nrows, (unsigned long long)ti.cols);
    }
    exp_printf(&h, "), }");
    while (!h.err && (10 + h.n + 1) % 64) exp_put(&h, " ", 1);
    exp_put(&h, "\n", 1);
    if (h.err || h.n > 65535) {
        rc = h.err ? h.err : vt_fail(-EINVAL, "tensor '%s': .npy header too long", name);
        exp_buf_free(&h);
        return rc;
    }
    unsigned char pre[10] = {0x93,
                             'N',
                             'U',
                             'M',
                             'P',
                             'Y',
                             1,
                             0,
                             (unsigned char)(h.n & 0xff),
                             (unsigned char)(h.n >> 8)};
    exp_out out;
    if (!(rc = exp_out_open(&out, path))) {
        rc = exp_out_write(&out, pre, 10, 0);
        if (!rc) rc = exp_out_write(&out, h.p, h.n, 10);
        if (!rc && raw_copy)
            rc = exp_write_raw_rows(s, &ti, row0, nrows, out.fd, 10 + h.n);
        else if (!rc)
            rc = exp_write_rows(s, &ti, dtype, row0, nrows, out.fd, 10 + h.n);
        rc = exp_out_close(&out, rc);
    }
    exp_buf_free(&h);
    return rc;
}
