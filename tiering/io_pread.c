/* pread backend: a small pool of worker threads, each doing one vt_pread_full per piece (so the
 * hooks' fault injection applies); finished pieces go to a list the owner collects. */
#include <errno.h>
#include <pthread.h>

#include "io_engine.h"

struct vt_io_pread_state {
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    vt_io_piece *todo_head, *todo_tail, *done;
    int stop;
    uint32_t nthreads;
    pthread_t th[];
};

static void *worker(void *arg) {
    vt_io *io = arg;
    struct vt_io_pread_state *s = io->pread;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->todo_head && !s->stop) pthread_cond_wait(&s->cv_work, &s->mu);
        if (!s->todo_head) break;
        vt_io_piece *p = s->todo_head;
        s->todo_head = p->link;
        if (!s->todo_head) s->todo_tail = NULL;
        pthread_mutex_unlock(&s->mu);

        const vt_io_file *f = &io->files[p->req->file];
        int fd = p->direct ? f->fd_direct : f->fd_buffered;
        int rc = vt_pread_full(fd, p->buf + p->got, p->len - p->got, p->off + p->got);
        if (rc == 0) {
            p->got = p->len;
            p->result = 0;
        } else {
            p->result = rc;
            p->injected = vt_fault_fired(); /* do not retry an injected fault */
        }

        pthread_mutex_lock(&s->mu);
        p->link = s->done;
        s->done = p;
        pthread_cond_signal(&s->cv_done);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int vt_io_pread_init(vt_io *io) {
    struct vt_io_pread_state *s = vt_calloc(1, sizeof *s + io->threads * sizeof(pthread_t));
    if (!s) return vt_fail(-ENOMEM, "io engine: out of memory for the pread pool");
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv_work, NULL);
    pthread_cond_init(&s->cv_done, NULL);
    io->pread = s;
    for (uint32_t i = 0; i < io->threads; i++) {
        int rc = pthread_create(&s->th[i], NULL, worker, io);
        if (rc) {
            vt_io_pread_fini(io);
            return vt_fail(-rc, "io engine: cannot start pread worker: %s", vt_strerror(-rc));
        }
        s->nthreads++;
    }
    return 0;
}

void vt_io_pread_fini(vt_io *io) {
    struct vt_io_pread_state *s = io->pread;
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_broadcast(&s->cv_work);
    pthread_mutex_unlock(&s->mu);
    for (uint32_t i = 0; i < s->nthreads; i++) pthread_join(s->th[i], NULL);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv_work);
    pthread_cond_destroy(&s->cv_done);
    vt_free(s);
    io->pread = NULL;
}

int vt_io_pread_issue(vt_io *io, vt_io_piece **p, size_t n) {
    struct vt_io_pread_state *s = io->pread;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n; i++) {
        p[i]->link = NULL;
        if (s->todo_tail)
            s->todo_tail->link = p[i];
        else
            s->todo_head = p[i];
        s->todo_tail = p[i];
    }
    if (n == 1)
        pthread_cond_signal(&s->cv_work);
    else
        pthread_cond_broadcast(&s->cv_work);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

int vt_io_pread_collect(vt_io *io, vt_io_piece **out, size_t max, int wait) {
    struct vt_io_pread_state *s = io->pread;
    size_t n = 0;
    pthread_mutex_lock(&s->mu);
    while (wait && !s->done) pthread_cond_wait(&s->cv_done, &s->mu);
    while (s->done && n < max) {
        out[n++] = s->done;
        s->done = s->done->link;
    }
    pthread_mutex_unlock(&s->mu);
    return (int)n;
}
