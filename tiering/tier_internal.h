/*
 * tiering/tier_internal.h — building blocks of the streamer (not public): a byte sub-allocator,
 * memory regions for the two tiers, the CUDA shim, the cyclic planner and the S3-FIFO policy.
 * Tests include this header to check each piece on its own.
 */
#ifndef VT_TIERING_INTERNAL_H
#define VT_TIERING_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "vtstore/tier.h"

#define VT_TIER_ALIGN     4096u
#define VT_ROUND_UP(x, a) (((x) + (a)-1) / (a) * (a))

/* ---- sub-allocator (suballoc.c): first fit over [0, size), 4096-aligned extents ---------- */

typedef struct vt_extent {
    uint64_t off, len;
} vt_extent;

typedef struct vt_suballoc {
    uint64_t size, used;
    vt_extent *free; /* sorted by off, coalesced */
    size_t nfree, cap;
    size_t nlive; /* allocations out; cap > nlive always, so a free never allocates */
} vt_suballoc;

/** Manage [0, size) (size rounded down to 4096). Errors: -ENOMEM. */
int vt_suballoc_init(vt_suballoc *a, uint64_t size);
void vt_suballoc_fini(vt_suballoc *a);
/** Allocate @p len bytes (rounded up to 4096); *off gets the offset. Returns 0, -ENOSPC when no
 *  free extent is large enough, -ENOMEM (growing the free list its later free may need). */
int vt_suballoc_alloc(vt_suballoc *a, uint64_t len, uint64_t *off);
/** Give back an allocation (same len as allocated). Returns 0: it never allocates (the free list
 *  has room for every extent the live allocations can split off). */
int vt_suballoc_free(vt_suballoc *a, uint64_t off, uint64_t len);
/** Largest free extent. */
uint64_t vt_suballoc_largest(const vt_suballoc *a);

/* ---- regions (region.c) ------------------------------------------------------------------- */

typedef enum vt_region_kind {
    VT_REGION_NONE = 0,
    VT_REGION_HOST = 1,   /* anonymous mmap (+ cudaHostRegister when a GPU is present) */
    VT_REGION_DEVICE = 2, /* cudaMalloc */
} vt_region_kind;

typedef struct vt_region {
    char *base;
    uint64_t size;
    vt_region_kind kind;
    int cuda_pinned; /* host region registered with CUDA */
} vt_region;

/** Available host memory in bytes (MemAvailable, else sysinfo free+buffers). */
uint64_t vt_host_mem_available(void);
/** Host region of @p bytes (rounded up to 4096): mmap(MAP_POPULATE), pinned with CUDA when
 *  @p cuda_pin. @p what names the tier in messages. Errors: VT_EBUDGET (more than available,
 *  both numbers in the message), -ENOMEM, VT_ECUDA. Fault site VT_FAULT_DEVICE. */
int vt_region_host_open(uint64_t bytes, int cuda_pin, const char *what, vt_region *out);
/** Device region (cudaMalloc once) on the current device. Errors: VT_EBUDGET (more than the
 *  device's free memory), VT_ECUDA, VT_ENODEV. Fault site VT_FAULT_DEVICE. */
int vt_region_device_open(uint64_t bytes, const char *what, vt_region *out);
void vt_region_close(vt_region *r);

/* ---- CUDA shim (tier_cuda.c): no CUDA types, all calls fail with VT_ENODEV without CUDA ----- */

/** 1 if this build has CUDA and a GPU is usable (device @p dev selected), else 0. */
int vt_tcuda_available(int dev); /* also makes @p dev the calling thread's current device */
/* The CUDA current device is per thread: a thread that queues copies or records events on the
 * streamer's stream must select the streamer's device first. */
int vt_tcuda_set_device(int dev);
int vt_tcuda_mem_info(uint64_t *free_b, uint64_t *total_b);
int vt_tcuda_malloc(void **p, uint64_t bytes);
void vt_tcuda_free(void *p);
int vt_tcuda_host_register(void *p, uint64_t bytes);
void vt_tcuda_host_unregister(void *p);
int vt_tcuda_stream_create(void **s);
void vt_tcuda_stream_destroy(void *s);
/** Async host-to-device copy on stream @p s. */
int vt_tcuda_h2d_async(void *dst, const void *src, uint64_t n, void *s);
int vt_tcuda_stream_sync(void *s);
/** Events (timing disabled): record after queued copies, then query (1 done, 0 not yet, <0
 *  error) or wait. */
