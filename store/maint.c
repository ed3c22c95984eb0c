/* Maintenance helpers shared by remove, totals, gc and verify: loading the shard table,
 * scanning data directories for shard files, removing tensors. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_maint.h"

int st_shards_load(vt_store *s, MDB_txn *txn, st_shard_tab *tab) {
    memset(tab, 0, sizeof *tab);
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->db_shards, &cur);
    if (rc) return st_fail(s, st_mdb_code(rc), "store %s: %s", s->path, mdb_strerror(rc));
    MDB_val k, d;
    size_t cap = 0;
    for (int m = mdb_cursor_get(cur, &k, &d, MDB_FIRST); m == 0;
         m = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        st_shard_rec r;
        if ((rc = st_shard_rec_decode(k.mv_data, k.mv_size, d.mv_data, d.mv_size, &r))) {
            st_keep(s, rc);
            break;
        }
        if (r.dir >= s->dirs.n) {
            rc = st_fail(s, VT_ECORRUPT,
                         "store %s: shard %u names data directory %u, outside the store", s->path,
                         r.id, r.dir);
            break;
        }
        if (tab->n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            st_shard_ent *n = vt_realloc(tab->e, nc * sizeof *n);
            if (!n) {
                rc = st_fail(s, -ENOMEM, "out of memory loading shards");
                break;
            }
            tab->e = n;
            cap = nc;
        }
        tab->e[tab->n++] = (st_shard_ent){r, 0, 0};
    }
    mdb_cursor_close(cur);
    if (rc) st_shards_free(tab);
    return rc;
}

void st_shards_free(st_shard_tab *tab) {
    vt_free(tab->e);
    memset(tab, 0, sizeof *tab);
}

st_shard_ent *st_shards_find(st_shard_tab *tab, uint32_t id) {
    size_t lo = 0, hi = tab->n; /* keys are big-endian ids: the cursor yields them sorted */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (tab->e[mid].rec.id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < tab->n && tab->e[lo].rec.id == id ? &tab->e[lo] : NULL;
}

int st_live_scan(vt_store *s, MDB_txn *txn, st_shard_tab *tab) {
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->db_chunks, &cur);
    if (rc) return st_fail(s, st_mdb_code(rc), "store %s: %s", s->path, mdb_strerror(rc));
    MDB_val k, d;
    int m;
    for (m = mdb_cursor_get(cur, &k, &d, MDB_FIRST); m == 0;
         m = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        vt_chunk_info ci;
        if ((rc = st_chunk_rec_decode(k.mv_data, k.mv_size, d.mv_data, d.mv_size, st_fv(s), &ci))) {
            rc = st_fail(s, VT_ECORRUPT, "%s", vt_last_error());
            break;
        }
        unsigned long long tid = (unsigned long long)ci.tensor_id,
                           idx = (unsigned long long)ci.index;
        st_shard_ent *e = st_shards_find(tab, ci.shard_id);
        if (!e) {
            rc = st_fail(s, VT_ECORRUPT,
                         "chunk %llu of tensor id %llu lies in shard %u, which has no record", idx,
                         tid, ci.shard_id);
            break;
        }
        if (ci.offset + ci.padded_len > e->rec.size) {
            rc = st_fail(s, VT_ECORRUPT,
                         "chunk %llu of tensor id %llu (shard %u @%llu, %llu bytes) reaches past "
                         "the shard's recorded size %llu",
                         idx, tid, ci.shard_id, (unsigned long long)ci.offset,
                         (unsigned long long)ci.padded_len, (unsigned long long)e->rec.size);
            break;
        }
        e->live += ci.padded_len;
        e->chunks++;
    }
    if (!rc && m != MDB_NOTFOUND)
        rc = st_fail(s, st_mdb_code(m), "store %s: walking chunks: %s", s->path, mdb_strerror(m));
    mdb_cursor_close(cur);
    return rc;
}

int st_counter_get(vt_store *s, MDB_txn *txn, const char *key, size_t len, uint64_t *v) {
    MDB_val k = {strlen(key), (void *)key}, d;
    int rc = mdb_get(txn, s->db_meta, &k, &d);
    if (rc == MDB_NOTFOUND) return st_fail(s, VT_ENOTFOUND, "index: %s is missing", key);
    if (rc)
        return st_fail(s, st_mdb_code(rc), "store %s: reading %s: %s", s->path, key,
                       mdb_strerror(rc));
    if (d.mv_size != len)
        return st_fail(s, VT_ECORRUPT, "index: %s is %zu bytes long, not %zu", key, d.mv_size, len);
    *v = len == 8 ? st_le64(d.mv_data) : st_le32(d.mv_data);
    return 0;
}

/* Key of the last record of @p dbi, or k->mv_size 0 when it is empty. */
static int last_key(vt_store *s, MDB_txn *txn, MDB_dbi dbi, MDB_val *k) {
    MDB_cursor *cur;
    MDB_val d;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (!rc) {
        rc = mdb_cursor_get(cur, k, &d, MDB_LAST);
        mdb_cursor_close(cur);
    }
    if (rc == MDB_NOTFOUND) {
        k->mv_size = 0;
        return 0;
    }
    return rc ? st_fail(s, st_mdb_code(rc), "store %s: %s", s->path, mdb_strerror(rc)) : 0;
}

