/*
 * vtstore/store.h — the on-disk tensor store: append-only shard files of quantized chunks,
 * indexed by LMDB. docs/FORMAT.md is the normative description of the bytes on disk.
 *
 * Reading:
 *
 *     vt_store *s;
 *     int rc = vt_store_open("model.vts", VT_STORE_RDONLY, NULL, &s);
 *     vt_tensor_info ti;
 *     rc = vt_store_stat(s, "blk.0.attn_q.weight", &ti);
 *     float *w = malloc(ti.rows * ti.cols * sizeof(float));
 *     rc = vt_store_read_rows(s, ti.name, 0, ti.rows, VT_DTYPE_F32, w, ti.rows * ti.cols * 4);
 *     if (rc) fprintf(stderr, "%s: %s\n", vt_strerror(rc), vt_store_errmsg(s));
 *     vt_store_close(s);
 *
 * Writing (what import does): one writer per store at a time (across processes), any number of
 * tensors per writer, chunks of several tensors may be put concurrently from many threads; the
 * whole writer becomes visible atomically at commit or not at all.
 *
 *     vt_store_writer *w;
 *     vt_store_writer_begin(s, &w);
 *     vt_tensor_info meta = {0};                    // name, src_dtype, ndim, dims, format
 *     ... fill meta ...
 *     vt_writer_tensor *t;
 *     vt_writer_tensor_begin(w, &meta, NULL, 0, &t); // fixes rows_per_chunk, n_chunks
 *     vt_tensor_info ti;
 *     vt_writer_tensor_info(w, t, &ti);
 *     for (uint64_t i = 0; i < ti.n_chunks; i++)     // rows [i*rpc, min((i+1)*rpc, rows))
 *         vt_writer_put_chunk(w, t, i, bytes_of_chunk_i, len_i);
 *     vt_writer_tensor_end(w, t, &metrics);
 *     vt_store_writer_commit(w);                    // fdatasync shards, then one LMDB txn
 *
 * Thread safety: a vt_store handle may be used by any number of threads for reading (every read
 * runs in its own LMDB read transaction). Many processes may read while one process writes;
 * readers see the last committed state and never a partial tensor. vt_store_errmsg is
 * per handle: with several threads, prefer vt_last_error() (thread-local), which every function
 * here also sets.
 *
 * Errors common to every function: -EINVAL (NULL or out-of-range argument), -ENOMEM, -EIO and
 * other -errno from the file system, VT_ELMDB (LMDB failure without an errno), VT_EFORMAT /
 * VT_ECORRUPT (an index record or shard that does not decode / does not check out; the message
 * names the tensor, chunk, shard file and offset).
 */
#ifndef VTSTORE_STORE_H
#define VTSTORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "vtstore/core.h"
#include "vtstore/quant.h"

