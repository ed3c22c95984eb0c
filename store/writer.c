/* The writer: chunks are appended to shard files owned by this writer (new shards only, so a
 * committed shard never changes), and the whole writer becomes visible in one LMDB
 * transaction after every shard it wrote is durable (docs/FORMAT.md, "Commit protocol"). */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store_maint.h"

enum { SLOT_EMPTY = 0, SLOT_BUSY = 1, SLOT_DONE = 2 };

struct vt_writer_tensor {
    vt_tensor_info info;
    void *aux;
    vt_chunk_info *chunks; /* [n_chunks] */
    uint8_t *state;        /* [n_chunks] SLOT_* */
    int ended;
};

typedef struct w_shard {
    uint32_t id, dir;
    int fd;
    uint64_t size; /* next free offset (all reserved space, padded) */
} w_shard;

typedef struct w_meta {
    char *key;
    void *val;
    size_t len;
} w_meta;

struct vt_store_writer {
    vt_store *s;
    int lock_fd;
    pthread_mutex_t mu;
    vt_writer_tensor **tensors;
    size_t n_tensors, cap_tensors;
    w_shard *shards;
    size_t n_shards, cap_shards;
    long cur; /* index of the shard being filled, -1 none */
    w_meta *meta;
    size_t n_meta, cap_meta;
    uint64_t next_tensor_id;
    uint32_t next_shard_id;
    uint32_t rr; /* round-robin position over data dirs */
};

static const uint8_t zeros[ST_ALIGN];

static int grow(void **arr, size_t *cap, size_t n, size_t elem) {
    if (n < *cap) return 0;
    size_t nc = *cap ? *cap * 2 : 16;
    void *p = vt_realloc(*arr, nc * elem);
    if (!p) return -ENOMEM;
    *arr = p;
    *cap = nc;
    return 0;
}

int vt_store_writer_begin(vt_store *s, vt_store_writer **out) {
    if (!s || !out) return vt_fail(-EINVAL, "vt_store_writer_begin: bad arguments");
    *out = NULL;
    if (!(s->flags & VT_STORE_RDWR))
        return st_fail(s, -EBADF, "store %s is open read-only", s->path);
    vt_store_writer *w = vt_calloc(1, sizeof *w);
    if (!w) return st_fail(s, -ENOMEM, "out of memory starting a writer");
    w->s = s;
    w->cur = -1;
    w->lock_fd = -1;
    pthread_mutex_init(&w->mu, NULL);
    int rc = st_writer_lock(s, &w->lock_fd);
    if (rc) goto fail;
    MDB_txn *txn;
    if ((rc = st_txn_begin(s, 1, &txn))) goto fail;
    /* a stale counter would hand out the id of a live shard or tensor: the new shard file or
     * chunk records would then destroy data the index names */
    st_counters c;
    rc = st_version_load(s, txn); /* upgraded since this handle opened the store? */
    if (!rc) rc = st_counters_check(s, txn, &c);
    if (rc == VT_ECORRUPT)
        rc = st_fail(s, rc, "store %s: refusing to write: %s (run vtstore verify)", s->path,
                     vt_last_error());
    if (!rc) rc = st_dirs_record(s, txn, 0);
    st_txn_abort(s, txn);
    if (rc) goto fail;
    w->next_tensor_id = c.next_tensor;
    w->next_shard_id = c.next_shard;
    pthread_mutex_lock(&s->mu);
    s->writer = w;
    pthread_mutex_unlock(&s->mu);
    *out = w;
    return 0;
fail:
    st_writer_unlock(w->lock_fd);
    pthread_mutex_destroy(&w->mu);
    vt_free(w);
    return rc;
}

static void tensor_free(vt_writer_tensor *t) {
    if (!t) return;
    vt_free(t->aux);
    vt_free(t->chunks);
    vt_free(t->state);
    vt_free(t);
}

