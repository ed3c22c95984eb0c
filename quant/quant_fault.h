/* quant/quant_fault.h — where vt_quantize refused a value, as data, for callers inside the
 * library that quantize a slice of a larger tensor and name the value by the tensor's row
 * (store/import.c). Not public.
 *
 *     vt_qfault f;
 *     int rc = vt_quantize_fault(fmt, p, x, m, cols, dst, 1, &f);
 *     if (f.code) return vt_qfault_fail(&f, "vt_quantize", fmt, "tensor 'w' chunk 3: ", row0,
 *                                       "tensor row");
 */
#ifndef VT_QUANT_FAULT_H
#define VT_QUANT_FAULT_H

#include <stdint.h>

#include "vtstore/quant.h"

typedef struct vt_qfault {
    int code;          /* VT_ENONFINITE (NaN/Inf), -ERANGE (beyond the format), 0: no value */
    uint64_t row, col; /* the value's element of the source: src[row * cols + col] */
    float value;       /* the value */
} vt_qfault;

/** vt_quantize, and *f: when it returns VT_ENONFINITE or -ERANGE for a value, that value and
 *  its position (the one its message names: the first in vt_quantize's order, whatever the
 *  threading); else f->code 0. Same errors, message and output as vt_quantize. */
int vt_quantize_fault(uint32_t fmt, const vt_quant_params *p, const float *src, uint64_t rows,
                      uint64_t cols, void *dst, int nthreads, vt_qfault *f);

/** Sets vt_quantize's message for @p f (made by @p what on @p fmt), after @p ctx (a prefix,
 *  "" for none), its row counted from @p row0 and called @p row_word ("row" in vt_quantize's
 *  own messages). Returns f->code. */
int vt_qfault_fail(const vt_qfault *f, const char *what, uint32_t fmt, const char *ctx,
                   uint64_t row0, const char *row_word);

#endif
