/* Consumer side of the streamer: acquire (wait until resident), release, prefetch hints.
 *
 * Every acquire takes an entry of the streamer's handle table (which item, which thread) and a
 * generation from one process-wide counter (shared by all streamers, starting at random); the
 * handle's token is (generation << TOK_IDX_BITS) | (entry + 1). Release accepts a token only
 * while that entry is live with that generation. No two acquisitions in the process share a
 * generation until the counter wraps (2^40 of them), so a copy of a released handle or another
 * streamer's handle is refused by construction, and a hand-made one unless it guesses a live
 * generation; none of them changes anything. The table also says exactly which threads hold an
 * item: the self-deadlock checks below use it. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "streamer_internal.h"

/* token = gen << TOK_IDX_BITS | (entry + 1): up to 2^24 - 1 handles out at once, 2^40 - 1
 * generations before the counter wraps */
#define TOK_IDX_BITS 24
#define TOK_IDX_MASK ((1ull << TOK_IDX_BITS) - 1)
#define TOK_GEN_MASK ((1ull << (64 - TOK_IDX_BITS)) - 1)
#define HS_MAX       ((uint32_t)TOK_IDX_MASK) /* entries: entry + 1 fits the index bits */

static uint64_t mix64(uint64_t x) { /* splitmix64's finalizer */
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* The process's generation counter: every acquisition of every streamer takes the next one. */
static _Atomic uint64_t gen_next;
static pthread_once_t gen_once = PTHREAD_ONCE_INIT;

static void gen_seed(void) { /* a random start, so that tokens differ between runs */
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        r = mix64((uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec) ^
            mix64((uint64_t)getpid() << 32);
    }
    atomic_store(&gen_next, mix64(r));
}

void vt_st_handles_init(vt_streamer *st) {
    pthread_once(&gen_once, gen_seed);
    st->hs = NULL;
    st->hcap = 0;
    st->hfree = -1;
}

/* A fresh generation: nonzero (0 marks a free entry), never handed out before in this process
 * unless 2^40 - 1 have been since. */
static uint64_t gen_take(void) {
    uint64_t g;
    do g = atomic_fetch_add(&gen_next, 1) & TOK_GEN_MASK;
    while (!g);
    return g;
}

/* Take a handle-table entry for item @p id, held by the calling thread, with a fresh generation
 * (the table grows when full). Returns the entry, or VT_EBUDGET / -ENOMEM with the message set
 * and nothing taken. Locked. */
static int32_t handle_take(vt_streamer *st, uint32_t id) {
    const char *name = st->tensors[st->items[id].tensor].ti.name;
    if (st->hfree < 0) {
        if (st->hcap == HS_MAX)
            return vt_st_fail(st, VT_EBUDGET,
                              "acquire %s: %u handles are out, the most one streamer hands out; "
                              "release some first",
                              name, HS_MAX);
        uint32_t nc = !st->hcap ? 16 : st->hcap > HS_MAX / 2 ? HS_MAX : 2 * st->hcap;
        vt_shandle *n = vt_realloc(st->hs, (size_t)nc * sizeof *n);
        if (!n)
            return vt_st_fail(st, -ENOMEM,
                              "acquire %s: out of memory growing the handle table to %u entries",
                              name, nc);
        for (uint32_t i = st->hcap; i < nc; i++) {
            n[i].gen = 0;
            n[i].next = i + 1 < nc ? (int32_t)(i + 1) : -1;
        }
        st->hs = n;
        st->hfree = (int32_t)st->hcap;
        st->hcap = nc;
    }
    int32_t h = st->hfree;
    vt_shandle *e = &st->hs[h];
    vt_sitem *it = &st->items[id];
    st->hfree = e->next;
    e->gen = gen_take();
    e->item = id;
    e->thread = pthread_self();
    e->prev = -1;
    e->next = it->hfirst;
    if (it->hfirst >= 0) st->hs[it->hfirst].prev = h;
    it->hfirst = h;
    it->refs++;
    st->held++;
    return h;
}

/* Give back live entry @p h (and its item reference). Locked. */
static void handle_put(vt_streamer *st, int32_t h) {
    vt_shandle *e = &st->hs[h];
    vt_sitem *it = &st->items[e->item];
    if (e->prev >= 0)
        st->hs[e->prev].next = e->next;
    else
        it->hfirst = e->next;
    if (e->next >= 0) st->hs[e->next].prev = e->prev;
    e->gen = 0;
    e->next = st->hfree;
    st->hfree = h;
    it->refs--;
    st->held--;
}

/* The live entry @p token names, or -1. Locked. */
static int32_t handle_find(const vt_streamer *st, uint64_t token) {
    uint64_t idx = token & TOK_IDX_MASK, gen = token >> TOK_IDX_BITS;
    if (!idx || idx > st->hcap || !gen || st->hs[idx - 1].gen != gen) return -1;
    return (int32_t)(idx - 1);
}

/* 1 if @p v is held, by handles of the calling thread only (from the handle table). Locked. */
static int held_by_self(const vt_streamer *st, const vt_sitem *v) {
    if (!v->refs) return 0;
    pthread_t self = pthread_self();
    for (int32_t h = v->hfirst; h >= 0; h = st->hs[h].next)
        if (!pthread_equal(st->hs[h].thread, self)) return 0;
    return 1;
}

static int demand_push(vt_streamer *st, uint32_t id) {
    for (uint32_t i = 0; i < st->demand_n; i++)
        if (st->demand[(st->demand_head + i) % st->demand_cap] == id) return 0;
    if (st->demand_n == st->demand_cap) {
        uint32_t nc = 2 * st->demand_cap;
        uint32_t *n = vt_malloc(nc * sizeof *n);
        if (!n) return -ENOMEM;
        for (uint32_t i = 0; i < st->demand_n; i++)
            n[i] = st->demand[(st->demand_head + i) % st->demand_cap];
        vt_free(st->demand);
        st->demand = n;
        st->demand_cap = nc;
        st->demand_head = 0;
    }
    st->demand[(st->demand_head + st->demand_n++) % st->demand_cap] = id;
    return 0;
}

static void count_access(vt_streamer *st, vt_sitem *it) {
    st->st.acquires++;
    if (st->top == T_VRAM) {
        if (it->src == SRC_RESIDENT) {
            st->st.vram.hits++;
        } else {
            st->st.vram.misses++;
            if (it->src == SRC_RAM)
                st->st.ram.hits++;
            else
                st->st.ram.misses++;
        }
    } else {
        if (it->src == SRC_RESIDENT)
            st->st.ram.hits++;
        else
            st->st.ram.misses++;
    }
    if (it->src == SRC_RESIDENT && st->tier[st->top].cache && it->res[st->top].kind == PK_CACHE)
        vt_s3fifo_access(st->tier[st->top].cache, (uint32_t)(it - st->items));
    it->src = SRC_RESIDENT;
}

/* 1 if every ring slot of the top tier is held by handles of the calling thread alone. */
static int ring_held_by_self(const vt_streamer *st) {
    const vt_stier *T = &st->tier[st->top];
    for (uint32_t s = 0; s < T->nslots; s++)
        if (T->slot_item[s] < 0 || !held_by_self(st, &st->items[T->slot_item[s]])) return 0;
    return 1;
}

/* 1 if @p it can only become resident through a top-tier ring slot and every slot is held by
 * handles of the calling thread alone: waiting would never end. Locked. */
static int ring_held_by_caller(const vt_streamer *st, const vt_sitem *it) {
    const vt_stier *T = &st->tier[st->top];
    const vt_res *r = &it->res[st->top];
    if (st->mode != VT_SCHEDULE_CYCLIC || !T->nslots || it->pos < 0 ||
        vt_st_pinned_in(it, st->top) || r->state != RS_EMPTY || r->kind == PK_PIN ||
        it->foot > T->slot_bytes)
        return 0;
    return ring_held_by_self(st);
}

/* 1 if @p it can only become resident through the top tier's cache and that cannot make room:
 * the item does not fit next to what is there, and everything there is held by handles of the
 * calling thread alone (for an item outside the cyclic schedule that fits a ring slot: every
 * slot is too). Room can then only come from this thread's releases: waiting would never end.
 * An entry held by another thread, wanted, or still loading may yet make room: 0. The sizes
 * are checked first, the entries only then (an acquire that waits re-checks on every wakeup).
 * Locked. */
static int cache_held_by_caller(const vt_streamer *st, const vt_sitem *it, uint32_t *nheld,
                                uint64_t *held_bytes, int *ring_too) {
    const vt_stier *T = &st->tier[st->top];
    const vt_res *r = &it->res[st->top];
    if (!T->cache || vt_st_pinned_in(it, st->top) || r->state != RS_EMPTY || r->kind == PK_PIN ||
        it->err)
        return 0;
    int ring = st->mode == VT_SCHEDULE_CYCLIC && T->nslots && it->foot <= T->slot_bytes;
    if (ring && it->pos >= 0) return 0; /* scheduled: the ring only (ring_held_by_caller) */
    /* too large for the tier: the I/O thread reports that (VT_EBUDGET), not this */
    if (it->foot > T->alloc.size - T->alloc.used + vt_s3fifo_used(T->cache) ||
        it->foot > T->alloc.size)
        return 0;
    if (!vt_s3fifo_overflow(T->cache, it->foot) && vt_suballoc_largest(&T->alloc) >= it->foot)
        return 0; /* it fits next to what is there */
    if (ring && !ring_held_by_self(st)) return 0;
    *nheld = 0;
    *held_bytes = 0;
    *ring_too = ring;
    for (uint32_t i = 0; i < st->nitems; i++) {
        const vt_sitem *v = &st->items[i];
        if (v->res[st->top].kind != PK_CACHE) continue;
        if (v->res[st->top].state != RS_READY || !held_by_self(st, v)) return 0;
        ++*nheld;
        *held_bytes += v->foot;
    }
    return 1;
}

/* Why an acquire of @p it cannot wait (VT_EBUDGET with the message), or 0 to wait. Locked. */
static int held_by_caller(vt_streamer *st, const vt_sitem *it) {
    const char *name = st->tensors[it->tensor].ti.name;
    const char *tier = st->top == T_VRAM ? "VRAM" : "RAM";
    if (ring_held_by_caller(st, it))
        return vt_st_fail(st, VT_EBUDGET,
                          "acquire %s: all %u ring slots of the %s tier are held by this thread's "
                          "handles; release one first (or open with more ring_slots)",
                          name, st->tier[st->top].nslots, tier);
    uint32_t n;
    uint64_t b;
    int ring;
    if (cache_held_by_caller(st, it, &n, &b, &ring))
        return vt_st_fail(
            st, VT_EBUDGET,
            "acquire %s%s: needs %llu bytes in the %s tier's cache, which is full with %u "
            "tensor(s) (%llu bytes) held by this thread's handles%s; release one first (or open "
            "with a larger %s budget)",
            name, it->part >= 0 ? " part" : "", (unsigned long long)it->foot, tier, n,
            (unsigned long long)b, ring ? " (its ring slots too)" : "",
            st->top == T_VRAM ? "vram_bytes" : "ram_bytes");
    return 0;
}

/* acquire_item with the lock held (released only while waiting). */
static int acquire_locked(vt_streamer *st, uint32_t id, vt_weight *out) {
    vt_sitem *it = &st->items[id];
    const vt_stensor *t = &st->tensors[it->tensor];
    if (!st->planned) {
        return vt_st_fail(st, VT_EUSAGE,
                          "acquire %s: the streamer has no plan (the last vt_streamer_plan "
                          "failed); plan again first",
                          t->ti.name);
    }
    if (st->io_err) return vt_st_fail(st, st->io_err, "acquire %s: %s", t->ti.name, st->io_errmsg);
    if (it->place == VT_PLACE_OVERSIZE || (it->part < 0 && t->nparts) ||
        it->foot > st->tier[T_RAM].reg.size ||
        (st->has_vram && it->foot > st->tier[T_VRAM].reg.size)) {
        if (t->nparts && it->part < 0)
            return vt_st_fail(
                st, VT_EBUDGET,
                "tensor %s (%llu bytes) does not fit a ring slot; it is streamed in %u parts: use "
                "vt_streamer_acquire_part",
                t->ti.name, (unsigned long long)it->foot, t->nparts);
        return vt_st_fail(st, VT_EBUDGET,
                          "tensor %s%s needs %llu bytes, more than a ring slot or tier budget "
                          "allows (ram %llu, vram "
                          "%llu bytes, %u slots)%s",
                          t->ti.name, it->part >= 0 ? " part" : "", (unsigned long long)it->foot,
                          (unsigned long long)st->cfg.ram_bytes,
                          (unsigned long long)st->cfg.vram_bytes, st->cfg.ring_slots,
                          st->cfg.chunkwise ? "" : "; set chunkwise to stream it part by part");
    }
    if (st->mode == VT_SCHEDULE_CYCLIC && it->pos >= 0 && st->cursor != it->pos) {
        st->cursor = it->pos;
        pthread_cond_signal(&st->cv_work);
    }
    int rc = held_by_caller(st, it);
    if (rc) return rc;
    if (it->res[st->top].state != RS_READY) {
        if (it->res[st->top].state == RS_EMPTY && !it->err) {
            rc = demand_push(st, id);
            if (rc) {
                return vt_st_fail(st, rc, "acquire %s: out of memory growing the request queue",
                                  t->ti.name);
            }
            pthread_cond_signal(&st->cv_work);
        }
        it->wanted++;
        double t0 = vt_now();
        int stuck = 0;
        while (it->res[st->top].state != RS_READY && !it->err && !st->stop && !st->io_err &&
               !(stuck = held_by_caller(st, it)))
            pthread_cond_wait(&st->cv_ready, &st->mu);
        st->st.stall_seconds += vt_now() - t0;
        it->wanted--;
        if (stuck) return stuck; /* the message is set */
        if (st->io_err)
            return vt_st_fail(st, st->io_err, "acquire %s: %s", t->ti.name, st->io_errmsg);
        if (it->res[st->top].state != RS_READY) {
            rc = it->err ? it->err : VT_EUSAGE;
            char msg[1024];
            if (it->errmsg)
                snprintf(msg, sizeof msg, "%s", it->errmsg);
            else if (it->err) /* the detail could not be kept (out of memory) */
                snprintf(msg, sizeof msg, "tensor %s: loading failed: %s", t->ti.name,
                         vt_strerror(rc));
            else
                snprintf(msg, sizeof msg, "acquire %s: streamer closing", t->ti.name);
            if (!it->wanted) { /* everyone waiting has seen it: the next acquire re-reads */
                it->err = 0;
                vt_free(it->errmsg);
                it->errmsg = NULL;
            }
            return vt_st_fail(st, rc, "%s", msg);
        }
    }
    int32_t h = handle_take(st, id);
    if (h < 0) return h; /* the message is set; nothing acquired */
    if (it->copy_pending && st->top == T_VRAM) {
        /* the device copy was queued: wait for it here, holding the handle so the place stays */
        void *ev = it->copy_event;
        pthread_mutex_unlock(&st->mu);
        rc = vt_tcuda_event_sync(ev);
        pthread_mutex_lock(&st->mu);
        if (rc) {
            handle_put(st, h);
            pthread_cond_signal(&st->cv_work);
            return vt_st_fail(st, rc, "acquire %s: waiting for the copy to the device tier: %s",
                              t->ti.name, vt_last_error());
        }
    }
    count_access(st, it);
    const vt_res *r = &it->res[st->top];
    char *p = vt_st_ptr(st, st->top, r);
    out->data = p;
    out->aux = t->ti.aux_bytes ? (const float *)(p + it->aux_off) : NULL;
    /* a device tier without a GPU is host memory: say so, so kernels run on the CPU */
    out->location = (st->top == T_VRAM && st->st.device_is_gpu) ? VT_LOC_DEVICE : VT_LOC_HOST;
    out->format = t->ti.format;
    out->rows = it->rows;
    out->cols = t->ti.cols;
    out->row0 = it->row0;
    out->total_rows = t->ti.rows;
    out->bytes = it->data_bytes;
    out->tensor_scale = t->ti.tensor_scale;
    out->token = st->hs[h].gen << TOK_IDX_BITS | (uint64_t)(h + 1);
    return 0;
}

/* Acquirers are counted while inside: close wakes the waiting ones (they return VT_EUSAGE) and
 * waits for all to leave before it frees what they use. A close that freed the streamer under a
 * thread asleep here once left that thread hanging on a destroyed condition variable. */
static int acquire_item(vt_streamer *st, uint32_t id, vt_weight *out) {
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&st->mu);
    if (st->stop) {
        pthread_mutex_unlock(&st->mu);
        return vt_fail(VT_EUSAGE, "acquire %s: the streamer is closing",
                       st->tensors[st->items[id].tensor].ti.name);
    }
    st->acquiring++;
    int rc = acquire_locked(st, id, out);
    if (!--st->acquiring && st->stop) pthread_cond_broadcast(&st->cv_ready);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int vt_streamer_acquire(vt_streamer *st, const char *name, vt_weight *out) {
    if (!st || !name || !out) return vt_fail(-EINVAL, "vt_streamer_acquire: NULL argument");
    int t = vt_st_find(st, name);
    if (t < 0)
        return vt_st_fail(st, VT_ENOTFOUND, "acquire: tensor %s is not in store %s", name,
                          vt_store_path(st->store));
    return acquire_item(st, st->tensors[t].item, out);
}

int vt_streamer_acquire_part(vt_streamer *st, const char *name, uint64_t part, vt_weight *out) {
    if (!st || !name || !out) return vt_fail(-EINVAL, "vt_streamer_acquire_part: NULL argument");
    int t = vt_st_find(st, name);
    if (t < 0)
        return vt_st_fail(st, VT_ENOTFOUND, "acquire: tensor %s is not in store %s", name,
                          vt_store_path(st->store));
    const vt_stensor *T = &st->tensors[t];
    uint64_t n = T->nparts ? T->nparts : 1;
    if (part >= n)
        return vt_st_fail(st, -ERANGE, "acquire: tensor %s has %llu part(s), asked for part %llu",
                          name, (unsigned long long)n, (unsigned long long)part);
    return acquire_item(st, T->nparts ? T->part0 + (uint32_t)part : T->item, out);
}

int vt_streamer_release(vt_streamer *st, vt_weight *w) {
    if (!st || !w) return vt_fail(-EINVAL, "vt_streamer_release: NULL argument");
    pthread_mutex_lock(&st->mu);
    int32_t h = handle_find(st, w->token);
    if (h < 0) {
        pthread_mutex_unlock(&st->mu);
        return vt_st_fail(st, -EINVAL,
                          "release: not a live handle of this streamer (token %#llx: released "
                          "already, a copy of a released handle, another streamer's or made by "
                          "hand)",
                          (unsigned long long)w->token);
    }
    uint32_t id = st->hs[h].item;
    vt_sitem *it = &st->items[id];
    handle_put(st, h);
    /* a streamed item is used once per pass: give its slot back */
    if (!it->refs && !it->wanted && it->res[st->top].kind == PK_RING) vt_st_drop(st, id, st->top);
    pthread_cond_signal(&st->cv_work);
    /* the handles left on it may now all be a waiting acquirer's own: let it check again
     * (without counting on the I/O thread's broadcast when it goes idle) */
    if (it->refs && st->acquiring) pthread_cond_broadcast(&st->cv_ready);
    pthread_mutex_unlock(&st->mu);
    memset(w, 0, sizeof *w);
    return 0;
}

int vt_streamer_prefetch(vt_streamer *st, const char *name) {
    if (!st || !name) return vt_fail(-EINVAL, "vt_streamer_prefetch: NULL argument");
    int t = vt_st_find(st, name);
    if (t < 0)
        return vt_st_fail(st, VT_ENOTFOUND, "prefetch: tensor %s is not in store %s", name,
                          vt_store_path(st->store));
    pthread_mutex_lock(&st->mu);
    const vt_stensor *T = &st->tensors[t];
    st->hint = T->nparts ? T->part0 : T->item;
    pthread_cond_signal(&st->cv_work);
    pthread_mutex_unlock(&st->mu);
    return 0;
}
