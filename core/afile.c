/* Output files that appear whole or not at all (afile.h). */
#include "afile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vtstore/core.h"

int vt_afile_open(vt_afile *a, const char *path) {
    memset(a, 0, sizeof *a);
    a->fd = -1;
    a->path = path;
    if (snprintf(a->tmp, sizeof a->tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof a->tmp)
        return vt_fail(-ENAMETOOLONG, "%s: path too long", path);
#ifdef O_TMPFILE
    /* the unnamed file gets its name through /proc/self/fd at close: without /proc it could
     * not, so it is not used then */
    const char *named = getenv("VT_AFILE_NAMED"); /* 1: the named way only (tests) */
    if (!(named && *named == '1') && access("/proc/self/fd", X_OK) == 0) {
        char dir[4200];
        const char *slash = strrchr(path, '/');
        if (!slash)
            snprintf(dir, sizeof dir, ".");
        else if (slash == path)
            snprintf(dir, sizeof dir, "/");
        else
            snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
        a->fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
        if (a->fd >= 0) {
            a->unnamed = 1;
            return 0;
        }
        /* EOPNOTSUPP / EISDIR / EINVAL: no O_TMPFILE there; anything else shows again below */
    }
#endif
    unlink(a->tmp); /* left by a killed run of a process with this pid */
    a->fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (a->fd < 0) return vt_fail(-errno, "%s: cannot create: %s", a->tmp, strerror(errno));
    return 0;
}

/* Give the unnamed file the temporary name. */
static int name_it(vt_afile *a) {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", a->fd);
    unlink(a->tmp); /* whatever is there (a link is removed, not followed) */
    if (linkat(AT_FDCWD, proc, AT_FDCWD, a->tmp, AT_SYMLINK_FOLLOW) == 0) return 0;
    return vt_fail(-errno, "%s: cannot name the written file: %s", a->path, strerror(errno));
}

int vt_afile_close(vt_afile *a, int rc) {
    int named = !a->unnamed;
    if (!rc && (rc = vt_fdatasync(a->fd))) rc = vt_fail(rc, "%s: fdatasync failed", a->path);
    if (!rc && a->unnamed && !(rc = name_it(a))) named = 1;
    if (close(a->fd) && !rc) rc = vt_fail(-errno, "%s: close failed: %s", a->path, strerror(errno));
    a->fd = -1;
    if (!rc && rename(a->tmp, a->path))
        rc = vt_fail(-errno, "%s: rename failed: %s", a->path, strerror(errno));
    if (rc && named) unlink(a->tmp);
    return rc;
}
