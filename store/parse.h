/* store/parse.h — parsed headers of source files (safetensors, GGUF, .npy) for import.
 * Internal to the store module. Parsers never trust the file: every length, count, offset, shape
 * and dtype is checked against the bytes actually present and against sane caps, and every
 * error names the file, the tensor (where there is one) and the problem via vt_fail().
 *
 * Each format has two entry points:
 *   vt_parse_<fmt>_mem(buf, len, file_size, path, &file)  parse from the first @p len bytes of a
 *       file of @p file_size bytes held in memory (fuzz targets pass the whole input: len ==
 *       file_size). Tensor data is not touched, only its position is checked against file_size.
 *   vt_parse_<fmt>_fd(fd, path, &file)  read the header with vt_pread_full and parse it.
 * On success the vt_src_file owns copies of everything (the input buffer may be freed); release
 * it with vt_src_file_free(). On failure the file is left zeroed (nothing to free).
 */
#ifndef VT_STORE_PARSE_H
#define VT_STORE_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "vtstore/core.h"
#include "vtstore/quant.h"

/* Caps on what a header may claim (a header beyond them is refused, not allocated). */
#define VT_PARSE_MAX_HEADER  (100ull << 20) /* bytes of a safetensors/npy header or GGUF meta */
#define VT_PARSE_MAX_TENSORS (1u << 20)
#define VT_PARSE_MAX_KV      (1u << 20)
#define VT_PARSE_MAX_DIM     (1ull << 40)
#define VT_PARSE_MAX_STRING  (64ull << 20)

typedef enum vt_src_kind {
    VT_SRC_SAFETENSORS = 1,
    VT_SRC_GGUF = 2,
    VT_SRC_NPY = 3,
} vt_src_kind;

/* GGUF metadata value types (gguf.md). Safetensors __metadata__ entries use VT_GGUF_STRING. */
typedef enum vt_gguf_type {
    VT_GGUF_UINT8 = 0,
    VT_GGUF_INT8 = 1,
    VT_GGUF_UINT16 = 2,
    VT_GGUF_INT16 = 3,
    VT_GGUF_UINT32 = 4,
    VT_GGUF_INT32 = 5,
    VT_GGUF_FLOAT32 = 6,
    VT_GGUF_BOOL = 7,
    VT_GGUF_STRING = 8,
    VT_GGUF_ARRAY = 9,
    VT_GGUF_UINT64 = 10,
    VT_GGUF_INT64 = 11,
    VT_GGUF_FLOAT64 = 12,
    VT_GGUF_TYPE_COUNT
} vt_gguf_type;

/* ggml tensor types that import understands. */
enum {
    VT_GGML_F32 = 0,
    VT_GGML_F16 = 1,
    VT_GGML_Q4_0 = 2,
    VT_GGML_Q4_1 = 3,
    VT_GGML_Q8_0 = 8,
    VT_GGML_Q4_K = 12,
    VT_GGML_Q6_K = 14,
    VT_GGML_I8 = 24,
    VT_GGML_I16 = 25,
    VT_GGML_I32 = 26,
    VT_GGML_I64 = 27,
    VT_GGML_F64 = 28,
    VT_GGML_BF16 = 30,
};
#define VT_GGML_NONE UINT32_MAX

/** One key/value pair of file metadata. The value is kept in GGUF's own little-endian
 *  encoding WITHOUT the leading type (scalars: the value; string: u64 length + bytes; array:
 *  u32 element type, u64 count, elements, nested as in GGUF). This is also the encoding stored
 *  in the store (see vt_meta_* in include/vtstore/meta.h). */
typedef struct vt_src_kv {
    char *key;     /* NUL-terminated, owned */
    uint32_t type; /* vt_gguf_type */
    uint8_t *val;  /* [val_len] encoded value, owned */
    uint64_t val_len;
} vt_src_kv;

/** One tensor of a source file. */
typedef struct vt_src_tensor {
    vt_tensor_desc desc; /* name, element dtype (f32 for GGUF block types), dims outermost first */
    uint32_t ggml_type;  /* GGUF: ggml type; VT_GGML_NONE otherwise */
    uint32_t block_fmt;  /* GGUF block data (q8_0, q4_0, q4_1, q4_k, q6_k): that vt_format;
                            VT_FMT_COUNT for plain element data */
    uint64_t offset;     /* absolute byte offset of the data in the file */
    uint64_t nbytes;     /* bytes of data */
    uint32_t file;       /* index of the file in a multi-file set (0 for one file) */
} vt_src_tensor;

typedef struct vt_src_file {
    char *path; /* owned copy */
    vt_src_kind kind;
    uint64_t file_size;
    uint32_t version;       /* GGUF version / npy major version; 0 for safetensors */
    uint64_t alignment;     /* GGUF data alignment; 1 otherwise */
    uint64_t data_start;    /* first byte of the data region */
    vt_src_tensor *tensors; /* [n_tensors], file order */
    uint32_t n_tensors;
    vt_src_kv *kv; /* [n_kv], file order */
    uint32_t n_kv;
} vt_src_file;

/** Release everything a parser allocated; zeroes @p f. NULL-safe. */
void vt_src_file_free(vt_src_file *f);

int vt_parse_safetensors_mem(const void *buf, size_t len, uint64_t file_size, const char *path,
                             vt_src_file *out);
