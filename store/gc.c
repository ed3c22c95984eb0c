/* Garbage collection (docs/FORMAT.md, "Garbage collection"): remove shard files the index does
 * not name, cut tails past recorded sizes, and compact shards holding garbage by copying their
 * live chunks into new shards. New bytes are durable before the one index transaction that
 * switches to them; old files are deleted only after it. A crash at any step leaves files the
 * index does not name, which the next gc removes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_maint.h"

typedef struct gc_move {
    uint8_t key[16];
    vt_chunk_info old, neu;
} gc_move;

typedef struct gc_new {
    uint32_t id, dir;
    int fd;
    uint64_t size;
} gc_new;

typedef struct gc_ctx {
    vt_store *s;
    st_shard_tab tab;
    uint8_t *victim; /* [tab.n] */
    gc_move *mv;
    size_t n_mv, cap_mv;
    gc_new *nw;
    size_t n_nw, cap_nw;
    uint32_t next_shard_id;
    uint32_t rr;
    vt_store_gc_stats st;
} gc_ctx;

static int count_bytes(void *p, uint32_t dir, uint32_t id, const struct stat *st) {
    (void)dir;
    (void)id;
    *(uint64_t *)p += (uint64_t)st->st_size;
    return 0;
}

/* Remove files the index does not name; truncate tails past the recorded size. */
static int clean_file(void *p, uint32_t dir, uint32_t id, const struct stat *st) {
    gc_ctx *g = p;
    vt_store *s = g->s;
    char name[32];
    st_shard_name(id, name, sizeof name);
    st_shard_ent *e = st_shards_find(&g->tab, id);
    if (!e || e->rec.dir != dir) {
        if (unlinkat(s->dir_fd[dir], name, 0) && errno != ENOENT)
            return st_fail(s, -errno, "store %s: cannot remove orphan shard %s: %s", s->path, name,
                           strerror(errno));
        g->st.files_removed++;
        vt_log(VT_LOG_DEBUG, "gc: removed orphan %s (%lld bytes)", name, (long long)st->st_size);
        return 0;
    }
    if ((uint64_t)st->st_size > e->rec.size && S_ISREG(st->st_mode)) {
        int fd = openat(s->dir_fd[dir], name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return st_fail(s, -errno, "store %s: shard %s: %s", s->path, name, strerror(errno));
        int rc = ftruncate(fd, (off_t)e->rec.size) ? -errno : vt_fdatasync(fd);
        close(fd);
        if (rc)
            return st_fail(s, rc, "store %s: cannot cut shard %s to %llu bytes: %s", s->path, name,
                           (unsigned long long)e->rec.size, vt_strerror(rc));
    }
    return 0;
}

/* Snapshot: shard table, live bytes, victims and the chunks to move. */
static int plan(gc_ctx *g) {
    vt_store *s = g->s;
    MDB_txn *txn;
    int rc = st_txn_begin(s, 1, &txn);
    if (rc) return rc;
    /* gc deletes and cuts files on the index's word: check its structure first (counters,
     * shard records, every chunk inside a recorded shard), or live bytes would look like
     * garbage */
    st_counters c;
    /* first the version records get (and decode with): upgraded since this handle opened? */
    if (!(rc = st_version_load(s, txn)) && !(rc = st_counters_check(s, txn, &c)) &&
        !(rc = st_shards_load(s, txn, &g->tab)))
        rc = st_live_scan(s, txn, &g->tab);
    if (!rc) rc = st_dirs_record(s, txn, 0);
    if (rc == VT_ECORRUPT || rc == VT_EFORMAT)
        rc = st_fail(s, VT_ECORRUPT,
                     "store %s: gc: refusing to run on a damaged index: %s; run vtstore verify",
                     s->path, vt_last_error());
    if (rc) goto out;
    g->next_shard_id = c.next_shard;
    g->victim = vt_calloc(g->tab.n ? g->tab.n : 1, 1);
    if (!g->victim) {
        rc = st_fail(s, -ENOMEM, "out of memory planning gc");
        goto out;
    }
    size_t nv = 0;
    for (size_t i = 0; i < g->tab.n; i++)
        if (g->tab.e[i].rec.size > g->tab.e[i].live + ST_SHARD_HEADER) g->victim[i] = 1, nv++;
    if (!nv) goto out;
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(txn, s->db_chunks, &cur))) {
        rc = st_fail(s, st_mdb_code(rc), "store %s: %s", s->path, mdb_strerror(rc));
        goto out;
    }
    MDB_val k, d;
    for (int m = mdb_cursor_get(cur, &k, &d, MDB_FIRST); m == 0;
         m = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        vt_chunk_info ci;
        if (st_chunk_rec_decode(k.mv_data, k.mv_size, d.mv_data, d.mv_size, st_fv(s), &ci)) {
            rc = st_fail(s, VT_ECORRUPT,
                         "store %s: gc refuses to run on a damaged index: %s (run verify)", s->path,
                         vt_last_error());
            break;
        }
        st_shard_ent *e = st_shards_find(&g->tab, ci.shard_id);
        if (!e || !g->victim[e - g->tab.e]) continue;
        if (g->n_mv == g->cap_mv) {
            size_t nc = g->cap_mv ? 2 * g->cap_mv : 256;
            gc_move *n = vt_realloc(g->mv, nc * sizeof *n);
            if (!n) {
                rc = st_fail(s, -ENOMEM, "out of memory planning gc");
                break;
            }
            g->mv = n;
            g->cap_mv = nc;
        }
        gc_move *mv = &g->mv[g->n_mv++];
        memcpy(mv->key, k.mv_data, 16);
        mv->old = mv->neu = ci;
    }
    mdb_cursor_close(cur);
