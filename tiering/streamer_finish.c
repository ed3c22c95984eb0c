/* The streamer's finisher thread: takes jobs whose reads are all back from the I/O thread,
 * verifies each chunk's XXH3 checksum (a mismatch with retry_corrupt goes back to the I/O thread
 * for one re-read), decodes into place, copies to the device tier and publishes the item.
 *
 * With a GPU the copy is queued on the streamer's CUDA stream and an event is recorded on the
 * item; the item is published READY at once and the acquirer waits on the event, so copies
 * overlap each other, the next reads and the consumer's work. The RAM staging slot (and the
 * job) are given back when the finisher sees the event complete. Without a GPU the device tier
 * is host memory and the copy is a memcpy, done here. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "streamer_internal.h"

void vt_st_job_free(vt_job *j) {
    if (!j) return;
    for (uint64_t i = 0; j->scratch && i < j->nreq; i++) vt_free_aligned(j->scratch[i]);
    vt_free(j->reqs);
    vt_free(j->scratch);
    vt_free(j->cst);
    vt_free(j);
}

/* Verify the chunks not yet verified. Returns the number marked for a re-read (CST_REDO). */
static uint64_t job_verify(vt_streamer *st, vt_job *j) {
    vt_sitem *it = &st->items[j->item];
    const vt_stensor *T = &st->tensors[it->tensor];
    uint64_t redo = 0;
    for (uint64_t i = 0; i < j->nreq && !j->err; i++) {
        if (j->cst[i] & CST_OK) continue;
        const vt_chunk_info *ci = &T->chunks[it->chunk0 + i];
        const vt_io_req *r = &j->reqs[i];
        uint64_t h = XXH3_64bits_withSeed(r->buf, ci->stored_len, ci->checksum_seed);
        if (h == ci->checksum) {
            j->cst[i] |= CST_OK;
            continue;
        }
        const char *path = st->io->files[r->file].name; /* set before the read was submitted */
        if (st->cfg.retry_corrupt && !(j->cst[i] & CST_RETRIED)) {
            j->cst[i] |= CST_RETRIED | CST_REDO;
            redo++;
            vt_log(VT_LOG_WARN,
                   "tensor %s chunk %llu (shard %s @%llu): checksum mismatch, reading it again",
                   T->ti.name, (unsigned long long)ci->index, path, (unsigned long long)ci->offset);
            continue;
        }
        vt_st_job_err(
            j, VT_ECORRUPT,
            "tensor %s chunk %llu (shard %s @%llu, %llu bytes): checksum mismatch (stored "
            "%016llx, computed %016llx)%s",
            T->ti.name, (unsigned long long)ci->index, path, (unsigned long long)ci->offset,
            (unsigned long long)ci->stored_len, (unsigned long long)ci->checksum,
            (unsigned long long)h, (j->cst[i] & CST_RETRIED) ? " after a re-read" : "");
    }
    return j->err ? 0 : redo;
}

static uint64_t chunk_area_off(const vt_streamer *st, const vt_sitem *it, uint64_t i) {
    const vt_stensor *T = &st->tensors[it->tensor];
    uint64_t a = 0;
    for (uint64_t c = it->chunk0; c < it->chunk0 + i; c++)
        a += VT_ROUND_UP(T->chunks[c].raw_len, VT_TIER_ALIGN);
    return a;
}

/* Decode into place and copy (or queue the copy) to the device tier. Unlocked. */
static void job_finish(vt_streamer *st, vt_job *j, double *copy_s, uint64_t *copied) {
    vt_sitem *it = &st->items[j->item];
    const vt_stensor *T = &st->tensors[it->tensor];
    if (!j->err && j->need_disk) {
        uint64_t c = 0;
        for (uint64_t i = 0; i < it->nchunks && !j->err; i++) {
            const vt_chunk_info *ci = &T->chunks[it->chunk0 + i];
            uint64_t a = chunk_area_off(st, it, i);
            if (ci->codec == VT_CODEC_NONE) {
                if (a != c) memmove(j->ram + c, j->ram + a, ci->raw_len);
            } else {
                int rc =
                    vt_store_chunk_decode(st->store, ci, j->scratch[i], j->ram + c, ci->raw_len);
                if (rc)
                    vt_st_job_err(j, rc, "tensor %s chunk %llu (shard %s @%llu): %s", T->ti.name,
                                  (unsigned long long)ci->index,
                                  st->io->files[j->reqs[i].file].name,
                                  (unsigned long long)ci->offset, vt_last_error());
            }
            c += ci->raw_len;
        }
        if (T->ti.aux_bytes && !j->err) memcpy(j->ram + it->aux_off, T->aux, T->ti.aux_bytes);
    }
    if (j->err || !j->top_copy) return;
    double t0 = vt_now();
    int rc = 0;
    if (st->tier[T_VRAM].is_gpu) {
        /* the event is created once per item, by this thread only; the acquirer reads it under
         * the lock after the item is published */
        void *ev = it->copy_event;
        if (!ev) rc = vt_tcuda_event_create(&ev);
        if (!rc) rc = vt_tcuda_h2d_async(j->dev, j->ram, it->data_bytes, st->cuda_stream);
        if (!rc && T->ti.aux_bytes)
            rc = vt_tcuda_h2d_async(j->dev + it->aux_off, j->ram + it->aux_off, T->ti.aux_bytes,
                                    st->cuda_stream);
        if (!rc) rc = vt_tcuda_event_record(ev, st->cuda_stream);
        if (ev && !it->copy_event) {
            pthread_mutex_lock(&st->mu);
            it->copy_event = ev;
            pthread_mutex_unlock(&st->mu);
        }
        if (rc) vt_tcuda_stream_sync(st->cuda_stream); /* nothing may still read j->ram */
        j->copy_async = !rc;
    } else {
        memcpy(j->dev, j->ram, it->data_bytes);
        if (T->ti.aux_bytes) memcpy(j->dev + it->aux_off, j->ram + it->aux_off, T->ti.aux_bytes);
        *copy_s += vt_now() - t0;
    }
    if (rc)
        vt_st_job_err(j, rc, "tensor %s: copy to the device tier: %s", T->ti.name, vt_last_error());
    *copied += it->data_bytes + T->ti.aux_bytes;
}

