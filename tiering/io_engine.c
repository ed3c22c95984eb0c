/* Engine-independent part of the I/O engine: engine choice, file table, splitting requests
 * into pieces, keeping queue_depth pieces in flight and completing requests. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io_engine.h"
#include "core/fault_internal.h"

const char *vt_io_engine_name(vt_io_engine e) {
    switch (e) {
    case VT_IO_URING:
        return "uring";
    case VT_IO_PREAD:
        return "pread";
    default:
        return "auto";
    }
}

int vt_io_engine_parse(const char *s, vt_io_engine *out) {
    if (!s || !out) return -EINVAL;
    if (!strcmp(s, "auto"))
        *out = VT_IO_AUTO;
    else if (!strcmp(s, "uring") || !strcmp(s, "io_uring"))
        *out = VT_IO_URING;
    else if (!strcmp(s, "pread"))
        *out = VT_IO_PREAD;
    else
        return -EINVAL;
    return 0;
}

static pthread_once_t fallback_once = PTHREAD_ONCE_INIT;
static int fallback_rc;
static void log_fallback(void) {
    vt_log(VT_LOG_WARN, "io_uring unavailable (%s); using the pread thread pool",
           vt_strerror(fallback_rc));
}

int vt_io_open(const vt_io_config *cfg, vt_io **out) {
    if (!out) return vt_fail(-EINVAL, "vt_io_open: NULL out");
    *out = NULL;
    vt_io_config c = cfg ? *cfg : (vt_io_config){0};
    if (c.engine == VT_IO_AUTO) {
        const char *e = getenv("VT_IO_ENGINE");
        if (e && *e && vt_io_engine_parse(e, &c.engine))
            return vt_fail(-EINVAL, "VT_IO_ENGINE=%s: expected uring or pread", e);
    }
    if (c.engine < VT_IO_AUTO || c.engine > VT_IO_PREAD)
        return vt_fail(-EINVAL, "io engine %d unknown", (int)c.engine);
    if (!c.queue_depth) c.queue_depth = VT_IO_DEFAULT_QD;
    if (c.queue_depth > 4096) return vt_fail(-EINVAL, "queue depth %u > 4096", c.queue_depth);
    if (!c.read_size) c.read_size = VT_IO_DEFAULT_READ_SIZE;
    if (c.read_size % VT_IO_ALIGN || c.read_size > (1u << 30))
        return vt_fail(-EINVAL, "read size %u is not a multiple of 4096 up to 1 GiB", c.read_size);
    if (!c.threads)
        c.threads = c.queue_depth < VT_IO_DEFAULT_THREADS ? c.queue_depth : VT_IO_DEFAULT_THREADS;

    vt_io *io = vt_calloc(1, sizeof *io);
    if (!io) return vt_fail(-ENOMEM, "io engine: out of memory for its state");
    io->qd = c.queue_depth;
    io->read_size = c.read_size;
    io->threads = c.threads;
    io->pieces = vt_calloc(io->qd, sizeof *io->pieces);
    if (!io->pieces) {
        vt_free(io);
        return vt_fail(-ENOMEM, "io engine: out of memory for %u queue entries", c.queue_depth);
    }
    for (uint32_t i = 0; i < io->qd; i++) {
        io->pieces[i].link = io->free_pieces;
        io->free_pieces = &io->pieces[i];
    }
    int rc = -ENOSYS;
    if (c.engine != VT_IO_PREAD) {
        rc = vt_io_uring_init(io);
        if (rc == 0) {
            io->engine = VT_IO_URING;
        } else if (c.engine == VT_IO_URING) {
            vt_free(io->pieces);
            vt_free(io);
            return vt_fail(rc, "io_uring_queue_init(%u): %s (VT_IO_ENGINE=uring forced)",
                           c.queue_depth, vt_strerror(rc));
        } else {
            fallback_rc = rc;
            pthread_once(&fallback_once, log_fallback);
        }
    }
    if (rc) {
        rc = vt_io_pread_init(io);
        if (rc) {
            vt_free(io->pieces);
            vt_free(io);
            return rc;
        }
        io->engine = VT_IO_PREAD;
    }
    *out = io;
    return 0;
}

void vt_io_close(vt_io *io) {
    if (!io) return;
    /* drain: pieces at the backend point into caller buffers (an engine error loses nothing:
     * try again, a few times in a row at most) */
    for (int fails = 0; io->inflight && fails < 8;) {
        vt_io_req *tmp[16];
        if (vt_io_reap(io, tmp, 16, 1) < 0)
            fails++;
        else
            fails = 0;
    }
    if (io->inflight)
        vt_log(VT_LOG_ERROR, "io engine: closing with %u reads still in flight (%s)", io->inflight,
               vt_last_error());
    if (io->engine == VT_IO_URING)
        vt_io_uring_fini(io);
    else
        vt_io_pread_fini(io);
    for (int i = 0; i < io->nfiles; i++) {
        if (io->files[i].fd_direct >= 0) close(io->files[i].fd_direct);
        if (io->files[i].fd_buffered >= 0) close(io->files[i].fd_buffered);
        vt_free(io->files[i].name);
    }
    vt_free(io->pieces);
    vt_free(io);
}

