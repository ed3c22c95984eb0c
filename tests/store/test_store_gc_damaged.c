/* gc on a damaged index: when a shard record is missing while chunks point into that shard,
 * when a shard's recorded size is smaller than the chunks it holds, when a chunk names a shard
 * with no record, when a chunk record does not decode, or when the shard counter is stale, gc
 * refuses with VT_ECORRUPT ("refusing to run on a damaged index", naming the first problem) and
 * deletes, cuts or rewrites nothing; once the index is mended gc runs as usual. */
#include <errno.h>
#include <sys/stat.h>

#include "store/store_internal.h"
#include "store_rawidx.h"
#include "store_testutil.h"

static char path[4200];

/* Names, sizes and bytes of every file under data/ and index/data.mdb, hashed. */
static uint64_t files_sum(void) {
    char cmd[8600];
    snprintf(cmd, sizeof cmd,
             "cd %s && ls -l data && cat data/shard-*.vts | cksum && cksum index/data.mdb", path);
    FILE *f = popen(cmd, "r");
    uint64_t sum = 0;
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "total", 5)) sum = sum * 31 + tu_name_hash(line);
    }
    if (f) pclose(f);
    return sum;
}

/* gc must refuse, name @p what, and leave every file as it was. */
static void gc_refuses(const char *what) {
    uint64_t before = files_sum();
    vt_store *s;
    CHECK_RC(vt_store_open(path, VT_STORE_RDWR, NULL, &s));
    if (!s) return;
    vt_store_gc_stats gs;
    int rc = vt_store_gc(s, &gs);
    printf("  gc: %d %s\n", rc, vt_store_errmsg(s));
    CHECKF(rc == VT_ECORRUPT, "gc returned %d", rc);
    CHECK(strstr(vt_store_errmsg(s), "refusing to run on a damaged index") &&
          strstr(vt_store_errmsg(s), what) && strstr(vt_store_errmsg(s), "verify"));
    vt_store_close(s);
    CHECK(files_sum() == before);
}

int main(void) {
    vt_test_seed();
    char dir[4096];
    vt_test_tmpdir("test_store_gc_damaged", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/s.vts", dir);
    vt_store *s = tu_three_shards(path);
    if (!s) return vt_test_done("test_store_gc_damaged");
    /* t0 in shard 1, t1 in shard 2, t2 in shard 3: removing t2 gives gc a victim, so every
     * damaged case below would otherwise delete, cut or compact */
    vt_tensor_info t1;
    vt_chunk_info c0, clast;
    CHECK_RC(vt_store_stat(s, "t1", &t1));
    CHECK_RC(vt_store_chunk_info(s, "t1", 0, &c0));
    CHECK_RC(vt_store_chunk_info(s, "t1", t1.n_chunks - 1, &clast));
    CHECK(c0.shard_id == 2 && clast.shard_id == 2 && t1.n_chunks >= 3);
    CHECK_RC(vt_store_remove(s, "t2", NULL));
    vt_store_close(s);

    uint8_t sk[4], save[ST_SHARD_REC_LEN], rec[ST_SHARD_REC_LEN];
    size_t len = 0;
    st_put_be32(sk, 2);
    CHECK(raw_get(path, "shards", sk, 4, save, sizeof save, &len) == 0 && len == sizeof save);

    /* (a) shard 2's record is gone: its file looks like an orphan */
    CHECK(raw_put(path, "shards", sk, 4, NULL, 0) == 0);
    gc_refuses("shard 2, which has no record");
    CHECK(raw_put(path, "shards", sk, 4, save, sizeof save) == 0);

    /* (b) shard 2's recorded size ends before its last chunk: gc would cut the file there */
    memcpy(rec, save, sizeof rec);
    st_put_le64(rec + 8, clast.offset);
    CHECK(raw_put(path, "shards", sk, 4, rec, sizeof rec) == 0);
    gc_refuses("reaches past the shard's recorded size");
    CHECK(raw_put(path, "shards", sk, 4, save, sizeof save) == 0);

    /* (c) a chunk names shard 99, which has no record */
    uint8_t ck[16], cv[ST_CHUNK_REC_LEN], cbad[ST_CHUNK_REC_LEN];
    st_chunk_key(t1.id, 1, ck);
    CHECK(raw_get(path, "chunks", ck, 16, cv, sizeof cv, &len) == 0 && len == sizeof cv);
    memcpy(cbad, cv, sizeof cbad);
    st_put_le32(cbad + 4, 99);
    CHECK(raw_put(path, "chunks", ck, 16, cbad, sizeof cbad) == 0);
    gc_refuses("shard 99");

    /* (d) a chunk record that does not decode */
    memcpy(cbad, cv, sizeof cbad);
    cbad[0] = 7; /* record version */
    CHECK(raw_put(path, "chunks", ck, 16, cbad, sizeof cbad) == 0);
    gc_refuses("record version 7");
    CHECK(raw_put(path, "chunks", ck, 16, cv, sizeof cv) == 0);

    /* (e) a stale shard counter: gc's new shards would reuse live ids */
    uint8_t v4[4];
    st_put_le32(v4, 2);
    CHECK(raw_put(path, "meta", ST_KEY_NEXT_SHARD, strlen(ST_KEY_NEXT_SHARD), v4, 4) == 0);
    gc_refuses(ST_KEY_NEXT_SHARD);
    st_put_le32(v4, 4);
    CHECK(raw_put(path, "meta", ST_KEY_NEXT_SHARD, strlen(ST_KEY_NEXT_SHARD), v4, 4) == 0);

    /* mended: gc compacts shard 3 away and every tensor reads back */
    CHECK_RC(vt_store_open(path, VT_STORE_RDWR, NULL, &s));
    if (!s) return vt_test_done("test_store_gc_damaged");
    CHECK_RC(vt_store_verify(s, NULL, NULL, NULL));
    vt_store_gc_stats gs;
    CHECK_RC(vt_store_gc(s, &gs));
    CHECK(gs.files_removed == 1);
    CHECK(tu_check_gen(s, "t0", NULL) == 0 && tu_check_gen(s, "t1", NULL) == 0);
    CHECK_RC(vt_store_verify(s, NULL, NULL, NULL));
    vt_store_close(s);
    return vt_test_done("test_store_gc_damaged");
}
