/* tiering/streamer_internal.h — the streamer's state, shared by streamer.c (open, plan, stats),
 * streamer_acquire.c (consumer side), streamer_io.c (the I/O thread: placement and reads) and
 * streamer_finish.c (the finisher thread: checksums, decoding, device copies, publishing).
 *
 * A load is a job. The I/O thread starts it (places reserved, under the lock), submits all its
 * chunk reads at once and hands it to the finisher when the last read is back, so the I/O thread
 * never stops reaping and refilling the queue to hash or copy. The finisher verifies every chunk
 * (a mismatch with retry_corrupt goes back to the I/O thread for one re-read), decodes, copies to
 * the device tier (async with CUDA: an event per item, waited on by the acquirer), publishes the
 * item READY and, once the copy is done, gives back the RAM staging slot. */
#ifndef VT_TIERING_STREAMER_INTERNAL_H
#define VT_TIERING_STREAMER_INTERNAL_H

#include <pthread.h>

#include "io_engine.h"
#include "tier_internal.h"
#include "vtstore/tier.h"

enum { T_RAM = 0, T_VRAM = 1 };
enum { RS_EMPTY = 0, RS_LOADING = 1, RS_READY = 2 };
enum { PK_NONE = 0, PK_PIN = 1, PK_RING = 2, PK_CACHE = 3 };
enum { SRC_RESIDENT = 0, SRC_RAM = 1, SRC_DISK = 2 };
enum { VT_ST_IO_TRIES = 8 }; /* reaps again after an engine error (pauses 1, 2, .. 128 ms) */

typedef struct vt_job vt_job;

/* Residency of an item in one tier. */
typedef struct vt_res {
    uint8_t state, kind;
    int32_t slot;  /* ring slot (PK_RING) */
    uint64_t off;  /* byte offset in the tier's region */
    uint32_t busy; /* in-flight copies reading from here */
} vt_res;

/* Chunk state bits of a job (vt_job.cst). */
enum { CST_RETRIED = 1, CST_OK = 2, CST_REDO = 4 };

struct vt_job {
    uint32_t item;
    int need_disk;   /* else the RAM copy is resident: copy only */
    int fill_ram;    /* the RAM place is being filled */
    int top_copy;    /* a device-tier copy is needed */
    int copy_async;  /* the device copy was queued on the CUDA stream (event recorded) */
    char *ram, *dev; /* places */
    uint64_t nreq, left;
    vt_io_req *reqs;     /* [nreq] one per chunk */
    void **scratch;      /* [nreq] zstd chunks: stored bytes */
    uint8_t *cst;        /* [nreq] CST_* bits */
    uint64_t disk_bytes; /* bytes read from disk for this job (counted at publish) */
    int err;
    char msg[768];
    struct vt_job *next;
};

typedef struct vt_stensor {
    vt_tensor_info ti;
    vt_chunk_info *chunks;  /* [ti.n_chunks], loaded on first use */
    float *aux;             /* host copy of the aux blob (ti.aux_bytes), loaded on first use */
    uint32_t item;          /* whole-tensor item */
    uint32_t part0, nparts; /* part items when split (chunkwise), else nparts = 0 */
} vt_stensor;

typedef struct vt_sitem {
    uint32_t tensor;
    int64_t part; /* -1: whole tensor */
    uint64_t chunk0, nchunks, row0, rows;
    uint64_t data_bytes; /* raw bytes of the rows held */
    uint64_t aux_off;    /* where aux sits in the footprint (after the aligned chunk area) */
    uint64_t foot;       /* bytes reserved in a tier */
    vt_placement place;
    int64_t pos; /* position in the cyclic schedule, -1 if not in it */
    vt_res res[2];
    int refs;
    int wanted;       /* acquirers waiting */
    int src;          /* how the top-tier copy was filled since the last acquire */
    int err;          /* load error, reported to the next acquirer */
    char *errmsg;     /* vt_malloc'ed */
    int copy_pending; /* async device copies queued and not yet seen complete */
    void *copy_event; /* CUDA event recorded after the last copy (created on first use) */
    int32_t hfirst;   /* its live handles: first entry in st->hs, linked by next (-1 none) */
} vt_sitem;

/* One live acquisition (a handle out), in the streamer's handle table. Each acquire takes an
 * entry and a fresh generation; release gives the entry back (generation 0: free). A token
 * names an entry and its generation (streamer_acquire.c), so it names one acquisition only. */
typedef struct vt_shandle {
    uint64_t gen;       /* generation of the acquisition (0: free entry) */
    uint32_t item;      /* the item it holds */
    int32_t prev, next; /* live: the item's other handles; free: next free entry (-1 none) */
    pthread_t thread;   /* the thread that acquired it */
} vt_shandle;

