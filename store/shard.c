/* Shard files: names, directories, creation with a header, cached read descriptors. A shard's
 * file name is derived from its id and its directory from the data directory list, so no index
 * record can name a path outside the store's directories. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_internal.h"

void st_shard_name(uint32_t id, char *buf, size_t cap) {
    snprintf(buf, cap, "shard-%06u.vts", id);
}

int st_dir_path(vt_store *s, uint32_t dir, char *buf, size_t cap) {
    if (dir >= s->dirs.n)
        return st_fail(s, VT_ECORRUPT, "store %s: data directory %u is not recorded", s->path, dir);
    int n;
    if (dir == 0) {
        n = snprintf(buf, cap, "%s/data", s->abspath);
    } else {
        char hex[2 * ST_STORE_ID_LEN + 1];
        for (int i = 0; i < ST_STORE_ID_LEN; i++) snprintf(hex + 2 * i, 3, "%02x", s->store_id[i]);
        n = snprintf(buf, cap, "%s/vts-%s", s->dirs.path[dir], hex);
    }
    if (n < 0 || (size_t)n >= cap)
        return st_fail(s, -ENAMETOOLONG, "store %s: data directory path too long", s->path);
    return 0;
}

/* The record of @p shard_id, read in a transaction of its own. */
static int shard_lookup(vt_store *s, uint32_t shard_id, st_shard_rec *r) {
    MDB_txn *txn;
    int rc = st_txn_begin(s, 1, &txn);
    if (rc) return rc;
    rc = st_shard_get(s, txn, shard_id, r);
    st_txn_abort(s, txn);
    return rc;
}

int vt_store_shard_path(vt_store *s, uint32_t shard_id, char *buf, size_t cap) {
    if (!s || !buf) return vt_fail(-EINVAL, "vt_store_shard_path: bad arguments");
    st_shard_rec r;
    int rc = shard_lookup(s, shard_id, &r);
    if (rc) return rc;
    if ((rc = st_dir_path(s, r.dir, buf, cap))) return rc;
    size_t l = strlen(buf);
    if (cap - l < 24) return st_fail(s, -ENAMETOOLONG, "store %s: shard path too long", s->path);
    buf[l] = '/';
    st_shard_name(shard_id, buf + l + 1, cap - l - 1);
    return 0;
}

int st_shard_get(vt_store *s, MDB_txn *txn, uint32_t id, st_shard_rec *r) {
    uint8_t kb[4];
    st_put_be32(kb, id);
    MDB_val k = {4, kb}, d;
    int rc = mdb_get(txn, s->db_shards, &k, &d);
    if (rc == MDB_NOTFOUND)
        return st_fail(s, VT_ENOTFOUND, "store %s: shard %u is not in the index", s->path, id);
    if (rc)
        return st_fail(s, st_mdb_code(rc), "store %s: reading shard %u: %s", s->path, id,
                       mdb_strerror(rc));
    if ((rc = st_shard_rec_decode(kb, 4, d.mv_data, d.mv_size, r))) return st_keep(s, rc);
    if (r->dir >= s->dirs.n)
        return st_fail(s, VT_ECORRUPT,
                       "store %s: shard %u names data directory %u, outside the store's %u",
                       s->path, id, r->dir, s->dirs.n);
    return 0;
}

/* Check the header of shard @p id (file @p dir_path/@p name) open on @p fd: magic, shard id and
 * store id, so a file of another shard or store is never read as this one. */
static int check_header(vt_store *s, int fd, uint32_t id, const char *dir_path, const char *name) {
    uint8_t h[32];
    int rc = vt_pread_full(fd, h, sizeof h, 0);
    if (rc)
        return st_fail(s, rc == VT_EFORMAT ? VT_ECORRUPT : rc,
                       "shard %s/%s: cannot read its header: %s", dir_path, name,
                       rc == VT_EFORMAT ? "file is truncated" : vt_strerror(rc));
    if (memcmp(h, ST_SHARD_MAGIC, 8))
        return st_fail(s, VT_ECORRUPT, "shard %s/%s: bad header: magic is not %s", dir_path, name,
                       ST_SHARD_MAGIC);
    if (st_le32(h + 12) != id)
        return st_fail(s, VT_ECORRUPT, "shard %s/%s: bad header: it names shard %u, not %u",
                       dir_path, name, st_le32(h + 12), id);
    if (memcmp(h + 16, s->store_id, ST_STORE_ID_LEN))
        return st_fail(s, VT_ECORRUPT,
                       "shard %s/%s: bad header: its store id is not this store's (a shard of "
                       "another store?)",
                       dir_path, name);
    return 0;
}

/* Open a shard of data dir @p dir for reading; refuses symlinks, non-regular files and files
 * whose header is not this shard's of this store. */
static int open_shard_ro(vt_store *s, uint32_t id, uint32_t dir, int extra_flags, int *out) {
    char name[32];
    st_shard_name(id, name, sizeof name);
    if (dir >= s->dirs.n)
        return st_fail(s, VT_ECORRUPT, "store %s: shard %u: data directory %u outside the store",
                       s->path, id, dir);
    if (s->dir_fd[dir] < 0) {
        char p[4096];
        st_dir_path(s, dir, p, sizeof p);
        return st_fail(s, -ENOENT, "store %s: shard %s: data directory %s is not available",
                       s->path, name, p);
    }
    char p[4096];
    if (st_dir_path(s, dir, p, sizeof p)) p[0] = 0;
    /* the header is checked through a buffered descriptor (an O_DIRECT read of 32 bytes would
     * be refused); an O_DIRECT caller gets a second descriptor of the checked file */
    int fd = openat(s->dir_fd[dir], name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ELOOP)
            return st_fail(s, VT_ECORRUPT, "shard %s/%s is a symlink: refused", p, name);
        return st_fail(s, -e, "shard %s/%s: %s", p, name, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        return st_fail(s, VT_ECORRUPT, "shard %s/%s is not a regular file", p, name);
    }
    int rc = check_header(s, fd, id, p, name);
    if (!rc && extra_flags) {
        int dfd = openat(s->dir_fd[dir], name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | extra_flags);
        if (dfd < 0) {
            int e = errno;
            rc = st_fail(s, e == ELOOP ? VT_ECORRUPT : -e, "shard %s/%s: %s", p, name, strerror(e));
        } else {
            close(fd);
            fd = dfd;
        }
    }
    if (rc) {
        close(fd);
        return rc;
    }
    *out = fd;
    return 0;
}

