/* The store's writer lock: an flock on STORE/LOCK held by a writer or gc for its lifetime.
 * The kernel drops it when the process dies, so a crashed writer never blocks the next one. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "store_internal.h"

int st_writer_lock(vt_store *s, int *out) {
    if (s->discarded)
        return st_fail(s, VT_EUSAGE, "store %s was discarded (vt_store_discard_new): close it",
                       s->path);
    int fd = openat(s->root_fd, "LOCK", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return st_fail(s, -errno, "store %s: cannot open LOCK: %s", s->path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            return st_fail(s, -EBUSY, "store %s: another writer or gc is running (%s/LOCK is held)",
                           s->path, s->path);
        return st_fail(s, -e, "store %s: cannot lock: %s", s->path, strerror(e));
    }
    *out = fd;
    return 0;
}

void st_writer_unlock(int fd) {
    if (fd >= 0) close(fd); /* closing the descriptor releases the flock */
}