typedef struct vt_stier {
    vt_region reg;
    vt_suballoc alloc;
    uint32_t nslots;
    uint64_t slot_bytes;
    uint64_t *slot_off;
    int64_t *slot_item; /* -1 free */
    vt_s3fifo *cache;   /* random access */
    int is_gpu;
} vt_stier;

struct vt_streamer {
    vt_store *store;
    vt_tier_config cfg;
    int has_vram; /* top tier is VRAM */
    int top;      /* T_VRAM or T_RAM */
    vt_stier tier[2];
    void *cuda_stream;

    vt_stensor *tensors;
    uint32_t ntensors;
    vt_sitem *items;
    uint32_t nitems;

    /* plan */
    int planned;
    vt_schedule mode;
    uint32_t *sched; /* item ids in pass order */
    uint32_t nsched;
    int64_t cursor; /* schedule position of the last acquire (-1 before the first) */
    uint64_t model_bytes;

    /* requests for the I/O thread */
    uint32_t *demand; /* FIFO ring of item ids */
    uint32_t demand_head, demand_n, demand_cap;
    int64_t hint; /* item to prefetch, -1 */

    pthread_mutex_t mu;
    pthread_cond_t cv_ready; /* an item became ready or failed */
    pthread_cond_t cv_work;  /* work for the I/O thread */
    pthread_t io_thread;
    int io_started, stop, io_busy;
    uint32_t acquiring; /* threads inside acquire (close waits for them to leave) */
    uint32_t njobs;     /* jobs started and not yet done (device copy included) */
    uint32_t maxjobs;   /* cap on njobs (the ring slots are the real limit) */
    uint64_t
        prefetch_bytes; /* keep this many bytes loading/loaded ahead (queue_depth * read_size) */

    /* finisher thread */
    pthread_t fin_thread;
    pthread_cond_t cv_fin; /* work for the finisher */
    int fin_started, fin_stop;
    vt_job *fin_head, *fin_tail; /* jobs whose reads are done, FIFO */
    vt_job *retry;               /* jobs with chunks to read again (finisher -> I/O thread) */

    vt_io *io;
    /* The engine failing (vt_io_reap < 0) loses no request: the I/O thread reaps again, io_tries
     * times with a growing pause (VT_ST_IO_TRIES; tests lower it, under the lock, before the
     * first load). If it still fails, io_err and io_errmsg say so: acquire and plan fail with
     * them, and the jobs in flight keep their places and buffers (nothing is reused under reads
     * that may still land); io_leak: they were still in flight at close, which then leaves the
     * RAM tier mapped and those jobs allocated. */
    uint32_t io_tries;
    int io_err, io_leak;
    char io_errmsg[640];
    int32_t *shard_file; /* shard id -> io file id (-1 unknown), I/O thread only */
    uint32_t shard_cap;

    vt_streamer_stats st;
    int held;       /* handles out (live entries of hs) */
    vt_shandle *hs; /* the handle table, grown under the lock */
    uint32_t hcap;  /* entries of hs */
    int32_t hfree;  /* first free entry (-1 none) */
    char errmsg[1024];
};

/** 1 if the plan pins @p it in tier @p t (T_RAM or T_VRAM). */
static inline int vt_st_pinned_in(const vt_sitem *it, int t) {
    return (t == T_VRAM && it->place == VT_PLACE_VRAM_PIN) ||
           (t == T_RAM && it->place == VT_PLACE_RAM_PIN);
}

/* streamer.c */
int vt_st_fail(vt_streamer *st, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
char *vt_st_ptr(vt_streamer *st, int tier, const vt_res *r);
/** Index of tensor @p name in st->tensors, or -1. */
int vt_st_find(const vt_streamer *st, const char *name);
/* streamer_acquire.c */
/** Start the handle table empty (and, once per process, the generation counter at random). */
void vt_st_handles_init(vt_streamer *st);
/* streamer_io.c */
void *vt_st_io_main(void *arg);
/** Open the shard files of every chunk record up front (see streamer_io.c). */
int vt_st_open_shards(vt_streamer *st);
/** Record the first error of a job (code and printf-style message); later ones are ignored. */
void vt_st_job_err(vt_job *j, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* streamer_finish.c */
void *vt_st_fin_main(void *arg);
/** Free a job and its buffers (not its places). */
void vt_st_job_free(vt_job *j);
/** Free an item's place in @p tier (ring slot or cache allocation; pins keep theirs). Locked. */
void vt_st_drop(vt_streamer *st, uint32_t item, int tier);

#endif