static uint64_t choose_rpc(const vt_store *s, const vt_tensor_info *ti) {
    if (!vt_store_format_bytes(ti->format, ti->src_dtype, 1, ti->cols))
        return 0; /* invalid: check reports */
    uint64_t al = ti->format == VT_STORE_FMT_RAW ? 1 : vt_quant_row_align(ti->format, ti->cols);
    if (al == 0) return 0;
    uint64_t group = vt_store_format_bytes(ti->format, ti->src_dtype, al, ti->cols);
    if (group == 0) return 0;
    uint64_t groups = s->opt.chunk_target_bytes / group;
    if (groups == 0) groups = 1;
    uint64_t whole = (ti->rows + al - 1) / al;
    if (groups > whole) groups = whole;
    return groups * al;
}

int vt_writer_tensor_begin(vt_store_writer *w, const vt_tensor_info *meta, const void *aux,
                           size_t aux_len, vt_writer_tensor **out) {
    if (!w || !meta || !out || (aux_len && !aux))
        return vt_fail(-EINVAL, "vt_writer_tensor_begin: bad arguments");
    vt_store *s = w->s;
    size_t nl = strnlen(meta->name, VT_MAX_NAME);
    if (nl == 0 || nl >= VT_MAX_NAME)
        return st_fail(s, -EINVAL, "tensor name empty or not NUL-terminated");
    if (strnlen(meta->source, VT_MAX_NAME) >= VT_MAX_NAME)
        return st_fail(s, -EINVAL, "tensor %s: source name not NUL-terminated", meta->name);
    if (aux_len > ST_MAX_AUX)
        return st_fail(s, -EINVAL, "tensor %s: aux blob of %zu bytes is too large", meta->name,
                       aux_len);
    vt_writer_tensor *t = vt_calloc(1, sizeof *t);
    if (!t) return st_fail(s, -ENOMEM, "out of memory declaring tensor %s", meta->name);
    vt_tensor_info *ti = &t->info;
    *ti = *meta;
    ti->aux_bytes = aux_len;
    ti->stored_bytes = 0;
    ti->id = 0;
    ti->commit_time = 0;
    if (ti->metrics.sqnr_db == 0 && ti->metrics.cosine == 0 && ti->metrics.max_err == 0)
        ti->metrics.sqnr_db = ti->metrics.cosine = ti->metrics.max_err = NAN; /* not measured */
    /* the record's tensor_scale is what readers dequantize nvfp4 with: an unset (NaN, as
     * vt_quant_params_init leaves it) or impossible one would make the tensor unreadable; the
     * other formats ignore it, so an unset one is recorded as 1 */
    if (VT_FMT_BASE(ti->format) == VT_FMT_NVFP4 &&
        !(ti->tensor_scale > 0.0f && ti->tensor_scale <= FLT_MAX)) {
        vt_free(t);
        return st_fail(s, -EINVAL,
                       "tensor %s: nvfp4 needs the tensor_scale its blocks are quantized with "
                       "(vt_quant_observe), got %g",
                       meta->name, (double)meta->tensor_scale);
    }
    if (isnan(ti->tensor_scale)) ti->tensor_scale = 1.0f;
    if (meta->rows_per_chunk == 0 && ti->ndim <= VT_MAX_DIMS) {
        uint64_t r = 1, c = ti->ndim ? ti->dims[ti->ndim - 1] : 1;
        int ovf = 0;
        for (uint32_t i = 0; i + 1 < ti->ndim; i++)
            ovf |= __builtin_mul_overflow(r, ti->dims[i], &r);
        ti->rows = r;
        ti->cols = c;
        ti->rows_per_chunk = (!ovf && r && c) ? choose_rpc(s, ti) : 0;
    }
    int rc = st_tensor_check(ti, 1);
    if (rc) {
        tensor_free(t);
        return st_fail(s, rc == VT_EFORMAT ? -EINVAL : rc, "%s", vt_last_error());
    }
    if (aux_len) {
        if (!(t->aux = vt_malloc(aux_len))) {
            tensor_free(t);
            return st_fail(s, -ENOMEM, "out of memory declaring tensor %s", meta->name);
        }
        memcpy(t->aux, aux, aux_len);
    }
    if (ti->n_chunks) {
        t->chunks = vt_calloc(ti->n_chunks, sizeof *t->chunks);
        t->state = vt_calloc(ti->n_chunks, 1);
        if (!t->chunks || !t->state) {
            unsigned long long nc = (unsigned long long)ti->n_chunks;
            tensor_free(t);
            return st_fail(s, -ENOMEM, "out of memory declaring tensor %s (%llu chunks)",
                           meta->name, nc);
        }
    }
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i]->info.name, ti->name) == 0) {
            pthread_mutex_unlock(&w->mu);
            tensor_free(t);
            return st_fail(s, VT_EEXIST, "tensor %s is already declared in this writer",
                           meta->name);
        }
    if (grow((void **)&w->tensors, &w->cap_tensors, w->n_tensors, sizeof *w->tensors)) {
        pthread_mutex_unlock(&w->mu);
        tensor_free(t);
        return st_fail(s, -ENOMEM, "out of memory declaring tensor %s", meta->name);
    }
    if (w->next_tensor_id == UINT64_MAX) {
        pthread_mutex_unlock(&w->mu);
        tensor_free(t);
        return st_fail(s, -EOVERFLOW, "store %s: tensor ids exhausted", s->path);
    }
    ti->id = w->next_tensor_id++;
    w->tensors[w->n_tensors++] = t;
    pthread_mutex_unlock(&w->mu);
    *out = t;
    return 0;
}

