/* store/import_internal.h — the pieces of vt_import_file (not public): the opened source
 * (one file or a safetensors index of several), the per-tensor plan, metadata copying. */
#ifndef VT_IMPORT_INTERNAL_H
#define VT_IMPORT_INTERNAL_H

#include "parse.h"
#include "vtstore/import.h"

/** An opened source: one or more parsed files and their descriptors. */
typedef struct imp_source {
    vt_src_file *files; /* [n_files] */
    int *fds;           /* [n_files], -1 when closed */
    uint32_t n_files;
    char *dir;        /* directory of the named path (for config.json) */
    const char *path; /* as given (borrowed) */
    int is_index;     /* 1: a safetensors index naming the files */
} imp_source;

/** Detect, open and parse @p path (a safetensors, GGUF, .npy file or a safetensors index);
 *  checks cross-file duplicate names. @p npy_name: tensor name for .npy (NULL = base name). */
int imp_source_open(const char *path, const char *npy_name, imp_source *src);
void imp_source_close(imp_source *src);

/** How a tensor is written. */
typedef enum imp_mode {
    IMP_COPY = 1,    /* source rows are the stored bytes (same type, raw, kept GGUF blocks) */
    IMP_CONVERT = 2, /* source rows -> f32 -> vt_quantize(format) */
} imp_mode;

/** The plan of one tensor. */
typedef struct imp_plan {
    const vt_src_tensor *src;
    int fd;
    uint32_t format; /* stored format (vt_format | SPARSE24, or VT_STORE_FMT_RAW) */
    imp_mode mode;
    uint64_t rows, cols;
    uint64_t src_row_bytes; /* source bytes of one row */
    vt_quant_params qp;
    float *aux; /* awq channel scales [cols] (owned), else NULL */
} imp_plan;

/** Activation statistics for awq (loaded once per import). */
typedef struct imp_awq_stats {
    vt_src_file file;
    float *single; /* a .npy: one vector [single_len] */
    uint64_t single_len;
    int fd;
} imp_awq_stats;

int imp_awq_stats_open(const char *path, imp_awq_stats *st);
void imp_awq_stats_close(imp_awq_stats *st);

/** Decide the stored format and mode of @p t (rules, defaults, AUTO via a row sample,
 *  nvfp4 observe pass, awq search). Errors name the tensor. */
int imp_plan_tensor(const vt_import_options *o, imp_awq_stats *awq, const vt_src_tensor *t, int fd,
                    imp_plan *p);
void imp_plan_free(imp_plan *p);

/** Read source rows [r0, r0 + n) of @p p and convert them to f32 into @p x (n * cols);
 *  @p scratch holds n * src_row_bytes bytes. */
int imp_read_rows_f32(const imp_plan *p, uint64_t r0, uint64_t n, void *scratch, float *x);

/** Put the metadata of the source into the writer (GGUF kv, safetensors __metadata__,
 *  config.json / tokenizer.json beside the file). */
int imp_put_meta(vt_store_writer *w, const imp_source *src);

/** Encode a typed string value (u32 type 8, u64 length, bytes) into a new buffer. */
int imp_encode_string(const char *s, size_t n, unsigned char **out, size_t *len);

#endif
