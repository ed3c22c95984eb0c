/* vt_store_discard_new: remove a store this handle created while it still holds nothing, so
 * that a first write that failed leaves nothing behind (vtstore import, Python import_file). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_internal.h"

static int count_meta(void *ctx, const char *key, const void *val, size_t len) {
    (void)key;
    (void)val;
    (void)len;
    ++*(uint64_t *)ctx;
    return 0;
}

/* Remove the entries of directory @p dfd (closed here) and below, without following links and
 * without leaving its file system; the first failure is kept in *@p err (errno), the rest goes
 * on. */
static void rm_tree(int dfd, dev_t dev, int depth, int *err) {
    DIR *d = fdopendir(dfd);
    if (!d) {
        if (!*err) *err = errno;
        close(dfd);
        return;
    }
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW)) {
            if (!*err) *err = errno;
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            int sub = -1;
            if (st.st_dev == dev && depth < 16)
                sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                if (!*err) *err = st.st_dev != dev || depth >= 16 ? EXDEV : errno;
                continue;
            }
            rm_tree(sub, dev, depth + 1, err);
        }
        if (unlinkat(dirfd(d), e->d_name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) && !*err)
            *err = errno;
    }
    closedir(d);
}

int vt_store_discard_new(vt_store *s) {
    if (!s) return vt_fail(-EINVAL, "vt_store_discard_new: bad arguments");
    if (!s->created || s->discarded) return 0;
    if (s->writer)
        return st_fail(s, VT_EUSAGE, "store %s: discard with a writer of this handle open",
                       s->path);
    int lock_fd, rc = st_writer_lock(s, &lock_fd);
    if (rc == -EBUSY) return 0; /* another writer: not ours alone */
    if (rc) return rc;
    vt_store_totals t;
    uint64_t meta = 0;
    rc = vt_store_get_totals(s, &t);
    if (!rc) rc = vt_store_meta_list(s, NULL, count_meta, &meta);
    if (rc || t.tensors || t.chunks || t.shards || meta) { /* written into since: keep it */
        st_writer_unlock(lock_fd);
        return rc < 0 ? rc : 0;
    }
    struct stat st;
    int err = 0, fd = -1;
    if (fstat(s->root_fd, &st) ||
        (fd = openat(s->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        err = errno;
    s->discarded = 1; /* from here on, nothing of this handle may write */
    /* the shard directories (vts-<store id>/) in other data directories first: a failed writer
     * may have left shard files there; the data directories themselves when this open made them */
    for (uint32_t i = 1; i < s->dirs.n; i++) {
        char p[PATH_MAX];
        struct stat ds;
        if (st_dir_path(s, i, p, sizeof p) || fstat(s->dir_fd[i], &ds)) continue;
        rm_tree(dup(s->dir_fd[i]), ds.st_dev, 0, &err);
        if (rmdir(p) && errno != ENOENT && !err) err = errno;
        if ((s->dir_made[i] & ST_MADE_DIR) && rmdir(s->dirs.path[i]) && !err) err = errno;
        s->dir_made[i] = 0; /* close has nothing to undo */
    }
    if (fd >= 0) rm_tree(fd, st.st_dev, 0, &err);
    if (!err && s->created == ST_CREATED_DIR && rmdir(s->abspath)) err = errno;
    st_writer_unlock(lock_fd);
    if (err)
        return st_fail(s, -err, "store %s: removing the new store: %s (partly removed)", s->path,
                       strerror(err));
    return 1;
}
