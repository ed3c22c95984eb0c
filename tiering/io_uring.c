/* io_uring backend: one ring, fixed files (sparse table) and fixed buffers when the kernel
 * allows, one io_uring_submit per batch, completions reaped with io_uring_peek_batch_cqe. */
#include <errno.h>
#include <liburing.h>
#include <string.h>
#include <sys/uio.h>

#include "io_engine.h"
#include "core/fault_internal.h"

struct vt_io_uring_state {
    struct io_uring ring;
    int files_registered; /* sparse file table available */
    int bufs_registered;
    vt_io_piece *instant; /* completed without the kernel (injected faults) */
};

int vt_io_uring_init(vt_io *io) {
    struct vt_io_uring_state *u = vt_calloc(1, sizeof *u);
    if (!u) return -ENOMEM;
    unsigned entries = 1;
    while (entries < io->qd) entries <<= 1;
    int rc = io_uring_queue_init(entries, &u->ring, 0);
    if (rc < 0) {
        vt_free(u);
        return rc;
    }
    /* A sparse fixed-file table so files can be added one at a time (Linux >= 5.19). */
    u->files_registered = io_uring_register_files_sparse(&u->ring, VT_IO_MAX_FILES) == 0;
    io->uring = u;
    return 0;
}

void vt_io_uring_fini(vt_io *io) {
    struct vt_io_uring_state *u = io->uring;
    if (!u) return;
    io_uring_queue_exit(&u->ring);
    vt_free(u);
    io->uring = NULL;
}

int vt_io_uring_add_file(vt_io *io, int id) {
    struct vt_io_uring_state *u = io->uring;
    vt_io_file *f = &io->files[id];
    if (!u->files_registered || f->fd_direct < 0) return 0;
    int fd = f->fd_direct;
    f->fixed = io_uring_register_files_update(&u->ring, (unsigned)id, &fd, 1) == 1;
    return 0;
}

int vt_io_uring_register(vt_io *io) {
    struct vt_io_uring_state *u = io->uring;
    if (u->bufs_registered) io_uring_unregister_buffers(&u->ring);
    struct iovec iov[VT_IO_MAX_REGIONS];
    for (int i = 0; i < io->nreg; i++) iov[i] = (struct iovec){io->reg_base[i], io->reg_len[i]};
    int rc = io_uring_register_buffers(&u->ring, iov, (unsigned)io->nreg);
    if (rc < 0) {
        static int logged;
        if (!logged) {
            logged = 1;
            vt_log(VT_LOG_INFO, "io_uring_register_buffers: %s; reads stay unregistered",
                   strerror(-rc));
        }
        io->nreg = 0;
        u->bufs_registered = 0;
        return 0;
    }
    u->bufs_registered = 1;
    return 0;
}

int vt_io_uring_issue(vt_io *io, vt_io_piece **p, size_t n) {
    struct vt_io_uring_state *u = io->uring;
    size_t queued = 0;
    for (size_t i = 0; i < n; i++) {
        vt_io_piece *pc = p[i];
        int f = vt_fault_check(VT_FAULT_READ);
        if (f) {
            /* an injected short read ends the file early, as vt_pread_full reports it */
            pc->injected = 1;
            pc->result = f == VT_FAULT_SHORT ? VT_EFORMAT : f;
            pc->link = u->instant;
            u->instant = pc;
            continue;
        }
        struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
        if (!sqe) {
            /* not expected: the ring has room for queue_depth pieces and no more are out */
            int rc = io_uring_submit(&u->ring);
            sqe = io_uring_get_sqe(&u->ring);
            if (!sqe) {
                /* fail this piece (its request reports it) rather than lose it */
                pc->injected = 1; /* final: no retry */
                pc->result = vt_fail(rc < 0 ? rc : -EBUSY, "io_uring: no submission entry%s%s",
                                     rc < 0 ? ": " : "", rc < 0 ? strerror(-rc) : "");
                pc->link = u->instant;
                u->instant = pc;
                continue;
            }
        }
        const vt_io_file *fl = &io->files[pc->req->file];
        char *buf = pc->buf + pc->got;
        unsigned len = pc->len - pc->got;
        uint64_t off = pc->off + pc->got;
        int fd = pc->direct ? fl->fd_direct : fl->fd_buffered;
        int fixed_file = pc->direct && fl->fixed;
        int region = u->bufs_registered ? vt_io_region_of(io, buf, len) : -1;
        if (region >= 0)
            io_uring_prep_read_fixed(sqe, fixed_file ? pc->req->file : fd, buf, len, off, region);
        else
            io_uring_prep_read(sqe, fixed_file ? pc->req->file : fd, buf, len, off);
        if (fixed_file) sqe->flags |= IOSQE_FIXED_FILE;
        io_uring_sqe_set_data(sqe, pc);
        queued++;
    }
    if (queued) {
        int f = vt_fault_check(VT_FAULT_ENGINE); /* the entries stay queued in the ring */
        int rc = f ? f : io_uring_submit(&u->ring);
        if (rc < 0) return vt_fail(rc, "io_uring_submit: %s", strerror(-rc));
    }
    return 0;
}

static void complete(vt_io_piece *pc, int res) {
    if (res < 0) {
        pc->result = res;
    } else if (res == 0) {
        pc->result = vt_fail(VT_EFORMAT, "read past end of file at offset %llu",
                             (unsigned long long)(pc->off + pc->got));
    } else {
        pc->got += (uint32_t)res;
        pc->result = 0;
    }
}

int vt_io_uring_collect(vt_io *io, vt_io_piece **out, size_t max, int wait) {
    struct vt_io_uring_state *u = io->uring;
    size_t n = 0;
    while (u->instant && n < max) {
        out[n++] = u->instant;
        u->instant = u->instant->link;
    }
    if (n) return (int)n;
    for (;;) {
        struct io_uring_cqe *cqes[256];
        unsigned want = max < 256 ? (unsigned)max : 256;
        unsigned k = io_uring_peek_batch_cqe(&u->ring, cqes, want);
        for (unsigned i = 0; i < k; i++) {
            vt_io_piece *pc = io_uring_cqe_get_data(cqes[i]);
            complete(pc, cqes[i]->res);
            out[n++] = pc;
        }
        if (k) io_uring_cq_advance(&u->ring, k);
        if (n || !wait) return (int)n;
        /* submit what a failed io_uring_submit left queued in the ring, then wait: waiting
         * alone (io_uring_wait_cqe) would sleep for good if only those were in flight */
        int rc = io_uring_submit_and_wait(&u->ring, 1);
        if (rc == -EINTR) continue;
        if (rc < 0) return vt_fail(rc, "io_uring_submit_and_wait: %s", strerror(-rc));
    }
}
