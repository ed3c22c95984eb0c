/*
 * vtstore/import.h — import safetensors, GGUF and .npy files into a store (quantizing on the
 * way), and export a store back to safetensors, GGUF or .npy.
 *
 *     vt_store *s;
 *     vt_store_open("model.vts", VT_STORE_RDWR | VT_STORE_CREATE, NULL, &s);
 *     vt_import_options o;
 *     vt_import_options_init(&o);
 *     o.format = VT_FMT_NF4;                          // 2-D float tensors; norms stay f32/f16
 *     vt_import_rule r = {"*embd*", VT_FMT_Q8_0};     // first matching rule wins
 *     o.rules = &r; o.n_rules = 1;
 *     vt_import_summary sum;
 *     int rc = vt_import_file(s, "model.safetensors", &o, &sum);
 *     if (rc) fprintf(stderr, "%s: %s\n", vt_strerror(rc), vt_last_error());
 *     vt_export_safetensors(s, "back.safetensors", NULL);
 *
 * An import is all or nothing: it runs in one store writer, and any error (a header that lies,
 * a read error, NaN in a tensor to be quantized, a full disk) aborts the writer, leaving the
 * store exactly as it was. Sources are streamed chunk by chunk (the whole model is never held in
 * RAM) and quantized on the thread pool.
 *
 * Format choice per tensor, first applicable wins:
 *  1. integer, bool (and with format KEEP f64/fp8) source tensors: stored as-is (VT_STORE_FMT_RAW);
 *  2. GGUF tensors already in a stored block format (q8_0, q4_0, q4_1, q4_k, q6_k, f16, f32,
 *     bf16): kept byte for byte unless @c requantize is set;
 *  3. the first rule whose glob matches the tensor name;
 *  4. 1-D tensors and names matching *norm* or *bias*: f32 (f16 and bf16 sources keep their type);
 *  5. @c format (VT_IMPORT_KEEP: f32/f16/bf16 sources copied unchanged; VT_IMPORT_AUTO: the
 *     cheapest format meeting @c target_sqnr_db / @c max_bits, by vt_quant_choose).
 * SQNR, cosine similarity and max error of every converted tensor are measured against its
 * source (f64 sums) and stored in its record; exact copies record +inf SQNR, kept GGUF blocks NaN.
 *
 * Metadata stored by import (read them with include/vtstore/meta.h): every GGUF key/value as
 * "gguf.<key>", safetensors __metadata__ entries as "safetensors.<key>", and the text of a
 * config.json / tokenizer.json found beside a safetensors file as "config.json" /
 * "tokenizer.json". Values are typed (meta.h describes the encoding).
 */
#ifndef VTSTORE_IMPORT_H
#define VTSTORE_IMPORT_H

#include <stdint.h>

#include "vtstore/core.h"
#include "vtstore/quant.h"
#include "vtstore/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Pseudo-formats for vt_import_options.format and rules. */
#define VT_IMPORT_KEEP 0x1000u /* keep the source's own type (copy) */
#define VT_IMPORT_AUTO 0x1001u /* choose by target SQNR / bits (vt_quant_choose) */

/** A --rule GLOB=FORMAT: tensors whose name matches the fnmatch(3) glob get @c format (a
 *  vt_format, optionally | VT_FMT_SPARSE24, or VT_IMPORT_KEEP / VT_IMPORT_AUTO). */
typedef struct vt_import_rule {
    const char *glob;
    uint32_t format;
} vt_import_rule;

/** Progress of a running import, reported through vt_import_options.progress. */
typedef struct vt_import_progress {
    uint64_t bytes_done, bytes_total; /* source bytes of tensors */
    uint64_t tensors_done, tensors_total;
    const char *tensor; /* tensor being imported (valid during the call) */
    double elapsed_s;
} vt_import_progress;

/** Progress callback: called from worker threads, never concurrently with itself, at most
 *  about every 50 ms and once when the import ends. Return nonzero to cancel the import
 *  (it then fails with -ECANCELED and the store is unchanged). */
typedef int (*vt_import_progress_fn)(void *ctx, const vt_import_progress *p);

/** Called after each tensor is written (from the importing thread) with its record. */
typedef void (*vt_import_tensor_fn)(void *ctx, const vt_tensor_info *ti);

