/* The index checksum: LMDB has no page checksums and trusts every page it maps, so damage to
 * index/data.mdb can crash the reader inside LMDB. After every write commit the store records
 * index/data.xxh = {LMDB txnid, data.mdb size, XXH3-64 of data.mdb}; opens and verify compare
 * it before any transaction walks the B-tree (docs/FORMAT.md section 1.1).
 *
 * Every writer of data.xxh holds LMDB's writer mutex (inside a write txn), so the record and
 * data.mdb change in one order: before a commit writes pages the record is marked pending in
 * place; after the commit (or its failure) it is replaced by a fresh record (temp file + rename).
 * A crash or a failed refresh leaves it pending, which readers accept unchecked. Readers take
 * no lock: they read record, txnid, hash, txnid, record and retry while either changed. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "store_internal.h"

#define SUM_MAGIC   "VTIDXSUM"
#define SUM_VERSION 1
#define SUM_LEN     64
#define SUM_PENDING 1u
#define SUM_PATH    "index/" ST_SUM_FILE
#define SUM_TMP     "index/" ST_SUM_FILE ".tmp"

typedef struct sum_rec {
    uint32_t flags;
    uint64_t txnid, size;
    uint64_t dhash; /* XXH3-64 of the data pages: bytes [2 psize, size) */
    uint64_t mhash; /* XXH3-64 of the two meta pages: bytes [0, 2 psize) */
    uint32_t psize;
} sum_rec;

static void rec_encode(const sum_rec *r, uint8_t b[SUM_LEN]) {
    memset(b, 0, SUM_LEN);
    memcpy(b, SUM_MAGIC, 8);
    st_put_le32(b + 8, SUM_VERSION);
    st_put_le32(b + 12, r->flags);
    st_put_le64(b + 16, r->txnid);
    st_put_le64(b + 24, r->size);
    st_put_le64(b + 32, r->dhash);
    st_put_le64(b + 40, r->mhash);
    st_put_le32(b + 48, r->psize);
    st_put_le64(b + 56, XXH3_64bits(b, 56));
}

enum { REC_OK = 0, REC_MISSING = 1, REC_INVALID = 2 };

/* Read the record: REC_OK, REC_MISSING, REC_INVALID (bad magic, version, checksum: a torn
 * in-place write or damage), or -errno. */
static int rec_read(vt_store *s, uint8_t b[SUM_LEN], sum_rec *r) {
    int fd = openat(s->root_fd, SUM_PATH, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return errno == ENOENT ? REC_MISSING : (errno == ELOOP ? REC_INVALID : -errno);
    struct stat st;
    int rc = fstat(fd, &st) ? -errno : 0;
    if (!rc && st.st_size != SUM_LEN) rc = REC_INVALID;
    if (!rc) rc = vt_pread_full(fd, b, SUM_LEN, 0);
    close(fd);
    if (rc == VT_EFORMAT) return REC_INVALID; /* shrank meanwhile */
    if (rc) return rc;
    if (memcmp(b, SUM_MAGIC, 8) || st_le32(b + 8) != SUM_VERSION ||
        st_le64(b + 56) != XXH3_64bits(b, 56))
        return REC_INVALID;
    r->flags = st_le32(b + 12);
    r->txnid = st_le64(b + 16);
    r->size = st_le64(b + 24);
    r->dhash = st_le64(b + 32);
    r->mhash = st_le64(b + 40);
    r->psize = st_le32(b + 48);
    if (!(r->flags & SUM_PENDING) &&
        (r->psize < 512 || (r->psize & (r->psize - 1)) || r->size < 2ull * r->psize))
        return REC_INVALID;
    return REC_OK;
}

/* XXH3-64 of bytes [from, to) of data.mdb; 0 or -errno / VT_EFORMAT (file ended early). */
static int hash_range(vt_store *s, uint64_t from, uint64_t to, uint64_t *out) {
    mdb_filehandle_t fd;
    if (mdb_env_get_fd(s->env, &fd)) return -EBADF;
    size_t cap = 1u << 20;
    uint8_t *buf = vt_malloc(cap);
    if (!buf) return -ENOMEM;
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    int rc = 0;
    for (uint64_t off = from; off < to && !rc; off += cap) {
        size_t k = to - off < cap ? (size_t)(to - off) : cap;
        if (!(rc = vt_pread_full(fd, buf, k, off))) XXH3_64bits_update(&st, buf, k);
    }
    vt_free(buf);
    *out = XXH3_64bits_digest(&st);
    return rc;
}

uint64_t st_last_txnid(vt_store *s) {
    MDB_envinfo ei;
    return mdb_env_info(s->env, &ei) ? 0 : (uint64_t)ei.me_last_txnid;
}

int st_txn_is_write(vt_store *s, MDB_txn *txn) {
    return (uint64_t)mdb_txn_id(txn) > st_last_txnid(s);
}

int st_sum_mark_pending(vt_store *s) {
    int fd = openat(s->root_fd, SUM_PATH, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT) return 0; /* nothing recorded: nothing will be checked */
        return st_fail(s, -errno, "store %s: cannot open %s: %s", s->path, SUM_PATH,
                       strerror(errno));
    }
    sum_rec r = {.flags = SUM_PENDING, .txnid = st_last_txnid(s)};
    uint8_t b[SUM_LEN], cur[SUM_LEN];
    rec_encode(&r, b);
    int rc = 0;
    /* already pending (a retried or failed commit): no write, no sync */
    if (vt_pread_full(fd, cur, SUM_LEN, 0) || memcmp(cur, b, SUM_LEN)) {
        rc = vt_pwrite_full(fd, b, SUM_LEN, 0);
        if (!rc) rc = vt_fdatasync(fd);
    }
    close(fd);
    if (rc)
        return st_fail(s, rc, "store %s: cannot mark %s before an index commit: %s", s->path,
                       SUM_PATH, vt_strerror(rc));
    return 0;
}

