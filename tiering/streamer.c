/* Streamer lifecycle: open (tiers, io engine, tensor table, I/O thread), plan, stats, close. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "streamer_internal.h"

int vt_st_fail(vt_streamer *st, int code, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (st) snprintf(st->errmsg, sizeof st->errmsg, "%s", buf);
    return vt_fail(code, "%s", buf);
}

const char *vt_streamer_errmsg(const vt_streamer *st) {
    return st ? st->errmsg : "";
}

char *vt_st_ptr(vt_streamer *st, int tier, const vt_res *r) {
    return st->tier[tier].reg.base + r->off;
}

const char *vt_placement_name(vt_placement p) {
    switch (p) {
    case VT_PLACE_VRAM_PIN:
        return "vram";
    case VT_PLACE_RAM_PIN:
        return "ram";
    case VT_PLACE_STREAM:
        return "stream";
    case VT_PLACE_OVERSIZE:
        return "oversize";
    default:
        return "none";
    }
}

/* ---- tensor table ---- */

typedef struct {
    vt_streamer *st;
    uint32_t cap;
    int rc;
} list_ctx;

static int on_tensor(void *ctx, const vt_tensor_info *ti) {
    list_ctx *c = ctx;
    vt_streamer *st = c->st;
    if (st->ntensors == c->cap) {
        uint32_t nc = c->cap ? 2 * c->cap : 64;
        vt_stensor *n = vt_realloc(st->tensors, nc * sizeof *n);
        if (!n) return c->rc = -ENOMEM; /* named by load_tensors */
        st->tensors = n;
        c->cap = nc;
    }
    vt_stensor *t = &st->tensors[st->ntensors++];
    memset(t, 0, sizeof *t);
    t->ti = *ti;
    return 0;
}

static uint64_t chunk_raw(const vt_tensor_info *ti, uint64_t i) {
    uint64_t r0 = i * ti->rows_per_chunk;
    uint64_t rows = ti->rows - r0 < ti->rows_per_chunk ? ti->rows - r0 : ti->rows_per_chunk;
    return vt_store_format_bytes(ti->format, ti->src_dtype, rows, ti->cols);
}

static int add_item(vt_streamer *st, uint32_t *cap, uint32_t tensor, int64_t part, uint64_t c0,
                    uint64_t nc) {
    if (st->nitems == *cap) {
        uint32_t ncap = *cap ? 2 * *cap : 64;
        vt_sitem *n = vt_realloc(st->items, ncap * sizeof *n);
        if (!n) return -ENOMEM;
        st->items = n;
        *cap = ncap;
    }
    const vt_stensor *t = &st->tensors[tensor];
    vt_sitem *it = &st->items[st->nitems++];
    memset(it, 0, sizeof *it);
    it->tensor = tensor;
    it->part = part;
    it->chunk0 = c0;
    it->nchunks = nc;
    it->row0 = c0 * t->ti.rows_per_chunk;
    uint64_t area = 0;
    for (uint64_t i = c0; i < c0 + nc; i++) {
        uint64_t raw = chunk_raw(&t->ti, i);
        it->data_bytes += raw;
        area += VT_ROUND_UP(raw, VT_TIER_ALIGN);
    }
    uint64_t end = (c0 + nc) * t->ti.rows_per_chunk;
    it->rows = (end < t->ti.rows ? end : t->ti.rows) - it->row0;
    if (!nc) it->rows = t->ti.rows;
    it->aux_off = area;
    it->foot = area + VT_ROUND_UP(t->ti.aux_bytes, VT_TIER_ALIGN);
    if (!it->foot) it->foot = VT_TIER_ALIGN;
    it->pos = -1;
    it->place = VT_PLACE_NONE;
    it->hfirst = -1;
    for (int k = 0; k < 2; k++) it->res[k].slot = -1;
    return 0;
}

#define ST_LOAD_CHANGED 1 /* the store changed between the listing and a chunk-list read */
#define ST_LOAD_SAME    4 /* successive snapshots with the same miss: damage, not a race */

