/* The streamer's I/O thread: picks what to load (demand first, then a prefetch hint, then the
 * cyclic schedule ahead of the consumer: at least `prefetch` items and at least prefetch_bytes,
 * as far as the ring slots allow), reserves places in the tiers, submits every chunk read of
 * every started job at once (the engine splits them into read_size pieces and keeps
 * queue_depth in flight), reaps completions in batches and hands each job whose reads are all
 * back to the finisher thread (streamer_finish.c), which verifies, decodes, copies and
 * publishes. Placement decisions happen under the streamer lock; reads run outside it into
 * places only this job touches (state LOADING). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "streamer_internal.h"

/* ---- places (locked) ---- */

void vt_st_drop(vt_streamer *st, uint32_t id, int t) {
    vt_sitem *it = &st->items[id];
    vt_res *r = &it->res[t];
    vt_stier *T = &st->tier[t];
    if (r->kind == PK_RING && r->slot >= 0) {
        T->slot_item[r->slot] = -1;
    } else if (r->kind == PK_CACHE) {
        vt_suballoc_free(&T->alloc, r->off, it->foot);
        vt_s3fifo_remove(T->cache, id);
    }
    if (r->kind != PK_PIN) {
        r->kind = PK_NONE;
        r->slot = -1;
        r->off = 0;
    }
    r->state = RS_EMPTY;
}

static int ring_get(vt_streamer *st, int t, uint32_t id, int demand) {
    vt_stier *T = &st->tier[t];
    for (uint32_t s = 0; s < T->nslots; s++)
        if (T->slot_item[s] < 0) return (int)s;
    if (!demand) return -1;
    /* the consumer went off schedule: take a slot from a prefetched item nobody holds */
    for (uint32_t s = 0; s < T->nslots; s++) {
        vt_sitem *v = &st->items[T->slot_item[s]];
        if (v->res[t].state == RS_READY && !v->refs && !v->wanted && !v->res[t].busy &&
            (uint32_t)T->slot_item[s] != id) {
            vt_st_drop(st, (uint32_t)T->slot_item[s], t);
            return (int)s;
        }
    }
    return -1;
}

typedef struct {
    vt_streamer *st;
    int t;
} evict_ctx;

static int can_evict(void *ctx, uint32_t key) {
    evict_ctx *c = ctx;
    const vt_sitem *v = &c->st->items[key];
    const vt_res *r = &v->res[c->t];
    return r->state == RS_READY && r->kind == PK_CACHE && !r->busy && !v->wanted &&
           (c->t != c->st->top || !v->refs);
}

/* 0 and *off, 1 = no room now (everything in use), -ENOMEM, other <0 = can never fit. */
static int cache_get(vt_streamer *st, int t, uint32_t id, uint64_t *off) {
    vt_stier *T = &st->tier[t];
    vt_sitem *it = &st->items[id];
    if (!T->cache || it->foot > T->alloc.size - T->alloc.used + vt_s3fifo_used(T->cache) ||
        it->foot > T->alloc.size)
        return -1;
    evict_ctx ec = {st, t};
    for (;;) {
        if (!vt_s3fifo_overflow(T->cache, it->foot)) {
            int rc = vt_suballoc_alloc(&T->alloc, it->foot, off);
            if (rc == -ENOMEM) return rc;
            if (!rc) {
                vt_s3fifo_insert(T->cache, id, it->foot);
                return 0;
            }
        }
        uint32_t v;
        if (vt_s3fifo_evict(T->cache, can_evict, &ec, &v)) return 1;
        vt_res *r = &st->items[v].res[t];
        vt_suballoc_free(&T->alloc, r->off, st->items[v].foot);
        r->kind = PK_NONE;
        r->state = RS_EMPTY;
        r->off = 0;
    }
}

