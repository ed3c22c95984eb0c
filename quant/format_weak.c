/* quant/format_weak.c — TEMPORARY weak stand-ins for quant-B's symbols (nf4.c, fp4.c, awq.c,
 * nf4_dq.c, sparse24.c) so that format.c and quant_dispatch.c link before those files exist.
 * Each group is compiled only while its source file is absent (__has_include looks beside this
 * file): a weak definition in an archive member that the linker has already pulled in would
 * otherwise satisfy the reference and keep the strong definition's member out. The stand-ins
 * report VT_EUNSUPPORTED through the dispatcher (NULL row ops, 0 bytes). Delete this file once
 * all of quant-B's files are in. */
#include "quant_internal.h"

#define VT_WEAK __attribute__((weak))

#if !__has_include("nf4.c")
VT_WEAK const vt_qrow_ops vt_qops_nf4 = {0};
#endif
#if !__has_include("fp4.c")
VT_WEAK const vt_qrow_ops vt_qops_nvfp4 = {0};
VT_WEAK const vt_qrow_ops vt_qops_mxfp4 = {0};
#endif
#if !__has_include("awq.c")
VT_WEAK const vt_qrow_ops vt_qops_awq = {0};
#endif

#if !__has_include("nf4_dq.c")
VT_WEAK int vt_nf4dq_quantize(const float *src, uint64_t rows, uint64_t cols, void *dst, int ref,
                              int nthreads) {
    return vt_fail(VT_EUNSUPPORTED, "nf4_dq: not built yet");
}
VT_WEAK int vt_nf4dq_dequantize(const void *src, uint64_t rows, uint64_t cols, float *dst, int ref,
                                int nthreads) {
    return vt_fail(VT_EUNSUPPORTED, "nf4_dq: not built yet");
}
VT_WEAK uint64_t vt_nf4dq_bytes(uint64_t rows, uint64_t cols) {
    return 0;
}
#endif

#if !__has_include("sparse24.c")
VT_WEAK uint64_t vt_sparse24_row_bytes(uint32_t base_fmt, uint64_t cols) {
    return 0;
}
VT_WEAK int vt_sparse24_quantize_row(const vt_qrow_ops *ops, uint32_t base_fmt, const float *x,
                                     void *dst, uint64_t cols, const vt_quant_params *p, int ref) {
    return vt_fail(VT_EUNSUPPORTED, "2:4 sparsity: not built yet");
}
VT_WEAK void vt_sparse24_dequantize_row(const vt_qrow_ops *ops, uint32_t base_fmt, const void *src,
                                        float *y, uint64_t cols, const vt_quant_params *p,
                                        int ref) {
    for (uint64_t i = 0; i < cols; i++) y[i] = 0.0f;
}
#endif

/* ISO C forbids an empty translation unit. */
typedef int vt_format_weak_nonempty;
