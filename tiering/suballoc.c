/* First-fit sub-allocator over a byte range: a sorted, coalesced array of free extents. Tier
 * allocations are few and large (tensors, ring slots), so a linear scan is enough. */
#include <assert.h>
#include <errno.h>
#include <string.h>

#include "tier_internal.h"

int vt_suballoc_init(vt_suballoc *a, uint64_t size) {
    memset(a, 0, sizeof *a);
    a->size = size / VT_TIER_ALIGN * VT_TIER_ALIGN;
    a->cap = 16;
    a->free = vt_malloc(a->cap * sizeof *a->free);
    if (!a->free) return vt_fail(-ENOMEM, "suballoc: out of memory");
    if (a->size) a->free[a->nfree++] = (vt_extent){0, a->size};
    return 0;
}

void vt_suballoc_fini(vt_suballoc *a) {
    vt_free(a->free);
    memset(a, 0, sizeof *a);
}

/* Free extents are separated by live allocations, so nfree <= nlive + 1. Keeping cap above the
 * live count after every allocation means a free never has to grow the list: a free that failed
 * on allocation used to keep its bytes counted as used, and the tier lost them for good. */
static int reserve(vt_suballoc *a, size_t need) {
    if (need <= a->cap) return 0;
    size_t nc = 2 * a->cap > need ? 2 * a->cap : need;
    vt_extent *n = vt_realloc(a->free, nc * sizeof *n);
    if (!n) return vt_fail(-ENOMEM, "suballoc: out of memory for %zu free extents", nc);
    a->free = n;
    a->cap = nc;
    return 0;
}

int vt_suballoc_alloc(vt_suballoc *a, uint64_t len, uint64_t *off) {
    len = VT_ROUND_UP(len ? len : 1, VT_TIER_ALIGN);
    for (size_t i = 0; i < a->nfree; i++) {
        if (a->free[i].len < len) continue;
        if (reserve(a, a->nlive + 2)) return -ENOMEM;
        *off = a->free[i].off;
        a->free[i].off += len;
        a->free[i].len -= len;
        if (!a->free[i].len) {
            memmove(&a->free[i], &a->free[i + 1], (a->nfree - i - 1) * sizeof *a->free);
            a->nfree--;
        }
        a->used += len;
        a->nlive++;
        return 0;
    }
    return -ENOSPC;
}

int vt_suballoc_free(vt_suballoc *a, uint64_t off, uint64_t len) {
    len = VT_ROUND_UP(len ? len : 1, VT_TIER_ALIGN);
    size_t i = 0;
    while (i < a->nfree && a->free[i].off < off) i++;
    int join_prev = i > 0 && a->free[i - 1].off + a->free[i - 1].len == off;
    int join_next = i < a->nfree && off + len == a->free[i].off;
    if (join_prev && join_next) {
        a->free[i - 1].len += len + a->free[i].len;
        memmove(&a->free[i], &a->free[i + 1], (a->nfree - i - 1) * sizeof *a->free);
        a->nfree--;
    } else if (join_prev) {
        a->free[i - 1].len += len;
    } else if (join_next) {
        a->free[i].off = off;
        a->free[i].len += len;
    } else {
        assert(a->nfree < a->cap); /* reserved by the allocation being freed */
        memmove(&a->free[i + 1], &a->free[i], (a->nfree - i) * sizeof *a->free);
        a->free[i] = (vt_extent){off, len};
        a->nfree++;
    }
    a->used -= len;
    a->nlive--;
    return 0;
}

uint64_t vt_suballoc_largest(const vt_suballoc *a) {
    uint64_t m = 0;
    for (size_t i = 0; i < a->nfree; i++)
        if (a->free[i].len > m) m = a->free[i].len;
    return m;
}
