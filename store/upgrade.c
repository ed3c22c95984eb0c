/* vt_store_upgrade: rewrite a format-1 store as format 2 in place (docs/FORMAT.md section 8).
 * Under the writer lock, a read pass checks every chunk's bytes against its version-1 checksum
 * and computes the version-2 (key-seeded) one; then one write transaction rewrites every chunk
 * record and the format version. The shard files are not touched, so an error or a crash at
 * any point leaves the store as it was. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "store_internal.h"

typedef struct up_ent {
    uint8_t key[16];
    uint32_t shard_id;
    uint64_t offset, sum1, sum2;
} up_ent;

typedef struct up_ctx {
    up_ent *e;
    size_t n, cap;
    vt_store_upgrade_stats st;
} up_ctx;

static int key_cmp(const void *a, const void *b) {
    return memcmp(((const up_ent *)a)->key, ((const up_ent *)b)->key, 16);
}

/* Walk every tensor's chunk records in @p txn; check each chunk's bytes and record its
 * version-2 checksum. */
static int collect(vt_store *s, MDB_txn *txn, up_ctx *u) {
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->db_tensors, &cur);
    if (rc) return st_fail(s, st_mdb_code(rc), "store %s: %s", s->path, mdb_strerror(rc));
    void *buf = NULL;
    size_t cap_buf = 0;
    MDB_val k, d;
    for (int m = mdb_cursor_get(cur, &k, &d, MDB_FIRST); m == 0 && !rc;
         m = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        vt_tensor_info ti;
        if (st_tensor_rec_decode(k.mv_data, k.mv_size, d.mv_data, d.mv_size, &ti, NULL)) {
            rc = st_fail(s, VT_ECORRUPT, "store %s: %s; not upgraded (run vtstore verify)", s->path,
                         vt_last_error());
            break;
        }
        for (uint64_t i = 0; i < ti.n_chunks && !rc; i++) {
            vt_chunk_info ci;
            if ((rc = st_chunk_get(s, txn, &ti, i, &ci))) {
                rc = st_fail(s, rc, "store %s: %s; not upgraded (run vtstore verify)", s->path,
                             vt_last_error());
                break;
            }
            if (ci.stored_len > cap_buf) {
                vt_free(buf);
                cap_buf = ci.stored_len;
                if (!(buf = vt_malloc(cap_buf))) {
                    rc = st_fail(s, -ENOMEM, "store %s: out of memory upgrading", s->path);
                    break;
                }
            }
            char where[4200];
            if ((rc = st_read_stored(s, txn, ti.name, &ci, buf, where, sizeof where))) {
                rc = st_fail(s, rc, "%s; not upgraded (run vtstore verify)", vt_last_error());
                break;
            }
            if (u->n == u->cap) {
                size_t nc = u->cap ? 2 * u->cap : 1024;
                up_ent *ne = vt_realloc(u->e, nc * sizeof *ne);
                if (!ne) {
                    rc = st_fail(s, -ENOMEM, "store %s: out of memory upgrading", s->path);
                    break;
                }
                u->e = ne;
                u->cap = nc;
            }
            up_ent *e = &u->e[u->n++];
            st_chunk_key(ti.id, i, e->key);
            e->shard_id = ci.shard_id;
            e->offset = ci.offset;
            e->sum1 = ci.checksum;
            e->sum2 =
                (uint64_t)XXH3_64bits_withSeed(buf, ci.stored_len, st_chunk_seed(2, ti.id, i));
            u->st.chunks++;
            u->st.bytes_read += ci.stored_len;
        }
    }
    mdb_cursor_close(cur);
    vt_free(buf);
    if (!rc && u->n) qsort(u->e, u->n, sizeof *u->e, key_cmp);
    return rc;
}

/* st_write_txn body: every chunk record becomes version 2 with the checksum collect computed;
 * a record collect did not see, or one that changed since, stops the upgrade. */
static int apply(vt_store *s, MDB_txn *txn, void *p) {
    up_ctx *u = p;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->db_chunks, &cur);
    if (rc) return rc;
    MDB_val k, d;
    int m;
    for (m = mdb_cursor_get(cur, &k, &d, MDB_FIRST); m == 0;
         m = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        up_ent want;
        vt_chunk_info ci;
        if (k.mv_size != 16 || st_chunk_rec_decode(k.mv_data, 16, d.mv_data, d.mv_size, 1, &ci)) {
            rc = st_fail(s, VT_ECORRUPT, "store %s: %s; not upgraded (run vtstore verify)", s->path,
                         vt_last_error());
            break;
        }
        memcpy(want.key, k.mv_data, 16);
        const up_ent *e = u->n ? bsearch(&want, u->e, u->n, sizeof *u->e, key_cmp) : NULL;
        if (!e) {
            rc = st_fail(s, VT_ECORRUPT,
                         "store %s: chunk %llu of tensor id %llu belongs to no tensor; not "
                         "upgraded (run vtstore verify)",
                         s->path, (unsigned long long)ci.index, (unsigned long long)ci.tensor_id);
            break;
        }
        if (ci.shard_id != e->shard_id || ci.offset != e->offset || ci.checksum != e->sum1) {
            rc = st_fail(s, -EBUSY,
                         "store %s: chunk %llu of tensor id %llu changed during the upgrade; "
                         "nothing was changed, run it again",
                         s->path, (unsigned long long)ci.index, (unsigned long long)ci.tensor_id);
            break;
        }
        ci.checksum = e->sum2;
        uint8_t vb[ST_CHUNK_REC_LEN];
        st_chunk_rec_encode(&ci, 2, vb);
        MDB_val nd = {ST_CHUNK_REC_LEN, vb};
        if ((m = mdb_cursor_put(cur, &k, &nd, MDB_CURRENT))) break;
    }
    mdb_cursor_close(cur);
    if (rc) return rc;
    if (m != MDB_NOTFOUND) return m;
    uint8_t v4[4];
    st_put_le32(v4, 2);
    MDB_val vk = {strlen(ST_KEY_VERSION), ST_KEY_VERSION}, vd = {4, v4};
    return mdb_put(txn, s->db_meta, &vk, &vd, 0);
}

int vt_store_upgrade(vt_store *s, vt_store_upgrade_stats *stats) {
    if (stats) memset(stats, 0, sizeof *stats);
    if (!s) return vt_fail(-EINVAL, "vt_store_upgrade: NULL store");
    if (!(s->flags & VT_STORE_RDWR))
        return st_fail(s, -EBADF, "store %s is open read-only", s->path);
    int lock_fd, rc = st_writer_lock(s, &lock_fd);
    if (rc) return rc;
    up_ctx u;
    memset(&u, 0, sizeof u);
    MDB_txn *txn;
    if (!(rc = st_txn_begin(s, 1, &txn))) {
        rc = st_version_load(s, txn);
        u.st.from_version = u.st.to_version = st_fv(s);
        if (!rc && u.st.from_version < VT_STORE_FORMAT_VERSION) rc = collect(s, txn, &u);
        st_txn_abort(s, txn);
    }
    if (!rc && u.st.from_version < VT_STORE_FORMAT_VERSION) {
        rc = st_write_txn(s, apply, &u, "upgrading the index");
        if (!rc) {
            __atomic_store_n(&s->format_version, 2u, __ATOMIC_RELAXED);
            u.st.to_version = 2;
        }
    }
    st_writer_unlock(lock_fd);
    vt_free(u.e);
    if (stats && !rc) *stats = u.st;
    return rc;
}