int vt_tcuda_event_create(void **e);
void vt_tcuda_event_destroy(void *e);
int vt_tcuda_event_record(void *e, void *s);
int vt_tcuda_event_query(void *e);
int vt_tcuda_event_sync(void *e);
/** Synchronous device-to-host copy (tests). */
int vt_tcuda_d2h(void *dst, const void *src, uint64_t n);

/* ---- cyclic planner (planner.c) ------------------------------------------------------------- */

/** One schedule item (a tensor, or a part of one) as the planner sees it. */
typedef struct vt_plan_item {
    uint64_t bytes;     /* (in) footprint in a tier, rounded up to 4096 */
    vt_placement place; /* (out) */
} vt_plan_item;

typedef struct vt_plan_config {
    uint64_t vram_bytes; /* 0 = no device tier */
    uint64_t ram_bytes;
    uint32_t slots; /* k ring slots per tier */
} vt_plan_config;

typedef struct vt_plan_result {
    uint64_t vram_pinned, ram_pinned; /* bytes pinned per tier */
    uint64_t vram_pinned_n, ram_pinned_n;
    uint64_t vram_slot, ram_slot; /* ring slot size per tier (0 when that ring is unused) */
    uint64_t streamed_n, oversize_n, total_bytes;
} vt_plan_result;

/** Place @p n items for a cyclic schedule. Without a device tier, items are pinned in RAM or
 *  streamed. Invariants: per tier, pinned bytes + slots * slot size <= budget; every item that
 *  passes through a ring fits its slot; items that fit no ring are VT_PLACE_OVERSIZE. The choice
 *  is greedy by size (largest first, which also keeps slots small), then fills what is left. */
int vt_plan_cyclic(const vt_plan_config *cfg, vt_plan_item *items, size_t n, vt_plan_result *out);

/* ---- S3-FIFO (policy_s3fifo.c) ------------------------------------------------------------- */

/** Byte-budgeted S3-FIFO (Yang et al., SOSP 2023) over integer keys [0, nkeys): a small FIFO
 *  (10% of the bytes) that admits new keys, a main FIFO with CLOCK-like reinsertion for keys seen
 *  again, and a ghost FIFO of recently evicted keys that sends a returning key straight to main.
 *  A key in the small queue with at least one hit moves to main when it reaches the head. */
typedef struct vt_s3fifo vt_s3fifo;

int vt_s3fifo_create(uint64_t capacity, uint32_t nkeys, vt_s3fifo **out);
void vt_s3fifo_destroy(vt_s3fifo *c);
/** 1 if @p key is resident (counts a hit: frequency + 1, capped at 3), else 0. */
int vt_s3fifo_access(vt_s3fifo *c, uint32_t key);
/** 1 if resident (no side effect). */
int vt_s3fifo_contains(const vt_s3fifo *c, uint32_t key);
/** Bytes that must be evicted before @p bytes more fit (0 if they fit). */
uint64_t vt_s3fifo_overflow(const vt_s3fifo *c, uint64_t bytes);
/** Record @p key (not resident) as resident with @p bytes: into main if the ghost remembers it,
 *  else into small. The caller made room first. */
void vt_s3fifo_insert(vt_s3fifo *c, uint32_t key, uint64_t bytes);
/** Callback: 1 if @p key may be evicted now (not in use). */
typedef int (*vt_s3fifo_can_evict)(void *ctx, uint32_t key);
/** Choose and remove one victim; *victim gets it. Returns 0, or -EBUSY when nothing can be
 *  evicted (all resident keys in use or none resident). */
int vt_s3fifo_evict(vt_s3fifo *c, vt_s3fifo_can_evict can, void *ctx, uint32_t *victim);
/** Forget @p key if resident (no ghost entry). */
void vt_s3fifo_remove(vt_s3fifo *c, uint32_t key);
uint64_t vt_s3fifo_used(const vt_s3fifo *c);

#endif
