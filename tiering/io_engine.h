/*
 * tiering/io_engine.h — asynchronous whole-chunk reads (internal to tiering, used by the streamer,
 * its tests and bench/stream).
 *
 * Two engines behind one interface: io_uring (O_DIRECT, registered buffers and files, batched
 * submission, completions reaped with io_uring_peek_batch_cqe) and a pread thread pool, used when
 * io_uring is refused (ENOSYS, EPERM under seccomp, kernel.io_uring_disabled) or forced with
 * VT_IO_ENGINE=pread. A request is split into pieces of at most read_size bytes; at most
 * queue_depth pieces are in flight. One thread owns a vt_io (submit and reap from the same
 * thread); the pread engine's workers are internal.
 *
 *     vt_io *io;  vt_io_config c = {0};                     // defaults
 *     vt_io_open(&c, &io);
 *     int f;  vt_io_add_fd(io, fd_direct, fd_buffered, "shard-000001.vts", &f);
 *     vt_io_req r = {.file = f, .off = 0, .len = 1 << 20, .buf = aligned_buf};
 *     vt_io_submit(io, &r);
 *     vt_io_req *done[8];
 *     int n = vt_io_reap(io, done, 8, 1);                   // blocks until >= 1 done
 *     if (done[0]->result) ... vt_strerror(done[0]->result)
 *     vt_io_close(io);
 */
#ifndef VT_TIERING_IO_ENGINE_H
#define VT_TIERING_IO_ENGINE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "vtstore/tier.h"

/* Defaults from bench/stream's queue depth x read size sweep (docs/BENCHMARKS.md): on the 2-core
 * development VM (virtio disk) qd 64 with 4 MiB reads was the best point in 8 of 11 sweeps, though
 * by less than the run-to-run noise; rerun the sweep on NVMe. */
#define VT_IO_DEFAULT_QD        64u
#define VT_IO_DEFAULT_READ_SIZE (4u << 20)
#define VT_IO_DEFAULT_THREADS   8u
#define VT_IO_ALIGN             4096u
#define VT_IO_MAX_FILES         4096
#define VT_IO_MAX_REGIONS       64

typedef struct vt_io_config {
    vt_io_engine engine;  /* VT_IO_AUTO: env VT_IO_ENGINE, else io_uring, else pread */
    uint32_t queue_depth; /* pieces in flight; 0 = VT_IO_DEFAULT_QD */
    uint32_t read_size;   /* bytes per piece, multiple of 4096; 0 = VT_IO_DEFAULT_READ_SIZE */
    uint32_t threads;     /* pread engine workers; 0 = min(queue_depth, VT_IO_DEFAULT_THREADS) */
} vt_io_config;

/** One read of @p len bytes at @p off of file @p file into @p buf. For an O_DIRECT file the
 *  read is done in 4096-byte units: when @p off and @p buf are 4096-aligned the buffer must have
 *  room for len rounded up to 4096 and the file must hold those bytes (vtstore shards pad every
 *  chunk); otherwise the buffered descriptor is used. The caller owns the request and keeps it
 *  alive until vt_io_reap hands it back; fields after `user` are the engine's. */
typedef struct vt_io_req {
    int file;
    uint64_t off;
    uint64_t len;
    void *buf;
    void *user;    /* caller's */
    int result;    /* out: 0 or -errno / VT_EFORMAT (read past end of file) / injected fault */
    uint64_t done; /* internal: bytes completed */
    uint64_t next; /* internal: bytes issued */
    uint32_t outstanding;
    struct vt_io_req *link;
} vt_io_req;

typedef struct vt_io vt_io;

/** Open an engine. Errors: -EINVAL (bad config or VT_IO_ENGINE value), -ENOMEM, and with
 *  VT_IO_URING forced: the io_uring_queue_init error (-ENOSYS, -EPERM). With AUTO a refused
 *  io_uring falls back to pread and logs it once per process. */
int vt_io_open(const vt_io_config *cfg, vt_io **out);
/** Wait for in-flight pieces (an engine error is retried, 8 in a row at most: then it logs how
 *  many reads were left in flight), close every added descriptor and free (NULL is a no-op). */
void vt_io_close(vt_io *io);
/** The engine in use (VT_IO_URING or VT_IO_PREAD). */
vt_io_engine vt_io_engine_of(const vt_io *io);
/** Name of an engine value ("auto", "uring", "pread"). */
const char *vt_io_engine_name(vt_io_engine e);
/** Parse "auto|uring|io_uring|pread" (-EINVAL otherwise). */
int vt_io_engine_parse(const char *s, vt_io_engine *out);

/** Add a file by its descriptors; the engine owns and closes both. @p fd_direct may be -1 (no
 *  O_DIRECT: all reads buffered); @p name (copied) is for messages. *id gets the file index.
 *  With io_uring the direct descriptor is registered as a fixed file when the kernel allows.
 *  Errors: -EINVAL, -EMFILE (more than VT_IO_MAX_FILES). */
