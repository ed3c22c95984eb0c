/* store/export_internal.h — helpers shared by the safetensors, GGUF and .npy exporters (not
 * public): listing, atomic output files, streaming a tensor's bytes. */
#ifndef VT_EXPORT_INTERNAL_H
#define VT_EXPORT_INTERNAL_H

#include "core/afile.h"
#include "parse.h"
#include "vtstore/import.h"

/** Records of the tensors matching @p pattern (NULL = all), name order; *out from vt_malloc. */
int exp_list(vt_store *s, const char *pattern, vt_tensor_info **out, uint64_t *n);
/** Start of a whole-store export to @p path: *deq = o->dtype (or @p def without options), which
 *  must be f32, f16 or bf16 (else VT_EUNSUPPORTED), then exp_list of o->pattern. */
int exp_begin(vt_store *s, const char *path, const vt_export_options *o, vt_dtype def,
              vt_dtype *deq, vt_tensor_info **out, uint64_t *n);

/** An output file that appears whole or not at all (core/afile.h): exp_out_open and
 *  exp_out_close are vt_afile_open and vt_afile_close. */
typedef vt_afile exp_out;
#define exp_out_open  vt_afile_open
#define exp_out_close vt_afile_close
/** pwrite all @p n bytes at @p off; a failure is named after the output path. */
int exp_out_write(exp_out *o, const void *p, size_t n, uint64_t off);

/** Write the stored (decompressed) bytes of every chunk of @p ti back to back at @p off. */
int exp_write_stored(vt_store *s, const vt_tensor_info *ti, int fd, uint64_t off);
/** Write rows [row0, row0 + n) of @p ti dequantized to @p dt (f32/f16/bf16) at @p off. */
int exp_write_rows(vt_store *s, const vt_tensor_info *ti, vt_dtype dt, uint64_t row0, uint64_t n,
                   int fd, uint64_t off);
/** Raw tensors: rows [row0, row0 + n) as their source dtype bytes at @p off. */
int exp_write_raw_rows(vt_store *s, const vt_tensor_info *ti, uint64_t row0, uint64_t n, int fd,
                       uint64_t off);

/** 1 if @p ti's stored bytes are exactly its values in dtype *dt (f32/f16/bf16 formats without
 *  2:4, or raw), and writes that dtype. */
int exp_plain_dtype(const vt_tensor_info *ti, vt_dtype *dt);

/** A growable byte buffer for headers; failures latch in @c err (-ENOMEM). */
typedef struct exp_buf {
    unsigned char *p;
    size_t n, cap;
    int err;
} exp_buf;

void exp_put(exp_buf *b, const void *d, size_t n);
void exp_le(exp_buf *b, uint64_t v, int bytes);
void exp_printf(exp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** A JSON string literal (quotes, escapes for '"', '\\' and control bytes). Bytes that are not
 *  well-formed UTF-8 set b->err (-EILSEQ, naming the string and the byte) and write nothing. */
void exp_json_str(exp_buf *b, const char *s, size_t n);
void exp_buf_free(exp_buf *b);

#endif
