/* store/store_maint.h — shard table and directory scan shared by totals, gc and verify
 * (private to the store module). */
#ifndef VT_STORE_MAINT_H
#define VT_STORE_MAINT_H

#include <sys/stat.h>

#include "store_internal.h"

typedef struct st_shard_ent {
    st_shard_rec rec;
    uint64_t live;   /* padded bytes of chunks the index places in this shard */
    uint64_t chunks; /* number of those chunks */
} st_shard_ent;

/** Every shard record, sorted by id. */
typedef struct st_shard_tab {
    st_shard_ent *e;
    size_t n;
} st_shard_tab;

/** Load the shard table from @p txn (fails on an undecodable record). */
int st_shards_load(vt_store *s, MDB_txn *txn, st_shard_tab *tab);
void st_shards_free(st_shard_tab *tab);
/** Entry of shard @p id or NULL. */
st_shard_ent *st_shards_find(st_shard_tab *tab, uint32_t id);
/** Add each chunk's padded length to its shard's live count. VT_ECORRUPT with a message naming
 *  the first chunk record that does not decode, names a shard with no record, or reaches past
 *  its shard's recorded size (gc must not treat that shard's bytes as garbage). */
int st_live_scan(vt_store *s, MDB_txn *txn, st_shard_tab *tab);

/** The id counters of the meta database and the largest ids in use. */
typedef struct st_counters {
    uint64_t next_tensor; /* vt.next_tensor_id */
    uint64_t max_tensor;  /* largest tensor id of a tensor record or chunk key; 0 if none */
    uint32_t next_shard;  /* vt.next_shard_id */
    uint32_t max_shard;   /* largest shard record id; 0 if none */
} st_counters;

/** Read a counter that must be exactly @p len (4 or 8) bytes: VT_ENOTFOUND when absent,
 *  VT_ECORRUPT naming the key when its length differs. */
int st_counter_get(vt_store *s, MDB_txn *txn, const char *key, size_t len, uint64_t *v);
/** Read both counters and the largest ids in use (the last shard key, the largest tensor id
 *  over the tensor records and the last chunk key) without a full chunk walk. VT_ECORRUPT with
 *  a message naming the counter, its value and the largest id unless each counter has its
 *  length, is above its largest id and can hand out another id. */
int st_counters_check(vt_store *s, MDB_txn *txn, st_counters *c);

/** Called for each file named like a shard ("shard-NNNNNN.vts") in a data directory. */
typedef int (*st_dir_fn)(void *ctx, uint32_t dir, uint32_t id, const struct stat *st);
/** Scan every available data directory; stops at the first nonzero return of @p fn. */
int st_dir_scan(vt_store *s, st_dir_fn fn, void *ctx);

#endif