vt_io_engine vt_io_engine_of(const vt_io *io) {
    return io->engine;
}

int vt_io_add_fd(vt_io *io, int fd_direct, int fd_buffered, const char *name, int *id) {
    if (!io || fd_buffered < 0 || !id) return vt_fail(-EINVAL, "vt_io_add_fd: bad argument");
    if (io->nfiles >= VT_IO_MAX_FILES)
        return vt_fail(-EMFILE, "io engine: more than %d files", VT_IO_MAX_FILES);
    char *nm = vt_strdup(name ? name : "?");
    if (!nm)
        return vt_fail(-ENOMEM, "io engine: out of memory for the name of %s", name ? name : "?");
    int i = io->nfiles++;
    io->files[i] = (vt_io_file){.fd_direct = fd_direct, .fd_buffered = fd_buffered, .name = nm};
    if (io->engine == VT_IO_URING) vt_io_uring_add_file(io, i);
    *id = i;
    return 0;
}

int vt_io_add_path(vt_io *io, const char *path, int *id) {
    int fb = open(path, O_RDONLY | O_CLOEXEC);
    if (fb < 0) return vt_fail(-errno, "open %s: %s", path, strerror(errno));
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_DIRECT);
    int rc = vt_io_add_fd(io, fd, fb, path, id);
    if (rc) {
        if (fd >= 0) close(fd);
        close(fb);
    }
    return rc;
}

const char *vt_io_file_name(const vt_io *io, int id) {
    return id >= 0 && id < io->nfiles ? io->files[id].name : "?";
}

int vt_io_register_memory(vt_io *io, void *base, size_t len) {
    if (!io || !base || ((uintptr_t)base % VT_IO_ALIGN))
        return vt_fail(-EINVAL, "register: bad region");
    if (io->engine != VT_IO_URING) return 0;
    char *p = base;
    while (len) {
        if (io->nreg >= VT_IO_MAX_REGIONS) return vt_fail(-EINVAL, "register: too many regions");
        size_t n = len < (1u << 30) ? len : (1u << 30);
        io->reg_base[io->nreg] = p;
        io->reg_len[io->nreg] = n;
        io->nreg++;
        p += n;
        len -= n;
    }
    return vt_io_uring_register(io);
}

int vt_io_region_of(const vt_io *io, const void *p, size_t n) {
    const char *c = p;
    for (int i = 0; i < io->nreg; i++)
        if (c >= io->reg_base[i] && c + n <= io->reg_base[i] + io->reg_len[i]) return i;
    return -1;
}

int vt_io_submit(vt_io *io, vt_io_req *r) {
    if (!io || !r || r->file < 0 || r->file >= io->nfiles || (!r->buf && r->len))
        return vt_fail(-EINVAL, "vt_io_submit: bad request");
    r->result = 0;
    r->done = r->next = 0;
    r->outstanding = 0;
    r->link = NULL;
    if (io->queue_tail)
        io->queue_tail->link = r;
    else
        io->queue_head = r;
    io->queue_tail = r;
    io->pending++;
    return 0;
}

size_t vt_io_pending(const vt_io *io) {
    return io->pending;
}

uint32_t vt_io_inflight(const vt_io *io) {
    return io->inflight;
}

static void finish_req(vt_io *io, vt_io_req *r) {
    r->link = NULL;
    if (io->done_tail)
        io->done_tail->link = r;
    else
        io->done_head = r;
    io->done_tail = r;
}

/* Carve the next piece of the queue head; NULL when nothing is left to issue. */
static vt_io_piece *next_piece(vt_io *io) {
    while (io->queue_head) {
        vt_io_req *r = io->queue_head;
        if (r->next >= r->len || r->result) {
            io->queue_head = r->link;
            if (!io->queue_head) io->queue_tail = NULL;
            if (r->outstanding == 0) finish_req(io, r); /* zero-length or failed before issue */
            continue;
        }
        vt_io_piece *p = io->free_pieces;
        if (!p) return NULL;
        io->free_pieces = p->link;
        const vt_io_file *f = &io->files[r->file];
        uint64_t want = r->len - r->next;
        if (want > io->read_size) want = io->read_size;
        memset(p, 0, sizeof *p);
        p->req = r;
        p->off = r->off + r->next;
        p->buf = (char *)r->buf + r->next;
        p->want = want;
        p->direct =
            f->fd_direct >= 0 && p->off % VT_IO_ALIGN == 0 && (uintptr_t)p->buf % VT_IO_ALIGN == 0;
        p->len =
            (uint32_t)(p->direct ? (want + VT_IO_ALIGN - 1) / VT_IO_ALIGN * VT_IO_ALIGN : want);
        r->next += want;
        r->outstanding++;
        return p;
    }
    return NULL;
}

