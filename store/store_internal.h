/* store/store_internal.h — private structures of the store module (not public). The on-disk
 * encodings implemented here are specified in docs/FORMAT.md. */
#ifndef VT_STORE_INTERNAL_H
#define VT_STORE_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdarg.h>

#include "vtstore/store.h"

#define ST_ALIGN              4096u
#define ST_SHARD_HEADER       4096u
#define ST_SHARD_MAGIC        "VTSHARD1"
#define ST_STORE_ID_LEN       16
#define ST_TENSOR_REC_VERSION 1
/* chunk record version = the store's format version: 1 unseeded checksum, 2 seeded with the
 * key's hash (docs/FORMAT.md section 3.3) */
#define ST_CHUNK_REC_V1         1
#define ST_CHUNK_REC_V2         2
#define ST_SHARD_REC_VERSION    1
#define ST_DIRS_REC_VERSION     1
#define ST_CHUNK_REC_LEN        56
#define ST_SHARD_REC_LEN        16
#define ST_TENSOR_REC_FIXED     104
#define ST_MAX_AUX              (1ull << 30)
#define ST_DEFAULT_SHARD_CAP    (1ull << 30)
#define ST_DEFAULT_CHUNK_TARGET (2ull << 20)
#define ST_DEFAULT_MAP_SIZE     (64ull << 20)

/* meta keys */
#define ST_KEY_VERSION     "vt.format_version"
#define ST_KEY_STORE_ID    "vt.store_id"
#define ST_KEY_NEXT_TENSOR "vt.next_tensor_id"
#define ST_KEY_NEXT_SHARD  "vt.next_shard_id"
#define ST_KEY_DIRS        "vt.data_dirs"
#define ST_USER_PREFIX     "kv."

#define ST_MADE_DIR    1u /* the data directory itself */
#define ST_MADE_SHARDS 2u /* its vts-<store id>/ shard directory */

static inline uint64_t st_round_up(uint64_t x, uint64_t a) {
    return (x + a - 1) / a * a;
}

/* A decoded data-directory list: entry 0 is the store's own data/ directory (path ""). */
typedef struct st_dirs {
    uint32_t n;
    char *path[VT_STORE_MAX_DIRS]; /* recorded path (absolute; "" for the root) */
} st_dirs;

typedef struct st_fd_entry {
    uint32_t shard_id;
    int fd;
} st_fd_entry;

struct vt_store {
    char *path;    /* as given */
    char *abspath; /* realpath of the store directory */
    unsigned flags;
    vt_store_options opt;
    MDB_env *env;
    MDB_dbi db_meta, db_tensors, db_chunks, db_shards;
    pthread_rwlock_t resize_lock; /* txns hold it shared; a map resize holds it exclusive */
    uint8_t store_id[ST_STORE_ID_LEN];
    /* vt.format_version: 1 or 2; set at open (load_meta), refreshed under the writer lock by
     * writers and gc, raised by vt_store_upgrade: read it with st_fv */
    uint32_t format_version;
    st_dirs dirs;
    /* entries of dirs already in the index; the rest were named by this RDWR open and are
     * recorded by its next commit (writer or gc), or undone at close (open.c) */
    uint32_t dirs_recorded;
    uint8_t dir_made[VT_STORE_MAX_DIRS]; /* ST_MADE_*: what this open created for a new dir */
    int dir_fd[VT_STORE_MAX_DIRS];       /* O_DIRECTORY fds of each data dir's shard directory */
    int root_fd;
    pthread_mutex_t mu; /* guards fds, errmsg, writer */
    st_fd_entry *fds;
    size_t n_fds, cap_fds;
    char errmsg[1024];
    struct vt_store_writer *writer; /* open writer of this handle, if any */
    int created;                    /* ST_CREATED_*: what this handle's VT_STORE_CREATE open made */
    int discarded; /* vt_store_discard_new removed the store: nothing may write any more */
};

enum { ST_CREATED_DIR = 2, ST_CREATED_IN = 1 }; /* made the directory / filled an empty one */

/** The handle's idea of the store's format version (another thread may raise it). */
static inline uint32_t st_fv(vt_store *s) {
    return __atomic_load_n(&s->format_version, __ATOMIC_RELAXED);
}