/* Reserve a place for @p id in tier @p t. 0 ok, 1 blocked, <0 impossible. */
static int place_get(vt_streamer *st, int t, uint32_t id, int demand) {
    vt_sitem *it = &st->items[id];
    vt_res *r = &it->res[t];
    if (r->kind == PK_PIN) return 0;
    vt_stier *T = &st->tier[t];
    if (st->mode == VT_SCHEDULE_CYCLIC && T->nslots && it->foot <= T->slot_bytes &&
        !vt_st_pinned_in(it, t)) {
        int s = ring_get(st, t, id, demand);
        if (s >= 0) {
            T->slot_item[s] = id;
            r->kind = PK_RING;
            r->slot = s;
            r->off = T->slot_off[s];
            return 0;
        }
        if (it->pos >= 0 || t != st->top) return 1; /* scheduled: wait for a slot */
    }
    uint64_t off;
    int rc = cache_get(st, t, id, &off);
    if (rc) return rc;
    r->kind = PK_CACHE;
    r->off = off;
    return 0;
}

static void item_fail(vt_streamer *st, uint32_t id, int code, const char *msg) {
    vt_sitem *it = &st->items[id];
    it->err = code;
    vt_free(it->errmsg);
    it->errmsg = vt_strdup(msg);
    pthread_cond_broadcast(&st->cv_ready);
}

/* Build a job for @p id: 0 and *out, 1 blocked, <0 failed (item marked). Locked. */
static int job_start(vt_streamer *st, uint32_t id, int demand, vt_job **out) {
    vt_sitem *it = &st->items[id];
    const vt_stensor *T = &st->tensors[it->tensor];
    int top = st->top;
    vt_job j = {.item = id};
    j.need_disk = it->res[T_RAM].state != RS_READY;
    j.fill_ram = j.need_disk;
    j.top_copy = top == T_VRAM;
    int got_ram = 0, rc = 0;
    if (j.fill_ram) {
        rc = place_get(st, T_RAM, id, demand);
        if (rc) goto nospace;
        got_ram = 1;
    }
    if (j.top_copy) {
        rc = place_get(st, T_VRAM, id, demand);
        if (rc) {
            if (got_ram) vt_st_drop(st, id, T_RAM);
            goto nospace;
        }
    }
    vt_job *job = vt_calloc(1, sizeof *job);
    if (job && j.need_disk) {
        job->reqs = vt_calloc(it->nchunks ? it->nchunks : 1, sizeof *job->reqs);
        job->scratch = vt_calloc(it->nchunks ? it->nchunks : 1, sizeof *job->scratch);
        job->cst = vt_calloc(it->nchunks ? it->nchunks : 1, 1);
    }
    if (!job || (j.need_disk && (!job->reqs || !job->scratch || !job->cst))) {
        vt_st_job_free(job);
        if (j.fill_ram) vt_st_drop(st, id, T_RAM);
        if (j.top_copy) vt_st_drop(st, id, T_VRAM);
        char msg[512];
        snprintf(msg, sizeof msg, "tensor %s: out of memory for the read job (%llu chunks)",
                 T->ti.name, (unsigned long long)it->nchunks);
        item_fail(st, id, -ENOMEM, msg);
        return -ENOMEM;
    }
    j.reqs = job->reqs;
    j.scratch = job->scratch;
    j.cst = job->cst;
    *job = j;
    job->ram = vt_st_ptr(st, T_RAM, &it->res[T_RAM]);
    if (j.top_copy) job->dev = vt_st_ptr(st, T_VRAM, &it->res[T_VRAM]);
    if (j.fill_ram)
        it->res[T_RAM].state = RS_LOADING;
    else
        it->res[T_RAM].busy++;
    if (j.top_copy) it->res[T_VRAM].state = RS_LOADING;
    *out = job;
    return 0;
nospace:
    if (rc == -ENOMEM) {
        char msg[512];
        snprintf(msg, sizeof msg, "tensor %s%s: out of memory placing it in the %s tier",
                 T->ti.name, it->part >= 0 ? " part" : "", got_ram || !j.fill_ram ? "VRAM" : "RAM");
        item_fail(st, id, rc, msg);
        return rc;
    }
    if (rc < 0) {
        char msg[512];
        snprintf(msg, sizeof msg,
                 "tensor %s%s: %llu bytes do not fit the %s tier (%llu bytes free of %llu)",
                 T->ti.name, it->part >= 0 ? " part" : "", (unsigned long long)it->foot,
                 got_ram || !j.fill_ram ? "VRAM" : "RAM",
                 (unsigned long long)(st->tier[got_ram || !j.fill_ram ? T_VRAM : T_RAM].alloc.size -
                                      st->tier[got_ram || !j.fill_ram ? T_VRAM : T_RAM].alloc.used),
                 (unsigned long long)st->tier[got_ram || !j.fill_ram ? T_VRAM : T_RAM].alloc.size);
        item_fail(st, id, VT_EBUDGET, msg);
        return VT_EBUDGET;
    }
    return 1;
}