out:
    st_txn_abort(s, txn);
    return rc;
}

static int new_shard(gc_ctx *g, gc_new **out) {
    vt_store *s = g->s;
    if (g->n_nw == g->cap_nw) {
        size_t nc = g->cap_nw ? 2 * g->cap_nw : 8;
        gc_new *n = vt_realloc(g->nw, nc * sizeof *n);
        if (!n) return st_fail(s, -ENOMEM, "out of memory in gc");
        g->nw = n;
        g->cap_nw = nc;
    }
    uint32_t first = s->opt.no_root_shards ? 1 : 0;
    uint32_t span = s->dirs.n - first;
    if (!span) return st_fail(s, -EINVAL, "store %s: no data directory for shards", s->path);
    gc_new *n = &g->nw[g->n_nw];
    n->dir = first + g->rr++ % span;
    n->id = g->next_shard_id;
    int rc = st_shard_create(s, &n->id, n->dir, &n->fd);
    if (rc) return rc;
    g->next_shard_id = n->id + 1;
    n->size = ST_SHARD_HEADER;
    g->n_nw++;
    *out = n;
    return 0;
}

/* Copy every live chunk of the victims into new shards, verifying checksums, then sync. */
static int copy_live(gc_ctx *g) {
    vt_store *s = g->s;
    gc_new *cur = NULL;
    void *buf = NULL;
    size_t cap = 0;
    int rc = 0;
    for (size_t i = 0; i < g->n_mv && !rc; i++) {
        gc_move *m = &g->mv[i];
        st_shard_ent *e = st_shards_find(&g->tab, m->old.shard_id);
        int fd;
        if ((rc = st_shard_fd(s, &e->rec, &fd))) break;
        if (m->old.offset + m->old.padded_len > e->rec.size) {
            rc = st_fail(s, VT_ECORRUPT,
                         "gc: tensor id %llu chunk %llu lies past the end of shard %u (run verify)",
                         (unsigned long long)m->old.tensor_id, (unsigned long long)m->old.index,
                         e->rec.id);
            break;
        }
        if (m->old.padded_len > cap) {
            vt_free(buf);
            cap = m->old.padded_len;
            if (!(buf = vt_malloc(cap))) {
                rc = st_fail(s, -ENOMEM, "out of memory in gc");
                break;
            }
        }
        if ((rc = vt_pread_full(fd, buf, m->old.stored_len, m->old.offset))) {
            rc = st_fail(s, rc == VT_EFORMAT ? VT_ECORRUPT : rc, "gc: reading shard %u @%llu: %s",
                         e->rec.id, (unsigned long long)m->old.offset, vt_strerror(rc));
            break;
        }
        if (st_chunk_sum(&m->old, buf) != m->old.checksum) {
            rc = st_fail(s, VT_ECORRUPT,
                         "gc: tensor id %llu chunk %llu (shard %u @%llu): checksum mismatch; "
                         "nothing was changed "
                         "(run verify, then remove the tensor)",
                         (unsigned long long)m->old.tensor_id, (unsigned long long)m->old.index,
                         e->rec.id, (unsigned long long)m->old.offset);
            break;
        }
        memset((char *)buf + m->old.stored_len, 0, m->old.padded_len - m->old.stored_len);
        if (!cur || (cur->size + m->old.padded_len > s->opt.shard_cap_bytes &&
                     cur->size > ST_SHARD_HEADER)) {
            if ((rc = new_shard(g, &cur))) break;
        }
        if ((rc = vt_pwrite_full(cur->fd, buf, m->old.padded_len, cur->size))) {
            rc = st_fail(s, rc, "gc: writing shard %u: %s", cur->id, vt_strerror(rc));
            break;
        }
        m->neu.shard_id = cur->id;
        m->neu.offset = cur->size;
        cur->size += m->old.padded_len;
        g->st.chunks_moved++;
        g->st.bytes_moved += m->old.stored_len;
    }
    vt_free(buf);
    int dirs_done[VT_STORE_MAX_DIRS] = {0};
    for (size_t i = 0; i < g->n_nw && !rc; i++) {
        if ((rc = vt_fdatasync(g->nw[i].fd)))
            rc = st_fail(s, rc, "gc: syncing shard %u: %s", g->nw[i].id, vt_strerror(rc));
    }
    for (size_t i = 0; i < g->n_nw && !rc; i++) {
        if (dirs_done[g->nw[i].dir]++) continue;
        rc = st_dir_sync(s, g->nw[i].dir);
    }
    return rc;
}

