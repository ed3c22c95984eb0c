/* LMDB environment plumbing: transactions under the map-resize lock (and a check of LMDB's lock
 * table before writing), map growth, error mapping, and the per-handle error message. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* LMDB's lock table (index/lock.mdb) records the id of the last commit, mti_txnid; a write txn
 * gets that id + 1 and starts from the tree of meta page (id & 1). The first process to open the
 * environment (it holds lock.mdb exclusively meanwhile) resets the table, mti_txnid = 0, and sets
 * mti_txnid from the meta pages at the end of its mdb_env_open (mdb_env_share_locks). An opener
 * killed in between (a SIGKILLed `vtstore get`) leaves 0 to the process that was waiting for the
 * lock, and to every process that opens while one of them still has it open: LMDB 0.9 does not
 * check it. A write txn then gets id 1 and the tree of meta slot 0, and its commit writes meta
 * slot 1 with txnid 1 -- a newest commit in slot 1 is lost, the index goes back to slot 0's txn,
 * the commit itself is hidden behind it, and index/data.xxh (not maintained for it: its id is not
 * above the last txnid) makes the next open refuse the index ("txn N is older than the N+1
 * recorded", or a meta page checksum mismatch). Under LMDB's writer mutex the recorded id always
 * equals the meta pages' last txnid (a writer that died mid-commit is repaired by LMDB on the next
 * lock), so a write txn whose id is not last + 1 has such a table: repair it (below) while the
 * mutex is held, and begin again; if it cannot be repaired, refuse to write. */

#define LMDB_LOCK_MAGIC 0xBEEFC0DEu /* MDB_MAGIC */

/* Set mti_txnid to @p last where it holds @p stale; 0, or -1 with the reason in @p why. The lock
 * file begins with MDB_txbody {u32 magic, u32 format, reader mutex (pthread_mutex_t, robust),
 * size_t txnid, ...} in LMDB 0.9 on Linux; the magic, and the stale value LMDB just handed out,
 * must be found there, else nothing is written. Goes through LMDB's own descriptor of lock.mdb:
 * opening and closing another one would drop this process's fcntl locks on the file, LMDB's
 * record that it has the environment open. The caller holds the writer mutex; readers reread the
 * word until stable, an aligned store is what they expect. */
static int lock_table_repair(vt_store *s, uint64_t stale, uint64_t last, char *why, size_t cap) {
    struct stat want;
    if (fstatat(s->root_fd, "index/lock.mdb", &want, 0)) {
        snprintf(why, cap, "index/lock.mdb: %s", strerror(errno));
        return -1;
    }
    size_t off =
        (8 + sizeof(pthread_mutex_t) + sizeof(size_t) - 1) / sizeof(size_t) * sizeof(size_t);
    long pg = sysconf(_SC_PAGESIZE);
    if (pg <= 0 || off + sizeof(size_t) > (size_t)pg ||
        (uint64_t)want.st_size < off + sizeof(size_t)) {
        snprintf(why, cap, "index/lock.mdb is too short");
        return -1;
    }
    DIR *d = opendir("/proc/self/fd");
    if (!d) {
        snprintf(why, cap, "/proc/self/fd: %s", strerror(errno));
        return -1;
    }
    int fd = -1;
    for (struct dirent *e; fd < 0 && (e = readdir(d)) != NULL;) {
        char *end;
        long n = strtol(e->d_name, &end, 10);
        struct stat st;
        if (*end || end == e->d_name || n < 0 || n > 1 << 30 || n == dirfd(d) || fstat((int)n, &st))
            continue;
        int fl = fcntl((int)n, F_GETFL);
        if (st.st_dev == want.st_dev && st.st_ino == want.st_ino && fl >= 0 &&
            (fl & O_ACCMODE) == O_RDWR)
            fd = (int)n;
    }
    closedir(d);
    if (fd < 0) {
        snprintf(why, cap, "LMDB's descriptor of index/lock.mdb not found");
        return -1;
    }
    uint8_t *m = mmap(NULL, (size_t)pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        snprintf(why, cap, "mapping index/lock.mdb: %s", strerror(errno));
        return -1;
    }
    int rc = -1;
    size_t *t = (size_t *)(void *)(m + off);
    if (__atomic_load_n((uint32_t *)(void *)m, __ATOMIC_SEQ_CST) == LMDB_LOCK_MAGIC &&
        __atomic_load_n(t, __ATOMIC_SEQ_CST) == (size_t)stale) {
        __atomic_store_n(t, (size_t)last, __ATOMIC_SEQ_CST);
        rc = 0;
    } else {
        snprintf(why, cap, "index/lock.mdb has a layout this build does not know");
    }
    munmap(m, (size_t)pg);
    return rc;
}

int st_txn_begin(vt_store *s, int rdonly, MDB_txn **txn) {
    for (int tries = 0, settled = 0, repairs = 0;; tries++) {
        pthread_rwlock_rdlock(&s->resize_lock);
        int rc = mdb_txn_begin(s->env, NULL, rdonly ? MDB_RDONLY : 0, txn);
        if (rc == 0 && rdonly) {
            /* a read of a read-write handle must see the last commit (a writer reads its ids and
             * counters before its write txn): one that does not, once, is settled under the
             * writer mutex, which repairs a broken lock table (another process's commit in
             * flight is the harmless other cause). A read-only handle cannot take the mutex:
             * until a writer repairs the table, its reads see one of the last two commits. */
            if (settled || !(s->flags & VT_STORE_RDWR) ||
                (uint64_t)mdb_txn_id(*txn) == st_last_txnid(s))
                return 0;
            mdb_txn_abort(*txn);
            *txn = NULL;
            pthread_rwlock_unlock(&s->resize_lock);
            settled = 1;
            MDB_txn *w;
            if ((rc = st_txn_begin(s, 0, &w))) return rc;
            st_txn_abort(s, w);
            continue;
        }
        if (rc == 0) {
            uint64_t id = (uint64_t)mdb_txn_id(*txn), last = st_last_txnid(s);
            if (id == last + 1) return 0;
            /* a broken lock table (see above): repair it under the writer mutex, begin again */
            char why[256] = "it went wrong again";
            int e = repairs++ < 2 ? lock_table_repair(s, id - 1, last, why, sizeof why) : -1;
            mdb_txn_abort(*txn);
            *txn = NULL;
            pthread_rwlock_unlock(&s->resize_lock);
            if (!e) {
                vt_log(VT_LOG_WARN,
                       "store %s: repaired index/lock.mdb: it gave txn %llu as the last commit, "
                       "the index is at txn %llu (a process was killed while opening the store)",
                       s->path, (unsigned long long)(id - 1), (unsigned long long)last);
                continue;
            }
            return st_fail(s, VT_ELMDB,
                           "store %s: index/lock.mdb gives txn %llu as the last commit but the "
                           "index is at txn %llu (a process was killed while opening the store); "
                           "not writing, a commit would roll the index back (cannot repair the "
                           "lock file: %s; it is reset when no process has the store open)",
                           s->path, (unsigned long long)(id - 1), (unsigned long long)last, why);
        }
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