static int needs_load(const vt_streamer *st, const vt_sitem *it) {
    return it->res[st->top].state == RS_EMPTY && !it->err && it->place != VT_PLACE_OVERSIZE;
}

/* Next item to load, or -1. *demand says whether someone waits for it. Locked. */
static int64_t pick(vt_streamer *st, int *demand, uint32_t skip_n, const uint32_t *skip) {
    *demand = 0;
    if (!st->planned) return -1; /* the last plan failed: no tiers to place into */
    while (st->demand_n) {       /* drop satisfied requests from the head */
        vt_sitem *it = &st->items[st->demand[st->demand_head]];
        if (needs_load(st, it) && it->wanted) break;
        st->demand_head = (st->demand_head + 1) % st->demand_cap;
        st->demand_n--;
    }
    for (uint32_t i = 0; i < st->demand_n; i++) {
        uint32_t id = st->demand[(st->demand_head + i) % st->demand_cap];
        int skipped = 0;
        for (uint32_t k = 0; k < skip_n; k++) skipped |= skip[k] == id;
        if (!skipped && needs_load(st, &st->items[id]) && st->items[id].wanted) {
            *demand = 1;
            return id;
        }
    }
    *demand = 0;
    if (st->hint >= 0) {
        int64_t h = st->hint;
        st->hint = -1;
        if (needs_load(st, &st->items[h])) return h;
    }
    if (st->mode != VT_SCHEDULE_CYCLIC || !st->nsched) return -1;
    /* keep at least `prefetch` items and prefetch_bytes loading or loaded ahead of the consumer
     * (the ring slots bound it: job_start reports "no room" and the I/O thread stops there) */
    uint32_t ahead = 0;
    uint64_t bytes = 0;
    for (uint32_t j = 1;
         j <= st->nsched && (ahead < st->cfg.prefetch || bytes < st->prefetch_bytes); j++) {
        uint32_t pos = (uint32_t)((st->cursor + (int64_t)j) % st->nsched);
        uint32_t id = st->sched[pos];
        vt_sitem *it = &st->items[id];
        const vt_res *r = &it->res[st->top];
        if (it->err || it->place == VT_PLACE_OVERSIZE) continue;
        if (r->kind == PK_PIN && r->state == RS_READY) continue;
        int skipped = 0;
        for (uint32_t k = 0; k < skip_n; k++) skipped |= skip[k] == id;
        if (r->state == RS_EMPTY && !skipped) return id;
        ahead++;
        bytes += it->foot;
    }
    return -1;
}

/* ---- I/O (unlocked) ---- */