#ifdef __cplusplus
extern "C" {
#endif

/** On-disk format version this library gives new stores and the newest it reads
 *  (docs/FORMAT.md). Version 2 binds each chunk's checksum to its (tensor id, chunk index);
 *  stores of version 1 are read and written as version 1. */
#define VT_STORE_FORMAT_VERSION 2

/** Format value for tensors kept as the raw bytes of their source dtype (integer tensors,
 *  f64, bool, fp8 ...): rows x cols elements of vt_dtype_size(src_dtype) bytes, little-endian.
 *  Never OR-ed with VT_FMT_SPARSE24. Plain f32/f16/bf16 tensors use VT_FMT_F32/F16/BF16. */
#define VT_STORE_FMT_RAW 0x200u

/** Most data directories a store can spread its shards over. */
#define VT_STORE_MAX_DIRS 16

/* ---- opening ------------------------------------------------------------------------------- */

/** vt_store_open flags. RDONLY and RDWR are exclusive; CREATE (with RDWR) makes the store
 *  directory and its index if they do not exist. */
enum {
    VT_STORE_RDONLY = 0,
    VT_STORE_RDWR = 1u << 0,
    VT_STORE_CREATE = 1u << 1,
};

/** Settings of a handle. Zero-initialise and set what you need; NULL options = all defaults.
 *  Only data_dirs is recorded in the store (at creation, or for a new directory named by a
 *  RDWR open, by that handle's next writer or gc commit: a handle that commits nothing leaves
 *  the list as it was and removes the new directories it created, when still empty); the other
 *  fields apply to writers of this handle only. */
typedef struct vt_store_options {
    /** Extra data directories (absolute or relative to the cwd) for shard files, e.g. one per
     *  NVMe device. Shards are placed round-robin over the store directory itself (unless
     *  no_root_shards) and these. Directories recorded by an earlier handle are remembered;
     *  naming them again is harmless. "/" is refused. Borrowed for the call only. */
    const char *const *data_dirs;
    uint32_t n_data_dirs;
    /** 1: do not put new shards in the store directory, only in data_dirs (needs >= 1). */
    int no_root_shards;
    /** Shard size cap in bytes: a writer rolls to a new shard before a chunk would pass it
     *  (a single chunk larger than the cap gets a shard of its own). 0 = 1 GiB. */
    uint64_t shard_cap_bytes;
    /** Target stored bytes of one chunk before compression; chunks are whole row ranges, a
     *  multiple of vt_quant_row_align rows, at least one aligned row group. 0 = 2 MiB. */
    uint64_t chunk_target_bytes;
    /** zstd level for chunks (1..19); 0 = no compression. A chunk is kept compressed only when
     *  that saves at least 5% of its bytes. */
    int zstd_level;
    /** Initial LMDB map size in bytes (it grows on demand); 0 = 64 MiB. */
    uint64_t map_size;
} vt_store_options;

/** Opaque store handle. */
typedef struct vt_store vt_store;

/** Open (or with VT_STORE_RDWR|VT_STORE_CREATE create) the store directory @p path.
 *  @p opt may be NULL. On success *out owns the handle; close it with vt_store_close.
 *  Clears stale LMDB reader slots of dead processes.
 *  Errors: -ENOENT (no store there and no CREATE), VT_EFORMAT (the directory is not a vtstore
 *  store or its index is damaged), VT_EVERSION (written by a newer vtstore: the message names
 *  both versions), -EACCES/-EROFS (RDWR on a read-only store), -ENOTDIR, -EINVAL.
 *  The detail of a failed open is in vt_last_error(). */
int vt_store_open(const char *path, unsigned flags, const vt_store_options *opt, vt_store **out);

/** Close @p s (NULL is a no-op). Any writer of @p s still open is aborted first. */
void vt_store_close(vt_store *s);

/** Remove the store this handle created, while it still holds nothing: for a caller whose
 *  first write into a new store failed, so that the failure leaves nothing behind (`vtstore
 *  import` and Python's vtstore.import_file do this). "Created": this handle's
 *  VT_STORE_CREATE open made the directory (then it is removed) or found it empty (then it is
 *  kept, emptied). "Nothing": no tensor, chunk, shard or user metadata key in the index (another
 *  process may have written into the store since it was created; then it is kept). Shard files
 *  no commit recorded (a failed writer's) are removed with it, also from the other data
 *  directories, and data directories this open made. Runs under the writer lock; another
 *  writer or gc running means it is not ours alone: kept. Returns 1 when removed (the handle can
 *  then only be closed: writers, gc and upgrade fail with VT_EUSAGE), 0 when kept with nothing
 *  touched, negative on error (VT_EUSAGE: a writer of this handle is open; an I/O error while
 *  removing, named in the message, leaves the store partly removed). */
int vt_store_discard_new(vt_store *s);

/** Detail of the last error on this handle ("" if none). Owned by the handle; valid until the
 *  next call on @p s from any thread. */
const char *vt_store_errmsg(const vt_store *s);

/** The store directory as given to vt_store_open (owned by the handle). */
const char *vt_store_path(const vt_store *s);

/* ---- tensors ------------------------------------------------------------------------------- */

/** Quality of a quantized tensor measured at import against its source (NaN when not
 *  measured, +inf sqnr when exact). */
typedef struct vt_tensor_metrics {
    double sqnr_db;
    double cosine;
    double max_err;
} vt_tensor_metrics;

/** A tensor's record. Fields marked (in) are what vt_writer_tensor_begin reads; the others are
 *  computed by the store and filled by vt_store_stat / vt_writer_tensor_info. */
typedef struct vt_tensor_info {
    char name[VT_MAX_NAME];     /* (in) NUL-terminated, 1..255 bytes, no NUL inside */
    vt_dtype src_dtype;         /* (in) dtype of the source tensor */
    uint32_t ndim;              /* (in) 0..VT_MAX_DIMS */
    uint64_t dims[VT_MAX_DIMS]; /* (in) [ndim], dims[0] outermost */
    uint32_t format;            /* (in) vt_format | VT_FMT_SPARSE24, or VT_STORE_FMT_RAW */
    uint64_t rows, cols;        /* 2-D view: cols = last dim, rows = product of the others */
    uint64_t rows_per_chunk;    /* (in, 0 = choose from chunk_target_bytes) every chunk but the
                                   last holds exactly this many rows; a multiple of
                                   vt_quant_row_align(format, cols) */
    uint64_t n_chunks;          /* ceil(rows / rows_per_chunk); 0 for an empty tensor */
    uint64_t raw_bytes;         /* quantized bytes of the whole tensor, uncompressed */
    uint64_t stored_bytes;      /* bytes in shard files (after zstd, without padding) */
    float tensor_scale;         /* (in) nvfp4 global scale; 1 otherwise */
    uint64_t aux_bytes;         /* bytes of the aux blob (awq: cols f32 channel scales) */
    vt_tensor_metrics metrics;  /* (in) import metrics; may also be given at tensor_end */
    char source[VT_MAX_NAME];   /* (in) source file name (informational), may be "" */
    uint64_t id;                /* unique per store, never reused; chunks are keyed by it */
    uint64_t commit_time;       /* seconds since the epoch of the commit that wrote it */
} vt_tensor_info;

/** Look up tensor @p name. Errors: VT_ENOTFOUND (detail names the tensor). */
int vt_store_stat(vt_store *s, const char *name, vt_tensor_info *out);

/** Callback of vt_store_list: @p ti is valid during the call only. Return 0 to go on, anything
 *  else to stop (vt_store_list then returns that value). */
typedef int (*vt_store_list_fn)(void *ctx, const vt_tensor_info *ti);

/** Call @p fn for every tensor whose name matches the fnmatch(3) glob @p pattern (NULL or ""
 *  = all), in byte-wise name order, from one consistent snapshot. Returns 0, an error, or the
 *  callback's nonzero value. The callback must not start a writer on @p s. */
int vt_store_list(vt_store *s, const char *pattern, vt_store_list_fn fn, void *ctx);

/** Copy the aux blob of @p name (awq: cols f32 per-input-channel scales, little-endian) into
 *  @p dst of @p cap bytes; *len (may be NULL) gets its size. @p dst NULL with cap 0 queries
 *  the size (returns 0). Errors: VT_ENOTFOUND, -ERANGE (cap too small; *len still set). */
int vt_store_read_aux(vt_store *s, const char *name, void *dst, size_t cap, size_t *len);

/** Quantization parameters of a tensor for vt_dequantize: tensor_scale from @p ti, and the
 *  channel scales from @p aux (the blob of vt_store_read_aux, borrowed: it must outlive the
 *  use of *p), NULL when the tensor has none. */
void vt_store_tensor_params(const vt_tensor_info *ti, const float *aux, vt_quant_params *p);

/** Bytes of @p rows rows of a tensor of format @p fmt, source dtype @p dt and @p cols columns
 *  (vt_quant_bytes, or rows*cols*dtype size for VT_STORE_FMT_RAW). 0 on invalid input. */
uint64_t vt_store_format_bytes(uint32_t fmt, vt_dtype dt, uint64_t rows, uint64_t cols);

/* ---- chunks -------------------------------------------------------------------------------- */

/** Codec of a stored chunk. */
typedef enum vt_codec {
    VT_CODEC_NONE = 0,
    VT_CODEC_ZSTD = 1,
} vt_codec;

/** Where and how one chunk is stored. A chunk holds rows [row0, row0 + rows) of its tensor as
 *  raw_len quantized bytes (vt_store_format_bytes), stored as stored_len bytes (zstd frame when
 *  codec is ZSTD, else the raw bytes) at @p offset of shard @p shard_id. offset is a multiple
 *  of 4096 and the shard file holds zero padding up to the next multiple of 4096 after the
 *  chunk, so an O_DIRECT read of padded_len bytes at offset is always within the file. */
typedef struct vt_chunk_info {
    uint64_t tensor_id;
    uint64_t index;      /* 0 .. n_chunks-1 */
    uint64_t row0, rows; /* row range of the tensor */
    uint32_t shard_id;
    uint32_t codec;      /* vt_codec */
    uint64_t offset;     /* byte offset in the shard file, multiple of 4096 */
    uint64_t stored_len; /* bytes at offset (checksummed) */
    uint64_t padded_len; /* stored_len rounded up to 4096 */
    uint64_t raw_len;    /* bytes after decoding */
    uint64_t checksum;   /* XXH3_64bits_withSeed(stored bytes, stored_len, checksum_seed) */
    /** Seed of the checksum, derived from the record's key, not stored: XXH3_64bits of the
     *  16-byte key (u64 BE tensor_id, u64 BE index) in a format-2 store, so a chunk record
     *  that names another chunk's bytes fails its check; 0 in a format-1 store (where
     *  XXH3_64bits_withSeed with seed 0 is plain XXH3_64bits). */
    uint64_t checksum_seed;
} vt_chunk_info;

/** Info of chunk @p index of tensor @p name. Errors: VT_ENOTFOUND (tensor or chunk). */
int vt_store_chunk_info(vt_store *s, const char *name, uint64_t index, vt_chunk_info *out);

/** All chunks of @p name in index order, from one snapshot, into @p out[cap]; *n gets the
 *  tensor's chunk count (fill stops at cap; -ERANGE if cap < count). */
int vt_store_chunks(vt_store *s, const char *name, vt_chunk_info *out, uint64_t cap, uint64_t *n);

/** Absolute path of shard @p shard_id into @p buf[cap]. Errors: VT_ENOTFOUND, -ENAMETOOLONG,
 *  VT_ECORRUPT (the record would name a path outside the store's directories). */
int vt_store_shard_path(vt_store *s, uint32_t shard_id, char *buf, size_t cap);

/** Open shard @p shard_id for reading (O_RDONLY | O_NOFOLLOW | O_CLOEXEC, plus O_DIRECT when
 *  @p direct is nonzero) and return a new descriptor the caller owns and closes. For readers
 *  with their own I/O engine. Errors: VT_ENOTFOUND, VT_ECORRUPT (symlink or path outside the
 *  store), -errno. */
int vt_store_shard_open(vt_store *s, uint32_t shard_id, int direct, int *fd_out);

/** Check and decode the stored bytes of a chunk read by the caller: verifies the XXH3-64 of
 *  @p stored (ci->stored_len bytes, seeded with ci->checksum_seed) and decompresses into @p dst
 * (cap >= ci->raw_len).
 *  @p dst may equal @p stored for codec NONE (then nothing is copied). @p s may be NULL (no
 *  handle message). Errors: VT_ECORRUPT (checksum mismatch, bad zstd frame, wrong decoded
 *  length; detail names tensor id, chunk, shard and offset), -ERANGE (cap too small). */
int vt_store_chunk_decode(vt_store *s, const vt_chunk_info *ci, const void *stored, void *dst,
                          size_t cap);

/** Read chunk @p index of @p name: the raw (quantized, decompressed) bytes, checksum verified,
 *  into @p dst[cap]; *len (may be NULL) gets raw_len. An uncompressed chunk is read straight
 *  into dst and checksummed there, so on any error (VT_ECORRUPT included) the contents of
 *  dst[0, cap) are unspecified: never use them. Errors: VT_ENOTFOUND, -ERANGE,
 *  VT_ECORRUPT "tensor X chunk N (shard PATH @OFFSET): checksum mismatch" and the like. */
int vt_store_read_chunk(vt_store *s, const char *name, uint64_t index, void *dst, size_t cap,
                        size_t *len);

/** All chunks of @p name concatenated (raw_bytes bytes, the quantized tensor as
 *  vt_dequantize takes it) into @p dst[cap]. Errors as vt_store_read_chunk; on any error the
 *  contents of dst are unspecified (earlier chunks may be in place, the failing one partly). */
int vt_store_read_tensor_raw(vt_store *s, const char *name, void *dst, size_t cap);

/** Dequantize rows [row0, row0 + nrows) of @p name into @p dst as @p out_dtype (VT_DTYPE_F32,
 *  F16 or BF16), nrows * cols elements; @p cap is the byte capacity of dst. For nf4_dq tensors
 *  any row range works (whole chunks are decoded). Errors: -ERANGE (rows out of range, cap
 *  too small, or a finite value in the rows that out_dtype cannot hold: beyond f16's 65504,
 *  rounding past bf16's largest, a raw f64 value beyond f32; the message names row, column and
 *  value; stored infinities are returned as such), VT_EUNSUPPORTED (out_dtype), errors of
 *  vt_store_read_chunk; on any error the contents of dst are unspecified. */
int vt_store_read_rows(vt_store *s, const char *name, uint64_t row0, uint64_t nrows,
                       vt_dtype out_dtype, void *dst, size_t cap);

/* ---- metadata ------------------------------------------------------------------------------ */

/** Value of user metadata @p key (written by vt_writer_put_meta) into @p dst[cap]; *len (may be
 *  NULL) gets its size; dst NULL with cap 0 queries it (returns 0). Errors: VT_ENOTFOUND,
 *  -ERANGE (cap too small; *len still set). */
int vt_store_get_meta(vt_store *s, const char *key, void *dst, size_t cap, size_t *len);

/** Callback of vt_store_meta_list; key and value are valid during the call only. */
typedef int (*vt_store_meta_fn)(void *ctx, const char *key, const void *val, size_t len);

/** Call @p fn for each user metadata key starting with @p prefix (NULL = all) in key order. */
int vt_store_meta_list(vt_store *s, const char *prefix, vt_store_meta_fn fn, void *ctx);

/* ---- writing ------------------------------------------------------------------------------- */

typedef struct vt_store_writer vt_store_writer;
typedef struct vt_writer_tensor vt_writer_tensor;

/** Start a writer on @p s (opened RDWR). Holds the store's writer lock (an flock on
 *  STORE/LOCK) until commit or abort. Errors: -EBUSY (another writer or gc holds the lock, in
 *  this or another process), -EBADF (read-only handle). */
int vt_store_writer_begin(vt_store *s, vt_store_writer **out);

/** Declare a tensor. Reads the (in) fields of @p meta; rows/cols come from the shape. @p aux
 *  (copied) is the aux blob (awq: cols f32 scales), NULL/0 for none. *out stays valid until
 *  commit/abort and is owned by the writer. A name may be declared once per writer; a tensor
 *  of the same name already in the store is replaced at commit. Thread-safe.
 *  Errors: -EINVAL (bad name, shape, format/dtype combination, rows_per_chunk not aligned,
 *  aux of the wrong size), VT_EEXIST (name already declared in this writer). */
int vt_writer_tensor_begin(vt_store_writer *w, const vt_tensor_info *meta, const void *aux,
                           size_t aux_len, vt_writer_tensor **out);

/** The full record of a declared tensor as it will be committed (rows_per_chunk, n_chunks,
 *  raw_bytes...; stored_bytes counts the chunks put so far). */
int vt_writer_tensor_info(vt_store_writer *w, const vt_writer_tensor *t, vt_tensor_info *out);

/** Store chunk @p index of @p t: @p len bytes of quantized rows [index * rows_per_chunk, ...)
 *  exactly vt_store_format_bytes(...) long. Compresses (when the handle's zstd_level > 0 and it
 *  saves >= 5%), checksums the stored bytes, writes them at a 4096-aligned offset of the open
 *  shard (rolling to a new shard at the cap). Safe to call concurrently from many threads, in
 *  any chunk order. Errors: -EINVAL (index out of range, wrong length), VT_EEXIST (chunk
 *  already put), -ENOSPC/-EIO... (the writer stays usable; the chunk may be put again). */
int vt_writer_put_chunk(vt_store_writer *w, vt_writer_tensor *t, uint64_t index, const void *data,
                        size_t len);

/** Finish @p t: every chunk must have been put (VT_EUSAGE names the first missing one).
 *  @p m (may be NULL) replaces the metrics given at begin. */
int vt_writer_tensor_end(vt_store_writer *w, vt_writer_tensor *t, const vt_tensor_metrics *m);

/** Set user metadata @p key (1..255 bytes) to @p len bytes of @p val (copied) at commit. */
int vt_writer_put_meta(vt_store_writer *w, const char *key, const void *val, size_t len);

/** Make everything written visible: fdatasync each shard written (and its directory when the
 *  shard is new), then one LMDB write transaction records shards, tensors (replacing
 *  same-named ones, whose chunks become garbage), chunks and metadata. Frees @p w whatever
 *  the outcome; on error nothing of the writer is visible (bytes already written are garbage
 *  for vt_store_gc). Errors: VT_EUSAGE (a tensor not ended), -EIO/-ENOSPC..., VT_ELMDB. */
int vt_store_writer_commit(vt_store_writer *w);

/** Drop everything of @p w (NULL is a no-op) and free it. Nothing becomes visible. */
void vt_store_writer_abort(vt_store_writer *w);

/* ---- maintenance --------------------------------------------------------------------------- */

/** Remove the tensors matching the glob @p pattern in one transaction; *count (may be NULL)
 *  gets how many. Their chunks become garbage. Needs a RDWR handle (-EBADF otherwise). */
int vt_store_remove(vt_store *s, const char *pattern, uint64_t *count);

/** Store totals from one snapshot of the index plus a scan of the data directories. */
typedef struct vt_store_totals {
    uint64_t tensors, chunks, shards;
    uint64_t raw_bytes;                          /* sum of tensors' raw_bytes */
    uint64_t stored_bytes;                       /* sum of chunks' stored_len */
    uint64_t shard_bytes;                        /* sum of shard sizes recorded in the index */
    uint64_t garbage_bytes;                      /* shard_bytes - live padded chunks - headers, plus
                                                    bytes of shard files the index does not name
                                                    and of tails past a shard's recorded size */
    uint64_t orphan_files;                       /* shard files the index does not name */
    uint64_t stored_by_format[VT_FMT_COUNT + 1]; /* by base format; [VT_FMT_COUNT] = raw */
    uint64_t tensors_by_format[VT_FMT_COUNT + 1];
    uint32_t format_version;
} vt_store_totals;

/** Fill @p out. */
int vt_store_get_totals(vt_store *s, vt_store_totals *out);

/** What vt_store_gc did. */
typedef struct vt_store_gc_stats {
    uint64_t shards_before, shards_after;
    uint64_t bytes_before, bytes_after; /* bytes of shard files on disk */
    uint64_t chunks_moved, bytes_moved; /* live chunks copied out of compacted shards */
    uint64_t files_removed;             /* shard files deleted (compacted or orphaned) */
} vt_store_gc_stats;

/** Reclaim garbage (RDWR handle; takes the writer lock, -EBUSY if held): delete shard files the
 *  index does not name, cut shard tails past their recorded size, and compact every shard with
 *  garbage by copying its live chunks (checksums verified on the way) into new shards, syncing
 *  them, switching the index in one transaction, then deleting the old files. Safe against a
 *  crash at any step (docs/FORMAT.md). @p stats may be NULL. Errors: VT_ECORRUPT (a live chunk
 *  fails its checksum: nothing is changed; run verify and remove the tensor), I/O errors. */
int vt_store_gc(vt_store *s, vt_store_gc_stats *stats);

/** What vt_store_upgrade did. */
typedef struct vt_store_upgrade_stats {
    uint32_t from_version, to_version; /* equal when the store was at the newest version */
    uint64_t chunks, bytes_read;       /* chunk records rewritten, stored bytes read for them */
} vt_store_upgrade_stats;

/** Upgrade the store in place to VT_STORE_FORMAT_VERSION (RDWR handle; takes the writer lock,
 *  -EBUSY if held). From format 1: reads every chunk, checks it against its version-1
 *  checksum, and rewrites every chunk record with the key-bound version-2 checksum and the
 *  format version in one index transaction; shard files are not touched, so on any error or
 *  crash the store stays as it was (format 1). vtstore 0.1 cannot open the store afterwards.
 *  A store at the newest version is left alone (from_version == to_version). Other handles
 *  keep working. @p stats may be NULL. Errors: VT_ECORRUPT (a chunk fails its checksum, or
 *  the index is inconsistent: nothing changed; run verify), -EBUSY, I/O errors. */
int vt_store_upgrade(vt_store *s, vt_store_upgrade_stats *stats);

/** One problem found by vt_store_verify. Strings valid during the callback only. */
typedef struct vt_verify_problem {
    int code;           /* VT_ECORRUPT, VT_EFORMAT, -errno ... */
    const char *tensor; /* "" when not about a tensor */
    int64_t chunk;      /* chunk index, -1 when not about a chunk */
    uint32_t shard_id;  /* 0 when not about a shard */
    uint64_t offset;
    const char *message; /* complete human message naming tensor, chunk, shard path, offset */
} vt_verify_problem;

typedef void (*vt_verify_fn)(void *ctx, const vt_verify_problem *p);

typedef struct vt_verify_report {
    uint64_t tensors, chunks, bytes_read;
    uint64_t problems;
} vt_verify_report;

/** Read every chunk of every tensor and check checksums, lengths, codec, shard bounds, and the
 *  index's consistency (every record decodes, chunk counts and row coverage match the tensor,
 *  no chunk without a tensor, chunks do not overlap, shards exist with their recorded size).
 *  @p fn (may be NULL) is called for each problem; @p rep (may be NULL) gets the counts.
 *  Returns 0 when clean, VT_ECORRUPT when problems were found, another error when the check
 *  itself could not run. */
int vt_store_verify(vt_store *s, vt_verify_fn fn, void *ctx, vt_verify_report *rep);

#ifdef __cplusplus
}
#endif
#endif /* VTSTORE_STORE_H */
