/*
 * vtstore/vtstore.h — the whole public API in one include.
 *
 * vtstore keeps the tensors of a model on disk in quantized form and streams them through RAM
 * and VRAM tiers to kernels that compute on the quantized bytes directly. The layers, bottom up:
 *
 *   core.h     status codes (vt_strerror, vt_last_error), dtypes, f16/bf16 conversion, hooks,
 *              fault injection, the thread pool, vt_version()
 *   blocks.h   packed block layouts of every stored format (shared with nvcc, docs/FORMAT.md)
 *   quant.h    quantize / dequantize row ranges, error metrics, per-tensor format choice
 *   weight.h   vt_weight: a non-owning handle over quantized bytes in host or device memory
 *   store.h    the on-disk store: shard files of checksummed chunks indexed by LMDB; readers,
 *              the atomic writer, rm, gc, verify
 *   import.h   safetensors / GGUF / .npy import (quantizing) and safetensors / GGUF export
 *   meta.h     typed access to the metadata kept at import (GGUF key/values, tokenizer)
 *   tier.h     the streamer: tensors through a pinned RAM tier and a VRAM tier, in schedule order
 *   kernels.h  dequantize and fused quantized GEMV / GEMM on a vt_weight, CPU or CUDA
 *   device.h   a CUDA-free C API over the CUDA runtime (VT_ENODEV in builds without CUDA)
 *   attn.h     attention with a quantized KV cache, CPU or CUDA
 *
 * Every function returns 0 or a negative code; vt_strerror() names the code and vt_last_error()
 * (or vt_store_errmsg() for a store handle) says which file, tensor or chunk was wrong. Each
 * header also compiles on its own; include just the ones you use if you prefer. Link against
 * the installed library (`make install`: pkg-config `vtstore`, or CMake's find_package(vtstore)
 * and the target vtstore::vtstore; README "Using the library"), or inside this source tree the
 * vtstore_all CMake target. The `vtstore` command-line tool (docs/CLI.md) is built on this API.
 *
 * Example: stream every block-0 tensor of a store and multiply one vector by each of them.
 *
 *     #include <vtstore/vtstore.h>
 *
 *     vt_store *s;
 *     int rc = vt_store_open("model.vts", VT_STORE_RDONLY, NULL, &s);
 *     if (rc) { fprintf(stderr, "%s: %s\n", vt_strerror(rc), vt_last_error()); return 1; }
 *     vt_tier_config cfg = {.ram_bytes = 256ull << 20};       // host only (vram_bytes = 0)
 *     vt_streamer *st;
 *     rc = vt_streamer_open(s, &cfg, &st);
 *     const char *names[] = {"blk.0.attn_q.weight", "blk.0.ffn_up.weight"};
 *     rc = vt_streamer_plan(st, names, 2, VT_SCHEDULE_CYCLIC);
 *     for (size_t i = 0; i < 2; i++) {
 *         vt_weight w;
 *         rc = vt_streamer_acquire(st, names[i], &w);          // blocks until resident
 *         rc = vt_gemv(&w, x, y, 1, NULL);                     // y[w.rows] = W x[w.cols]
 *         vt_streamer_release(st, &w);
 *     }
 *     vt_streamer_close(st);
 *     vt_store_close(s);
 */
#ifndef VTSTORE_VTSTORE_H
#define VTSTORE_VTSTORE_H

#include "vtstore/core.h"
#include "vtstore/blocks.h"
#include "vtstore/quant.h"
#include "vtstore/weight.h"
#include "vtstore/store.h"
#include "vtstore/import.h"
#include "vtstore/meta.h"
#include "vtstore/tier.h"
#include "vtstore/kernels.h"
#include "vtstore/device.h"
#include "vtstore/attn.h"

#endif /* VTSTORE_VTSTORE_H */