int vt_writer_tensor_info(vt_store_writer *w, const vt_writer_tensor *t, vt_tensor_info *out) {
    if (!w || !t || !out) return vt_fail(-EINVAL, "vt_writer_tensor_info: bad arguments");
    pthread_mutex_lock(&w->mu);
    *out = t->info;
    pthread_mutex_unlock(&w->mu);
    return 0;
}

/* Reserve @p padded bytes in a shard (rolling to a new one at the cap); under w->mu. */
static int reserve(vt_store_writer *w, uint64_t padded, w_shard **sh, uint64_t *off) {
    vt_store *s = w->s;
    w_shard *c = w->cur >= 0 ? &w->shards[w->cur] : NULL;
    if (!c || (c->size + padded > s->opt.shard_cap_bytes && c->size > ST_SHARD_HEADER)) {
        if (grow((void **)&w->shards, &w->cap_shards, w->n_shards, sizeof *w->shards))
            return st_fail(s, -ENOMEM, "out of memory adding a shard");
        uint32_t first = s->opt.no_root_shards ? 1 : 0;
        uint32_t span = s->dirs.n - first;
        if (span == 0)
            return st_fail(s, -EINVAL, "store %s: no data directory for shards", s->path);
        uint32_t dir = first + (w->rr++ % span);
        if (w->next_shard_id >= UINT32_MAX - 1)
            return st_fail(s, -EOVERFLOW, "store %s: shard ids exhausted", s->path);
        uint32_t id = w->next_shard_id;
        int fd;
        int rc = st_shard_create(s, &id, dir, &fd);
        if (rc) return rc;
        w->next_shard_id = id + 1;
        c = &w->shards[w->n_shards];
        c->id = id;
        c->dir = dir;
        c->fd = fd;
        c->size = ST_SHARD_HEADER;
        w->cur = (long)w->n_shards++;
    }
    *off = c->size;
    c->size += padded;
    *sh = c;
    return 0;
}

