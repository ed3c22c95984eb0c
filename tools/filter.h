/* tools/filter.h — the --where expression language of `vtstore ls/query`.
 *
 *   expr  := or;  or := and ('||' and)*;  and := unary ('&&' unary)*
 *   unary := '!' unary | '(' expr ')' | field op value
 *   field := name | format | dtype | shape | rows | cols | bytes | sqnr | layer
 *   op    := == != < <= > >= ~        (~ is a glob match, string fields only)
 *   value := number (bytes take K/M/G suffixes) | 'quoted' | "quoted" | bare-word
 *
 * e.g.  layer < 4 && format == nf4 || name ~ '*norm*' && !(sqnr > 30)
 * shape is the dims joined by 'x' ("4096x4096"); layer is N of "blk.N." / "layers.N." /
 * "layer.N." / "h.N." in the name and exists only there: for a name without one every comparison
 * on layer (== != < <= > >=) is false; bytes are the stored bytes. */
#ifndef VT_TOOLS_FILTER_H
#define VT_TOOLS_FILTER_H

#include <stddef.h>

#include "vtstore/store.h"

typedef struct vt_filter vt_filter;

/** Parse @p expr. On error returns -1 and writes a message naming the position into err. */
int vt_filter_parse(const char *expr, vt_filter **out, char *err, size_t errcap);
/** 1 if @p ti satisfies @p f, else 0. */
int vt_filter_eval(const vt_filter *f, const vt_tensor_info *ti);
void vt_filter_free(vt_filter *f);
/** Layer number of a tensor name ("blk.3.x" / "model.layers.3.x" -> 3), -1 if none. */
long vt_filter_layer(const char *name);

#endif
