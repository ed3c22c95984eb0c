/* Damage detection: a flipped byte in a shard is caught by read and by verify, naming tensor and
 * chunk; gc refuses to copy a corrupt chunk; a truncated shard is reported; a newer format
 * version is refused with a clear message; index records that would reach outside the store's
 * directories, symlinked shard files and shards with a wrong header are refused; a tensor
 * record claiming more chunks than its bytes can hold is refused, and verify names a gap of
 * missing chunk records once; mutated index records never crash the decoder (edited into the
 * index directly, and fed to vt_store_record_decode_test). */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>

#include "store/store_internal.h"
#include "store_rawidx.h"
#include "store_testutil.h"

static char path[4200];

typedef struct probs {
    int n;
    char tensor[VT_MAX_NAME];
    int64_t chunk;
    char msg[1200];
} probs;
static void on_problem(void *ctx, const vt_verify_problem *p) {
    probs *pr = ctx;
    if (pr->n++ == 0) {
        snprintf(pr->tensor, sizeof pr->tensor, "%s", p->tensor);
        pr->chunk = p->chunk;
        snprintf(pr->msg, sizeof pr->msg, "%s", p->message);
    }
    printf("  verify: %s\n", p->message);
}

static void flip_byte(vt_store *s, const char *name, uint64_t idx) {
    vt_chunk_info ci;
    CHECK_RC(vt_store_chunk_info(s, name, idx, &ci));
    char sp[4400];
    CHECK_RC(vt_store_shard_path(s, ci.shard_id, sp, sizeof sp));
    int fd = open(sp, O_RDWR);
    CHECK(fd >= 0);
    uint64_t at = ci.offset + vt_rand_u64() % ci.stored_len;
    uint8_t b;
    CHECK(pread(fd, &b, 1, (off_t)at) == 1);
    b ^= (uint8_t)(1u << (vt_rand_u64() % 8));
    CHECK(pwrite(fd, &b, 1, (off_t)at) == 1);
    close(fd);
}

static void mutate_fuzz(const uint8_t *rec, size_t len, int iters) {
    uint8_t buf[4096];
    for (int it = 0; it < iters; it++) {
        size_t n = len;
        memcpy(buf, rec, len);
        int edits = 1 + (int)(vt_rand_u64() % 4);
        for (int e = 0; e < edits; e++) {
            switch (vt_rand_u64() % 4) {
            case 0:
                if (n) buf[vt_rand_u64() % n] ^= (uint8_t)(1u << (vt_rand_u64() % 8));
                break;
            case 1:
                if (n) buf[vt_rand_u64() % n] = (uint8_t)vt_rand_u64();
                break;
            case 2:
                n = vt_rand_u64() % (n + 1);
                break;
            default:
                if (n + 8 < sizeof buf) {
                    for (int i = 0; i < 8; i++) buf[n++] = (uint8_t)vt_rand_u64();
                }
                break;
            }
        }
        /* an exact-size heap copy so ASan sees any read past the end */
        uint8_t *h = malloc(n ? n : 1);
        memcpy(h, buf, n);
        (void)vt_store_record_decode_test(h, n);
        free(h);
    }
}