int st_counters_check(vt_store *s, MDB_txn *txn, st_counters *c) {
    memset(c, 0, sizeof *c);
    uint64_t nt, ns;
    int rc = st_counter_get(s, txn, ST_KEY_NEXT_TENSOR, 8, &nt);
    if (!rc) rc = st_counter_get(s, txn, ST_KEY_NEXT_SHARD, 4, &ns);
    if (rc == VT_ENOTFOUND) rc = st_fail(s, VT_ECORRUPT, "%s", vt_last_error());
    if (rc) return rc;
    c->next_tensor = nt;
    c->next_shard = (uint32_t)ns;
    MDB_val k;
    if ((rc = last_key(s, txn, s->db_shards, &k))) return rc;
    if (k.mv_size == 4) c->max_shard = st_be32(k.mv_data);
    if ((rc = last_key(s, txn, s->db_chunks, &k))) return rc;
    if (k.mv_size == 16) c->max_tensor = st_be64(k.mv_data);
    /* tensor records are keyed by name: read every id (a tensor without chunks has no key) */
    MDB_cursor *cur;
    MDB_val d;
    if ((rc = mdb_cursor_open(txn, s->db_tensors, &cur)))
        return st_fail(s, st_mdb_code(rc), "store %s: %s", s->path, mdb_strerror(rc));
    for (int m = mdb_cursor_get(cur, &k, &d, MDB_FIRST); m == 0;
         m = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        const uint8_t *p = d.mv_data;
        if (d.mv_size < 16 || p[0] != ST_TENSOR_REC_VERSION) continue; /* verify reports it */
        uint64_t id = st_le64(p + 8);
        if (id > c->max_tensor) c->max_tensor = id;
    }
    mdb_cursor_close(cur);
    if (c->next_shard <= c->max_shard)
        return st_fail(s, VT_ECORRUPT,
                       "index: %s is %u, not above the largest shard id %u (a writer would "
                       "reuse live shard ids)",
                       ST_KEY_NEXT_SHARD, c->next_shard, c->max_shard);
    if (c->next_shard >= UINT32_MAX - 1)
        return st_fail(s, VT_ECORRUPT, "index: %s is %u, past the last usable shard id",
                       ST_KEY_NEXT_SHARD, c->next_shard);
    if (c->next_tensor <= c->max_tensor)
        return st_fail(s, VT_ECORRUPT,
                       "index: %s is %llu, not above the largest tensor id %llu (a writer would "
                       "reuse live tensor ids)",
                       ST_KEY_NEXT_TENSOR, (unsigned long long)c->next_tensor,
                       (unsigned long long)c->max_tensor);
    if (c->next_tensor == UINT64_MAX)
        return st_fail(s, VT_ECORRUPT, "index: %s is %llu, past the last usable tensor id",
                       ST_KEY_NEXT_TENSOR, (unsigned long long)c->next_tensor);
    return 0;
}

int st_dir_scan(vt_store *s, st_dir_fn fn, void *ctx) {
    for (uint32_t dir = 0; dir < s->dirs.n; dir++) {
        if (s->dir_fd[dir] < 0) continue;
        int fd = dup(s->dir_fd[dir]);
        if (fd < 0) return st_fail(s, -errno, "store %s: dup: %s", s->path, strerror(errno));
        DIR *dp = fdopendir(fd);
        if (!dp) {
            close(fd);
            return st_fail(s, -errno, "store %s: cannot scan data directory %u: %s", s->path, dir,
                           strerror(errno));
        }
        rewinddir(dp);
        struct dirent *de;
        int rc = 0;
        while (!rc && (de = readdir(dp))) {
            unsigned id;
            char check[64];
            if (sscanf(de->d_name, "shard-%u.vts", &id) != 1 || id == 0) continue;
            st_shard_name(id, check, sizeof check);
            if (strcmp(check, de->d_name)) continue; /* not a name we write */
            struct stat st;
            if (fstatat(s->dir_fd[dir], de->d_name, &st, AT_SYMLINK_NOFOLLOW)) continue;
            rc = fn(ctx, dir, id, &st);
        }
        closedir(dp);
        if (rc) return rc;
    }
    return 0;
}

/* ---- remove ---- */

typedef struct rm_ctx {
    const char *pattern;
    uint64_t count;
} rm_ctx;