static int switch_txn(vt_store *s, MDB_txn *txn, void *p) {
    gc_ctx *g = p;
    int rc;
    for (size_t i = 0; i < g->n_mv; i++) {
        gc_move *m = &g->mv[i];
        MDB_val k = {16, m->key}, d;
        rc = mdb_get(txn, s->db_chunks, &k, &d);
        if (rc == MDB_NOTFOUND) continue; /* its tensor was removed meanwhile */
        if (rc) return rc;
        vt_chunk_info now;
        if (st_chunk_rec_decode(m->key, 16, d.mv_data, d.mv_size, st_fv(s), &now) ||
            now.shard_id != m->old.shard_id || now.offset != m->old.offset ||
            now.checksum != m->old.checksum)
            continue; /* replaced meanwhile: the new record does not point at a victim */
        uint8_t vb[ST_CHUNK_REC_LEN];
        st_chunk_rec_encode(&m->neu, st_fv(s), vb);
        MDB_val nd = {ST_CHUNK_REC_LEN, vb};
        if ((rc = mdb_put(txn, s->db_chunks, &k, &nd, 0))) return rc;
    }
    for (size_t i = 0; i < g->tab.n; i++) {
        if (!g->victim[i]) continue;
        uint8_t kb[4];
        st_put_be32(kb, g->tab.e[i].rec.id);
        MDB_val k = {4, kb};
        rc = mdb_del(txn, s->db_shards, &k, NULL);
        if (rc && rc != MDB_NOTFOUND) return rc;
    }
    for (size_t i = 0; i < g->n_nw; i++) {
        st_shard_rec r = {g->nw[i].id, (uint16_t)g->nw[i].dir, 1, g->nw[i].size};
        uint8_t kb[4], vb[ST_SHARD_REC_LEN];
        st_put_be32(kb, r.id);
        st_shard_rec_encode(&r, vb);
        MDB_val k = {4, kb}, d = {ST_SHARD_REC_LEN, vb};
        if ((rc = mdb_put(txn, s->db_shards, &k, &d, 0))) return rc;
    }
    if ((rc = st_dirs_record(s, txn, 1))) return rc;
    uint8_t v4[4];
    st_put_le32(v4, g->next_shard_id);
    MDB_val k = {strlen(ST_KEY_NEXT_SHARD), ST_KEY_NEXT_SHARD}, d = {4, v4};
    return mdb_put(txn, s->db_meta, &k, &d, 0);
}