static int load_tensors(vt_streamer *st) {
    list_ctx c = {st, 0, 0};
    int rc = vt_store_list(st->store, NULL, on_tensor, &c);
    if (c.rc) return vt_st_fail(st, c.rc, "streamer: out of memory for the tensor table");
    if (rc)
        return vt_st_fail(st, rc, "streamer: listing tensors of %s: %s", vt_store_path(st->store),
                          vt_last_error());
    /* a ring slot must fit in every tier it passes through */
    uint64_t lim = st->cfg.ram_bytes / st->cfg.ring_slots;
    if (st->has_vram && st->cfg.vram_bytes / st->cfg.ring_slots < lim)
        lim = st->cfg.vram_bytes / st->cfg.ring_slots;
    uint32_t cap = 0;
    for (uint32_t i = 0; i < st->ntensors; i++) {
        vt_stensor *t = &st->tensors[i];
        uint64_t n = t->ti.n_chunks;
        t->chunks = vt_malloc((n ? n : 1) * sizeof *t->chunks);
        if (!t->chunks)
            return vt_st_fail(st, -ENOMEM, "tensor %s: out of memory for its chunk list (%llu)",
                              t->ti.name, (unsigned long long)n);
        uint64_t got = 0;
        rc = vt_store_chunks(st->store, t->ti.name, t->chunks, n, &got);
        /* the listing and this read are separate snapshots: a writer may have removed or
         * replaced the tensor in between (a new record has a new id). Start over then. */
        if (rc == VT_ENOTFOUND || rc == -ERANGE) {
            vt_st_fail(st, rc, "tensor %s: reading its chunk list: %s", t->ti.name,
                       vt_last_error());
            return ST_LOAD_CHANGED;
        }
        if (!rc && got > 0 && t->chunks[0].tensor_id != t->ti.id) {
            vt_st_fail(st, VT_ECORRUPT,
                       "tensor %s (id %llu): its chunk 0 belongs to tensor id %llu", t->ti.name,
                       (unsigned long long)t->ti.id, (unsigned long long)t->chunks[0].tensor_id);
            return ST_LOAD_CHANGED;
        }
        if (!rc && got != n) rc = VT_ECORRUPT;
        if (rc)
            return vt_st_fail(st, rc, "tensor %s: reading its chunk list: %s", t->ti.name,
                              vt_last_error());
        if (t->ti.aux_bytes) {
            t->aux = vt_malloc(t->ti.aux_bytes);
            if (!t->aux)
                return vt_st_fail(st, -ENOMEM, "tensor %s: out of memory for its aux (%llu bytes)",
                                  t->ti.name, (unsigned long long)t->ti.aux_bytes);
            rc = vt_store_read_aux(st->store, t->ti.name, t->aux, t->ti.aux_bytes, NULL);
            if (rc == VT_ENOTFOUND) {
                vt_st_fail(st, rc, "tensor %s: reading aux: %s", t->ti.name, vt_last_error());
                return ST_LOAD_CHANGED;
            }
            if (rc)
                return vt_st_fail(st, rc, "tensor %s: reading aux: %s", t->ti.name,
                                  vt_last_error());
        }
        t->item = st->nitems;
        if ((rc = add_item(st, &cap, i, -1, 0, n)))
            return vt_st_fail(st, rc, "streamer: out of memory for the item table");
        if (st->cfg.chunkwise && st->items[t->item].foot > lim && n > 1) {
            t->part0 = st->nitems;
            t->nparts = (uint32_t)n;
            for (uint64_t p = 0; p < n; p++)
                if ((rc = add_item(st, &cap, i, (int64_t)p, p, 1)))
                    return vt_st_fail(st, rc, "streamer: out of memory for the item table");
        }
    }
    return 0;
}

/* ---- open / close ---- */

