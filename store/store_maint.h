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
/** Add each chunk's padded length to its shard's live count (undecodable chunks skipped). */
int st_live_scan(vt_store *s, MDB_txn *txn, st_shard_tab *tab);

/** Called for each file named like a shard ("shard-NNNNNN.vts") in a data directory. */
typedef int (*st_dir_fn)(void *ctx, uint32_t dir, uint32_t id, const struct stat *st);
/** Scan every available data directory; stops at the first nonzero return of @p fn. */
int st_dir_scan(vt_store *s, st_dir_fn fn, void *ctx);

#endif