int main(void) {
    vt_test_seed();
    char dir[4096];
    vt_test_tmpdir("test_store_corrupt", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/s.vts", dir);
    vt_store_options o = {0};
    o.chunk_target_bytes = 8 << 10;
    vt_store *s;
    CHECK_RC(vt_store_open(path, VT_STORE_RDWR | VT_STORE_CREATE, &o, &s));
    if (!s) return vt_test_done("test_store_corrupt");
    vt_store_writer *w;
    CHECK_RC(vt_store_writer_begin(s, &w));
    CHECK_RC(tu_put_gen(w, "t0", 1, 64, 200, 0));
    CHECK_RC(tu_put_gen(w, "t1", 1, 16, 200, 0));
    CHECK_RC(vt_store_writer_commit(w));
    CHECK_RC(vt_store_writer_begin(s, &w));
    CHECK_RC(tu_put_gen(w, "t2", 1, 40, 100, 0));
    CHECK_RC(vt_store_writer_commit(w));
    CHECK_RC(vt_store_verify(s, NULL, NULL, NULL));

    /* ---- flipped byte ---- */
    vt_tensor_info ti;
    CHECK_RC(vt_store_stat(s, "t0", &ti));
    CHECK(ti.n_chunks >= 3);
    uint64_t bad = vt_rand_u64() % ti.n_chunks;
    flip_byte(s, "t0", bad);
    char want[64];
    snprintf(want, sizeof want, "chunk %llu", (unsigned long long)bad);
    void *buf = malloc(ti.raw_bytes);
    int rc = vt_store_read_chunk(s, "t0", bad, buf, ti.raw_bytes, NULL);
    CHECK(rc == VT_ECORRUPT);
    printf("  read: %s\n", vt_store_errmsg(s));
    CHECK(strstr(vt_store_errmsg(s), "tensor t0") && strstr(vt_store_errmsg(s), want) &&
          strstr(vt_store_errmsg(s), "checksum mismatch") && strstr(vt_store_errmsg(s), "shard-"));
    CHECK(strstr(vt_last_error(), want) != NULL);
    CHECK(vt_store_read_tensor_raw(s, "t0", buf, ti.raw_bytes) == VT_ECORRUPT);
    float *f = malloc(ti.rows * ti.cols * 4);
    CHECK(vt_store_read_rows(s, "t0", 0, ti.rows, VT_DTYPE_F32, f, ti.rows * ti.cols * 4) ==
          VT_ECORRUPT);
    uint64_t good = (bad + 1) % ti.n_chunks;
    CHECK_RC(vt_store_read_chunk(s, "t0", good, buf, ti.raw_bytes, NULL));
    probs pr = {0};
    vt_verify_report rep;
    CHECK(vt_store_verify(s, on_problem, &pr, &rep) == VT_ECORRUPT);
    CHECK(pr.n == 1 && rep.problems == 1 && strcmp(pr.tensor, "t0") == 0 &&
          pr.chunk == (int64_t)bad);
    CHECK(strstr(pr.msg, want) && strstr(pr.msg, "t0"));

    /* gc must not copy the corrupt chunk (t1's removal makes its shard a victim) */
    CHECK_RC(vt_store_remove(s, "t1", NULL));
    vt_store_gc_stats gs;
    CHECK(vt_store_gc(s, &gs) == VT_ECORRUPT);
    printf("  gc: %s\n", vt_store_errmsg(s));
    CHECK_RC(vt_store_read_chunk(s, "t0", good, buf, ti.raw_bytes, NULL));
    memset(&pr, 0, sizeof pr);
    CHECK(vt_store_verify(s, on_problem, &pr, &rep) == VT_ECORRUPT && pr.n == 1);
    CHECK_RC(vt_store_remove(s, "t0", NULL)); /* the way out: remove, then gc */
    CHECK_RC(vt_store_gc(s, &gs));
    CHECK_RC(vt_store_verify(s, NULL, NULL, NULL));

    /* ---- truncated shard ---- */
    vt_chunk_info ci;
    CHECK_RC(vt_store_stat(s, "t2", &ti));
    CHECK_RC(vt_store_chunk_info(s, "t2", ti.n_chunks - 1, &ci));
    char sp[4400];
    CHECK_RC(vt_store_shard_path(s, ci.shard_id, sp, sizeof sp));
    CHECK(truncate(sp, (off_t)ci.offset + 10) == 0);
    CHECK(vt_store_read_chunk(s, "t2", ti.n_chunks - 1, buf, ti.raw_bytes, NULL) == VT_ECORRUPT);
    printf("  truncated: %s\n", vt_store_errmsg(s));
    memset(&pr, 0, sizeof pr);
    CHECK(vt_store_verify(s, on_problem, &pr, &rep) == VT_ECORRUPT && pr.n >= 2);
    CHECK_RC(vt_store_remove(s, "t2", NULL));
    CHECK_RC(vt_store_gc(s, &gs));
    CHECK_RC(vt_store_verify(s, NULL, NULL, NULL));
    CHECK_RC(vt_store_writer_begin(s, &w));
    CHECK_RC(tu_put_gen(w, "t3", 1, 30, 300, 0));
    CHECK_RC(vt_store_writer_commit(w));
    vt_store_close(s);

    /* ---- version refusal ---- */
    uint8_t v4[4];
    st_put_le32(v4, VT_STORE_FORMAT_VERSION + 1);
    CHECK(raw_put(path, "meta", ST_KEY_VERSION, strlen(ST_KEY_VERSION), v4, 4) == 0);
    s = NULL;
    CHECK(vt_store_open(path, VT_STORE_RDONLY, NULL, &s) == VT_EVERSION && s == NULL);
    printf("  version: %s\n", vt_last_error());
    snprintf(want, sizeof want, "format version %d", VT_STORE_FORMAT_VERSION + 1);
    CHECK(strstr(vt_last_error(), want) && strstr(vt_last_error(), "upgrade"));
    st_put_le32(v4, VT_STORE_FORMAT_VERSION);
    CHECK(raw_put(path, "meta", ST_KEY_VERSION, strlen(ST_KEY_VERSION), v4, 4) == 0);

    /* ---- path escape through the data directory list ---- */
    uint8_t dirs_rec[256], dirs_save[256];
    size_t dl = 0;
    CHECK(raw_get(path, "meta", ST_KEY_DIRS, strlen(ST_KEY_DIRS), dirs_save, sizeof dirs_save,
                  &dl) == 0);
    const char *evil = "/tmp/../etc";
    size_t el = strlen(evil);
    dirs_rec[0] = 1;
    st_put_le32(dirs_rec + 1, 2);
    st_put_le16(dirs_rec + 5, 0);
    st_put_le16(dirs_rec + 7, (uint16_t)el);
    memcpy(dirs_rec + 9, evil, el);
    CHECK(raw_put(path, "meta", ST_KEY_DIRS, strlen(ST_KEY_DIRS), dirs_rec, 9 + el) == 0);
    CHECK(vt_store_open(path, VT_STORE_RDONLY, NULL, &s) == VT_EFORMAT);
    printf("  dirs: %s\n", vt_last_error());
    CHECK(raw_put(path, "meta", ST_KEY_DIRS, strlen(ST_KEY_DIRS), dirs_save, dl) == 0);

    /* ---- path escape through a shard record's directory index ---- */
    CHECK_RC(vt_store_open(path, VT_STORE_RDONLY, NULL, &s));
    CHECK_RC(vt_store_chunk_info(s, "t3", 0, &ci));
    CHECK_RC(vt_store_stat(s, "t3", &ti));
    vt_store_close(s);
    uint8_t sk[4], sv[ST_SHARD_REC_LEN], save[ST_SHARD_REC_LEN];
    size_t sl;
    st_put_be32(sk, ci.shard_id);
    CHECK(raw_get(path, "shards", sk, 4, save, sizeof save, &sl) == 0 && sl == ST_SHARD_REC_LEN);
    memcpy(sv, save, sizeof sv);
    st_put_le16(sv + 2, 5); /* data dir 5 does not exist */
    CHECK(raw_put(path, "shards", sk, 4, sv, sizeof sv) == 0);
    CHECK_RC(vt_store_open(path, VT_STORE_RDONLY, NULL, &s));
    CHECK(vt_store_read_chunk(s, "t3", 0, buf, ti.raw_bytes, NULL) == VT_ECORRUPT);
    printf("  shard dir: %s\n", vt_store_errmsg(s));
    CHECK(vt_store_verify(s, NULL, NULL, NULL) == VT_ECORRUPT);
    vt_store_close(s);
    CHECK(raw_put(path, "shards", sk, 4, save, sizeof save) == 0);

    /* ---- a symlinked shard file is refused ---- */
    CHECK_RC(vt_store_open(path, VT_STORE_RDONLY, NULL, &s));
    CHECK_RC(vt_store_shard_path(s, ci.shard_id, sp, sizeof sp));
    char moved[4500], cmd[16384];
    snprintf(moved, sizeof moved, "%s/elsewhere.vts", dir);
    CHECK(rename(sp, moved) == 0 && symlink(moved, sp) == 0);
    CHECK(vt_store_read_chunk(s, "t3", 0, buf, ti.raw_bytes, NULL) == VT_ECORRUPT);
    printf("  symlink: %s\n", vt_store_errmsg(s));
    CHECK(strstr(vt_store_errmsg(s), "symlink") != NULL);
    int fd = -1;
    CHECK(vt_store_shard_open(s, ci.shard_id, 0, &fd) == VT_ECORRUPT);
    vt_store_close(s);
    snprintf(cmd, sizeof cmd, "rm -f '%s' && mv '%s' '%s'", sp, moved, sp);
    CHECK(system(cmd) == 0);

    /* ---- a shard whose header is not this shard's of this store is refused by readers ---- */
    static const struct {
        off_t at;
        const char *word;
    } hdr[] = {{0, "magic"}, {12, "names shard"}, {20, "store id"}};
    for (size_t i = 0; i < sizeof hdr / sizeof hdr[0]; i++) {
        int hfd = open(sp, O_RDWR);
        uint8_t hb = 0;
        CHECK(hfd >= 0 && pread(hfd, &hb, 1, hdr[i].at) == 1);
        hb ^= 0x10;
        CHECK(pwrite(hfd, &hb, 1, hdr[i].at) == 1);
        CHECK_RC(vt_store_open(path, VT_STORE_RDONLY, NULL, &s));
        if (!s) break;
        CHECK(vt_store_read_chunk(s, "t3", 0, buf, ti.raw_bytes, NULL) == VT_ECORRUPT);
        printf("  header: %s\n", vt_store_errmsg(s));
        CHECK(strstr(vt_store_errmsg(s), "shard-") && strstr(vt_store_errmsg(s), hdr[i].word));
        fd = -1;
        CHECK(vt_store_shard_open(s, ci.shard_id, 0, &fd) == VT_ECORRUPT && fd == -1);
        CHECK(vt_store_verify(s, NULL, NULL, NULL) == VT_ECORRUPT);
        vt_store_close(s);
        hb ^= 0x10;
        CHECK(pwrite(hfd, &hb, 1, hdr[i].at) == 1);
        close(hfd);
    }

    /* ---- a tensor record claiming more chunks than its stored bytes can hold (2^37 chunks of a
     * 2^40-row tensor): refused by the decoder, so verify does not walk 2^37 chunk keys ---- */
    vt_tensor_info huge = ti;
    snprintf(huge.name, sizeof huge.name, "huge");
    huge.id = ti.id + 100;
    huge.dims[0] = 1ull << 40;
    huge.dims[1] = 128;
    huge.rows = 1ull << 40;
    huge.cols = 128;
    huge.rows_per_chunk = 8;
    huge.n_chunks = 1ull << 37;
    huge.raw_bytes = (1ull << 40) * 128 * 4;
    huge.stored_bytes = 32768;
    huge.aux_bytes = 0;
    huge.source[0] = 0;
    uint8_t hrec[512];
    CHECK(st_tensor_rec_size(&huge) <= sizeof hrec);
    st_tensor_rec_encode(&huge, NULL, hrec);
    CHECK(raw_put(path, "tensors", "huge", 4, hrec, st_tensor_rec_size(&huge)) == 0);
    CHECK_RC(vt_store_open(path, VT_STORE_RDONLY, NULL, &s));
    if (!s) return vt_test_done("test_store_corrupt");
    vt_tensor_info hti;
    CHECK(vt_store_stat(s, "huge", &hti) == VT_EFORMAT);
    printf("  huge: %s\n", vt_store_errmsg(s));
    CHECK(strstr(vt_store_errmsg(s), "huge") && strstr(vt_store_errmsg(s), "cannot hold"));
    double t_verify = vt_now();
    memset(&pr, 0, sizeof pr);
    CHECK(vt_store_verify(s, on_problem, &pr, &rep) == VT_ECORRUPT);
    t_verify = vt_now() - t_verify;
    CHECKF(pr.n == 1 && t_verify < 10, "%d problems in %.1f s", pr.n, t_verify);
    vt_store_close(s);
    CHECK(raw_put(path, "tensors", "huge", 4, NULL, 0) == 0);

    /* ---- missing chunk records: verify names the gap once ---- */
    CHECK(ti.n_chunks >= 5);
    uint8_t gk[3][16], gv[3][ST_CHUNK_REC_LEN];
    for (int i = 0; i < 3; i++) {
        size_t gl = 0;
        st_chunk_key(ti.id, (uint64_t)i + 1, gk[i]);
        CHECK(raw_get(path, "chunks", gk[i], 16, gv[i], sizeof gv[i], &gl) == 0 &&
              gl == ST_CHUNK_REC_LEN);
        CHECK(raw_put(path, "chunks", gk[i], 16, NULL, 0) == 0);
    }
    CHECK_RC(vt_store_open(path, VT_STORE_RDONLY, NULL, &s));
    if (!s) return vt_test_done("test_store_corrupt");
    memset(&pr, 0, sizeof pr);
    CHECK(vt_store_verify(s, on_problem, &pr, &rep) == VT_ECORRUPT);
    /* the gap, then the stored-bytes total that no longer adds up */
    CHECKF(pr.n == 2 && strstr(pr.msg, "chunks 1..3") && strcmp(pr.tensor, "t3") == 0 &&
               pr.chunk == 1,
           "%d problems, first: %s", pr.n, pr.msg);
    CHECK(vt_store_read_chunk(s, "t3", 2, buf, ti.raw_bytes, NULL) == VT_ECORRUPT);
    vt_store_close(s);
    for (int i = 0; i < 3; i++)
        CHECK(raw_put(path, "chunks", gk[i], 16, gv[i], ST_CHUNK_REC_LEN) == 0);

    /* ---- hostile tensor record in the index: errors, never a crash ---- */
    uint8_t rec[4096], mut[4096];
    size_t rl = 0;
    CHECK(raw_get(path, "tensors", "t3", 2, rec, sizeof rec, &rl) == 0);
    for (int it = 0; it < 60; it++) {
        memcpy(mut, rec, rl);
        size_t n = rl;
        if (it % 3 == 0)
            n = vt_rand_u64() % rl;
        else
            mut[vt_rand_u64() % rl] ^= (uint8_t)(1u << (vt_rand_u64() % 8));
        CHECK(raw_put(path, "tensors", "t3", 2, mut, n) == 0);
        CHECK_RC(vt_store_open(path, VT_STORE_RDONLY, NULL, &s));
        if (!s) break;
        if (vt_store_stat(s, "t3", &ti) == 0 && ti.raw_bytes < (1u << 24)) {
            void *b2 = malloc(ti.raw_bytes + 1);
            (void)vt_store_read_tensor_raw(s, "t3", b2, ti.raw_bytes);
            free(b2);
        }
        (void)vt_store_verify(s, NULL, NULL, NULL);
        vt_store_close(s);
    }
    CHECK(raw_put(path, "tensors", "t3", 2, rec, rl) == 0);
    CHECK_RC(vt_store_open(path, VT_STORE_RDONLY, NULL, &s));
    CHECK(tu_check_gen(s, "t3", NULL) == 0);
    CHECK_RC(vt_store_stat(s, "t3", &ti)); /* ti last held a mutated record's fields */
    CHECK_RC(vt_store_verify(s, NULL, NULL, NULL));
    vt_store_close(s);

    /* ---- decoder fuzz on real records ---- */
    uint8_t ck[16], cv[ST_CHUNK_REC_LEN + 16], both[256];
    size_t cl;
    st_chunk_key(ti.id, 0, ck);
    CHECK(raw_get(path, "chunks", ck, 16, cv, sizeof cv, &cl) == 0);
    memcpy(both, ck, 16);
    memcpy(both + 16, cv, cl);
    mutate_fuzz(both, 16 + cl, 5000);
    memcpy(both, sk, 4);
    memcpy(both + 4, save, sizeof save);
    mutate_fuzz(both, 4 + sizeof save, 5000);
    mutate_fuzz(rec, rl, 5000);
    mutate_fuzz(dirs_save, dl, 3000);
    free(buf);
    free(f);
    return vt_test_done("test_store_corrupt");
}
