/*
 * vtstore/tier.h — stream the tensors of a store through a pinned RAM tier and a VRAM tier.
 *
 * A streamer reads chunks of a store (io_uring + O_DIRECT, or a pread thread pool), checks each
 * chunk's XXH3 checksum, decompresses zstd chunks, and hands out vt_weight handles (weight.h)
 * to data resident in the top tier: device memory when vram_bytes > 0 (host memory with the
 * same interface in builds or machines without a GPU), host memory when vram_bytes == 0.
 *
 *     vt_tier_config cfg = {.vram_bytes = 4ull << 30, .ram_bytes = 16ull << 30, .prefetch = 2};
 *     vt_streamer *st;
 *     int rc = vt_streamer_open(store, &cfg, &st);
 *     rc = vt_streamer_plan(st, names, n, VT_SCHEDULE_CYCLIC);   // one forward pass, repeated
 *     for (int pass = 0; pass < passes; pass++)
 *         for (size_t i = 0; i < n; i++) {
 *             vt_weight w;
 *             rc = vt_streamer_acquire(st, names[i], &w);     // blocks until resident
 *             launch_kernels(&w);                            // w.data, w.format, w.rows ...
 *             vt_streamer_release(st, &w);
 *         }
 *     vt_streamer_stats stats; vt_streamer_get_stats(st, &stats);
 *     vt_streamer_close(st);
 *
 * Policy. For a cyclic schedule the planner pins a fixed subset of the tensors in the VRAM
 * tier, then a fixed subset of the rest in the RAM tier (for a loop larger than the cache this
 * is what Belady's optimal policy converges to; LRU would miss on every access), and streams the
 * remainder through a ring of ring_slots slots per tier, reading ahead of the consumer at least
 * `prefetch` tensors and at least queue_depth * read_size bytes, as far as free ring slots allow
 * (all chunk reads of a tensor are submitted at once). Checksums, decoding and device copies run
 * on a second thread so reads keep the queue full; with a GPU the host-to-device copies are
 * queued asynchronously and acquire waits for the copy of the tensor it returns. Streamed
 * tensors never displace pinned ones. Without a schedule (or with
 * VT_SCHEDULE_RANDOM) each tier is a byte-budgeted S3-FIFO cache, which a one-time scan does
 * not flush.
 *
 * Tensors too large for a ring slot: vt_streamer_acquire returns VT_EBUDGET unless the config
 * sets chunkwise; then such a tensor is streamed in parts (the store's chunks): ask
 * vt_streamer_parts() for the count and vt_streamer_acquire_part() for each part; the handle's
 * row0/rows give the row range it holds (total_rows the tensor's).
 *
 * Thread safety: acquire, acquire_part, release, prefetch and get_stats may be called from any
 * number of threads at once. plan must not run concurrently with acquires. A handle stays valid
 * (its bytes unchanged) until it is released. Each acquire is its own handle (the same tensor
 * acquired twice is two handles, released once each).
 *
 * Garbage collection: a streamer takes one consistent snapshot at open (tensor list, chunk
 * lists, and an open descriptor on every shard they name; taken again if a writer changed the
 * store between those reads). A vt_store_gc in any process may then compact and delete those
 * shards: the streamer keeps reading its snapshot's bytes through its descriptors. It costs
 * two file descriptors per shard for the streamer's lifetime.
 *
 * Holding handles: a streamed tensor occupies a ring slot from its read until its release, so at
 * most ring_slots streamed handles can be held at once. When every slot is held by the calling
 * thread, acquiring another streamed tensor returns VT_EBUDGET instead of waiting forever; when
 * other threads hold some of them, acquire blocks until one is released (threads that each keep
 * handles while acquiring more can still deadlock one another: size ring_slots for the handles
 * held at once plus the prefetch depth). The same holds for the top tier's cache (random access,
 * and tensors outside a cyclic schedule): when the tensor does not fit next to what is cached
 * and everything cached is held by the calling thread's handles, acquire returns VT_EBUDGET;
 * a handle of another thread there makes it wait for that release. A handle counts for the
 * thread that acquired it, until it is released (by any thread).
 *
 * Read engine failures: an io_uring submission or wait that fails loses no read; the streamer
 * reaps again (8 times, pausing up to 128 ms). If the engine still fails, its reads stay in
 * flight with their buffers and slots kept, and every acquire and plan after that fails with
 * the engine's error ("the I/O engine failed ..."): close the streamer.
 */
#ifndef VTSTORE_TIER_H
#define VTSTORE_TIER_H

#include <stddef.h>
#include <stdint.h>

#include "vtstore/core.h"
#include "vtstore/store.h"
#include "vtstore/weight.h"