static int rm_fn(vt_store *s, MDB_txn *txn, void *p) {
    rm_ctx *c = p;
    c->count = 0;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->db_tensors, &cur);
    if (rc) return rc;
    char **names = NULL;
    size_t n = 0, cap = 0;
    MDB_val k, d;
    for (int m = mdb_cursor_get(cur, &k, &d, MDB_FIRST); m == 0;
         m = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        if (k.mv_size == 0 || k.mv_size >= VT_MAX_NAME || memchr(k.mv_data, 0, k.mv_size)) continue;
        char nm[VT_MAX_NAME];
        memcpy(nm, k.mv_data, k.mv_size);
        nm[k.mv_size] = 0;
        if (c->pattern && fnmatch(c->pattern, nm, 0)) continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            char **nn = vt_realloc(names, nc * sizeof *nn);
            if (!nn) {
                rc = st_fail(s, -ENOMEM, "out of memory removing tensors");
                break;
            }
            names = nn;
            cap = nc;
        }
        if (!(names[n] = vt_strdup(nm))) {
            rc = st_fail(s, -ENOMEM, "out of memory removing tensors");
            break;
        }
        n++;
    }
    mdb_cursor_close(cur);
    for (size_t i = 0; i < n && !rc; i++) {
        int found;
        rc = st_delete_tensor(s, txn, names[i], &found);
        c->count += found;
    }
    for (size_t i = 0; i < n; i++) vt_free(names[i]);
    vt_free(names);
    return rc;
}

int vt_store_remove(vt_store *s, const char *pattern, uint64_t *count) {
    if (!s) return vt_fail(-EINVAL, "vt_store_remove: NULL store");
    if (!(s->flags & VT_STORE_RDWR))
        return st_fail(s, -EBADF, "store %s is open read-only", s->path);
    rm_ctx c = {pattern && *pattern ? pattern : NULL, 0};
    int rc = st_write_txn(s, rm_fn, &c, "removing tensors");
    if (count) *count = rc ? 0 : c.count;
    return rc;
}

/* ---- totals ---- */

typedef struct tot_ctx {
    st_shard_tab *tab;
    vt_store_totals *t;
} tot_ctx;

static int tot_file(void *p, uint32_t dir, uint32_t id, const struct stat *st) {
    tot_ctx *c = p;
    st_shard_ent *e = st_shards_find(c->tab, id);
    if (!e || e->rec.dir != dir) {
        c->t->orphan_files++;
        c->t->garbage_bytes += (uint64_t)st->st_size;
    } else if ((uint64_t)st->st_size > e->rec.size) {
        c->t->garbage_bytes += (uint64_t)st->st_size - e->rec.size;
    }
    return 0;
}

int vt_store_get_totals(vt_store *s, vt_store_totals *out) {
    if (!s || !out) return vt_fail(-EINVAL, "vt_store_get_totals: bad arguments");
    memset(out, 0, sizeof *out);
    out->format_version = VT_STORE_FORMAT_VERSION;
    MDB_txn *txn;
    st_shard_tab tab;
    int rc = st_txn_begin(s, 1, &txn);
    if (rc) return rc;
    if ((rc = st_shards_load(s, txn, &tab))) {
        st_txn_abort(s, txn);
        return rc;
    }
    uint64_t v;
    if (st_meta_get_u64(s, txn, ST_KEY_VERSION, &v) == 0) out->format_version = (uint32_t)v;
    MDB_cursor *cur;
    MDB_val k, d;
    if ((rc = mdb_cursor_open(txn, s->db_tensors, &cur)) == 0) {
        for (int m = mdb_cursor_get(cur, &k, &d, MDB_FIRST); m == 0;
             m = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
            vt_tensor_info ti;
            if (st_tensor_rec_decode(k.mv_data, k.mv_size, d.mv_data, d.mv_size, &ti, NULL))
                continue;
            unsigned f = ti.format == VT_STORE_FMT_RAW ? VT_FMT_COUNT : VT_FMT_BASE(ti.format);
            out->tensors++;
            out->raw_bytes += ti.raw_bytes;
            out->stored_by_format[f] += ti.stored_bytes;
            out->tensors_by_format[f]++;
        }
        mdb_cursor_close(cur);
    }
    if ((rc = mdb_cursor_open(txn, s->db_chunks, &cur)) == 0) {
        for (int m = mdb_cursor_get(cur, &k, &d, MDB_FIRST); m == 0;
             m = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
            vt_chunk_info ci;
            if (st_chunk_rec_decode(k.mv_data, k.mv_size, d.mv_data, d.mv_size, st_fv(s), &ci))
                continue;
            out->chunks++;
            out->stored_bytes += ci.stored_len;
            st_shard_ent *e = st_shards_find(&tab, ci.shard_id);
            if (e) e->live += ci.padded_len;
        }
        mdb_cursor_close(cur);
    }
    st_txn_abort(s, txn);
    rc = 0;
    out->shards = tab.n;
    for (size_t i = 0; i < tab.n; i++) {
        out->shard_bytes += tab.e[i].rec.size;
        uint64_t used = tab.e[i].live + ST_SHARD_HEADER;
        if (tab.e[i].rec.size > used) out->garbage_bytes += tab.e[i].rec.size - used;
    }
    tot_ctx c = {&tab, out};
    rc = st_dir_scan(s, tot_file, &c);
    st_shards_free(&tab);
    return rc;
}