typedef struct vt_import_options {
    uint32_t format;             /* default for other tensors: vt_format | SPARSE24, KEEP, AUTO */
    const vt_import_rule *rules; /* [n_rules], first match wins (borrowed for the call) */
    uint32_t n_rules;
    double target_sqnr_db; /* AUTO: cheapest format reaching this SQNR (dB) */
    double max_bits;       /* AUTO: best SQNR within this many bits per weight */
    int requantize;        /* 1: GGUF block tensors are dequantized and re-quantized */
    /** awq_int4 needs activation statistics: a .npy of one f32 vector [cols] (mean |x| per input
     *  channel; used for every awq tensor with that many columns) or a safetensors file with
     *  one such vector per weight, named like the weight. NULL: awq is refused. */
    const char *awq_stats_path;
    const char *tensor_name; /* .npy sources: the tensor's name (NULL: the file's base name) */
    int nthreads;            /* 0 = all */
    vt_import_progress_fn progress;
    void *progress_ctx;
    vt_import_tensor_fn on_tensor;
    void *on_tensor_ctx;
} vt_import_options;

/** What an import did. */
typedef struct vt_import_summary {
    uint64_t tensors;      /* tensors written */
    uint64_t quantized;    /* of which converted to another format */
    uint64_t kept;         /* of which copied byte for byte (same type / GGUF blocks / raw) */
    uint64_t bytes_in;     /* source bytes of the tensors */
    uint64_t bytes_stored; /* bytes stored in shards for them (after zstd) */
    uint64_t files;        /* source files read (several for an index.json) */
    double seconds;
} vt_import_summary;

/** Defaults: format KEEP, no rules, requantize 0, all threads. */
void vt_import_options_init(vt_import_options *o);

/** Import @p path into @p s (opened RDWR): a .safetensors file, a safetensors index
 *  (*.index.json naming several files, imported as one), a .gguf (v2/v3) or a .npy file
 *  (kind detected from the content). @p o may be NULL (defaults); @p sum may be NULL.
 *  Tensors already in the store under the same names are replaced at commit.
 *  Errors: VT_EFORMAT (the source lies or is truncated: the detail names file, tensor and
 *  problem), VT_EUNSUPPORTED (a type or format that cannot be imported), VT_ENONFINITE (NaN/Inf
 *  in a tensor to be quantized), -EINVAL (bad options, e.g. awq without statistics), -EBUSY
 *  (another writer), -ECANCELED (progress callback), I/O errors. On any error the store is
 *  unchanged. */
int vt_import_file(vt_store *s, const char *path, const vt_import_options *o,
                   vt_import_summary *sum);

/* ---- export ------------------------------------------------------------------------------- */

typedef struct vt_export_options {
    const char *pattern; /* glob of tensor names to export (NULL = all) */
    vt_dtype dtype;      /* dtype of dequantized tensors: F32, F16 or BF16 (NULL options:
                            f32 for safetensors, f16 for GGUF) */
    int nthreads;        /* 0 = all */
} vt_export_options;

/** Write the tensors of @p s to the safetensors file @p path: f32/f16/bf16 tensors in their own
 *  type (bit-exact), raw tensors in their source dtype, quantized ones dequantized to
 *  @c dtype; "safetensors.*" metadata back into __metadata__. The file appears whole or not at
 *  all: written unnamed (O_TMPFILE) in @p path's directory, so a process killed while writing
 *  leaves nothing, then named and renamed over @p path after fdatasync (where O_TMPFILE is
 *  not available: written as PATH.tmp.PID, created exclusively, never through a symlink).
 *  @p o may be NULL. */
int vt_export_safetensors(vt_store *s, const char *path, const vt_export_options *o);

/** Write the tensors of @p s to the GGUF v3 file @p path: tensors in a GGUF-native format
 *  (f32, f16, bf16, q8_0, q4_0, q4_1, q4_k, q6_k, rows a whole number of blocks) keep their
 *  stored bytes; other formats are dequantized to @c dtype (f16 with NULL options);
 *  raw i8/i16/i32/i64/f64 tensors as those GGUF types. "gguf.*" metadata is written back as
 *  key/values (general.alignment kept). Errors: VT_EUNSUPPORTED (a raw tensor type GGUF has
 *  no type for; names it). Atomic as vt_export_safetensors. */
int vt_export_gguf(vt_store *s, const char *path, const vt_export_options *o);

/** Write rows [row0, row0 + nrows) of tensor @p name to the .npy file @p path as @p dtype
 *  (VT_DTYPE_F32 or F16: dequantized; or the tensor's own source dtype for raw tensors, copied).
 *  The array has the tensor's full shape when all rows are written, otherwise [nrows, cols]
 *  ([nrows] for a 1-D tensor). Written as vt_export_safetensors writes its file.
 *  Errors: VT_ENOTFOUND, -ERANGE (rows out of range), VT_EUNSUPPORTED (dtype). */
int vt_export_npy(vt_store *s, const char *name, uint64_t row0, uint64_t nrows, vt_dtype dtype,
                  const char *path);

#ifdef __cplusplus
}
#endif
#endif /* VTSTORE_IMPORT_H */