#ifdef __cplusplus
extern "C" {
#endif

/** I/O engine of a streamer. AUTO: the VT_IO_ENGINE environment variable (uring|pread) if set,
 *  else io_uring, falling back to the pread pool (logged once) when the kernel refuses it. */
typedef enum vt_io_engine {
    VT_IO_AUTO = 0,
    VT_IO_URING = 1,
    VT_IO_PREAD = 2,
} vt_io_engine;

/** Streamer settings. Zero-initialise and set what you need. */
typedef struct vt_tier_config {
    uint64_t vram_bytes;    /* device tier budget; 0 = no device tier (handles point to host) */
    uint64_t ram_bytes;     /* pinned host tier budget (staging slots included); must be > 0 */
    uint32_t prefetch;      /* d: at least d tensors read ahead of the consumer; 0 = 2 */
    uint32_t ring_slots;    /* k: streaming slots per tier, >= 2; 0 = prefetch + 2 */
    uint32_t queue_depth;   /* reads in flight; 0 = default 64 (bench/stream sweep) */
    uint32_t read_size;     /* bytes per read (multiple of 4096); 0 = default 4 MiB (same sweep) */
    vt_io_engine io_engine; /* VT_IO_AUTO, VT_IO_URING or VT_IO_PREAD */
    int chunkwise;          /* 1: stream tensors too large for a ring slot part by part */
    int retry_corrupt;      /* 1: re-read a chunk once from disk if its checksum fails */
    int device;             /* CUDA device ordinal (GPU builds) */
} vt_tier_config;

/** Schedule kinds for vt_streamer_plan. */
typedef enum vt_schedule {
    VT_SCHEDULE_CYCLIC = 0, /* the names are one pass, repeated in this order */
    VT_SCHEDULE_RANDOM = 1, /* the names may be accessed in any order: S3-FIFO caching */
} vt_schedule;

/** Where the planner placed a tensor. */
typedef enum vt_placement {
    VT_PLACE_NONE = 0,     /* not planned (random access) */
    VT_PLACE_VRAM_PIN = 1, /* pinned in the device tier */
    VT_PLACE_RAM_PIN = 2,  /* pinned in the host tier, copied into a device slot on use */
    VT_PLACE_STREAM = 3,   /* read from disk on every use */
    VT_PLACE_OVERSIZE = 4, /* larger than a ring slot: VT_EBUDGET, or parts with chunkwise */
} vt_placement;

/** Counters of one tier. For the VRAM tier a hit is an acquire served by bytes already in device
 *  memory; a miss needs a fill (from the RAM tier or disk). For the RAM tier (counted on VRAM
 *  misses, or on every acquire without a device tier) a hit is served from pinned or cached host
 *  memory, a miss reads the disk. */
typedef struct vt_tier_stats {
    uint64_t hits, misses;
    uint64_t bytes_in;     /* bytes filled into this tier (RAM: read from disk; VRAM: copied H2D) */
    double fill_seconds;   /* time spent filling (RAM: reads in flight; VRAM: copies) */
    double gbps;           /* bytes_in / fill_seconds / 1e9 */
    uint64_t capacity;     /* budget in bytes */
    uint64_t pinned_bytes; /* bytes pinned by the plan */
    uint64_t pinned_tensors;
    uint64_t slot_bytes; /* size of one ring slot (0 when nothing streams) */
    uint32_t slots;      /* ring slots */
} vt_tier_stats;

/** Counters of a streamer since open or the last vt_streamer_reset_stats. */
typedef struct vt_streamer_stats {
    vt_tier_stats vram, ram;
    uint64_t acquires;
    uint64_t bytes_read;  /* bytes read from disk (stored, padded to 4096 with O_DIRECT) */
    double stall_seconds; /* time acquirers waited for data */
    uint64_t corrupt_retries;
    uint64_t model_bytes;   /* raw bytes of the planned schedule (one pass) */
    vt_io_engine engine;    /* VT_IO_URING or VT_IO_PREAD */
    int registered_buffers; /* 1 if the RAM tier is registered with io_uring */
    int device_is_gpu;      /* 1 if the device tier is real GPU memory */
} vt_streamer_stats;

typedef struct vt_streamer vt_streamer;

/** Open a streamer over @p store (borrowed: it must outlive the streamer). Allocates both tiers
 *  once (anonymous mmap, registered with io_uring and, with a GPU, with CUDA as pinned; the
 *  device tier with one cudaMalloc) and starts the I/O thread.
 *  Errors: -EINVAL (ram_bytes == 0, ring_slots == 1, read_size not a multiple of 4096),
 *  VT_EBUDGET (a budget larger than the machine's available host or device memory: the message
 *  gives both numbers), -ENOMEM, VT_ECUDA, -ENOSYS/-EPERM (VT_IO_URING forced but refused). */
int vt_streamer_open(vt_store *store, const vt_tier_config *cfg, vt_streamer **out);

/** Stop the I/O thread and free both tiers (NULL is a no-op). Handles not released become
 *  invalid. Acquires that other threads are waiting in return VT_EUSAGE ("the streamer is
 *  closing"), and close waits until they have left; no call on @p st may start once close
 *  has begun (the handle is freed when it returns). */
void vt_streamer_close(vt_streamer *st);

/** Detail of the last error on this handle ("" if none); also in vt_last_error() of the thread
 *  that got the error. Valid until the next call on @p st. */
const char *vt_streamer_errmsg(const vt_streamer *st);

/** Declare the access pattern over tensors @p names[n] (copied; unique names) and place them
 *  (see the overview). Replaces an earlier plan; no handle may be held. Reads nothing yet: the
 *  first pass fills the pinned sets. Errors: VT_ENOTFOUND (a name not in the store), -EINVAL
 *  (duplicate name, bad mode), VT_EUSAGE (handles still held), -ENOMEM, the read engine's error
 *  once it failed for good (the plan is kept; see the overview). After VT_ENOTFOUND,
 *  -EINVAL, VT_EUSAGE or an -ENOMEM copying the names, the earlier plan stays; after any other
 *  error the streamer has no plan and vt_streamer_acquire returns VT_EUSAGE until a plan
 *  succeeds. */
int vt_streamer_plan(vt_streamer *st, const char *const *names, size_t n, vt_schedule mode);

/** Where the plan put @p name (VT_PLACE_NONE if unplanned). Errors: VT_ENOTFOUND. */
int vt_streamer_placement(vt_streamer *st, const char *name, vt_placement *out);

/** Make tensor @p name resident in the top tier and describe it in @p out (data, aux, location,
 *  format, rows, cols...). Blocks until the bytes are there; moves the prefetch window to this
 *  tensor's place in a cyclic schedule. The bytes stay put until vt_streamer_release(out).
 *  Errors: VT_ENOTFOUND (no such tensor in the streamer's snapshot), VT_EBUDGET (tensor larger than
 * a ring slot or the tier budget, without chunkwise: the message gives sizes; or every ring slot,
 * or for a tensor going to the cache everything cached, of the top tier held by this thread's
 * handles; or 2^24 - 1 handles out), VT_EUSAGE (the last plan failed), VT_ECORRUPT
 * (checksum mismatch: tensor, chunk, shard and offset named), -EIO and other read errors (file and
 * offset named), -ENOMEM (also when the table of live handles cannot grow), VT_ECUDA (also from
 * waiting on the device copy), the read engine's error once it failed for good (see the overview).
 * After an error the tensor may be acquired again (it is re-read). */
int vt_streamer_acquire(vt_streamer *st, const char *name, vt_weight *out);

/** Number of parts vt_streamer_acquire_part serves for @p name: its store chunk count when it is
 *  streamed part-wise (chunkwise and too large for a slot), else 1. Errors: VT_ENOTFOUND. */
int vt_streamer_parts(vt_streamer *st, const char *name, uint64_t *nparts);

/** Acquire part @p part of @p name: out->row0 / out->rows give the rows held (for a tensor that
 *  is not split, part 0 is the whole tensor). Errors as vt_streamer_acquire, and -ERANGE. */
int vt_streamer_acquire_part(vt_streamer *st, const char *name, uint64_t part, vt_weight *out);

/** Give back a handle from acquire (its bytes may then be reused); clears @p w. Any thread may
 *  release it, once. Errors: -EINVAL "not a live handle of this streamer": released already
 *  (also through a saved copy, even while other handles hold the tensor), a handle of another
 *  streamer, or one made by hand (vt_weight_host, an edited token); nothing changes then, the
 *  real holders' bytes included. */
int vt_streamer_release(vt_streamer *st, vt_weight *w);

/** Hint that @p name will be acquired soon: start reading it now if a slot is free. Returns 0,
 *  VT_ENOTFOUND. Never blocks on I/O. */
int vt_streamer_prefetch(vt_streamer *st, const char *name);

/** Copy the counters into @p out. */
int vt_streamer_get_stats(vt_streamer *st, vt_streamer_stats *out);

/** Zero the counters (hits, misses, bytes, times), keeping plan and residency. */
void vt_streamer_reset_stats(vt_streamer *st);

/** Name of a placement ("vram", "ram", "stream", "oversize", "none"). */
const char *vt_placement_name(vt_placement p);

#ifdef __cplusplus
}
#endif
#endif /* VTSTORE_TIER_H */
