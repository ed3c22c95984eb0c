/* tools/store_print.h — printing tensor records and JSON strings for the store subcommands. */
#ifndef VT_TOOLS_STORE_PRINT_H
#define VT_TOOLS_STORE_PRINT_H

#include <stdio.h>

#include "vtstore/store.h"

/** "nf4", "q4_0+2:4", "raw" for a record's format. */
const char *vt_print_format(const vt_tensor_info *ti, char *buf, size_t cap);
/** "4096x4096" ("scalar" for 0-d). */
const char *vt_print_shape(const vt_tensor_info *ti, char *buf, size_t cap);
/** Human byte count ("1.5 MiB"). */
const char *vt_print_bytes(uint64_t n, char *buf, size_t cap);
/** A JSON string literal of the bytes s[0..n): well-formed UTF-8 as it is, each byte that is not
 *  part of a well-formed sequence (a name stored before names were checked, text cut inside a
 *  character) as U+FFFD, so the output is always valid JSON. (json_str.c, which bench_quant
 *  links with cmd_quant.c.) */
void vt_print_json_strn(FILE *f, const char *s, size_t n);
/** The same of a NUL-terminated string. */
void vt_print_json_str(FILE *f, const char *s);
/** @p s as text safe for a terminal, into out[0..cap) (cut there): backslash, \n, \t, \r
 *  escaped as such, other control characters (C0, DEL, C1) and bytes that start no well-formed
 *  UTF-8 sequence as \xHH (C1: \u00HH); the rest as it is. A name of 255 bytes needs at most
 *  1021 bytes. Returns out. (safe_text.c) */
const char *vt_print_safe(const char *s, char *out, size_t cap);
/** One record as a JSON object (no trailing newline). */
void vt_print_record_json(FILE *f, const vt_tensor_info *ti);
/** Open a store read-only (or RDWR) or print the error; returns NULL on failure. */
vt_store *vt_print_open(const char *cmd, const char *path, int rdwr);

#endif