int vt_io_add_fd(vt_io *io, int fd_direct, int fd_buffered, const char *name, int *id);
/** Open @p path (O_DIRECT, falling back to buffered when the file system refuses it) and add it.
 *  Errors: -errno of open. */
int vt_io_add_path(vt_io *io, const char *path, int *id);
/** The name given for file @p id. */
const char *vt_io_file_name(const vt_io *io, int id);

/** Register [base, base+len) (page-aligned, e.g. a pool's mmap) as io_uring fixed buffers in
 *  pieces of at most 1 GiB; reads landing inside use IORING_OP_READ_FIXED. Best effort: when
 *  the kernel refuses (RLIMIT_MEMLOCK...) it logs once and reads stay unregistered. Returns 0
 *  (also for the pread engine, where it does nothing) or -EINVAL. Call before any submit. */
int vt_io_register_memory(vt_io *io, void *base, size_t len);
/** 1 if some memory is registered with io_uring (for stats and tests). */
int vt_io_has_registered_memory(const vt_io *io);

/** Queue @p r (never blocks; pieces are issued by vt_io_reap). Errors: -EINVAL (bad file). */
int vt_io_submit(vt_io *io, vt_io_req *r);
/** Issue queued pieces (up to queue_depth in flight, one batched submission) and collect
 *  finished requests into @p done[max]. With @p wait, blocks until at least one request has
 *  finished when any is outstanding. Returns the count (0..max) or a negative engine error
 *  (io_uring_submit or the wait failed; fault site VT_FAULT_ENGINE). After an error every
 *  submitted request is still the engine's, queued or in flight, its buffer in use: none is
 *  lost, and calling again continues (a transient error heals). Free a request's buffer only
 *  once it was handed back, or after vt_io_inflight() reached 0. */
int vt_io_reap(vt_io *io, vt_io_req **done, size_t max, int wait);
/** Requests submitted and not yet handed back. */
size_t vt_io_pending(const vt_io *io);
/** Pieces at the backend (the kernel or a pread worker may be writing into their buffers). */
uint32_t vt_io_inflight(const vt_io *io);

/** Convenience: submit @p n requests and reap them all; returns the first failed request's
 *  result (all are completed either way). */
int vt_io_read_all(vt_io *io, vt_io_req *reqs, size_t n);

/* ---- backend interface (io_engine.c, io_uring.c, io_pread.c) ----------------------------------
 */

typedef struct vt_io_piece {
    vt_io_req *req;
    uint64_t off;  /* file offset */
    uint64_t want; /* bytes of the request this piece must deliver */
    uint32_t len;  /* bytes asked of the kernel (want rounded up for O_DIRECT) */
    uint32_t got;  /* bytes read so far */
    char *buf;
    int direct;   /* read through the O_DIRECT descriptor */
    int result;   /* 0 or negative */
    int injected; /* fault injected at issue (uring), or failed for good: not retried */
    struct vt_io_piece *link;
} vt_io_piece;

typedef struct vt_io_file {
    int fd_direct, fd_buffered;
    int fixed; /* registered as io_uring fixed file index = id */
    char *name;
} vt_io_file;

struct vt_io_uring_state;
struct vt_io_pread_state;

struct vt_io {
    vt_io_engine engine;
    uint32_t qd, read_size, threads;
    vt_io_file files[VT_IO_MAX_FILES];
    int nfiles;
    /* registered regions (io_uring) */
    char *reg_base[VT_IO_MAX_REGIONS];
    size_t reg_len[VT_IO_MAX_REGIONS];
    int nreg;
    /* requests waiting to have pieces issued, FIFO */
    vt_io_req *queue_head, *queue_tail;
    size_t pending;    /* requests not handed back */
    uint32_t inflight; /* pieces at the backend */
    vt_io_piece *pieces, *free_pieces;
    vt_io_req *done_head, *done_tail; /* finished, not yet handed back */
    struct vt_io_uring_state *uring;
    struct vt_io_pread_state *pread;
};

/* io_uring backend: init returns -errno when the kernel refuses. */
int vt_io_uring_init(vt_io *io);
void vt_io_uring_fini(vt_io *io);
int vt_io_uring_add_file(vt_io *io, int id);
int vt_io_uring_register(vt_io *io);
int vt_io_uring_issue(vt_io *io, vt_io_piece **p, size_t n);
/** Finished pieces into out[max]; blocks for >= 1 when @p wait. Returns count or -errno. */
int vt_io_uring_collect(vt_io *io, vt_io_piece **out, size_t max, int wait);

int vt_io_pread_init(vt_io *io);
void vt_io_pread_fini(vt_io *io);
int vt_io_pread_issue(vt_io *io, vt_io_piece **p, size_t n);
int vt_io_pread_collect(vt_io *io, vt_io_piece **out, size_t max, int wait);

/** Index of the registered region holding [p, p+n), or -1. */
int vt_io_region_of(const vt_io *io, const void *p, size_t n);

#endif