int vt_streamer_open(vt_store *store, const vt_tier_config *cfg, vt_streamer **out) {
    if (!out) return vt_fail(-EINVAL, "vt_streamer_open: NULL out");
    *out = NULL;
    if (!store || !cfg) return vt_fail(-EINVAL, "vt_streamer_open: NULL store or config");
    vt_tier_config c = *cfg;
    if (!c.ram_bytes)
        return vt_fail(-EINVAL, "streamer: ram_bytes must be > 0 (it holds the staging slots)");
    if (!c.prefetch) c.prefetch = 2;
    if (!c.ring_slots) c.ring_slots = c.prefetch + 2;
    if (c.ring_slots < 2)
        return vt_fail(-EINVAL, "streamer: ring_slots must be >= 2 (got %u)", c.ring_slots);
    if (c.prefetch >= c.ring_slots) c.prefetch = c.ring_slots - 1;
    if (c.read_size % VT_IO_ALIGN)
        return vt_fail(-EINVAL, "streamer: read_size %u is not a multiple of 4096", c.read_size);

    vt_streamer *st = vt_calloc(1, sizeof *st);
    if (!st) return vt_fail(-ENOMEM, "streamer: out of memory for the streamer");
    st->store = store;
    st->cfg = c;
    st->cursor = -1;
    st->hint = -1;
    st->has_vram = c.vram_bytes > 0;
    st->top = st->has_vram ? T_VRAM : T_RAM;
    vt_st_handles_init(st);
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv_ready, NULL);
    pthread_cond_init(&st->cv_work, NULL);
    pthread_cond_init(&st->cv_fin, NULL);
    int rc;
    int gpu = st->has_vram && vt_tcuda_available(c.device);
    /* budgets: host memory must hold the RAM tier, and the device tier too when it is emulated */
    uint64_t host_need = c.ram_bytes + (st->has_vram && !gpu ? c.vram_bytes : 0);
    if (host_need < c.ram_bytes) host_need = UINT64_MAX; /* the sum wrapped */
    uint64_t avail = vt_host_mem_available();
    if (host_need > avail) {
        rc = vt_st_fail(
            st, VT_EBUDGET,
            "tier budgets need %llu bytes of host memory (ram %llu%s) but %llu are available",
            (unsigned long long)host_need, (unsigned long long)c.ram_bytes,
            st->has_vram && !gpu ? " + vram emulated in host memory" : "",
            (unsigned long long)avail);
        goto fail;
    }
    rc = vt_region_host_open(c.ram_bytes, gpu, "RAM tier", &st->tier[T_RAM].reg);
    if (rc) goto fail_msg;
    if (st->has_vram) {
        if (gpu) {
            rc = vt_region_device_open(c.vram_bytes, "VRAM tier", &st->tier[T_VRAM].reg);
            if (rc) goto fail_msg;
            st->tier[T_VRAM].is_gpu = 1;
            rc = vt_tcuda_stream_create(&st->cuda_stream);
            if (rc) goto fail_msg;
        } else {
            rc = vt_region_host_open(c.vram_bytes, 0, "VRAM tier (host memory: no GPU)",
                                     &st->tier[T_VRAM].reg);
            if (rc) goto fail_msg;
        }
    }
    for (int t = 0; t < 2; t++)
        if ((rc = vt_suballoc_init(&st->tier[t].alloc, st->tier[t].reg.size))) goto fail_msg;
    vt_io_config ioc = {
        .engine = c.io_engine, .queue_depth = c.queue_depth, .read_size = c.read_size};
    if ((rc = vt_io_open(&ioc, &st->io))) goto fail_msg;
    if ((rc = vt_io_register_memory(st->io, st->tier[T_RAM].reg.base, st->tier[T_RAM].reg.size)))
        goto fail_msg;
    /* read ahead by bytes as well as by tensors: enough to keep the engine's queue full */
    st->prefetch_bytes = (uint64_t)st->io->qd * st->io->read_size;
    st->maxjobs = 2 * c.ring_slots + c.prefetch + 2;
    st->io_tries = VT_ST_IO_TRIES;
    st->st.engine = vt_io_engine_of(st->io);
    st->st.registered_buffers = vt_io_has_registered_memory(st->io);
    st->st.device_is_gpu = gpu;
    /* A snapshot that names a record gone from the index is retried: a writer or gc may have
     * committed in between. The same miss in ST_LOAD_SAME successive snapshots is no race but
     * an inconsistent index, reported as such with the tensor, chunk and shard it names. */
    char last[sizeof st->errmsg] = "";
    for (int attempt = 0, same = 0;; attempt++) {
        rc = load_tensors(st);
        if (!rc) rc = vt_st_open_shards(st); /* 1 (= ST_LOAD_CHANGED): a shard went away */
        if (rc != ST_LOAD_CHANGED) break;
        same = attempt && !strcmp(last, st->errmsg) ? same + 1 : 1;
        snprintf(last, sizeof last, "%s", st->errmsg);
        if (same == ST_LOAD_SAME) {
            rc = vt_st_fail(st, VT_ECORRUPT,
                            "streamer: %s (the same in %d successive snapshots: the index is "
                            "inconsistent)",
                            last, ST_LOAD_SAME);
            break;
        }
        if (attempt == 16) {
            rc = vt_st_fail(st, -EAGAIN,
                            "streamer: store %s kept changing while loading "
                            "its tensor list (last: %s)",
                            vt_store_path(st->store), last);
            break;
        }
        for (uint32_t i = 0; i < st->ntensors; i++) {
            vt_free(st->tensors[i].chunks);
            vt_free(st->tensors[i].aux);
        }
        for (uint32_t i = 0; i < st->nitems; i++) vt_free(st->items[i].errmsg);
        st->ntensors = 0;
        st->nitems = 0;
    }
    if (rc) goto fail;
    st->demand_cap = 64;
    st->demand = vt_malloc(st->demand_cap * sizeof *st->demand);
    if (!st->demand) {
        rc = vt_st_fail(st, -ENOMEM, "streamer: out of memory for the request queue");
        goto fail;
    }
    /* without a plan every tier is an S3-FIFO cache */
    if ((rc = vt_streamer_plan(st, NULL, 0, VT_SCHEDULE_RANDOM))) goto fail;
    int prc = pthread_create(&st->fin_thread, NULL, vt_st_fin_main, st);
    if (prc) {
        rc = vt_st_fail(st, -prc, "streamer: cannot start the finisher thread");
        goto fail;
    }
    st->fin_started = 1;
    prc = pthread_create(&st->io_thread, NULL, vt_st_io_main, st);
    if (prc) {
        rc = vt_st_fail(st, -prc, "streamer: cannot start the I/O thread");
        goto fail;
    }
    st->io_started = 1;
    *out = st;
    return 0;
