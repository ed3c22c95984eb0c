/* verify: check the index file against its checksum (index/data.xxh), read every chunk and
 * check every checksum, plus the index's own consistency (records
 * decode, chunk counts and row coverage, no chunk without a tensor, no overlapping chunks,
 * shard files present with their recorded size and header). Reports every problem found. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store_maint.h"

typedef struct vctx {
    vt_store *s;
    vt_verify_fn fn;
    void *ctx;
    vt_verify_report rep;
} vctx;

static void problem(vctx *v, int code, const char *tensor, int64_t chunk, uint32_t shard,
                    uint64_t off, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static void problem(vctx *v, int code, const char *tensor, int64_t chunk, uint32_t shard,
                    uint64_t off, const char *fmt, ...) {
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    v->rep.problems++;
    if (v->fn) {
        vt_verify_problem p = {code, tensor ? tensor : "", chunk, shard, off, msg};
        v->fn(v->ctx, &p);
    }
}

typedef struct tid_ent {
    uint64_t id, n_chunks;
} tid_ent;
typedef struct span {
    uint32_t shard;
    uint64_t off, len, tid, idx;
} span;

/* Chunks first..last of @p ti have no record: one problem for the range. */
static void missing(vctx *v, const vt_tensor_info *ti, uint64_t first, uint64_t last) {
    if (first == last)
        problem(v, VT_ECORRUPT, ti->name, (int64_t)first, 0, 0,
                "tensor %s chunk %llu: missing from the index", ti->name,
                (unsigned long long)first);
    else
        problem(v, VT_ECORRUPT, ti->name, (int64_t)first, 0, 0,
                "tensor %s: chunks %llu..%llu (of %llu) missing from the index", ti->name,
                (unsigned long long)first, (unsigned long long)last,
                (unsigned long long)ti->n_chunks);
}

static int cmp_tid(const void *a, const void *b) {
    uint64_t x = ((const tid_ent *)a)->id, y = ((const tid_ent *)b)->id;
    return x < y ? -1 : x > y;
}
static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->shard != y->shard) return x->shard < y->shard ? -1 : 1;
    return x->off < y->off ? -1 : x->off > y->off;
}

static void check_shards(vctx *v, MDB_txn *txn, st_shard_tab *tab, uint32_t *max_id) {
    vt_store *s = v->s;
    MDB_cursor *cur;
    MDB_val k, d;
    size_t cap = 0;
    memset(tab, 0, sizeof *tab);
    if (mdb_cursor_open(txn, s->db_shards, &cur)) return;
    for (int m = mdb_cursor_get(cur, &k, &d, MDB_FIRST); m == 0;
         m = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        st_shard_rec r;
        if (st_shard_rec_decode(k.mv_data, k.mv_size, d.mv_data, d.mv_size, &r)) {
            problem(v, VT_EFORMAT, NULL, -1, 0, 0, "index: %s", vt_last_error());
            continue;
        }
        if (r.id > *max_id) *max_id = r.id;
        char path[4200] = "?";
        vt_store_shard_path(s, r.id, path, sizeof path);
        if (r.dir >= s->dirs.n) {
            problem(v, VT_ECORRUPT, NULL, -1, r.id, 0,
                    "shard %u: data directory %u outside the store", r.id, r.dir);
            continue;
        }
        int fd;
        if (st_shard_fd(s, &r, &fd)) {
            problem(v, VT_ECORRUPT, NULL, -1, r.id, 0, "shard %s: %s", path, vt_last_error());
            continue;
        }
        struct stat st;
        uint8_t h[32];
        if (fstat(fd, &st) || (uint64_t)st.st_size < r.size) {
            problem(v, VT_ECORRUPT, NULL, -1, r.id, 0,
                    "shard %s is %lld bytes, the index says %llu", path, (long long)st.st_size,
                    (unsigned long long)r.size);
        } else if (vt_pread_full(fd, h, sizeof h, 0) || memcmp(h, ST_SHARD_MAGIC, 8) ||
                   st_le32(h + 12) != r.id || memcmp(h + 16, s->store_id, ST_STORE_ID_LEN)) {
            problem(v, VT_ECORRUPT, NULL, -1, r.id, 0,
                    "shard %s: bad header (magic, shard id or store id)", path);
        } else {
            v->rep.bytes_read += sizeof h;
        }
        if (tab->n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            st_shard_ent *n = vt_realloc(tab->e, nc * sizeof *n);
            if (!n) continue;
            tab->e = n;
            cap = nc;
        }
        tab->e[tab->n++] = (st_shard_ent){r, 0, 0};
    }
    mdb_cursor_close(cur);
}

