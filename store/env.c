/* LMDB environment plumbing: transactions under the map-resize lock, map growth, error
 * mapping, and the per-handle error message. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "store_internal.h"

int st_fail(vt_store *s, int code, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    vt_fail(code, "%s", buf);
    if (s) {
        pthread_mutex_lock(&s->mu);
        snprintf(s->errmsg, sizeof s->errmsg, "%s", buf);
        pthread_mutex_unlock(&s->mu);
    }
    return code;
}

int st_keep(vt_store *s, int code) {
    if (s && code) {
        pthread_mutex_lock(&s->mu);
        snprintf(s->errmsg, sizeof s->errmsg, "%s", vt_last_error());
        pthread_mutex_unlock(&s->mu);
    }
    return code;
}

const char *vt_store_errmsg(const vt_store *s) {
    return s ? s->errmsg : "";
}

int st_mdb_code(int rc) {
    if (rc == 0) return 0;
    if (rc > 0) return -rc; /* LMDB passes errno values through */
    if (rc == MDB_NOTFOUND) return VT_ENOTFOUND;
    if (rc == MDB_VERSION_MISMATCH || rc == MDB_INVALID) return VT_EFORMAT;
    if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND) return VT_ECORRUPT;
    return VT_ELMDB;
}

int st_txn_begin(vt_store *s, int rdonly, MDB_txn **txn) {
    for (int tries = 0;; tries++) {
        pthread_rwlock_rdlock(&s->resize_lock);
        int rc = mdb_txn_begin(s->env, NULL, rdonly ? MDB_RDONLY : 0, txn);
        if (rc == 0) return 0;
        pthread_rwlock_unlock(&s->resize_lock);
        if (rc == MDB_MAP_RESIZED && tries < 8) {
            /* another process grew the map: adopt its size (no txn of ours may be open) */
            pthread_rwlock_wrlock(&s->resize_lock);
            mdb_env_set_mapsize(s->env, 0);
            pthread_rwlock_unlock(&s->resize_lock);
            continue;
        }
        return st_fail(s, st_mdb_code(rc), "store %s: cannot begin index transaction: %s", s->path,
                       mdb_strerror(rc));
    }
}

void st_txn_abort(vt_store *s, MDB_txn *txn) {
    if (!txn) return;
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&s->resize_lock);
}

int st_txn_commit(vt_store *s, MDB_txn *txn) {
    /* the only mdb_txn_commit of the store: a write commit keeps index/data.xxh current */
    int wr = st_txn_is_write(s, txn);
    if (wr) {
        int e = st_sum_mark_pending(s);
        if (e) {
            mdb_txn_abort(txn);
            pthread_rwlock_unlock(&s->resize_lock);
            return e;
        }
    }
    int rc = mdb_txn_commit(txn);
    pthread_rwlock_unlock(&s->resize_lock);
    if (wr) st_sum_refresh(s); /* also after a failed commit: it may have written free pages */
    if (rc == MDB_MAP_FULL) return rc; /* callers grow and retry */
    if (rc)
        return st_fail(s, st_mdb_code(rc), "store %s: index commit failed: %s", s->path,
                       mdb_strerror(rc));
    return 0;
}

int st_map_grow(vt_store *s) {
    pthread_rwlock_wrlock(&s->resize_lock);
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    size_t want = info.me_mapsize * 2;
    if (want < ST_DEFAULT_MAP_SIZE) want = ST_DEFAULT_MAP_SIZE;
    int rc = mdb_env_set_mapsize(s->env, want);
    pthread_rwlock_unlock(&s->resize_lock);
    if (rc)
        return st_fail(s, st_mdb_code(rc), "store %s: cannot grow index map to %zu bytes: %s",
                       s->path, want, mdb_strerror(rc));
    vt_log(VT_LOG_DEBUG, "store %s: index map grown to %zu bytes", s->path, want);
    return 0;
}

int st_meta_get_u64(vt_store *s, MDB_txn *txn, const char *key, uint64_t *v) {
    MDB_val k = {strlen(key), (void *)key}, d;
    int rc = mdb_get(txn, s->db_meta, &k, &d);
    if (rc == MDB_NOTFOUND) return VT_ENOTFOUND;
    if (rc)
        return st_fail(s, st_mdb_code(rc), "store %s: reading %s: %s", s->path, key,
                       mdb_strerror(rc));
    if (d.mv_size == 8)
        *v = st_le64(d.mv_data);
    else if (d.mv_size == 4)
        *v = st_le32(d.mv_data);
    else
        return st_fail(s, VT_EFORMAT, "store %s: meta %s has length %zu", s->path, key, d.mv_size);
    return 0;
}

static int is_mdb_code(int rc) {
    return rc > 0 || (rc >= MDB_KEYEXIST && rc <= MDB_LAST_ERRCODE);
}

int st_write_txn(vt_store *s, st_write_fn fn, void *ctx, const char *what) {
    for (;;) {
        MDB_txn *txn;
        int rc = st_txn_begin(s, 0, &txn);
        if (rc) return rc;
        int m = fn(s, txn, ctx);
        if (m) {
            st_txn_abort(s, txn);
            if (m == MDB_MAP_FULL) {
                if ((rc = st_map_grow(s))) return rc;
                continue;
            }
            if (!is_mdb_code(m)) return m;
            return st_fail(s, st_mdb_code(m), "store %s: %s: %s", s->path, what, mdb_strerror(m));
        }
        m = st_txn_commit(s, txn);
        if (m == MDB_MAP_FULL) {
            if ((rc = st_map_grow(s))) return rc;
            continue;
        }
        return m;
    }
}
