/* Allocation and I/O hooks with fault injection: every allocation, read, write and sync of the
 * library passes through here so tests can make any single call site fail. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vtstore/core.h"
#include "fault_internal.h"

static ssize_t def_pread(int fd, void *b, size_t n, off_t o) {
    return pread(fd, b, n, o);
}
static ssize_t def_pwrite(int fd, const void *b, size_t n, off_t o) {
    return pwrite(fd, b, n, o);
}
static const vt_hooks default_hooks = {malloc,    calloc,     realloc,  free,
                                       def_pread, def_pwrite, fdatasync};
static vt_hooks hooks = {malloc, calloc, realloc, free, def_pread, def_pwrite, fdatasync};

void vt_hooks_set(const vt_hooks *h) {
    hooks = h ? *h : default_hooks;
}

/* ---- fault injection ---- */
static _Atomic unsigned fault_mask;
static _Atomic uint64_t fault_nth, fault_seen;
static _Atomic int fault_err, fault_fired;

void vt_fault_arm(unsigned kinds_mask, uint64_t nth, int err) {
    atomic_store(&fault_seen, 0);
    atomic_store(&fault_fired, 0);
    atomic_store(&fault_nth, nth);
    atomic_store(&fault_err, err);
    atomic_store(&fault_mask, kinds_mask);
}
void vt_fault_disarm(void) {
    atomic_store(&fault_mask, 0u);
}
uint64_t vt_fault_count(void) {
    return atomic_load(&fault_seen);
}
int vt_fault_fired(void) {
    return atomic_load(&fault_fired);
}

int vt_fault_check(unsigned kind) {
    if (!(atomic_load_explicit(&fault_mask, memory_order_relaxed) & kind)) return 0;
    uint64_t k = atomic_fetch_add(&fault_seen, 1) + 1, nth = atomic_load(&fault_nth);
    if (k == nth || (k > nth && (atomic_load(&fault_mask) & VT_FAULT_FROM_NTH))) {
        atomic_store(&fault_fired, 1);
        return atomic_load(&fault_err);
    }
    return 0;
}

void *vt_malloc(size_t size) {
    if (vt_fault_check(VT_FAULT_ALLOC)) return NULL;
    return hooks.malloc_fn(size ? size : 1);
}
void *vt_calloc(size_t n, size_t size) {
    if (vt_fault_check(VT_FAULT_ALLOC)) return NULL;
    return hooks.calloc_fn(n ? n : 1, size ? size : 1);
}
void *vt_realloc(void *p, size_t size) {
    if (vt_fault_check(VT_FAULT_ALLOC)) return NULL;
    return hooks.realloc_fn(p, size ? size : 1);
}
void vt_free(void *p) {
    if (p) hooks.free_fn(p);
}
char *vt_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = vt_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}
void *vt_malloc_aligned(size_t align, size_t size) {
    if (vt_fault_check(VT_FAULT_ALLOC)) return NULL;
    void *p = NULL;
    if (posix_memalign(&p, align, size ? size : align)) return NULL;
    return p;
}
void vt_free_aligned(void *p) {
    free(p);
}

int vt_pread_full(int fd, void *buf, size_t n, uint64_t off) {
    char *b = buf;
    while (n) {
        int f = vt_fault_check(VT_FAULT_READ);
        ssize_t r;
        if (f == VT_FAULT_SHORT) {
            r = hooks.pread_fn(fd, b, n / 2, (off_t)off);
            if (r >= 0) return VT_EFORMAT; /* a short read that ends the file early */
        } else if (f) {
            return f;
        } else {
            r = hooks.pread_fn(fd, b, n, (off_t)off);
        }
        if (r < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (r == 0) return VT_EFORMAT;
        b += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

int vt_pwrite_full(int fd, const void *buf, size_t n, uint64_t off) {
    const char *b = buf;
    while (n) {
        int f = vt_fault_check(VT_FAULT_WRITE);
        ssize_t r;
        if (f == VT_FAULT_SHORT) {
            r = hooks.pwrite_fn(fd, b, n / 2, (off_t)off);
            return r < 0 ? -errno : -ENOSPC; /* a short write means the device is full */
        } else if (f) {
            return f;
        }
        r = hooks.pwrite_fn(fd, b, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (r == 0) return -ENOSPC;
        b += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

int vt_fdatasync(int fd) {
    int f = vt_fault_check(VT_FAULT_SYNC);
    if (f) return f;
    return hooks.fdatasync_fn(fd) ? -errno : 0;
}