int vt_store_verify(vt_store *s, vt_verify_fn fn, void *ctx, vt_verify_report *rep) {
    if (!s) return vt_fail(-EINVAL, "vt_store_verify: NULL store");
    vctx v = {s, fn, ctx, {0}};
    /* the index file first: a damaged page could crash LMDB in the walk below. Under the map
     * lock: it reads the meta pages through LMDB's map, which another thread of this handle
     * may replace when it adopts a resize (st_txn_begin) */
    pthread_rwlock_rdlock(&s->resize_lock);
    int rc = st_sum_check(s);
    pthread_rwlock_unlock(&s->resize_lock);
    if (rc == VT_ECORRUPT) {
        problem(&v, rc, NULL, -1, 0, 0, "%s", vt_last_error());
        if (rep) *rep = v.rep;
        return st_fail(s, rc, "store %s: verify found 1 problem (index file damaged; not walked)",
                       s->path);
    }
    if (rc) return rc;
    MDB_txn *txn;
    if ((rc = st_txn_begin(s, 1, &txn))) return rc;
    st_shard_tab tab;
    uint32_t max_shard = 0;
    check_shards(&v, txn, &tab, &max_shard);

    tid_ent *ids = NULL;
    size_t n_ids = 0, cap_ids = 0;
    span *sp = NULL;
    size_t n_sp = 0, cap_sp = 0;
    void *buf = NULL;
    size_t cap_buf = 0;
    uint64_t max_tid = 0;
    MDB_cursor *cur;
    MDB_val k, d;
    rc = mdb_cursor_open(txn, s->db_tensors, &cur);
    for (int m = rc ? MDB_NOTFOUND : mdb_cursor_get(cur, &k, &d, MDB_FIRST); m == 0;
         m = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        vt_tensor_info ti;
        if (st_tensor_rec_decode(k.mv_data, k.mv_size, d.mv_data, d.mv_size, &ti, NULL)) {
            problem(&v, VT_EFORMAT, ti.name, -1, 0, 0, "index: %s", vt_last_error());
            continue;
        }
        v.rep.tensors++;
        if (ti.id > max_tid) max_tid = ti.id;
        if (n_ids == cap_ids) {
            size_t nc = cap_ids ? 2 * cap_ids : 64;
            tid_ent *n = vt_realloc(ids, nc * sizeof *n);
            if (!n) {
                rc = st_fail(s, -ENOMEM, "verify: out of memory");
                break;
            }
            ids = n;
            cap_ids = nc;
        }
        ids[n_ids++] = (tid_ent){ti.id, ti.n_chunks};
        /* walk the chunk records the index has (a record may claim any count): a gap is one
         * problem naming its range */
        uint64_t stored = 0, next = 0;
        MDB_cursor *cc;
        if ((rc = mdb_cursor_open(txn, s->db_chunks, &cc))) {
            rc = st_fail(s, st_mdb_code(rc), "store %s: %s", s->path, mdb_strerror(rc));
            break;
        }
        uint8_t kb[16];
        st_chunk_key(ti.id, 0, kb);
        MDB_val ck = {16, kb}, cd;
        for (int cm = mdb_cursor_get(cc, &ck, &cd, MDB_SET_RANGE); cm == 0 && !rc;
             cm = mdb_cursor_get(cc, &ck, &cd, MDB_NEXT)) {
            if (ck.mv_size != 16 || st_be64(ck.mv_data) != ti.id) break;
            uint64_t i = st_be64((const uint8_t *)ck.mv_data + 8);
            if (i >= ti.n_chunks) break; /* reported below as belonging to no tensor */
            if (i > next) missing(&v, &ti, next, i - 1);
            next = i + 1;
            vt_chunk_info ci;
            if (st_chunk_rec_decode(ck.mv_data, 16, cd.mv_data, cd.mv_size, st_fv(s), &ci) ||
                st_chunk_check(s, &ti, &ci)) {
                problem(&v, VT_ECORRUPT, ti.name, (int64_t)i, 0, 0, "tensor %s: %s", ti.name,
                        vt_last_error());
                continue;
            }
            stored += ci.stored_len;
            if (ci.raw_len > cap_buf) {
                vt_free(buf);
                cap_buf = ci.raw_len;
                if (!(buf = vt_malloc(cap_buf))) {
                    cap_buf = 0;
                    rc = st_fail(s, -ENOMEM, "verify: out of memory");
                    break;
                }
            }
            if (st_read_chunk_ci(s, txn, ti.name, &ci, buf, cap_buf)) {
                problem(&v, VT_ECORRUPT, ti.name, (int64_t)i, ci.shard_id, ci.offset, "%s",
                        vt_last_error());
            } else {
                v.rep.chunks++;
                v.rep.bytes_read += ci.stored_len;
            }
        }
        mdb_cursor_close(cc);
        if (!rc && next < ti.n_chunks) missing(&v, &ti, next, ti.n_chunks - 1);
        if (rc) break;
        if (stored != ti.stored_bytes)
            problem(&v, VT_ECORRUPT, ti.name, -1, 0, 0,
                    "tensor %s: chunks hold %llu stored bytes, the record says %llu", ti.name,
                    (unsigned long long)stored, (unsigned long long)ti.stored_bytes);
    }
    if (cur) mdb_cursor_close(cur);
    cur = NULL;
    if (n_ids) qsort(ids, n_ids, sizeof *ids, cmp_tid);
    for (size_t i = 1; i < n_ids; i++)
        if (ids[i].id == ids[i - 1].id)
            problem(&v, VT_ECORRUPT, NULL, -1, 0, 0, "index: two tensors share id %llu",
                    (unsigned long long)ids[i].id);

    /* every chunk record belongs to a tensor; no two chunks overlap in a shard */
    if (!rc && mdb_cursor_open(txn, s->db_chunks, &cur) == 0) {
        for (int m = mdb_cursor_get(cur, &k, &d, MDB_FIRST); m == 0;
             m = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
            vt_chunk_info ci;
            if (st_chunk_rec_decode(k.mv_data, k.mv_size, d.mv_data, d.mv_size, st_fv(s), &ci)) {
                problem(&v, VT_EFORMAT, NULL, -1, 0, 0, "index: %s", vt_last_error());
                continue;
            }
            tid_ent key = {ci.tensor_id, 0};
            tid_ent *t = n_ids ? bsearch(&key, ids, n_ids, sizeof *ids, cmp_tid) : NULL;
            if (!t || ci.index >= t->n_chunks)
                problem(&v, VT_ECORRUPT, NULL, (int64_t)ci.index, ci.shard_id, ci.offset,
                        "index: chunk %llu of tensor id %llu belongs to no tensor",
                        (unsigned long long)ci.index, (unsigned long long)ci.tensor_id);
            if (!st_shards_find(&tab, ci.shard_id)) continue; /* reported with its tensor */
            if (n_sp == cap_sp) {
                size_t nc = cap_sp ? 2 * cap_sp : 256;
                span *n = vt_realloc(sp, nc * sizeof *n);
                if (!n) {
                    rc = st_fail(s, -ENOMEM, "verify: out of memory");
                    break;
                }
                sp = n;
                cap_sp = nc;
            }
            sp[n_sp++] = (span){ci.shard_id, ci.offset, ci.padded_len, ci.tensor_id, ci.index};
        }
        mdb_cursor_close(cur);
    }
    if (n_sp) qsort(sp, n_sp, sizeof *sp, cmp_span);
    for (size_t i = 1; i < n_sp; i++)
        if (sp[i].shard == sp[i - 1].shard && sp[i - 1].off + sp[i - 1].len > sp[i].off)
            problem(&v, VT_ECORRUPT, NULL, (int64_t)sp[i].idx, sp[i].shard, sp[i].off,
                    "index: chunk %llu of tensor id %llu overlaps chunk %llu of tensor id %llu in "
                    "shard %u @%llu",
                    (unsigned long long)sp[i].idx, (unsigned long long)sp[i].tid,
                    (unsigned long long)sp[i - 1].idx, (unsigned long long)sp[i - 1].tid,
                    sp[i].shard, (unsigned long long)sp[i].off);
    uint64_t nt = 0, ns = 0;
    if (st_counter_get(s, txn, ST_KEY_NEXT_TENSOR, 8, &nt))
        problem(&v, VT_ECORRUPT, NULL, -1, 0, 0, "%s", vt_last_error());
    else if (nt <= max_tid || nt == UINT64_MAX)
        problem(&v, VT_ECORRUPT, NULL, -1, 0, 0,
                "index: %s %llu is not above the largest tensor id %llu or is the last id",
                ST_KEY_NEXT_TENSOR, (unsigned long long)nt, (unsigned long long)max_tid);
    if (st_counter_get(s, txn, ST_KEY_NEXT_SHARD, 4, &ns))
        problem(&v, VT_ECORRUPT, NULL, -1, 0, 0, "%s", vt_last_error());
    else if (ns <= max_shard || ns >= UINT32_MAX - 1)
        problem(&v, VT_ECORRUPT, NULL, -1, 0, 0,
                "index: %s %llu is not above the largest shard id %u or is past the last id",
                ST_KEY_NEXT_SHARD, (unsigned long long)ns, max_shard);
    st_txn_abort(s, txn);
    vt_free(buf);
    vt_free(ids);
    vt_free(sp);
    st_shards_free(&tab);
    if (rep) *rep = v.rep;
    if (rc) return rc;
    if (v.rep.problems)
        return st_fail(s, VT_ECORRUPT, "store %s: verify found %llu problem(s)", s->path,
                       (unsigned long long)v.rep.problems);
    return 0;
}