/* Write a fresh record of the current data.mdb; the caller holds LMDB's writer mutex. Returns 0
 * or an error code with a message in @p why (no thread-local detail: failures are tolerated). */
static int write_record(vt_store *s, char *why, size_t cap) {
    mdb_filehandle_t mfd;
    struct stat st;
    MDB_stat ms;
    sum_rec r = {.txnid = st_last_txnid(s)};
    if (mdb_env_get_fd(s->env, &mfd) || fstat(mfd, &st) || mdb_env_stat(s->env, &ms)) {
        snprintf(why, cap, "cannot stat data.mdb");
        return -EIO;
    }
    r.size = (uint64_t)st.st_size;
    r.psize = ms.ms_psize;
    int rc = hash_range(s, 0, 2ull * r.psize, &r.mhash);
    if (!rc) rc = hash_range(s, 2ull * r.psize, r.size, &r.dhash);
    if (rc) {
        snprintf(why, cap, "reading data.mdb: %s", vt_strerror(rc));
        return rc;
    }
    uint8_t b[SUM_LEN];
    rec_encode(&r, b);
    int fd =
        openat(s->root_fd, SUM_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        rc = -errno;
        snprintf(why, cap, "creating %s: %s", SUM_TMP, strerror(errno));
        return rc;
    }
    rc = vt_pwrite_full(fd, b, SUM_LEN, 0);
    if (!rc) rc = vt_fdatasync(fd);
    close(fd);
    if (!rc && renameat(s->root_fd, SUM_TMP, s->root_fd, SUM_PATH)) rc = -errno;
    if (rc) {
        unlinkat(s->root_fd, SUM_TMP, 0);
        snprintf(why, cap, "writing %s: %s", SUM_TMP, vt_strerror(rc));
        return rc;
    }
    int dfd = openat(s->root_fd, "index", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    rc = dfd < 0 ? -errno : vt_fdatasync(dfd);
    if (dfd >= 0) close(dfd);
    if (rc) snprintf(why, cap, "syncing index/: %s", vt_strerror(rc));
    return rc;
}

void st_sum_refresh(vt_store *s) {
    MDB_txn *t;
    char why[512] = "";
    pthread_rwlock_rdlock(&s->resize_lock);
    int m = mdb_txn_begin(s->env, NULL, 0, &t); /* for LMDB's writer mutex only */
    int rc = m ? st_mdb_code(m) : write_record(s, why, sizeof why);
    if (m)
        snprintf(why, sizeof why, "%s", mdb_strerror(m));
    else
        mdb_txn_abort(t);
    pthread_rwlock_unlock(&s->resize_lock);
    if (rc)
        vt_log(VT_LOG_WARN,
               "store %s: cannot record the index checksum (%s); it stays unchecked until the "
               "next commit",
               s->path, why);
}

/* The "not checked" notes are normal while a writer runs: info once per process, then debug. */
static _Atomic int noted;
static vt_log_level note_level(void) {
    return atomic_exchange(&noted, 1) ? VT_LOG_DEBUG : VT_LOG_INFO;
}

int st_sum_check(vt_store *s) {
    int invalid = 0;
    for (int attempt = 0; attempt < 50; attempt++) {
        if (attempt) usleep(attempt < 10 ? 1000 : 10000);
        uint8_t b1[SUM_LEN], b2[SUM_LEN];
        sum_rec r, r2;
        int k = rec_read(s, b1, &r);
        if (k < 0)
            return st_fail(s, k, "store %s: cannot read %s: %s", s->path, SUM_PATH, vt_strerror(k));
        uint64_t t1 = st_last_txnid(s);
        if (k == REC_MISSING) {
            if (t1) /* a brand-new index has txnid 0 and no record yet */
                vt_log(note_level(),
                       "store %s: no %s (written by an older vtstore): index not checked until "
                       "the next commit",
                       s->path, SUM_PATH);
            return 0;
        }
        if (k == REC_INVALID) {
            if (++invalid < 5) continue; /* a torn read of an in-place write: read again */
            vt_log(VT_LOG_WARN, "store %s: %s is damaged: index not checked until the next commit",
                   s->path, SUM_PATH);
            return 0;
        }
        if (r.flags & SUM_PENDING) {
            vt_log(note_level(),
                   "store %s: an index commit is running or was interrupted: index not checked",
                   s->path);
            return 0;
        }
        mdb_filehandle_t mfd;
        struct stat st;
        if (mdb_env_get_fd(s->env, &mfd) || fstat(mfd, &st))
            return st_fail(s, -EIO, "store %s: cannot stat index/data.mdb", s->path);
        uint64_t size = (uint64_t)st.st_size, mh = 0, dh = 0;
        int bad = 0, rc = 0; /* bad: 1 older, 2 truncated, 3 mismatch, 4 meta moved alone */
        if (t1 < r.txnid) {
            bad = 1;
        } else if (size < r.size) {
            bad = 2; /* LMDB never shrinks its file */
        } else if (t1 == r.txnid) {
            if (!(rc = hash_range(s, 0, 2ull * r.psize, &mh)))
                rc = hash_range(s, 2ull * r.psize, r.size, &dh);
            bad = !rc && (mh != r.mhash || dh != r.dhash) ? 3 : 0;
        } else if (size == r.size) {
            /* a newer txn: a real commit writes pages (reused in place or appended); a newer
             * txnid over unchanged data pages is a damaged meta page */
            rc = hash_range(s, 2ull * r.psize, r.size, &dh);
            bad = !rc && dh == r.dhash ? 4 : 0;
        }
        if (rc)
            return st_fail(s, rc, "store %s: cannot read index/data.mdb to check it: %s", s->path,
                           vt_strerror(rc));
        if (!bad && t1 > r.txnid) {
            vt_log(note_level(),
                   "store %s: index txn %llu is newer than %s (txn %llu; written by an older "
                   "vtstore or another tool): index not checked until the next commit",
                   s->path, (unsigned long long)t1, SUM_PATH, (unsigned long long)r.txnid);
            return 0;
        }
        if (!bad) return 0;
        /* only a verdict taken while neither the txnid nor the record moved counts */
        if (st_last_txnid(s) != t1 || rec_read(s, b2, &r2) != REC_OK || memcmp(b1, b2, SUM_LEN))
            continue;
        if (bad == 1)
            return st_fail(s, VT_ECORRUPT,
                           "store %s: index file index/data.mdb is damaged or was replaced: its "
                           "txn %llu is older than the %llu recorded in %s (if an older copy was "
                           "restored on purpose, delete %s)",
                           s->path, (unsigned long long)t1, (unsigned long long)r.txnid, SUM_PATH,
                           SUM_PATH);
        if (bad == 2)
            return st_fail(s, VT_ECORRUPT,
                           "store %s: index file index/data.mdb is damaged (truncated: %llu bytes, "
                           "%llu recorded in %s)",
                           s->path, (unsigned long long)size, (unsigned long long)r.size, SUM_PATH);
        if (bad == 4)
            return st_fail(s, VT_ECORRUPT,
                           "store %s: index file index/data.mdb is damaged (meta page: txn %llu "
                           "over the data pages of txn %llu recorded in %s)",
                           s->path, (unsigned long long)t1, (unsigned long long)r.txnid, SUM_PATH);
        return st_fail(
            s, VT_ECORRUPT,
            "store %s: index file index/data.mdb is damaged (checksum mismatch in its %s "
            "against %s at txn %llu)",
            s->path, mh != r.mhash ? "meta pages" : "data pages", SUM_PATH,
            (unsigned long long)r.txnid);
    }
    vt_log(note_level(), "store %s: index kept changing while being checked: not checked", s->path);
    return 0;
}