static int shard_file(vt_streamer *st, uint32_t shard, int *fid) {
    if (shard >= st->shard_cap) {
        uint32_t nc = st->shard_cap ? st->shard_cap : 64;
        while (nc <= shard) nc *= 2;
        int32_t *n = vt_realloc(st->shard_file, nc * sizeof *n);
        if (!n) return vt_fail(-ENOMEM, "out of memory growing the shard file table to %u", nc);
        for (uint32_t i = st->shard_cap; i < nc; i++) n[i] = -1;
        st->shard_file = n;
        st->shard_cap = nc;
    }
    if (st->shard_file[shard] >= 0) {
        *fid = st->shard_file[shard];
        return 0;
    }
    char path[4096];
    int rc = vt_store_shard_path(st->store, shard, path, sizeof path);
    if (rc) return rc;
    int fb = -1, fd = -1;
    rc = vt_store_shard_open(st->store, shard, 0, &fb);
    if (rc) return rc;
    if (vt_store_shard_open(st->store, shard, 1, &fd)) fd = -1; /* O_DIRECT refused: buffered */
    rc = vt_io_add_fd(st->io, fd, fb, path, fid);
    if (rc) {
        close(fb);
        if (fd >= 0) close(fd);
        return rc;
    }
    st->shard_file[shard] = *fid;
    return 0;
}

/* Open every shard the snapshot's chunk records name, before the I/O thread starts. An open
 * descriptor outlives an unlink, so a gc that compacts those shards after this point cannot
 * take their bytes away from this streamer. A shard no longer in the index means a gc
 * committed after the snapshot was taken: returns 1 so the caller takes a new snapshot, with
 * the tensor, chunk and shard in st->errmsg. */
int vt_st_open_shards(vt_streamer *st) {
    for (uint32_t t = 0; t < st->ntensors; t++) {
        const vt_stensor *T = &st->tensors[t];
        for (uint64_t i = 0; i < T->ti.n_chunks; i++) {
            int fid, rc = shard_file(st, T->chunks[i].shard_id, &fid);
            if (rc == VT_ENOTFOUND) {
                /* kept for the caller: the same miss in every snapshot is damage, not a gc */
                vt_st_fail(st, rc, "tensor %s chunk %llu: %s", T->ti.name,
                           (unsigned long long)T->chunks[i].index, vt_last_error());
                return 1;
            }
            if (rc) return vt_st_fail(st, rc, "streamer: %s", vt_last_error());
        }
    }
    return 0;
}

void vt_st_job_err(vt_job *j, int code, const char *fmt, ...) {
    if (j->err) return;
    j->err = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->msg, sizeof j->msg, fmt, ap);
    va_end(ap);
}

static int job_submit(vt_streamer *st, vt_job *j) {
    vt_sitem *it = &st->items[j->item];
    const vt_stensor *T = &st->tensors[it->tensor];
    j->nreq = it->nchunks;
    j->left = it->nchunks;
    uint64_t a = 0;
    for (uint64_t i = 0; i < it->nchunks; i++) {
        const vt_chunk_info *ci = &T->chunks[it->chunk0 + i];
        int fid;
        int rc = shard_file(st, ci->shard_id, &fid);
        if (rc) {
            vt_st_job_err(j, rc, "tensor %s chunk %llu: cannot open shard %u: %s", T->ti.name,
                          (unsigned long long)ci->index, ci->shard_id, vt_last_error());
            j->left -= it->nchunks - i;
            return rc;
        }
        void *buf = j->ram + a;
        if (ci->codec != VT_CODEC_NONE) {
            j->scratch[i] = vt_malloc_aligned(
                VT_TIER_ALIGN, VT_ROUND_UP(ci->stored_len ? ci->stored_len : 1, VT_TIER_ALIGN));
            if (!j->scratch[i]) {
                vt_st_job_err(
                    j, -ENOMEM, "tensor %s chunk %llu: out of memory for its %llu-byte read buffer",
                    T->ti.name, (unsigned long long)ci->index, (unsigned long long)ci->stored_len);
                j->left -= it->nchunks - i;
                return -ENOMEM;
            }
            buf = j->scratch[i];
        } else if (ci->stored_len != ci->raw_len) {
            vt_st_job_err(j, VT_ECORRUPT,
                          "tensor %s chunk %llu: stored %llu bytes but raw %llu without a codec",
                          T->ti.name, (unsigned long long)ci->index,
                          (unsigned long long)ci->stored_len, (unsigned long long)ci->raw_len);
            j->left -= it->nchunks - i;
            return VT_ECORRUPT;
        }
        j->reqs[i] = (vt_io_req){
            .file = fid, .off = ci->offset, .len = ci->stored_len, .buf = buf, .user = j};
        vt_io_submit(st->io, &j->reqs[i]);
        a += VT_ROUND_UP(ci->raw_len, VT_TIER_ALIGN);
    }
    return 0;
}

