/*
 * vtstore/meta.h — typed access to the metadata import keeps in a store (GGUF key/values, the
 * tokenizer's string arrays, safetensors __metadata__, config.json text).
 *
 *     uint32_t n_layer;
 *     vt_meta_get_u32(s, "gguf.llama.block_count", &n_layer);
 *     vt_meta_strings *tok;
 *     vt_meta_get_strings(s, "gguf.tokenizer.ggml.tokens", &tok);   // tok->str[i], tok->len[i]
 *     ...
 *     vt_meta_strings_free(tok);
 *
 * Encoding of a typed value (the bytes vt_store_get_meta returns): a u32 little-endian type
 * (vt_meta_type, the GGUF value types) followed by the value in GGUF's little-endian encoding:
 * scalars as themselves (bool one byte), a string as u64 length + bytes, an array as u32
 * element type + u64 count + the elements (nested arrays likewise). docs/FORMAT.md repeats this.
 */
#ifndef VTSTORE_META_H
#define VTSTORE_META_H

#include <stddef.h>
#include <stdint.h>

#include "vtstore/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Value types (equal to GGUF's). */
typedef enum vt_meta_type {
    VT_META_U8 = 0,
    VT_META_I8 = 1,
    VT_META_U16 = 2,
    VT_META_I16 = 3,
    VT_META_U32 = 4,
    VT_META_I32 = 5,
    VT_META_F32 = 6,
    VT_META_BOOL = 7,
    VT_META_STRING = 8,
    VT_META_ARRAY = 9,
    VT_META_U64 = 10,
    VT_META_I64 = 11,
    VT_META_F64 = 12,
} vt_meta_type;

/** Type of metadata @p key (an array's element type in *elem_type when not NULL, else
 *  untouched). Errors: VT_ENOTFOUND, VT_EFORMAT (not a typed value). */
int vt_meta_get_type(vt_store *s, const char *key, uint32_t *type, uint32_t *elem_type);

/** Integer value (any integer type or bool) of @p key. Errors: VT_ENOTFOUND, VT_EFORMAT (not
 *  an integer), -ERANGE (negative or too large for u32). */
int vt_meta_get_u32(vt_store *s, const char *key, uint32_t *out);

/** Numeric value of @p key (f32, f64 or an integer) as float. Errors: VT_ENOTFOUND,
 *  VT_EFORMAT (not a number). */
int vt_meta_get_f32(vt_store *s, const char *key, float *out);

/** String value of @p key, NUL-terminated, into @p buf[cap]; *len (may be NULL) gets its
 *  length without the NUL. Errors: VT_ENOTFOUND, VT_EFORMAT (not a string), -ERANGE (cap too
 *  small; *len still set). */
int vt_meta_get_string(vt_store *s, const char *key, char *buf, size_t cap, size_t *len);

/** An array of strings, decoded. One allocation; free with vt_meta_strings_free. */
typedef struct vt_meta_strings {
    uint64_t count;
    const char **str;    /* [count] NUL-terminated (a string may hold NUL bytes: use len) */
    const uint64_t *len; /* [count] byte lengths */
} vt_meta_strings;

/** Decode the array of strings @p key (e.g. "gguf.tokenizer.ggml.tokens"). *out is owned by
 *  the caller. Errors: VT_ENOTFOUND, VT_EFORMAT (not an array of strings or malformed). */
int vt_meta_get_strings(vt_store *s, const char *key, vt_meta_strings **out);
void vt_meta_strings_free(vt_meta_strings *v);

/** A numeric array of @p key converted to f32 (e.g. tokenizer scores) / to int32 (e.g. token
 *  types; values outside int32 give -ERANGE). *out is allocated with vt_malloc, free with
 *  vt_free; *n gets the count. Errors: VT_ENOTFOUND, VT_EFORMAT (not a numeric array). */
int vt_meta_get_f32_array(vt_store *s, const char *key, float **out, uint64_t *n);
int vt_meta_get_i32_array(vt_store *s, const char *key, int32_t **out, uint64_t *n);

/** Check that @p len bytes at @p val are one well-formed typed value (type + encoding, nothing
 *  after it). Returns 0 or VT_EFORMAT. */
int vt_meta_check(const void *val, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* VTSTORE_META_H */