int vt_writer_put_chunk(vt_store_writer *w, vt_writer_tensor *t, uint64_t index, const void *data,
                        size_t len) {
    if (!w || !t || !data) return vt_fail(-EINVAL, "vt_writer_put_chunk: bad arguments");
    vt_store *s = w->s;
    const vt_tensor_info *ti = &t->info;
    if (index >= ti->n_chunks)
        return st_fail(s, -EINVAL, "tensor %s has %llu chunks, no chunk %llu", ti->name,
                       (unsigned long long)ti->n_chunks, (unsigned long long)index);
    uint64_t row0 = index * ti->rows_per_chunk;
    uint64_t rows = ti->rows - row0 < ti->rows_per_chunk ? ti->rows - row0 : ti->rows_per_chunk;
    uint64_t raw = vt_store_format_bytes(ti->format, ti->src_dtype, rows, ti->cols);
    if (len != raw)
        return st_fail(s, -EINVAL,
                       "tensor %s chunk %llu: %zu bytes given, rows %llu..%llu take %llu", ti->name,
                       (unsigned long long)index, len, (unsigned long long)row0,
                       (unsigned long long)(row0 + rows), (unsigned long long)raw);
    pthread_mutex_lock(&w->mu);
    uint8_t st = t->state[index];
    if (st == SLOT_EMPTY && !t->ended) t->state[index] = SLOT_BUSY;
    pthread_mutex_unlock(&w->mu);
    if (t->ended) return st_fail(s, VT_EUSAGE, "tensor %s already ended", ti->name);
    if (st != SLOT_EMPTY)
        return st_fail(s, VT_EEXIST, "tensor %s chunk %llu was already put", ti->name,
                       (unsigned long long)index);

    void *z = NULL;
    size_t zlen = 0;
    int rc = 0;
    if (s->opt.zstd_level > 0) rc = st_compress(s->opt.zstd_level, data, len, &z, &zlen);
    const void *stored = z ? z : data;
    size_t slen = z ? zlen : len;
    vt_chunk_info ci = {0};
    w_shard *sh = NULL;
    if (!rc) {
        ci.tensor_id = ti->id;
        ci.index = index;
        ci.row0 = row0;
        ci.rows = rows;
        ci.codec = z ? VT_CODEC_ZSTD : VT_CODEC_NONE;
        ci.stored_len = slen;
        ci.padded_len = st_round_up(slen, ST_ALIGN);
        ci.raw_len = len;
        ci.checksum_seed = st_chunk_seed(st_fv(s), ci.tensor_id, index);
        ci.checksum = st_chunk_sum(&ci, stored);
        pthread_mutex_lock(&w->mu);
        rc = reserve(w, ci.padded_len, &sh, &ci.offset);
        if (!rc) ci.shard_id = sh->id;
        int fd = sh ? sh->fd : -1;
        pthread_mutex_unlock(&w->mu);
        if (!rc) rc = vt_pwrite_full(fd, stored, slen, ci.offset);
        if (!rc && ci.padded_len > slen)
            rc = vt_pwrite_full(fd, zeros, ci.padded_len - slen, ci.offset + slen);
        if (rc && sh)
            rc = st_fail(s, rc, "tensor %s chunk %llu: writing shard %u @%llu: %s", ti->name,
                         (unsigned long long)index, ci.shard_id, (unsigned long long)ci.offset,
                         vt_strerror(rc));
    } else {
        st_keep(s, rc);
    }
    vt_free(z);
    pthread_mutex_lock(&w->mu);
    if (rc) {
        t->state[index] = SLOT_EMPTY; /* the reserved space, if any, stays as garbage */
    } else {
        t->chunks[index] = ci;
        t->state[index] = SLOT_DONE;
        t->info.stored_bytes += slen;
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int vt_writer_tensor_end(vt_store_writer *w, vt_writer_tensor *t, const vt_tensor_metrics *m) {
    if (!w || !t) return vt_fail(-EINVAL, "vt_writer_tensor_end: bad arguments");
    int rc = 0;
    pthread_mutex_lock(&w->mu);
    for (uint64_t i = 0; i < t->info.n_chunks; i++)
        if (t->state[i] != SLOT_DONE) {
            rc = st_fail(w->s, VT_EUSAGE, "tensor %s: chunk %llu of %llu was not put", t->info.name,
                         (unsigned long long)i, (unsigned long long)t->info.n_chunks);
            break;
        }
    if (!rc) {
        if (m) t->info.metrics = *m;
        t->ended = 1;
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int vt_writer_put_meta(vt_store_writer *w, const char *key, const void *val, size_t len) {
    if (!w || !key || (len && !val)) return vt_fail(-EINVAL, "vt_writer_put_meta: bad arguments");
    size_t kl = strlen(key);
    if (kl == 0 || kl > 255)
        return st_fail(w->s, -EINVAL, "metadata key of %zu bytes (1..255 allowed)", kl);
    if (len > (256u << 20))
        return st_fail(w->s, -EINVAL, "metadata %s: value of %zu bytes is too large", key, len);
    char *k = vt_malloc(kl + 4);
    void *v = vt_malloc(len);
    if (!k || !v) {
        vt_free(k);
        vt_free(v);
        return st_fail(w->s, -ENOMEM, "out of memory storing metadata %s", key);
    }
    memcpy(k, ST_USER_PREFIX, 3);
    memcpy(k + 3, key, kl + 1);
    if (len) memcpy(v, val, len);
    pthread_mutex_lock(&w->mu);
    int rc = grow((void **)&w->meta, &w->cap_meta, w->n_meta, sizeof *w->meta);
    if (!rc) w->meta[w->n_meta++] = (w_meta){k, v, len};
    pthread_mutex_unlock(&w->mu);
    if (rc) {
        vt_free(k);
        vt_free(v);
        return st_fail(w->s, -ENOMEM, "out of memory storing metadata %s", key);
    }
    return 0;
}

/* Delete every chunk record of tensor @p id. */
static int delete_chunks(vt_store *s, MDB_txn *txn, uint64_t id) {
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->db_chunks, &cur);
    if (rc) return rc;
    uint8_t kb[16];
    st_chunk_key(id, 0, kb);
    MDB_val k = {16, kb}, d;
    /* re-seek after each delete: a cursor left past the last item is not valid */
    for (;;) {
        k.mv_size = 16;
        k.mv_data = kb;
        if ((rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE))) break;
        if (k.mv_size != 16 || st_be64(k.mv_data) != id) break;
        if ((rc = mdb_cursor_del(cur, 0))) break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int st_delete_tensor(vt_store *s, MDB_txn *txn, const char *name, int *found) {
    MDB_val k = {strlen(name), (void *)name}, d;
    *found = 0;
    int rc = mdb_get(txn, s->db_tensors, &k, &d);
    if (rc == MDB_NOTFOUND) return 0;
    if (rc) return rc;
    *found = 1;
    /* the old record may be damaged: its id is all we need to drop its chunks */
    if (d.mv_size >= 16 && ((uint8_t *)d.mv_data)[0] == ST_TENSOR_REC_VERSION) {
        if ((rc = delete_chunks(s, txn, st_le64((uint8_t *)d.mv_data + 8)))) return rc;
    }
    return mdb_del(txn, s->db_tensors, &k, NULL);
}

/* Everything of the commit inside one write txn; returns an MDB code. */
static int commit_txn(vt_store *s, MDB_txn *txn, void *ctx) {
    vt_store_writer *w = ctx;
    int rc, found;
    uint64_t now = (uint64_t)time(NULL);
    uint8_t kb[16], vb[ST_CHUNK_REC_LEN];
    for (size_t i = 0; i < w->n_shards; i++) {
        st_shard_rec r = {w->shards[i].id, (uint16_t)w->shards[i].dir, 1, w->shards[i].size};
        uint8_t sk[4], sv[ST_SHARD_REC_LEN];
        st_put_be32(sk, r.id);
        st_shard_rec_encode(&r, sv);
        MDB_val k = {4, sk}, d = {ST_SHARD_REC_LEN, sv};
        if ((rc = mdb_put(txn, s->db_shards, &k, &d, 0))) return rc;
    }
    for (size_t i = 0; i < w->n_tensors; i++) {
        vt_writer_tensor *t = w->tensors[i];
        t->info.commit_time = now;
        if ((rc = st_delete_tensor(s, txn, t->info.name, &found))) return rc;
        MDB_val k = {strlen(t->info.name), t->info.name}, d = {st_tensor_rec_size(&t->info), NULL};
        if ((rc = mdb_put(txn, s->db_tensors, &k, &d, MDB_RESERVE))) return rc;
        st_tensor_rec_encode(&t->info, t->aux, d.mv_data);
        for (uint64_t c = 0; c < t->info.n_chunks; c++) {
            st_chunk_key(t->info.id, c, kb);
            st_chunk_rec_encode(&t->chunks[c], st_fv(s), vb);
            MDB_val ck = {16, kb}, cd = {ST_CHUNK_REC_LEN, vb};
            if ((rc = mdb_put(txn, s->db_chunks, &ck, &cd, MDB_APPEND))) return rc;
        }
    }
    for (size_t i = 0; i < w->n_meta; i++) {
        MDB_val k = {strlen(w->meta[i].key), w->meta[i].key}, d = {w->meta[i].len, w->meta[i].val};
        if ((rc = mdb_put(txn, s->db_meta, &k, &d, 0))) return rc;
    }
    if ((rc = st_dirs_record(s, txn, 1))) return rc;
    uint8_t v8[8], v4[4];
    st_put_le64(v8, w->next_tensor_id);
    MDB_val k = {strlen(ST_KEY_NEXT_TENSOR), ST_KEY_NEXT_TENSOR}, d = {8, v8};
    if ((rc = mdb_put(txn, s->db_meta, &k, &d, 0))) return rc;
    st_put_le32(v4, w->next_shard_id);
    k = (MDB_val){strlen(ST_KEY_NEXT_SHARD), ST_KEY_NEXT_SHARD};
    d = (MDB_val){4, v4};
    return mdb_put(txn, s->db_meta, &k, &d, 0);
}

static void writer_free(vt_store_writer *w, int unlink_new) {
    vt_store *s = w->s;
    for (size_t i = 0; i < w->n_shards; i++) {
        close(w->shards[i].fd);
        if (unlink_new) {
            char name[32];
            st_shard_name(w->shards[i].id, name, sizeof name);
            if (s->dir_fd[w->shards[i].dir] >= 0) unlinkat(s->dir_fd[w->shards[i].dir], name, 0);
        }
    }
    for (size_t i = 0; i < w->n_tensors; i++) tensor_free(w->tensors[i]);
    for (size_t i = 0; i < w->n_meta; i++) {
        vt_free(w->meta[i].key);
        vt_free(w->meta[i].val);
    }
    vt_free(w->tensors);
    vt_free(w->shards);
    vt_free(w->meta);
    pthread_mutex_lock(&s->mu);
    if (s->writer == w) s->writer = NULL;
    pthread_mutex_unlock(&s->mu);
    st_writer_unlock(w->lock_fd);
    pthread_mutex_destroy(&w->mu);
    vt_free(w);
}

/* Make every shard written durable: extend files to their reserved size (a failed chunk write
 * can leave a hole at the end), fdatasync them, then sync the directories of new files. */
static int sync_shards(vt_store_writer *w) {
    vt_store *s = w->s;
    int dirs_done[VT_STORE_MAX_DIRS] = {0};
    for (size_t i = 0; i < w->n_shards; i++) {
        w_shard *sh = &w->shards[i];
        struct stat st;
        if (fstat(sh->fd, &st) == 0 && (uint64_t)st.st_size < sh->size &&
            ftruncate(sh->fd, (off_t)sh->size))
            return st_fail(s, -errno, "shard %u: cannot extend to %llu bytes: %s", sh->id,
                           (unsigned long long)sh->size, strerror(errno));
        int rc = vt_fdatasync(sh->fd);
        if (rc)
            return st_fail(s, rc, "store %s: syncing shard %u: %s", s->path, sh->id,
                           vt_strerror(rc));
    }
    for (size_t i = 0; i < w->n_shards; i++) {
        uint32_t d = w->shards[i].dir;
        if (dirs_done[d]) continue;
        dirs_done[d] = 1;
        int rc = st_dir_sync(s, d);
        if (rc) return rc;
    }
    return 0;
}

int vt_store_writer_commit(vt_store_writer *w) {
    if (!w) return vt_fail(-EINVAL, "vt_store_writer_commit: NULL writer");
    vt_store *s = w->s;
    int rc = 0;
    for (size_t i = 0; i < w->n_tensors && !rc; i++)
        if (!w->tensors[i]->ended)
            rc = st_fail(s, VT_EUSAGE, "tensor %s was not ended before commit",
                         w->tensors[i]->info.name);
    if (!rc) rc = sync_shards(w);
    if (rc) {
        writer_free(w, 1);
        return rc;
    }
    rc = st_write_txn(s, commit_txn, w, "recording the commit in the index");
    if (!rc) st_dirs_recorded(s);
    /* on failure, leave the synced shards: an index commit that failed late may still name
     * them; gc removes them if it does not */
    writer_free(w, 0);
    return rc;
}

void vt_store_writer_abort(vt_store_writer *w) {
    if (w) writer_free(w, 1);
}