/* A read of the job came back (I/O thread). Checksums are the finisher's. */
static void req_done(vt_streamer *st, vt_job *j, vt_io_req *r) {
    uint64_t i = (uint64_t)(r - j->reqs);
    vt_sitem *it = &st->items[j->item];
    const vt_stensor *T = &st->tensors[it->tensor];
    const vt_chunk_info *ci = &T->chunks[it->chunk0 + i];
    const vt_io_file *f = &st->io->files[r->file];
    if (r->result) {
        vt_st_job_err(
            j, r->result, "tensor %s chunk %llu (shard %s @%llu, %llu bytes): read failed: %s",
            T->ti.name, (unsigned long long)ci->index, f->name, (unsigned long long)ci->offset,
            (unsigned long long)ci->stored_len, vt_strerror(r->result));
        return;
    }
    j->disk_bytes += f->fd_direct >= 0 ? ci->padded_len : ci->stored_len;
}

/* Submit the chunks the finisher asked to read again. */
static void job_resubmit(vt_streamer *st, vt_job *j) {
    j->left = 0;
    for (uint64_t i = 0; i < j->nreq; i++) {
        if (!(j->cst[i] & CST_REDO)) continue;
        j->cst[i] &= (uint8_t)~CST_REDO;
        if (vt_io_submit(st->io, &j->reqs[i]) == 0) j->left++;
    }
}

static void list_push(vt_job **head, vt_job *j) {
    j->next = *head;
    *head = j;
}

/* vt_io_reap failed with @p rc. The engine still holds every request (and writes into their
 * buffers), so failing the jobs now would hand their places and buffers on under reads still
 * landing: reap again instead, st->io_tries times with a growing pause. Returns the count
 * reaped or, if the engine keeps failing, its last error. I/O thread, unlocked. */
static int reap_again(vt_streamer *st, int rc, vt_io_req **done, size_t max) {
    for (uint32_t k = 0; rc < 0 && k < st->io_tries; k++) {
        vt_log(VT_LOG_WARN, "streamer: io engine: %s; reaping again (%u of %u)", vt_last_error(),
               k + 1, st->io_tries);
        usleep(1000u << (k < 7 ? k : 7));
        rc = vt_io_reap(st->io, done, max, 1);
    }
    return rc;
}

/* The engine kept failing: from now on the streamer loads nothing (acquire and plan fail with
 * this). The jobs in flight stay where they are, places and buffers kept. Locked. */
static void engine_dead(vt_streamer *st, int rc, const char *why) {
    if (st->io_err) return;
    st->io_err = rc;
    snprintf(st->io_errmsg, sizeof st->io_errmsg,
             "the I/O engine failed (%s) with %u reads in flight, %u time(s) in a row; the "
             "streamer can load nothing more: close it",
             why, vt_io_inflight(st->io), st->io_tries + 1);
    vt_log(VT_LOG_ERROR, "streamer: %s", st->io_errmsg);
    pthread_cond_broadcast(&st->cv_ready);
}

