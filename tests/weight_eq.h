/* tests/weight_eq.h — compare a streamer handle's bytes with reference bytes wherever the handle
 * lives: host handles directly, device handles (the VRAM tier on a GPU) copied back first. */
#ifndef VT_TEST_WEIGHT_EQ_H
#define VT_TEST_WEIGHT_EQ_H

#include <stdlib.h>
#include <string.h>

#include "vtstore/device.h"
#include "vtstore/weight.h"

/* 1 if the n bytes at w->data equal ref (0 also when the copy back fails). */
static inline int vt_test_weight_eq(const vt_weight *w, const void *ref, uint64_t n) {
    if (w->location != VT_LOC_DEVICE) return !memcmp(w->data, ref, n);
    unsigned char *h = malloc(n ? n : 1);
    int eq =
        h && !vt_dev_memcpy_d2h(h, w->data, n, NULL) && !vt_dev_sync(NULL) && !memcmp(h, ref, n);
    free(h);
    return eq;
}

#endif