/* ---- errors ---- */
/** Format a message, set it as thread-local detail and on the handle (may be NULL), return code. */
int st_fail(vt_store *s, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/** Copy the current thread-local detail onto the handle and return code (for errors set by
 *  lower layers with vt_fail). */
int st_keep(vt_store *s, int code);
/** Read vt.format_version in @p txn, refuse a missing, 0 or newer one (VT_EFORMAT,
 *  VT_EVERSION), and set the handle's (st_fv). Writers and gc call it under the writer lock:
 *  another process may have upgraded the store since this handle opened it. */
int st_version_load(vt_store *s, MDB_txn *txn);
/** Map an LMDB return code to a vtstore code (errno values stay, others become VT_ELMDB). */
int st_mdb_code(int mdb_rc);

/* ---- LMDB ---- */
/** Begin a txn (read-only when rdonly) holding the resize lock shared; adopts a map grown by
 *  another process. */
int st_txn_begin(vt_store *s, int rdonly, MDB_txn **txn);
/** Abort/commit and drop the resize lock. */
void st_txn_abort(vt_store *s, MDB_txn *txn);
int st_txn_commit(vt_store *s, MDB_txn *txn);
/** Grow the map (no txn of this handle may be open in the calling thread). */
int st_map_grow(vt_store *s);
/** Read a uint64 LE / uint32 LE meta value; VT_ENOTFOUND if absent. */
int st_meta_get_u64(vt_store *s, MDB_txn *txn, const char *key, uint64_t *v);

/* ---- little-endian and big-endian helpers ---- */
static inline void st_put_le16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void st_put_le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void st_put_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t st_le16(const uint8_t *p) {
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t st_le32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static inline uint64_t st_le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static inline void st_put_be32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * (3 - i)));
}
static inline void st_put_be64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * (7 - i)));
}
static inline uint32_t st_be32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v = (v << 8) | p[i];
    return v;
}
static inline uint64_t st_be64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return v;
}

/* ---- records (record.c) ---- */
typedef struct st_shard_rec {
    uint32_t id;
    uint16_t dir;
    uint8_t flags;
    uint64_t size; /* committed length of the file, multiple of 4096, >= header */
} st_shard_rec;

/** Encoded size of a tensor record. */
size_t st_tensor_rec_size(const vt_tensor_info *ti);
/** Encode @p ti and its aux blob into @p out (st_tensor_rec_size bytes). */
void st_tensor_rec_encode(const vt_tensor_info *ti, const void *aux, uint8_t *out);
/** Decode and validate a tensor record (key = name); *aux (may be NULL) points into @p val.
 *  Returns 0 or VT_EFORMAT with a detail (vt_fail) naming the tensor and the bad field. */
int st_tensor_rec_decode(const void *key, size_t klen, const void *val, size_t vlen,
                         vt_tensor_info *ti, const void **aux);
/** Encode @p ci as a chunk record of a store of format version @p fv (1 or 2). */
void st_chunk_rec_encode(const vt_chunk_info *ci, uint32_t fv, uint8_t out[ST_CHUNK_REC_LEN]);
void st_chunk_key(uint64_t tensor_id, uint64_t index, uint8_t key[16]);
/** Checksum seed of chunk (@p tensor_id, @p index) in a store of format version @p fv. */
uint64_t st_chunk_seed(uint32_t fv, uint64_t tensor_id, uint64_t index);
/** Decode and validate a chunk record of a store of format version @p fv (1 or 2; 0 accepts
 *  either record version, for the fuzz entry); sets ci->checksum_seed. */
int st_chunk_rec_decode(const void *key, size_t klen, const void *val, size_t vlen, uint32_t fv,
                        vt_chunk_info *ci);
void st_shard_rec_encode(const st_shard_rec *r, uint8_t out[ST_SHARD_REC_LEN]);
int st_shard_rec_decode(const void *key, size_t klen, const void *val, size_t vlen,
                        st_shard_rec *r);
/** Encoded data-dir list into a vt_malloc'ed buffer. */
int st_dirs_encode(const st_dirs *d, uint8_t **out, size_t *len);
int st_dirs_decode(const void *val, size_t len, st_dirs *d);
void st_dirs_free(st_dirs *d);
/** 1 if @p p (length @p l) may be recorded as an extra data directory: absolute, normalised,
 *  not "/" (the rule st_dirs_decode applies). */
int st_dir_path_valid(const char *p, size_t l);
/** Validate the derived fields of a tensor (rows/cols from dims, rows_per_chunk alignment,
 *  n_chunks, raw_bytes); used by the decoder and by tensor_begin. */
int st_tensor_check(vt_tensor_info *ti, int fill);

/** Fuzz entry: decode @p data as each kind of index record; never crashes. Returns 0 if any
 *  kind decoded, else the error. */
int vt_store_record_decode_test(const void *data, size_t len);

/* ---- shards and paths (shard.c) ---- */
/** File name of shard @p id ("shard-000042.vts") into buf (>= 32 bytes). */
void st_shard_name(uint32_t id, char *buf, size_t cap);
/** Absolute path of the shard directory of data dir @p dir. */
int st_dir_path(vt_store *s, uint32_t dir, char *buf, size_t cap);
/** Fd (cached, owned by the handle) of shard @p r for reading. */
int st_shard_fd(vt_store *s, const st_shard_rec *r, int *fd);
/** Look up a shard record in @p txn. */
int st_shard_get(vt_store *s, MDB_txn *txn, uint32_t id, st_shard_rec *r);
/** Create a new shard file (header written, not synced) in dir @p dir; returns an O_RDWR fd.
 *  Creates shard *id, or the next id whose file does not exist yet (an existing file is never
 *  replaced: it is left for gc); sets *id to the id used. -EEXIST after 64 existing files. */
