/* tools/npy_io.h — read and write NumPy .npy files (format versions 1.0-3.0, little-endian,
 * C order) for the CLI. Not a public API; any subcommand may use it.
 *
 *     vt_npy a;
 *     if (vt_npy_read("q.npy", &a) == 0) { ... a.data, a.dtype, a.dims[0..a.ndim) ...; }
 *     vt_npy_free(&a);
 *     vt_npy_write("o.npy", VT_DTYPE_F32, 3, dims, data);
 */
#ifndef VT_TOOLS_NPY_IO_H
#define VT_TOOLS_NPY_IO_H

#include <stdint.h>

#include "vtstore/core.h"

typedef struct vt_npy {
    vt_dtype dtype; /* f32, f16, f64, bf16 is not a numpy type; ints too */
    uint32_t ndim;
    uint64_t dims[VT_MAX_DIMS]; /* [ndim] */
    uint64_t numel;
    void *data; /* numel elements, vt_malloc'd; vt_npy_free releases it */
} vt_npy;

/** Read a whole .npy file. Accepts descr '<f4', '<f2', '<f8', '|i1', '|u1', '<i2', '<i4',
 *  '<i8' (and '=' / native little-endian spellings), fortran_order False. The header is
 *  checked against the file size before anything is allocated. Errors: -errno (open/read),
 *  VT_EFORMAT (bad magic, header, truncated data; the message names the file and the field),
 *  VT_EUNSUPPORTED (big-endian, Fortran order, other dtypes), -ENOMEM. */
int vt_npy_read(const char *path, vt_npy *out);

/** Write @p data (ndim dims, C order) as a version 1.0 .npy of @p dtype (f32, f16, f64, i8,
 *  u8, i16, i32, i64). The file is written to path.tmp, synced and renamed over @p path.
 *  Errors: -errno, VT_EUNSUPPORTED (dtype). */
int vt_npy_write(const char *path, vt_dtype dtype, uint32_t ndim, const uint64_t *dims,
                 const void *data);

/** Free the data of @p a (safe on a zeroed struct). */
void vt_npy_free(vt_npy *a);

#endif
