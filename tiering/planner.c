/* Residency planner for a cyclic schedule. In a loop over n items larger than the cache, LRU
 * evicts each item just before it is needed again and misses every time; Belady's optimal
 * policy keeps a fixed set and streams the rest. So each tier pins a fixed subset and reserves
 * a ring of k slots for what passes through it:
 *   VRAM: pinned_v + k * (largest item not pinned in VRAM) <= vram budget
 *   RAM:  pinned_r + k * (largest item streamed from disk) <= ram budget
 * Without a device tier only the RAM rule applies. */
#include <errno.h>
#include <stdlib.h>

#include "tier_internal.h"

typedef struct {
    uint64_t bytes;
    size_t idx;
} sz_idx;

static int cmp_desc(const void *a, const void *b) {
    const sz_idx *x = a, *y = b;
    if (x->bytes != y->bytes) return x->bytes < y->bytes ? 1 : -1;
    return x->idx < y->idx ? -1 : x->idx > y->idx; /* stable: schedule order breaks ties */
}

/* Pin among @p c[m] (sorted by size, descending) under @p budget with a ring of @p k slots for
 * the rest. pinned[i] = 1 pinned, 0 through the ring, -1 fits no ring. Returns the slot size. */
static uint64_t plan_tier(const sz_idx *c, size_t m, uint64_t budget, uint32_t k, uint64_t min_slot,
                          signed char *pinned, uint64_t *pinned_bytes) {
    uint64_t used = 0, slot = min_slot, rest = 0;
    for (size_t j = 0; j < m; j++) rest += c[j].bytes;
    for (size_t j = 0; j < m; j++) {
        uint64_t f = c[j].bytes;
        if (used + rest + (uint64_t)k * slot <= budget) { /* all that is left fits: pin it */
            for (; j < m; j++) pinned[j] = 1;
            used += rest;
            break;
        }
        rest -= f;
        uint64_t next = j + 1 < m ? c[j + 1].bytes : 0;
        uint64_t s2 = slot > next ? slot : next;
        if (used + f + (uint64_t)k * s2 <= budget && used + f <= budget) {
            pinned[j] = 1;
            used += f;
        } else {
            uint64_t s3 = slot > f ? slot : f;
            if (used + (uint64_t)k * s3 <= budget) {
                pinned[j] = 0;
                slot = s3;
            } else {
                pinned[j] = -1;
            }
        }
    }
    /* the ring may have come out smaller than assumed: pin more of what streams */
    for (size_t j = 0; j < m; j++) {
        if (pinned[j] != 0) continue;
        uint64_t f = c[j].bytes;
        uint64_t s2 = min_slot; /* ring size if j is pinned */
        for (size_t i = 0; i < m; i++)
            if (i != j && pinned[i] == 0 && c[i].bytes > s2) s2 = c[i].bytes;
        if (used + f + (uint64_t)k * s2 <= budget) {
            pinned[j] = 1;
            used += f;
            slot = s2;
        }
    }
    *pinned_bytes = used;
    return slot;
}

int vt_plan_cyclic(const vt_plan_config *cfg, vt_plan_item *items, size_t n, vt_plan_result *out) {
    if (!cfg || (!items && n) || !out || cfg->slots < 1)
        return vt_fail(-EINVAL, "planner: bad argument");
    *out = (vt_plan_result){0};
    sz_idx *c = vt_malloc((n ? n : 1) * sizeof *c);
    signed char *pin = vt_malloc(n ? n : 1);
    if (!c || !pin) {
        vt_free(c);
        vt_free(pin);
        return vt_fail(-ENOMEM, "planner: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        items[i].place = VT_PLACE_STREAM;
        out->total_bytes += items[i].bytes;
        c[i] = (sz_idx){items[i].bytes, i};
    }
    qsort(c, n, sizeof *c, cmp_desc);
    size_t m = n;
    uint64_t stage = 0; /* largest VRAM-pinned item: its first load is staged in a RAM slot */
    if (cfg->vram_bytes) {
        /* whatever reaches the device passes through a RAM ring slot first */
        size_t w = 0, nover = 0;
        sz_idx *over = vt_malloc((n ? n : 1) * sizeof *over);
        if (!over) {
            vt_free(c);
            vt_free(pin);
            return vt_fail(-ENOMEM, "planner: out of memory");
        }
        for (size_t j = 0; j < m; j++) {
            if ((uint64_t)cfg->slots * c[j].bytes > cfg->ram_bytes)
                over[nover++] = c[j];
            else
                c[w++] = c[j];
        }
        m = w;
        out->vram_slot = plan_tier(c, m, cfg->vram_bytes, cfg->slots, 0, pin, &out->vram_pinned);
        for (size_t j = 0; j < nover; j++) {
            items[over[j].idx].place = VT_PLACE_OVERSIZE;
            out->oversize_n++;
        }
        vt_free(over);
        w = 0;
        for (size_t j = 0; j < m; j++) {
            if (pin[j] == 1) {
                if (c[j].bytes > stage) stage = c[j].bytes;
                items[c[j].idx].place = VT_PLACE_VRAM_PIN;
                out->vram_pinned_n++;
            } else if (pin[j] < 0) {
                items[c[j].idx].place = VT_PLACE_OVERSIZE;
                out->oversize_n++;
            } else {
                c[w++] = c[j]; /* goes on to the RAM tier */
            }
        }
        m = w;
    }
    out->ram_slot = plan_tier(c, m, cfg->ram_bytes, cfg->slots, stage, pin, &out->ram_pinned);
    for (size_t j = 0; j < m; j++) {
        if (pin[j] == 1) {
            items[c[j].idx].place = VT_PLACE_RAM_PIN;
            out->ram_pinned_n++;
        } else if (pin[j] < 0) {
            items[c[j].idx].place = VT_PLACE_OVERSIZE;
            out->oversize_n++;
        } else {
            out->streamed_n++;
        }
    }
    /* VRAM ring size: largest item that reaches the device through it (RAM-pinned or streamed) */
    if (cfg->vram_bytes) {
        uint64_t s = 0;
        for (size_t i = 0; i < n; i++)
            if ((items[i].place == VT_PLACE_RAM_PIN || items[i].place == VT_PLACE_STREAM) &&
                items[i].bytes > s)
                s = items[i].bytes;
        out->vram_slot = s;
    }
    vt_free(c);
    vt_free(pin);
    return 0;
}