/* Publish a finished job: the item is READY (or failed). Locked. */
static void job_publish(vt_streamer *st, vt_job *j) {
    vt_sitem *it = &st->items[j->item];
    st->st.bytes_read += j->disk_bytes;
    if (j->err) {
        if (j->fill_ram) vt_st_drop(st, j->item, T_RAM);
        if (j->top_copy) vt_st_drop(st, j->item, T_VRAM);
        it->err = j->err;
        vt_free(it->errmsg);
        it->errmsg = vt_strdup(j->msg);
        pthread_cond_broadcast(&st->cv_ready);
        return;
    }
    if (j->fill_ram) {
        it->res[T_RAM].state = RS_READY;
        st->st.ram.bytes_in += it->data_bytes;
    }
    if (j->top_copy) {
        it->res[T_VRAM].state = RS_READY;
        if (j->copy_async) {
            it->copy_pending++;
            it->res[T_RAM].busy++; /* the copy still reads the RAM place: keep it */
        }
    }
    it->src = j->need_disk ? SRC_DISK : SRC_RAM;
    pthread_cond_broadcast(&st->cv_ready);
}

/* The job is over (its device copy complete): give back the RAM staging slot. Locked. */
static void job_done(vt_streamer *st, vt_job *j) {
    vt_sitem *it = &st->items[j->item];
    if (!j->fill_ram) it->res[T_RAM].busy--;
    if (j->copy_async) {
        it->res[T_RAM].busy--;
        it->copy_pending--;
    }
    if (!j->err && j->top_copy && it->res[T_RAM].kind == PK_RING && !it->res[T_RAM].busy)
        vt_st_drop(st, j->item, T_RAM); /* staging done */
    st->njobs--;
    if (!st->njobs) pthread_cond_broadcast(&st->cv_ready);
    pthread_cond_signal(&st->cv_work); /* a slot may have come free */
    vt_st_job_free(j);
}

void *vt_st_fin_main(void *arg) {
    vt_streamer *st = arg;
    vt_job *pend = NULL, *pend_tail = NULL; /* async copies not yet seen complete, FIFO */
    double pend_since = 0;                  /* when pend last became non-empty */
    /* events are created and copies queued on this thread: on the streamer's device, not on
     * device 0 (a failure shows up as the first copy's error) */
    if (st->tier[T_VRAM].is_gpu) vt_tcuda_set_device(st->cfg.device);
    pthread_mutex_lock(&st->mu);
    for (;;) {
        vt_job *q = st->fin_head;
        st->fin_head = st->fin_tail = NULL;
        if (!q && !pend) {
            if (st->fin_stop) break;
            pthread_cond_wait(&st->cv_fin, &st->mu);
            continue;
        }
        pthread_mutex_unlock(&st->mu);

        double copy_s = 0;
        uint64_t copied = 0, nretry = 0;
        vt_job *fin = NULL, *fin_tail = NULL, *back = NULL;
        while (q) {
            vt_job *j = q;
            q = j->next;
            j->next = NULL;
            uint64_t redo = j->need_disk && !j->err ? job_verify(st, j) : 0;
            if (redo) {
                nretry += redo;
                j->next = back;
                back = j;
                continue;
            }
            job_finish(st, j, &copy_s, &copied);
            if (fin_tail)
                fin_tail->next = j;
            else
                fin = j;
            fin_tail = j;
        }
        if (!fin && !back && pend) /* nothing new: wait for the oldest copy */
            vt_tcuda_event_sync(st->items[pend->item].copy_event);
        vt_job *over = NULL; /* copies seen complete (an error shows again to the acquirer) */
        while (pend && vt_tcuda_event_query(st->items[pend->item].copy_event) != 0) {
            vt_job *j = pend;
            pend = j->next;
            if (!pend) pend_tail = NULL;
            j->next = over;
            over = j;
        }

        pthread_mutex_lock(&st->mu);
        st->st.corrupt_retries += nretry;
        st->st.vram.fill_seconds += copy_s;
        st->st.vram.bytes_in += copied;
        while (back) {
            vt_job *j = back;
            back = j->next;
            if (st->stop) { /* closing: nobody will read it again */
                vt_st_job_err(j, VT_EUSAGE, "streamer closing");
                job_publish(st, j);
                job_done(st, j);
                continue;
            }
            j->next = st->retry;
            st->retry = j;
            pthread_cond_signal(&st->cv_work);
        }
        while (fin) {
            vt_job *j = fin;
            fin = j->next;
            j->next = NULL;
            job_publish(st, j);
            if (!j->copy_async) {
                job_done(st, j);
                continue;
            }
            if (!pend) pend_since = vt_now();
            if (pend_tail)
                pend_tail->next = j;
            else
                pend = j;
            pend_tail = j;
        }
        while (over) {
            vt_job *j = over;
            over = j->next;
            job_done(st, j);
        }
        if (!pend && pend_since > 0) { /* GPU: time with copies in flight */
            st->st.vram.fill_seconds += vt_now() - pend_since;
            pend_since = 0;
        }
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}