fail_msg:
    snprintf(st->errmsg, sizeof st->errmsg, "%s", vt_last_error());
fail : {
    char keep[1024];
    snprintf(keep, sizeof keep, "%s", st->errmsg);
    vt_streamer_close(st);
    return vt_fail(rc, "%s", keep);
}
}

static void free_plan(vt_streamer *st) {
    for (int t = 0; t < 2; t++) {
        vt_stier *T = &st->tier[t];
        vt_free(T->slot_off);
        vt_free(T->slot_item);
        T->slot_off = NULL;
        T->slot_item = NULL;
        T->nslots = 0;
        T->slot_bytes = 0;
        vt_s3fifo_destroy(T->cache);
        T->cache = NULL;
        vt_suballoc_fini(&T->alloc);
    }
    vt_free(st->sched);
    st->sched = NULL;
    st->nsched = 0;
}

void vt_streamer_close(vt_streamer *st) {
    if (!st) return;
    /* acquires waiting for data return VT_EUSAGE; wait until every acquirer has left */
    pthread_mutex_lock(&st->mu);
    st->stop = 1;
    pthread_cond_broadcast(&st->cv_work);
    pthread_cond_broadcast(&st->cv_ready);
    while (st->acquiring) pthread_cond_wait(&st->cv_ready, &st->mu);
    pthread_mutex_unlock(&st->mu);
    if (st->io_started) pthread_join(st->io_thread, NULL);
    if (st->fin_started) { /* after the I/O thread: it may still hand over jobs */
        pthread_mutex_lock(&st->mu);
        st->fin_stop = 1;
        pthread_cond_signal(&st->cv_fin);
        pthread_mutex_unlock(&st->mu);
        pthread_join(st->fin_thread, NULL);
    }
    vt_io_close(st->io);
    free_plan(st);
    for (uint32_t i = 0; i < st->ntensors; i++) {
        vt_free(st->tensors[i].chunks);
        vt_free(st->tensors[i].aux);
    }
    for (uint32_t i = 0; i < st->nitems; i++) {
        vt_free(st->items[i].errmsg);
        vt_tcuda_event_destroy(st->items[i].copy_event);
    }
    vt_free(st->tensors);
    vt_free(st->items);
    vt_free(st->hs);
    vt_free(st->demand);
    vt_free(st->shard_file);
    if (st->cuda_stream) vt_tcuda_stream_destroy(st->cuda_stream);
    vt_region_close(&st->tier[T_VRAM].reg);
    if (st->io_leak) /* reads the engine never gave back may still land in it */
        vt_log(VT_LOG_ERROR,
               "streamer: the I/O engine kept reads in flight: leaving the RAM "
               "tier (%llu bytes) mapped",
               (unsigned long long)st->tier[T_RAM].reg.size);
    else
        vt_region_close(&st->tier[T_RAM].reg);
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->cv_ready);
    pthread_cond_destroy(&st->cv_work);
    pthread_cond_destroy(&st->cv_fin);
    vt_free(st);
}