static void gc_free(gc_ctx *g, int unlink_new) {
    for (size_t i = 0; i < g->n_nw; i++) {
        close(g->nw[i].fd);
        if (unlink_new) {
            char name[32];
            st_shard_name(g->nw[i].id, name, sizeof name);
            unlinkat(g->s->dir_fd[g->nw[i].dir], name, 0);
        }
    }
    vt_free(g->nw);
    vt_free(g->mv);
    vt_free(g->victim);
    st_shards_free(&g->tab);
}

int vt_store_gc(vt_store *s, vt_store_gc_stats *stats) {
    if (!s) return vt_fail(-EINVAL, "vt_store_gc: NULL store");
    if (!(s->flags & VT_STORE_RDWR))
        return st_fail(s, -EBADF, "store %s is open read-only", s->path);
    int lock_fd, rc = st_writer_lock(s, &lock_fd);
    if (rc) return rc;
    gc_ctx g;
    memset(&g, 0, sizeof g);
    g.s = s;
    rc = st_dir_scan(s, count_bytes, &g.st.bytes_before);
    if (!rc) rc = plan(&g);
    if (!rc) g.st.shards_before = g.tab.n;
    if (!rc) rc = st_dir_scan(s, clean_file, &g);
    int any_victim = 0;
    for (size_t i = 0; !rc && i < g.tab.n; i++) any_victim |= g.victim[i];
    if (!rc && any_victim) {
        rc = copy_live(&g);
        if (!rc) rc = st_write_txn(s, switch_txn, &g, "gc: switching chunks to compacted shards");
        if (!rc) st_dirs_recorded(s);
        if (rc) {
            gc_free(&g, 1);
            st_writer_unlock(lock_fd);
            return rc;
        }
        /* committed: the victims are garbage now; a crash here leaves orphans for next time */
        int dirs[VT_STORE_MAX_DIRS] = {0};
        for (size_t i = 0; i < g.tab.n; i++) {
            if (!g.victim[i]) continue;
            char name[32];
            st_shard_name(g.tab.e[i].rec.id, name, sizeof name);
            st_fd_forget(s, g.tab.e[i].rec.id);
            if (unlinkat(s->dir_fd[g.tab.e[i].rec.dir], name, 0) == 0) g.st.files_removed++;
            dirs[g.tab.e[i].rec.dir] = 1;
        }
        for (uint32_t d = 0; d < s->dirs.n; d++)
            if (dirs[d]) st_dir_sync(s, d); /* best effort: a lost unlink is just an orphan */
    }
    if (!rc) {
        size_t nv = 0;
        for (size_t i = 0; i < g.tab.n; i++) nv += g.victim[i];
        g.st.shards_after = g.tab.n - nv + g.n_nw;
        rc = st_dir_scan(s, count_bytes, &g.st.bytes_after);
    }
    if (stats) *stats = g.st;
    gc_free(&g, 0);
    st_writer_unlock(lock_fd);
    return rc;
}