int st_shard_create(vt_store *s, uint32_t *id, uint32_t dir, int *fd);
/** fsync the shard directory of data dir @p dir. */
int st_dir_sync(vt_store *s, uint32_t dir);
/** Inside a txn: check that the index's data-directory list is still the one this handle
 *  loaded (-EBUSY otherwise: another process added a directory since the open) and, when
 *  @p put and the open named new directories, put the handle's list. Returns 0, an MDB code
 *  or a negative vt code. */
int st_dirs_record(vt_store *s, MDB_txn *txn, int put);
/** After a commit that ran st_dirs_record(put=1): the handle's directories are recorded. */
void st_dirs_recorded(vt_store *s);
/** Forget a cached fd (after gc deleted the file). */
void st_fd_forget(vt_store *s, uint32_t shard_id);

/* ---- codec (codec.c) ---- */
/** XXH3-64 of a chunk's ci->stored_len stored bytes under ci->checksum_seed. */
uint64_t st_chunk_sum(const vt_chunk_info *ci, const void *stored);
/** Compress @p src into a vt_malloc'ed buffer when that saves >= 5%; *out = NULL otherwise. */
int st_compress(int level, const void *src, size_t n, void **out, size_t *out_len);
/** Decompress a zstd frame into exactly @p raw_len bytes. */
int st_decompress(const void *src, size_t n, void *dst, size_t raw_len);

/* ---- reads (read.c) ---- */
/** Read the stored bytes of chunk @p ci into @p buf (>= stored_len bytes) and check them
 *  against the record (shard bounds, checksum); @p where[wcap] gets "SHARD_PATH @OFFSET" for
 *  messages. @p name for messages. */
int st_read_stored(vt_store *s, MDB_txn *txn, const char *name, const vt_chunk_info *ci, void *buf,
                   char *where, size_t wcap);
/** Read and decode chunk @p ci (record from the index) into dst. @p name for messages. */
int st_read_chunk_ci(vt_store *s, MDB_txn *txn, const char *name, const vt_chunk_info *ci,
                     void *dst, size_t cap);
/** Tensor record lookup in a txn. */
int st_tensor_get(vt_store *s, MDB_txn *txn, const char *name, vt_tensor_info *ti,
                  const void **aux);

/** Check decoded chunk record @p ci (its index in ci->index) against the chunking rule of
 *  @p ti: VT_ECORRUPT naming tensor and chunk when its rows or raw length differ. */
int st_chunk_check(vt_store *s, const vt_tensor_info *ti, const vt_chunk_info *ci);
/** Chunk @p index of @p ti from the index, checked against the tensor's chunking rule. */
int st_chunk_get(vt_store *s, MDB_txn *txn, const vt_tensor_info *ti, uint64_t index,
                 vt_chunk_info *ci);
/** Delete tensor @p name and its chunk records in a write txn; returns an MDB code. */
int st_delete_tensor(vt_store *s, MDB_txn *txn, const char *name, int *found);
/** Run @p fn in a write txn, growing the map and retrying on MDB_MAP_FULL. @p fn returns an
 *  MDB code (or a negative vt code, which aborts). */
typedef int (*st_write_fn)(vt_store *s, MDB_txn *txn, void *ctx);
int st_write_txn(vt_store *s, st_write_fn fn, void *ctx, const char *what);

/* ---- index checksum (index_sum.c; docs/FORMAT.md section 1.1) ---- */
#define ST_SUM_FILE "data.xxh" /* in STORE/index */
/** 1 if @p txn is a write txn (its id is past the env's last committed txnid). */
/* The id of the index's last commit, from its meta pages (0 if LMDB cannot say). */
uint64_t st_last_txnid(vt_store *s);
int st_txn_is_write(vt_store *s, MDB_txn *txn);
/** Inside a write txn, before its commit: mark index/data.xxh pending (in place, synced) so no
 *  reader compares it with pages the commit is about to write. 0 if there is no record. */
int st_sum_mark_pending(vt_store *s);
/** After a write commit (successful or not): record txnid, size and XXH3-64 of data.mdb in a
 *  fresh index/data.xxh under LMDB's writer mutex. Failures are logged and tolerated (the
 *  record stays pending, which readers accept unchecked). */
void st_sum_refresh(vt_store *s);
/** Before any txn walks the index: compare data.mdb with index/data.xxh. 0 when it matches or
 *  cannot be checked (no record, pending, older record: logged at info); VT_ECORRUPT with a
 *  message naming index/data.mdb when it was damaged; -errno when it cannot be read. */
int st_sum_check(vt_store *s);

/* ---- locking (lock.c) ---- */
/** Take the store's writer lock (flock LOCK_EX|LOCK_NB on STORE/LOCK); returns the fd. */
int st_writer_lock(vt_store *s, int *fd);
void st_writer_unlock(int fd);

#endif