/* ---- plan ---- */

static int find_tensor(const vt_streamer *st, const char *name) {
    uint32_t lo = 0, hi = st->ntensors; /* vt_store_list is in byte-wise name order */
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        int c = strcmp(st->tensors[mid].ti.name, name);
        if (!c) return (int)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

int vt_st_find(const vt_streamer *st, const char *name) {
    return find_tensor(st, name);
}

static const char *tier_name(int t) {
    return t == T_VRAM ? "VRAM" : "RAM";
}

static int alloc_ring(vt_streamer *st, int t, uint64_t slot_bytes) {
    vt_stier *T = &st->tier[t];
    T->slot_bytes = slot_bytes;
    if (!slot_bytes) return 0;
    uint32_t k = st->cfg.ring_slots;
    T->slot_off = vt_malloc(k * sizeof *T->slot_off);
    T->slot_item = vt_malloc(k * sizeof *T->slot_item);
    if (!T->slot_off || !T->slot_item)
        return vt_st_fail(st, -ENOMEM, "plan: out of memory for the %s tier's %u ring slots",
                          tier_name(t), k);
    T->nslots = k; /* only with its tables: the I/O thread reads slots when nslots > 0 */
    for (uint32_t i = 0; i < T->nslots; i++) {
        T->slot_item[i] = -1;
        int rc = vt_suballoc_alloc(&T->alloc, slot_bytes, &T->slot_off[i]);
        if (rc == -ENOMEM)
            return vt_st_fail(st, rc, "plan: out of memory placing the %s tier's ring slots",
                              tier_name(t));
        if (rc)
            return vt_st_fail(st, VT_EBUDGET, "%s tier: no room for ring slot %u of %llu bytes",
                              tier_name(t), i, (unsigned long long)slot_bytes);
    }
    return 0;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* After a failed plan: no ring, no caches, no schedule, nothing resident. The I/O thread starts
 * nothing and acquire returns VT_EUSAGE until a plan succeeds. Locked, with the I/O thread idle. */
static void unplan(vt_streamer *st) {
    free_plan(st);
    for (uint32_t i = 0; i < st->nitems; i++) {
        vt_sitem *it = &st->items[i];
        memset(it->res, 0, sizeof it->res);
        it->res[0].slot = it->res[1].slot = -1;
        it->pos = -1;
        it->place = VT_PLACE_NONE;
    }
    st->mode = VT_SCHEDULE_RANDOM;
    st->model_bytes = 0;
    st->st.vram.pinned_bytes = st->st.ram.pinned_bytes = 0;
    st->st.vram.pinned_tensors = st->st.ram.pinned_tensors = 0;
    st->planned = 0;
}

/* Place the schedule st->sched in fresh tiers. Locked; on error the caller unplans. */
static int place_plan(vt_streamer *st) {
    int rc = 0;
    uint32_t ns = st->nsched;
    for (int t = 0; t < 2; t++)
        if (vt_suballoc_init(&st->tier[t].alloc, st->tier[t].reg.size))
            return vt_st_fail(st, -ENOMEM, "plan: out of memory for the %s tier's free-space list",
                              tier_name(t));
    if (st->mode == VT_SCHEDULE_CYCLIC && ns) {
        vt_plan_item *pi = vt_malloc(ns * sizeof *pi);
        if (!pi)
            return vt_st_fail(st, -ENOMEM, "plan: out of memory for the placement of %u items", ns);
        for (uint32_t i = 0; i < ns; i++) pi[i].bytes = st->items[st->sched[i]].foot;
        vt_plan_config pc = {.vram_bytes = st->has_vram ? st->tier[T_VRAM].reg.size : 0,
                             .ram_bytes = st->tier[T_RAM].reg.size,
                             .slots = st->cfg.ring_slots};
        vt_plan_result pr;
        rc = vt_plan_cyclic(&pc, pi, ns, &pr);
        if (rc) rc = vt_st_fail(st, rc, "plan: %s", vt_last_error());
        if (!rc) rc = alloc_ring(st, T_RAM, pr.ram_slot);
        if (!rc && st->has_vram) rc = alloc_ring(st, T_VRAM, pr.vram_slot);
        for (uint32_t i = 0; !rc && i < ns; i++) {
            vt_sitem *it = &st->items[st->sched[i]];
            it->place = pi[i].place;
            int t = it->place == VT_PLACE_VRAM_PIN  ? T_VRAM
                    : it->place == VT_PLACE_RAM_PIN ? T_RAM
                                                    : -1;
            if (t < 0) continue;
            rc = vt_suballoc_alloc(&st->tier[t].alloc, it->foot, &it->res[t].off);
            if (rc) {
                rc = vt_st_fail(st, rc == -ENOMEM ? rc : VT_EBUDGET, "plan: %s to pin tensor %s",
                                rc == -ENOMEM ? "out of memory" : "no room",
                                st->tensors[it->tensor].ti.name);
                break;
            }
            it->res[t].kind = PK_PIN;
            vt_tier_stats *ts = t == T_VRAM ? &st->st.vram : &st->st.ram;
            ts->pinned_bytes += it->foot;
            ts->pinned_tensors++;
        }
        vt_free(pi);
        if (rc) return rc;
    }
    /* what is left of each tier is an S3-FIFO cache for accesses outside the ring */
    for (int t = 0; t < 2; t++)
        if (vt_s3fifo_create(vt_suballoc_largest(&st->tier[t].alloc), st->nitems,
                             &st->tier[t].cache))
            return vt_st_fail(st, -ENOMEM,
                              "plan: out of memory for the %s tier's cache index (%u items)",
                              tier_name(t), st->nitems);
    return 0;
}

int vt_streamer_plan(vt_streamer *st, const char *const *names, size_t n, vt_schedule mode) {
    if (!st || (n && !names)) return vt_fail(-EINVAL, "vt_streamer_plan: bad argument");
    if (mode != VT_SCHEDULE_CYCLIC && mode != VT_SCHEDULE_RANDOM)
        return vt_st_fail(st, -EINVAL, "vt_streamer_plan: unknown schedule %d", (int)mode);
    /* resolve names and refuse duplicates before touching the current plan (no lock needed:
     * the tensor table is immutable) */
    uint32_t *sched = NULL;
    uint32_t ns = 0;
    if (n) {
        size_t cap = n;
        for (size_t i = 0; i < n; i++) {
            int t = find_tensor(st, names[i]);
            if (t < 0)
                return vt_st_fail(st, VT_ENOTFOUND, "plan: tensor %s is not in store %s", names[i],
                                  vt_store_path(st->store));
            cap += st->tensors[t].nparts;
        }
        /* second half: the whole-tensor items sorted, to find duplicates */
        sched = vt_malloc((cap + n) * sizeof *sched);
        if (!sched)
            return vt_st_fail(st, -ENOMEM, "plan: out of memory for a schedule of %zu tensors", n);
        uint32_t *sorted = sched + cap;
        for (size_t i = 0; i < n; i++) {
            const vt_stensor *t = &st->tensors[find_tensor(st, names[i])];
            sorted[i] = t->item;
            if (t->nparts)
                for (uint32_t p = 0; p < t->nparts; p++) sched[ns++] = t->part0 + p;
            else
                sched[ns++] = t->item;
        }
        qsort(sorted, n, sizeof *sorted, cmp_u32);
        for (size_t i = 1; i < n; i++)
            if (sorted[i] == sorted[i - 1]) {
                int t = (int)st->items[sorted[i]].tensor;
                vt_free(sched);
                return vt_st_fail(st, -EINVAL, "plan: tensor %s appears twice in the schedule",
                                  st->tensors[t].ti.name);
            }
    }
    pthread_mutex_lock(&st->mu);
    if (st->held) {
        pthread_mutex_unlock(&st->mu);
        vt_free(sched);
        return vt_st_fail(st, VT_EUSAGE, "plan: %d handle(s) still acquired; release them first",
                          st->held);
    }
    while ((st->njobs || st->io_busy) && !st->io_err)
        pthread_cond_wait(&st->cv_ready, &st->mu); /* let loads finish */
    if (st->io_err) { /* loads stay in flight for good: their places cannot be taken back */
        int err = st->io_err;
        pthread_mutex_unlock(&st->mu);
        vt_free(sched);
        return vt_st_fail(st, err, "plan: %s", st->io_errmsg);
    }
    for (uint32_t i = 0; i < st->nitems; i++) {
        vt_sitem *it = &st->items[i];
        if (it->res[0].busy || it->res[1].busy) continue;
        memset(it->res, 0, sizeof it->res);
        it->res[0].slot = it->res[1].slot = -1;
        it->pos = -1;
        it->place = VT_PLACE_NONE;
        it->src = SRC_RESIDENT;
        it->wanted = 0;
        it->err = 0;
    }
    for (uint32_t i = 0; i < ns; i++) st->items[sched[i]].pos = i;
    free_plan(st);
    st->sched = sched;
    st->nsched = ns;
    st->mode = mode;
    st->cursor = -1;
    st->demand_n = 0;
    st->hint = -1;
    st->model_bytes = 0;
    for (uint32_t i = 0; i < ns; i++) st->model_bytes += st->items[sched[i]].data_bytes;
    st->st.vram.pinned_bytes = st->st.ram.pinned_bytes = 0;
    st->st.vram.pinned_tensors = st->st.ram.pinned_tensors = 0;
    st->planned = 1;
    int rc = place_plan(st);
    if (rc) unplan(st);
    pthread_cond_broadcast(&st->cv_work);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int vt_streamer_placement(vt_streamer *st, const char *name, vt_placement *out) {
    int t = st && name && out ? find_tensor(st, name) : -1;
    if (t < 0)
        return vt_st_fail(st, VT_ENOTFOUND, "tensor %s is not in the store",
                          name ? name : "(null)");
    pthread_mutex_lock(&st->mu);
    const vt_stensor *T = &st->tensors[t];
    *out = st->items[T->item].place;
    if (T->nparts) *out = st->items[T->part0].place; /* parts share one placement class */
    pthread_mutex_unlock(&st->mu);
    return 0;
}

int vt_streamer_parts(vt_streamer *st, const char *name, uint64_t *nparts) {
    int t = st && name && nparts ? find_tensor(st, name) : -1;
    if (t < 0)
        return vt_st_fail(st, VT_ENOTFOUND, "tensor %s is not in the store",
                          name ? name : "(null)");
    *nparts = st->tensors[t].nparts ? st->tensors[t].nparts : 1;
    return 0;
}

/* ---- stats ---- */

int vt_streamer_get_stats(vt_streamer *st, vt_streamer_stats *out) {
    if (!st || !out) return vt_fail(-EINVAL, "vt_streamer_get_stats: NULL argument");
    pthread_mutex_lock(&st->mu);
    *out = st->st;
    out->model_bytes = st->model_bytes;
    for (int t = 0; t < 2; t++) {
        vt_tier_stats *ts = t == T_VRAM ? &out->vram : &out->ram;
        ts->capacity = st->tier[t].reg.size;
        ts->slot_bytes = st->tier[t].slot_bytes;
        ts->slots = st->tier[t].nslots;
        ts->gbps = ts->fill_seconds > 0 ? ts->bytes_in / ts->fill_seconds / 1e9 : 0;
    }
    pthread_mutex_unlock(&st->mu);
    return 0;
}

void vt_streamer_reset_stats(vt_streamer *st) {
    if (!st) return;
    pthread_mutex_lock(&st->mu);
    vt_streamer_stats keep = st->st;
    memset(&st->st, 0, sizeof st->st);
    st->st.engine = keep.engine;
    st->st.registered_buffers = keep.registered_buffers;
    st->st.device_is_gpu = keep.device_is_gpu;
    st->st.vram.pinned_bytes = keep.vram.pinned_bytes;
    st->st.vram.pinned_tensors = keep.vram.pinned_tensors;
    st->st.ram.pinned_bytes = keep.ram.pinned_bytes;
    st->st.ram.pinned_tensors = keep.ram.pinned_tensors;
    pthread_mutex_unlock(&st->mu);
}