void *vt_st_io_main(void *arg) {
    vt_streamer *st = arg;
    vt_job *active = NULL; /* jobs with reads in flight */
    pthread_mutex_lock(&st->mu);
    for (;;) {
        int dead = st->io_err; /* the engine failed for good: start and reap nothing */
        vt_job *retry = st->retry;
        st->retry = NULL;
        /* start what can start */
        vt_job *started = NULL;
        uint32_t skip[64], nskip = 0;
        while (!st->stop && !dead && st->njobs < st->maxjobs && nskip < 64) {
            int demand;
            int64_t id = pick(st, &demand, nskip, skip);
            if (id < 0) break;
            vt_job *j;
            int rc = job_start(st, (uint32_t)id, demand, &j);
            if (rc == 1) {
                skip[nskip++] = (uint32_t)id; /* no room for it now; try others */
                if (!demand) break;
                continue;
            }
            if (rc < 0) continue;
            st->njobs++;
            list_push(&started, j);
        }
        if (!started && !retry && (!active || dead)) {
            if (st->stop) break;
            pthread_cond_broadcast(&st->cv_ready); /* plan() waits for idleness */
            pthread_cond_wait(&st->cv_work, &st->mu);
            continue;
        }
        st->io_busy = 1;
        pthread_mutex_unlock(&st->mu);

        vt_job *finished = NULL; /* reads done: to the finisher, in completion order reversed */
        while (retry) {
            vt_job *j = retry;
            retry = j->next;
            if (dead) { /* its reads are all back: it can go */
                for (uint64_t i = 0; i < j->nreq; i++) j->cst[i] &= (uint8_t)~CST_REDO;
                vt_st_job_err(j, dead, "tensor %s: re-reading a chunk: the I/O engine failed",
                              st->tensors[st->items[j->item].tensor].ti.name);
                list_push(&finished, j);
                continue;
            }
            job_resubmit(st, j);
            list_push(j->left ? &active : &finished, j);
        }
        while (started) {
            vt_job *j = started;
            started = j->next;
            if (j->need_disk) job_submit(st, j); /* on failure j->left counts what went out */
            list_push(j->need_disk && j->left ? &active : &finished, j);
        }
        double io_s = 0;
        int failed = 0; /* the engine failed for good in this round */
        char why[512] = "";
        if (active && !dead) {
            double t0 = vt_now();
            vt_io_req *done[256];
            int n = vt_io_reap(st->io, done, 256, !finished);
            if (n < 0) n = reap_again(st, n, done, 256);
            io_s = vt_now() - t0;
            if (n < 0) {
                failed = n;
                snprintf(why, sizeof why, "%s", vt_last_error());
            }
            for (int k = 0; k < n; k++) {
                vt_job *j = done[k]->user;
                req_done(st, j, done[k]);
                if (--j->left) continue;
                vt_job **pp = &active;
                while (*pp != j) pp = &(*pp)->next;
                *pp = j->next;
                list_push(&finished, j);
            }
        }
        /* reverse: the finisher takes them in the order they completed */
        vt_job *fin = NULL;
        while (finished) {
            vt_job *j = finished;
            finished = j->next;
            list_push(&fin, j);
        }
        pthread_mutex_lock(&st->mu);
        if (failed) engine_dead(st, failed, why);
        st->st.ram.fill_seconds += io_s;
        if (fin) {
            if (st->fin_tail)
                st->fin_tail->next = fin;
            else
                st->fin_head = fin;
            while (fin->next) fin = fin->next;
            st->fin_tail = fin;
            pthread_cond_signal(&st->cv_fin);
        }
        st->io_busy = 0;
        if (!st->njobs) pthread_cond_broadcast(&st->cv_ready);
    }
    pthread_mutex_unlock(&st->mu);
    /* stop with reads in flight: wait for them (their buffers are ours) */
    while (active) {
        vt_io_req *done[64];
        int n = vt_io_reap(st->io, done, 64, 1);
        if (n < 0) n = reap_again(st, n, done, 64);
        if (n <= 0) break;
        for (int k = 0; k < n; k++) {
            vt_job *j = done[k]->user;
            if (--j->left) continue;
            vt_job **pp = &active;
            while (*pp != j) pp = &(*pp)->next;
            *pp = j->next;
            vt_st_job_free(j);
        }
    }
    if (active) { /* reads may still land in these jobs' buffers and places: keep them */
        pthread_mutex_lock(&st->mu);
        st->io_leak = 1;
        pthread_mutex_unlock(&st->mu);
    }
    return NULL;
}
