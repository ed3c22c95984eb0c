/* tests/store/store_rawidx.h — raw LMDB edits of a store's index, for tests that damage it the
 * way a bug, a bad restore or a hand edit would. Each call opens the index on its own; close
 * vt_store handles of the store first. (An edit commits a newer LMDB txn than index/data.xxh
 * records, which the store accepts unchecked: the damage reaches the code under test.) */
#ifndef VT_STORE_RAWIDX_H
#define VT_STORE_RAWIDX_H

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <string.h>

/* Opens the index of store @p store (read-only when @p flags is MDB_RDONLY) and named db @p db
 * in a transaction. On 0 the caller ends *txn and closes *env; on an MDB code both are done. */
static inline int raw_begin(const char *store, const char *db, unsigned flags, MDB_env **env,
                            MDB_txn **txn, MDB_dbi *dbi) {
    char ip[4300];
    snprintf(ip, sizeof ip, "%s/index", store);
    int rc = mdb_env_create(env);
    if (rc) return rc;
    mdb_env_set_maxdbs(*env, 8);
    rc = mdb_env_open(*env, ip, MDB_NOTLS | flags, 0644);
    if (!rc) rc = mdb_txn_begin(*env, NULL, flags, txn);
    if (rc) {
        mdb_env_close(*env);
        return rc;
    }
    if ((rc = mdb_dbi_open(*txn, db, 0, dbi))) {
        mdb_txn_abort(*txn);
        mdb_env_close(*env);
    }
    return rc;
}

/* Put (or, with val NULL, delete) one key of named db @p db. Returns 0 or an MDB code. */
static inline int raw_put(const char *store, const char *db, const void *key, size_t klen,
                          const void *val, size_t vlen) {
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    int rc = raw_begin(store, db, 0, &env, &txn, &dbi);
    if (rc) return rc;
    MDB_val k = {klen, (void *)key}, d = {vlen, (void *)val};
    rc = val ? mdb_put(txn, dbi, &k, &d, 0) : mdb_del(txn, dbi, &k, NULL);
    if (!rc)
        rc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    mdb_env_close(env);
    return rc;
}

/* Copy the value of one key of named db @p db into @p out (at most @p cap bytes). */
static inline int raw_get(const char *store, const char *db, const void *key, size_t klen,
                          void *out, size_t cap, size_t *len) {
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    int rc = raw_begin(store, db, MDB_RDONLY, &env, &txn, &dbi);
    if (rc) return rc;
    MDB_val k = {klen, (void *)key}, d;
    rc = mdb_get(txn, dbi, &k, &d);
    if (!rc && d.mv_size <= cap) {
        memcpy(out, d.mv_data, d.mv_size);
        *len = d.mv_size;
    } else if (!rc) {
        rc = ENOMEM;
    }
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return rc;
}

#endif