/* A piece came back from the backend: complete it, or return it for a retry (1). */
static int piece_done(vt_io *io, vt_io_piece *p) {
    vt_io_req *r = p->req;
    if (p->result == -EINVAL && p->direct) {
        /* the file system refused O_DIRECT for this read: go buffered for this file */
        vt_io_file *f = &io->files[r->file];
        vt_log(VT_LOG_INFO, "%s: O_DIRECT read refused (EINVAL); reading buffered", f->name);
        p->direct = 0;
        p->len = (uint32_t)p->want;
        p->got = 0;
        p->result = 0;
        return 1;
    }
    if ((p->result == -EAGAIN || p->result == -EINTR) && !p->injected) {
        p->result = 0;
        return 1;
    }
    if (p->result == 0 && p->got < p->want && !p->injected) {
        /* genuine short read: ask for the rest (buffered when the remainder is unaligned) */
        p->direct = p->direct && p->got % VT_IO_ALIGN == 0;
        if (!p->direct) p->len = (uint32_t)p->want;
        return 1;
    }
    if (p->result && !r->result) r->result = p->result;
    if (!p->result) r->done += p->want;
    r->outstanding--;
    p->link = io->free_pieces;
    io->free_pieces = p;
    if (r->outstanding == 0 && (r->next >= r->len || r->result)) {
        /* a failed request may still sit at the queue head: unlink it */
        if (io->queue_head == r) {
            io->queue_head = r->link;
            if (!io->queue_head) io->queue_tail = NULL;
        } else if (r->next < r->len) {
            for (vt_io_req *q = io->queue_head; q; q = q->link)
                if (q->link == r) {
                    q->link = r->link;
                    if (io->queue_tail == r) io->queue_tail = q;
                    break;
                }
        }
        finish_req(io, r);
    }
    return 0;
}

/* Hand @p n pieces to the backend; they are in flight whatever it returns (see vt_io_reap). */
static int issue(vt_io *io, vt_io_piece **p, size_t n) {
    int rc = io->engine == VT_IO_URING ? vt_io_uring_issue(io, p, n) : vt_io_pread_issue(io, p, n);
    io->inflight += (uint32_t)n;
    return rc;
}

int vt_io_reap(vt_io *io, vt_io_req **done, size_t max, int wait) {
    size_t n = 0;
    for (;;) {
        /* hand back what is finished */
        while (n < max && io->done_head) {
            vt_io_req *r = io->done_head;
            io->done_head = r->link;
            if (!io->done_head) io->done_tail = NULL;
            r->link = NULL;
            io->pending--;
            done[n++] = r;
        }
        if (n == max) return (int)n;
        /* issue new pieces in one batch */
        vt_io_piece *batch[256];
        size_t nb = 0;
        vt_io_piece *p;
        while (nb < 256 && (p = next_piece(io))) batch[nb++] = p;
        /* A backend takes every piece it is given, also when it reports an error (io_uring:
         * the entries stay queued in the ring for the next submission): they count as in
         * flight either way, so an error loses no piece and a later reap picks up where this
         * one stopped. A piece dropped here once left its request unfinished for good and
         * made a late completion wrap the in-flight count. Requests already moved to done[]
         * are returned, not the error: it shows again on the next call if it lasts. */
        if (io->done_head) { /* zero-length/failed requests finished while carving */
            if (nb) {
                int rc = issue(io, batch, nb);
                if (rc) return n ? (int)n : rc;
            }
            continue;
        }
        if (nb) {
            int rc = issue(io, batch, nb);
            if (rc) return n ? (int)n : rc;
        }
        if (!io->inflight) return (int)n;
        int block = wait && n == 0;
        int f = vt_fault_check(VT_FAULT_ENGINE); /* as if reaping failed (io_uring_wait_cqe) */
        if (f) return n ? (int)n : vt_fail(f, "io engine: reaping completions failed (injected)");
        vt_io_piece *got[256];
        int k = io->engine == VT_IO_URING ? vt_io_uring_collect(io, got, 256, block)
                                          : vt_io_pread_collect(io, got, 256, block);
        if (k < 0) return n ? (int)n : k;
        if (k == 0 && !block) return (int)n;
        io->inflight -= (uint32_t)k;
        vt_io_piece *retry[256];
        size_t nr = 0;
        for (int i = 0; i < k; i++)
            if (piece_done(io, got[i])) retry[nr++] = got[i];
        if (nr) {
            int rc = issue(io, retry, nr);
            if (rc) return n ? (int)n : rc;
        }
    }
}

int vt_io_read_all(vt_io *io, vt_io_req *reqs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int rc = vt_io_submit(io, &reqs[i]);
        if (rc) return rc;
    }
    size_t left = n;
    while (left) {
        vt_io_req *d[64];
        int k = vt_io_reap(io, d, 64, 1);
        if (k < 0) return k;
        left -= (size_t)k;
    }
    for (size_t i = 0; i < n; i++)
        if (reqs[i].result) return reqs[i].result;
    return 0;
}

int vt_io_has_registered_memory(const vt_io *io) {
    return io->nreg > 0;
}
