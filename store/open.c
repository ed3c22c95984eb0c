/* Opening, creating and closing a store: directory layout, LMDB environment and named
 * databases, format version check, data directory list. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_internal.h"

static int mkdir_p1(const char *p) {
    if (mkdir(p, 0755) == 0 || errno == EEXIST) return 0;
    return -errno;
}

/* 1 if @p path is an empty directory (not a link to one). */
static int dir_is_empty(const char *path) {
    struct stat st;
    if (lstat(path, &st) || !S_ISDIR(st.st_mode)) return 0;
    DIR *d = opendir(path);
    if (!d) return 0;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n == 0;
}

/* Create the directory skeleton of a new store (idempotent). *@p created: ST_CREATED_DIR when
 * this call made the directory, ST_CREATED_IN when it was an empty directory, else 0. */
static int make_layout(const char *path, int *created) {
    char buf[PATH_MAX];
    *created = 0;
    int rc = mkdir(path, 0755) == 0 ? 0 : -errno;
    if (!rc)
        *created = ST_CREATED_DIR;
    else if (rc == -EEXIST)
        rc = 0, *created = dir_is_empty(path) ? ST_CREATED_IN : 0;
    if (rc) return vt_fail(rc, "cannot create store directory %s: %s", path, strerror(-rc));
    const char *subs[] = {"index", "data"};
    for (int i = 0; i < 2; i++) {
        snprintf(buf, sizeof buf, "%s/%s", path, subs[i]);
        if ((rc = mkdir_p1(buf))) return vt_fail(rc, "cannot create %s: %s", buf, strerror(-rc));
    }
    snprintf(buf, sizeof buf, "%s/LOCK", path);
    int fd = open(buf, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return vt_fail(-errno, "cannot create %s: %s", buf, strerror(errno));
    close(fd);
    return 0;
}

static int put_meta(vt_store *s, MDB_txn *txn, const char *key, const void *v, size_t n) {
    MDB_val k = {strlen(key), (void *)key}, d = {n, (void *)v};
    int rc = mdb_put(txn, s->db_meta, &k, &d, 0);
    return rc;
}

/* Initialise meta of a new store inside @p txn (only if no version is recorded yet). */
static int init_meta(vt_store *s, MDB_txn *txn) {
    MDB_val k = {strlen(ST_KEY_VERSION), ST_KEY_VERSION}, d;
    int rc = mdb_get(txn, s->db_meta, &k, &d);
    if (rc != MDB_NOTFOUND) return rc;
    uint8_t v4[4], v8[8], id[ST_STORE_ID_LEN];
    if (getrandom(id, sizeof id, 0) != (ssize_t)sizeof id) {
        uint64_t t = (uint64_t)(vt_now() * 1e9) ^ ((uint64_t)getpid() << 32);
        memcpy(id, &t, 8);
        memcpy(id + 8, &s, sizeof(void *) < 8 ? sizeof(void *) : 8);
    }
    st_put_le32(v4, VT_STORE_FORMAT_VERSION);
    if ((rc = put_meta(s, txn, ST_KEY_VERSION, v4, 4))) return rc;
    if ((rc = put_meta(s, txn, ST_KEY_STORE_ID, id, sizeof id))) return rc;
    st_put_le64(v8, 1);
    if ((rc = put_meta(s, txn, ST_KEY_NEXT_TENSOR, v8, 8))) return rc;
    st_put_le32(v4, 1);
    if ((rc = put_meta(s, txn, ST_KEY_NEXT_SHARD, v4, 4))) return rc;
    uint8_t dirs[7] = {ST_DIRS_REC_VERSION, 1, 0, 0, 0, 0, 0};
    return put_meta(s, txn, ST_KEY_DIRS, dirs, sizeof dirs);
}

static int dbis_open(vt_store *s, MDB_txn *txn, unsigned f) {
    int rc;
    if (!(rc = mdb_dbi_open(txn, "meta", f, &s->db_meta)) &&
        !(rc = mdb_dbi_open(txn, "tensors", f, &s->db_tensors)) &&
        !(rc = mdb_dbi_open(txn, "chunks", f, &s->db_chunks)))
        rc = mdb_dbi_open(txn, "shards", f, &s->db_shards);
    return rc;
}

/* st_write_txn body of a store's creation: the databases and the meta of a new store. */
static int create_txn(vt_store *s, MDB_txn *txn, void *ctx) {
    (void)ctx;
    int rc = dbis_open(s, txn, MDB_CREATE);
    return rc ? rc : init_meta(s, txn);
}

/* Open the four databases; @p create: create them (and the meta of a new store) when absent.
 * An existing store is opened in a read txn even for RDWR, so a plain open writes nothing. */
static int open_dbis(vt_store *s, int create) {
    MDB_txn *txn;
    int rc = st_txn_begin(s, 1, &txn);
    if (rc) return rc;
    rc = dbis_open(s, txn, 0);
    if (rc == MDB_NOTFOUND && create) {
        st_txn_abort(s, txn);
        /* a map too small for the new databases grows and the txn runs again */
        return st_write_txn(s, create_txn, NULL, "cannot initialise index");
    }
    if (rc) {
        st_txn_abort(s, txn);
        if (rc == MDB_NOTFOUND)
            return st_fail(s, VT_EFORMAT,
                           "%s is not a vtstore store (index has no vtstore databases)", s->path);
        return st_fail(s, st_mdb_code(rc), "store %s: cannot open index databases: %s", s->path,
                       mdb_strerror(rc));
    }
    return st_txn_commit(s, txn);
}

int st_version_load(vt_store *s, MDB_txn *txn) {
    uint64_t ver = 0;
    int rc = st_meta_get_u64(s, txn, ST_KEY_VERSION, &ver);
    if (rc == VT_ENOTFOUND)
        return st_fail(s, VT_EFORMAT, "%s is not a vtstore store (no format version)", s->path);
    if (rc) return rc;
    if (ver > VT_STORE_FORMAT_VERSION)
        return st_fail(s, VT_EVERSION,
                       "store %s has format version %llu, newer than this vtstore (%s) reads "
                       "(%d): upgrade vtstore",
                       s->path, (unsigned long long)ver, vt_version(), VT_STORE_FORMAT_VERSION);
    if (ver == 0) return st_fail(s, VT_EFORMAT, "store %s: format version 0 is invalid", s->path);
    __atomic_store_n(&s->format_version, (uint32_t)ver, __ATOMIC_RELAXED);
    return 0;
}

/* Read version, store id and data dirs. */
static int load_meta(vt_store *s) {
    MDB_txn *txn;
    int rc = st_txn_begin(s, 1, &txn);
    if (rc) return rc;
    if ((rc = st_version_load(s, txn))) goto out;
    MDB_val k = {strlen(ST_KEY_STORE_ID), ST_KEY_STORE_ID}, d;
    if (mdb_get(txn, s->db_meta, &k, &d) || d.mv_size != ST_STORE_ID_LEN) {
        rc = st_fail(s, VT_EFORMAT, "store %s: missing or bad store id", s->path);
        goto out;
    }
    memcpy(s->store_id, d.mv_data, ST_STORE_ID_LEN);
    k.mv_size = strlen(ST_KEY_DIRS);
    k.mv_data = ST_KEY_DIRS;
    if (mdb_get(txn, s->db_meta, &k, &d)) {
        rc = st_fail(s, VT_EFORMAT, "store %s: missing data directory list", s->path);
        goto out;
    }
    st_dirs_free(&s->dirs);
    if ((rc = st_dirs_decode(d.mv_data, d.mv_size, &s->dirs)))
        st_fail(s, rc, "store %s: %s", s->path, vt_last_error());
    s->dirs_recorded = s->dirs.n;
out:
    st_txn_abort(s, txn);
    return rc;
}

/* Add the data directories named in the options that the store does not know yet to the
 * handle's list. They are not recorded in the index here: the handle's next commit (writer or
 * gc) records them in its own transaction, so a command that fails leaves the list as it was;
 * vt_store_close removes the directories this open created for them when nothing did. */
static int add_dirs(vt_store *s) {
    st_dirs nd = s->dirs;
    uint8_t made[VT_STORE_MAX_DIRS] = {0};
    uint32_t n_added = 0;
    int rc = 0;
    for (uint32_t i = 0; i < s->opt.n_data_dirs; i++) {
        char rp[PATH_MAX];
        const char *dd = s->opt.data_dirs[i];
        if (!dd || !*dd) {
            rc = st_fail(s, -EINVAL, "store %s: empty data directory name", s->path);
            goto out;
        }
        int created = mkdir(dd, 0755) == 0;
        if (!realpath(dd, rp)) {
            rc = st_fail(s, -errno, "data directory %s: %s", dd, strerror(errno));
            if (created) rmdir(dd);
            goto out;
        }
        int known = strcmp(rp, s->abspath) == 0; /* the store itself: dir 0 */
        for (uint32_t j = 1; j < nd.n; j++) known |= strcmp(nd.path[j], rp) == 0;
        if (known) continue;
        /* the rule st_dirs_decode applies on read: a list it would refuse makes the store
         * unopenable */
        if (!st_dir_path_valid(rp, strlen(rp))) {
            rc = st_fail(s, -EINVAL,
                         "data directory %s (resolved to %s): not usable: a data directory must "
                         "be an absolute path below / (its shards go to DIR/vts-<store id>/)",
                         dd, rp);
            if (created) rmdir(dd);
            goto out;
        }
        if (nd.n >= VT_STORE_MAX_DIRS) {
            rc = st_fail(s, -EINVAL, "store %s: more than %d data directories", s->path,
                         VT_STORE_MAX_DIRS);
            if (created) rmdir(dd);
            goto out;
        }
        made[nd.n] = created ? ST_MADE_DIR : 0;
        if (!(nd.path[nd.n] = vt_strdup(rp))) {
            rc = st_fail(s, -ENOMEM, "out of memory");
            if (created) rmdir(dd);
            goto out;
        }
        nd.n++;
        n_added++;
    }
    s->dirs = nd;
    memcpy(s->dir_made, made, sizeof made);
    return 0;
out:
    for (uint32_t i = s->dirs.n; i < s->dirs.n + n_added; i++) {
        if (made[i] & ST_MADE_DIR) rmdir(nd.path[i]);
        vt_free(nd.path[i]);
    }
    return rc;
}

int st_dirs_record(vt_store *s, MDB_txn *txn, int put) {
    pthread_mutex_lock(&s->mu);
    uint32_t rec = s->dirs_recorded;
    pthread_mutex_unlock(&s->mu);
    MDB_val k = {strlen(ST_KEY_DIRS), ST_KEY_DIRS}, d;
    int rc = mdb_get(txn, s->db_meta, &k, &d);
    if (rc)
        return rc == MDB_NOTFOUND
                   ? st_fail(s, VT_EFORMAT, "store %s: missing data directory list", s->path)
                   : rc;
    /* the directory index of a shard record is a position in this list: a list another
     * process changed since this handle loaded it would misplace our shards */
    st_dirs cur;
    if ((rc = st_dirs_decode(d.mv_data, d.mv_size, &cur)))
        return st_fail(s, rc, "store %s: %s", s->path, vt_last_error());
    int same = cur.n == rec;
    for (uint32_t i = 0; same && i < rec; i++) same = strcmp(cur.path[i], s->dirs.path[i]) == 0;
    st_dirs_free(&cur);
    if (!same)
        return st_fail(s, -EBUSY,
                       "store %s: its data directory list changed since this handle opened it "
                       "(another process added a directory); reopen the store and retry",
                       s->path);
    if (!put || rec == s->dirs.n) return 0;
    uint8_t *enc;
    size_t len;
    if ((rc = st_dirs_encode(&s->dirs, &enc, &len))) return st_keep(s, rc);
    d = (MDB_val){len, enc};
    rc = mdb_put(txn, s->db_meta, &k, &d, 0);
    vt_free(enc);
    return rc;
}

void st_dirs_recorded(vt_store *s) {
    pthread_mutex_lock(&s->mu);
    s->dirs_recorded = s->dirs.n;
    pthread_mutex_unlock(&s->mu);
}

/* At close: remove what the open created for directories no commit recorded (rmdir only
 * removes empty directories, so nothing written there is lost). */
static void undo_dirs(vt_store *s) {
    for (uint32_t i = s->dirs_recorded; i < s->dirs.n; i++) {
        if (s->dir_made[i] & ST_MADE_SHARDS) {
            char p[PATH_MAX];
            if (!st_dir_path(s, i, p, sizeof p) && rmdir(p))
                vt_log(VT_LOG_INFO, "store %s: leaving %s: %s", s->path, p, strerror(errno));
        }
        if ((s->dir_made[i] & ST_MADE_DIR) && rmdir(s->dirs.path[i]))
            vt_log(VT_LOG_INFO, "store %s: leaving %s: %s", s->path, s->dirs.path[i],
                   strerror(errno));
    }
}

/* Open (creating for RDWR) the shard directory of every data dir. */
static int open_dir_fds(vt_store *s) {
    for (uint32_t i = 0; i < s->dirs.n; i++) {
        char p[PATH_MAX];
        int rc = st_dir_path(s, i, p, sizeof p);
        if (rc) return rc;
        if ((s->flags & VT_STORE_RDWR) && mkdir(p, 0755) == 0 && i >= s->dirs_recorded)
            s->dir_made[i] |= ST_MADE_SHARDS;
        s->dir_fd[i] = open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (s->dir_fd[i] < 0) {
            if (errno == ELOOP || errno == ENOTDIR)
                return st_fail(s, VT_ECORRUPT,
                               "store %s: data directory %s is a symlink or not a directory",
                               s->path, p);
            /* a missing device is reported when one of its shards is read */
            vt_log(VT_LOG_WARN, "store %s: data directory %s: %s", s->path, p, strerror(errno));
        }
    }
    return 0;
}

int vt_store_open(const char *path, unsigned flags, const vt_store_options *opt, vt_store **out) {
    if (!path || !*path || !out || (flags & ~3u) ||
        ((flags & VT_STORE_CREATE) && !(flags & VT_STORE_RDWR)))
        return vt_fail(-EINVAL, "vt_store_open: bad arguments");
    *out = NULL;
    if (opt && opt->zstd_level < 0) return vt_fail(-EINVAL, "vt_store_open: negative zstd level");
    if (opt && opt->no_root_shards && opt->n_data_dirs == 0)
        return vt_fail(-EINVAL, "vt_store_open: no_root_shards needs a data directory");
    int rc, created = 0;
    if (flags & VT_STORE_CREATE) {
        if ((rc = make_layout(path, &created))) return rc;
    }
    char buf[PATH_MAX];
    struct stat st;
    snprintf(buf, sizeof buf, "%s/index", path);
    if (stat(path, &st)) return vt_fail(-errno, "store %s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return vt_fail(-ENOTDIR, "store %s is not a directory", path);
    if (stat(buf, &st))
        return vt_fail(errno == ENOENT ? VT_EFORMAT : -errno,
                       "%s is not a vtstore store (no index/)", path);

    vt_store *s = vt_calloc(1, sizeof *s);
    if (!s) return vt_fail(-ENOMEM, "out of memory opening %s", path);
    pthread_mutex_init(&s->mu, NULL);
    pthread_rwlock_init(&s->resize_lock, NULL);
    s->root_fd = -1;
    for (int i = 0; i < VT_STORE_MAX_DIRS; i++) s->dir_fd[i] = -1;
    s->flags = flags;
    s->created = created;
    if (opt) s->opt = *opt;
    s->opt.data_dirs = NULL;
    if (!s->opt.shard_cap_bytes) s->opt.shard_cap_bytes = ST_DEFAULT_SHARD_CAP;
    if (!s->opt.chunk_target_bytes) s->opt.chunk_target_bytes = ST_DEFAULT_CHUNK_TARGET;
    if (!s->opt.map_size) s->opt.map_size = ST_DEFAULT_MAP_SIZE;
    s->path = vt_strdup(path);
    s->abspath = vt_malloc(PATH_MAX);
    if (!s->path || !s->abspath) {
        rc = vt_fail(-ENOMEM, "out of memory opening %s", path);
        goto fail;
    }
    if (!realpath(path, s->abspath)) {
        rc = vt_fail(-errno, "store %s: %s", path, strerror(errno));
        goto fail;
    }
    s->root_fd = open(s->abspath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->root_fd < 0) {
        rc = vt_fail(-errno, "store %s: %s", path, strerror(errno));
        goto fail;
    }
    int mr = mdb_env_create(&s->env);
    if (!mr) mr = mdb_env_set_maxdbs(s->env, 8);
    if (!mr) mr = mdb_env_set_maxreaders(s->env, 510);
    if (!mr) mr = mdb_env_set_mapsize(s->env, s->opt.map_size);
    if (!mr) {
        unsigned ef = MDB_NOTLS | ((flags & VT_STORE_RDWR) ? 0 : MDB_RDONLY);
        mr = mdb_env_open(s->env, buf, ef, 0644);
    }
    if (mr) {
        rc = st_mdb_code(mr);
        if (mr == EACCES || mr == EROFS) rc = -mr;
        rc = vt_fail(rc, "store %s: cannot open index %s: %s", path, buf, mdb_strerror(mr));
        goto fail;
    }
    {
        /* LMDB maps the data file and trusts it: pages past a truncated end would be SIGBUS on
         * first touch. Refuse an index shorter than its last committed page. */
        MDB_envinfo ei;
        MDB_stat ms;
        mdb_filehandle_t mfd;
        struct stat fst;
        if (!mdb_env_info(s->env, &ei) && !mdb_env_stat(s->env, &ms) &&
            !mdb_env_get_fd(s->env, &mfd) && !fstat(mfd, &fst) &&
            (uint64_t)fst.st_size < ((uint64_t)ei.me_last_pgno + 1) * ms.ms_psize) {
            rc = vt_fail(
                VT_EFORMAT,
                "store %s: index %s/data.mdb is truncated (%llu bytes, its last page ends at %llu)",
                path, buf, (unsigned long long)fst.st_size,
                (unsigned long long)(ei.me_last_pgno + 1) * ms.ms_psize);
            goto fail;
        }
    }
    /* LMDB has no page checksums: compare data.mdb with index/data.xxh before any txn walks
     * its B-tree (a damaged page can crash LMDB) */
    if ((rc = st_sum_check(s))) goto fail;
    int dead = 0;
    mdb_reader_check(s->env, &dead);
    if (dead) vt_log(VT_LOG_INFO, "store %s: cleared %d stale index reader slot(s)", path, dead);
    if ((rc = open_dbis(s, (flags & VT_STORE_RDWR) != 0))) goto fail;
    if ((rc = load_meta(s))) goto fail;
    if (opt && opt->n_data_dirs) {
        if (!(flags & VT_STORE_RDWR)) {
            rc = vt_fail(-EINVAL,
                         "store %s: data directories can only be added by a read-write open", path);
            goto fail;
        }
        s->opt.n_data_dirs = opt->n_data_dirs;
        s->opt.data_dirs = opt->data_dirs;
        rc = add_dirs(s);
        s->opt.data_dirs = NULL;
        if (rc) goto fail;
    }
    if ((rc = open_dir_fds(s))) goto fail;
    *out = s;
    return 0;
fail:
    if (s->errmsg[0] == 0) st_keep(s, rc);
    {
        char keep[1024];
        snprintf(keep, sizeof keep, "%s", vt_last_error());
        vt_store_close(s);
        vt_fail(rc, "%s", keep);
    }
    return rc;
}

void vt_store_close(vt_store *s) {
    if (!s) return;
    if (s->writer) vt_store_writer_abort(s->writer);
    for (size_t i = 0; i < s->n_fds; i++) close(s->fds[i].fd);
    vt_free(s->fds);
    for (int i = 0; i < VT_STORE_MAX_DIRS; i++)
        if (s->dir_fd[i] >= 0) close(s->dir_fd[i]);
    undo_dirs(s);
    if (s->root_fd >= 0) close(s->root_fd);
    if (s->env) mdb_env_close(s->env);
    st_dirs_free(&s->dirs);
    pthread_rwlock_destroy(&s->resize_lock);
    pthread_mutex_destroy(&s->mu);
    vt_free(s->path);
    vt_free(s->abspath);
    vt_free(s);
}

const char *vt_store_path(const vt_store *s) {
    return s ? s->path : "";
}