int vt_parse_safetensors_fd(int fd, const char *path, vt_src_file *out);

int vt_parse_gguf_mem(const void *buf, size_t len, uint64_t file_size, const char *path,
                      vt_src_file *out);
int vt_parse_gguf_fd(int fd, const char *path, vt_src_file *out);

/** .npy: the tensor is named @p name (NULL: the file's base name without ".npy"). */
int vt_parse_npy_mem(const void *buf, size_t len, uint64_t file_size, const char *path,
                     const char *name, vt_src_file *out);
int vt_parse_npy_fd(int fd, const char *path, const char *name, vt_src_file *out);

/** Detect the kind of a file from its first bytes (>= 8 available: GGUF magic, npy magic, else
 *  safetensors when the first u64 is a plausible header length). 0 if unknown. */
vt_src_kind vt_src_detect(const void *head, size_t len);

/* ---- shared helpers (parse_common.c) ---- */

/** Element dtype, block format (VT_FMT_COUNT for plain data), block elements and bytes of a
 *  ggml type. Returns 0 or VT_EUNSUPPORTED (no detail set). Out pointers may be NULL. */
int vt_ggml_type_info(uint32_t ggml_type, vt_dtype *dtype, uint32_t *block_fmt,
                      uint32_t *block_elems, uint32_t *block_bytes);
/** Name of a ggml type ("q4_k") or NULL when not supported. */
const char *vt_ggml_type_name(uint32_t ggml_type);
/** ggml type of a stored format or plain dtype, VT_GGML_NONE if GGUF has none. */
uint32_t vt_ggml_type_of_format(uint32_t fmt);
uint32_t vt_ggml_type_of_dtype(vt_dtype t);

/** safetensors dtype name of @p t ("F16"), NULL if safetensors has none. */
const char *vt_safetensors_dtype_name(vt_dtype t);
/** numpy descr of @p t ("<f4"), NULL if .npy has none. */
const char *vt_npy_descr(vt_dtype t);

/** Product of @p n dims into *out; -EOVERFLOW (no detail set) if it overflows u64. */
int vt_dims_product(const uint64_t *dims, uint32_t n, uint64_t *out);
/** Check that the tensors' [offset, offset+nbytes) ranges lie in [lo, hi) and do not overlap.
 *  Names the two tensors that overlap. */
int vt_src_check_ranges(vt_src_file *f, uint64_t lo, uint64_t hi);
/** Refuse duplicate tensor names (names the duplicate) and names that are not UTF-8 (names
 *  the tensor and the byte). */
int vt_src_check_names(vt_src_file *f);
/** Length of the longest prefix of @p s[0..n) that is well-formed UTF-8 (RFC 3629: shortest
 *  form only, no surrogates, nothing above U+10FFFF); @p n when all of it is. A sequence cut
 *  off by the end of @p s counts as malformed. */
size_t vt_utf8_valid_len(const void *s, size_t n);

/* ---- JSON (parse_json.c): a small, bounded DOM reader for safetensors headers, index files
 * and config.json. Strings are decoded to UTF-8 (\uXXXX and surrogate pairs), NUL-terminated;
 * an embedded NUL (\u0000) is refused. Depth is capped at 64. ---- */

typedef enum vt_json_type {
    VT_JSON_NULL,
    VT_JSON_FALSE,
    VT_JSON_TRUE,
    VT_JSON_NUMBER,
    VT_JSON_STRING,
    VT_JSON_ARRAY,
    VT_JSON_OBJECT,
} vt_json_type;

typedef struct vt_json_node {
    uint32_t type;  /* vt_json_type */
    uint32_t next;  /* next sibling, 0 = none (node 0 is the root, never a sibling) */
    uint32_t child; /* first child of an array/object, 0 = none */
    uint32_t count; /* number of children */
    uint32_t key;   /* object member: arena offset of the decoded key */
    uint32_t str;   /* string: arena offset of the decoded value; number: of its text */
    uint32_t len;   /* length of the string/number text */
} vt_json_node;

typedef struct vt_json {
    vt_json_node *nodes; /* [n]; nodes[0] is the root */
    uint32_t n, cap;
    char *arena; /* decoded strings and number texts, NUL-terminated */
    size_t arena_len, arena_cap;
} vt_json;

/** Parse @p len bytes of JSON (one value, optional surrounding whitespace). Errors name
 *  @p what (e.g. the file) and the byte offset. */
int vt_json_parse(const char *text, size_t len, const char *what, vt_json *out);
void vt_json_free(vt_json *j);
/** Member @p key of object node @p obj; 0 if absent (0 is never a member). */
uint32_t vt_json_get(const vt_json *j, uint32_t obj, const char *key);
static inline const char *vt_json_str(const vt_json *j, uint32_t node) {
    return j->arena + j->nodes[node].str;
}
static inline const char *vt_json_key(const vt_json *j, uint32_t node) {
    return j->arena + j->nodes[node].key;
}
/** Exact unsigned integer value of a number node (no sign, fraction or exponent); -ERANGE if
 *  it does not fit, -EINVAL if not an integer. */
int vt_json_u64(const vt_json *j, uint32_t node, uint64_t *out);
/** Numeric value of a number node as a double. */
int vt_json_f64(const vt_json *j, uint32_t node, double *out);

#endif