int vt_store_shard_open(vt_store *s, uint32_t shard_id, int direct, int *fd_out) {
    if (!s || !fd_out) return vt_fail(-EINVAL, "vt_store_shard_open: bad arguments");
    st_shard_rec r;
    int rc = shard_lookup(s, shard_id, &r);
    if (rc) return rc;
    return open_shard_ro(s, shard_id, r.dir, direct ? O_DIRECT : 0, fd_out);
}

int st_shard_fd(vt_store *s, const st_shard_rec *r, int *fd) {
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_fds; i++)
        if (s->fds[i].shard_id == r->id) {
            *fd = s->fds[i].fd;
            pthread_mutex_unlock(&s->mu);
            return 0;
        }
    pthread_mutex_unlock(&s->mu);
    int nfd, rc = open_shard_ro(s, r->id, r->dir, 0, &nfd);
    if (rc) return rc;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_fds; i++)
        if (s->fds[i].shard_id == r->id) { /* another thread won the race */
            *fd = s->fds[i].fd;
            pthread_mutex_unlock(&s->mu);
            close(nfd);
            return 0;
        }
    if (s->n_fds == s->cap_fds) {
        size_t nc = s->cap_fds ? 2 * s->cap_fds : 16;
        st_fd_entry *n = vt_realloc(s->fds, nc * sizeof *n);
        if (!n) {
            pthread_mutex_unlock(&s->mu);
            close(nfd);
            return st_fail(s, -ENOMEM, "out of memory caching shard descriptors");
        }
        s->fds = n;
        s->cap_fds = nc;
    }
    s->fds[s->n_fds].shard_id = r->id;
    s->fds[s->n_fds].fd = nfd;
    s->n_fds++;
    *fd = nfd;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void st_fd_forget(vt_store *s, uint32_t shard_id) {
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_fds; i++)
        if (s->fds[i].shard_id == shard_id) {
            close(s->fds[i].fd);
            s->fds[i] = s->fds[--s->n_fds];
            break;
        }
    pthread_mutex_unlock(&s->mu);
}

int st_shard_create(vt_store *s, uint32_t *idp, uint32_t dir, int *out) {
    char name[32], p[4096];
    if (dir >= s->dirs.n || s->dir_fd[dir] < 0) {
        st_dir_path(s, dir, p, sizeof p);
        return st_fail(s, -ENOENT, "store %s: data directory %s is not available", s->path, p);
    }
    /* A file bearing a new id is normally garbage of a crashed writer or gc, but with a damaged
     * index it may hold live chunks: never replace it. Skip to the next id and leave the file
     * to gc, which removes it only when no chunk record points into it. */
    uint32_t id = *idp;
    int fd = -1;
    for (int tries = 0;; tries++, id++) {
        st_shard_name(id, name, sizeof name);
        fd = openat(s->dir_fd[dir], name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd >= 0) break;
        int e = errno;
        st_dir_path(s, dir, p, sizeof p);
        if (e == EEXIST && tries < 64 && id < UINT32_MAX - 2) {
            vt_log(VT_LOG_INFO,
                   "store %s: shard file %s/%s already exists and is left alone "
                   "(gc removes it if the index does not name it); using the next id",
                   s->path, p, name);
            continue;
        }
        if (e == EEXIST)
            return st_fail(s, -EEXIST,
                           "cannot create shard %s/%s: the file exists, as do the %d before it; "
                           "refusing to overwrite any (run vtstore verify, then gc)",
                           p, name, tries);
        return st_fail(s, -e, "cannot create shard %s/%s: %s", p, name, strerror(e));
    }
    *idp = id;
    uint8_t *h = vt_calloc(1, ST_SHARD_HEADER);
    if (!h) {
        close(fd);
        unlinkat(s->dir_fd[dir], name, 0);
        return st_fail(s, -ENOMEM, "out of memory creating shard %s", name);
    }
    memcpy(h, ST_SHARD_MAGIC, 8);
    st_put_le32(h + 8, st_fv(s));
    st_put_le32(h + 12, id);
    memcpy(h + 16, s->store_id, ST_STORE_ID_LEN);
    int rc = vt_pwrite_full(fd, h, ST_SHARD_HEADER, 0);
    vt_free(h);
    if (rc) {
        close(fd);
        unlinkat(s->dir_fd[dir], name, 0);
        st_dir_path(s, dir, p, sizeof p);
        return st_fail(s, rc, "writing header of shard %s/%s: %s", p, name, vt_strerror(rc));
    }
    *out = fd;
    return 0;
}

int st_dir_sync(vt_store *s, uint32_t dir) {
    if (dir >= s->dirs.n || s->dir_fd[dir] < 0)
        return st_fail(s, -ENOENT, "store %s: data directory %u missing", s->path, dir);
    int rc = vt_fdatasync(s->dir_fd[dir]);
    if (rc) {
        char p[4096];
        st_dir_path(s, dir, p, sizeof p);
        return st_fail(s, rc, "syncing directory %s: %s", p, vt_strerror(rc));
    }
    return 0;
}
