/* Id counters: a writer refuses an index whose vt.next_shard_id or vt.next_tensor_id is not above
 * the largest id in use (a tensor without chunks included), is the last id, or has the wrong
 * length, with a message naming the counter, its value and the largest id, and changes
 * nothing; verify reports the same counters; a shard file already bearing a new id is never
 * overwritten (the writer takes the next id and gc removes the leftover). */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "store/store_internal.h"
#include "store_rawidx.h"
#include "store_testutil.h"

static char path[4200];

/* cksum of every shard file of the store (names and bytes). */
static unsigned long long shards_sum(void) {
    char cmd[8600];
    snprintf(cmd, sizeof cmd, "cd %s/data && ls shard-*.vts && cat shard-*.vts | cksum", path);
    FILE *f = popen(cmd, "r");
    unsigned long long sum = 0;
    char line[256];
    while (f && fgets(line, sizeof line, f)) sum = sum * 31 + tu_name_hash(line);
    if (f) pclose(f);
    return sum;
}

static void put_counter(const char *key, uint64_t v, size_t len) {
    uint8_t b[8];
    if (len == 8)
        st_put_le64(b, v);
    else
        st_put_le32(b, (uint32_t)v);
    CHECK(raw_put(path, "meta", key, strlen(key), b, len) == 0);
}

/* Open, try a writer; expect @p want from writer_begin and a message holding each of @p words.
 * If the writer is (wrongly) allowed, write and commit a tensor, as an import would. */
static void expect_refused(int want, const char *w1, const char *w2, const char *w3) {
    vt_store *s;
    CHECK_RC(vt_store_open(path, VT_STORE_RDWR, NULL, &s));
    if (!s) return;
    unsigned long long before = shards_sum();
    vt_store_writer *w = NULL;
    int rc = vt_store_writer_begin(s, &w);
    printf("  writer_begin: %d %s\n", rc, vt_store_errmsg(s));
    CHECKF(rc == want, "writer_begin returned %d, expected %d", rc, want);
    const char *m = vt_store_errmsg(s);
    CHECKF(strstr(m, w1) && strstr(m, w2) && strstr(m, w3), "message lacks '%s' '%s' '%s'", w1, w2,
           w3);
    if (rc == 0) {
        CHECK_RC(tu_put_gen(w, "new", 9, 64, 200, 0));
        CHECK_RC(vt_store_writer_commit(w));
    }
    CHECK(shards_sum() == before);
    CHECK(vt_store_verify(s, NULL, NULL, NULL) == VT_ECORRUPT);
    for (int i = 0; i < 3; i++) {
        char n[8];
        snprintf(n, sizeof n, "t%d", i);
        uint32_t gen = 0;
        CHECKF(tu_check_gen(s, n, &gen) == 0 && gen == 1, "%s: %s", n, vt_store_errmsg(s));
    }
    vt_store_close(s);
}

int main(void) {
    vt_test_seed();
    char dir[4096];
    vt_test_tmpdir("test_store_counters", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/s.vts", dir);
    vt_store *s = tu_three_shards(path);
    if (!s) return vt_test_done("test_store_counters");
    /* then an empty tensor (id 4, no chunk record carries its id) */
    vt_store_writer *w;
    CHECK_RC(vt_store_writer_begin(s, &w));
    CHECK_RC(tu_put_gen(w, "empty", 1, 0, 16, 0));
    CHECK_RC(vt_store_writer_commit(w));
    vt_tensor_info ti;
    CHECK_RC(vt_store_stat(s, "empty", &ti));
    CHECK(ti.id == 4 && ti.n_chunks == 0);
    CHECK_RC(vt_store_verify(s, NULL, NULL, NULL));
    vt_store_close(s);

    /* stale shard counter: shards 1..3 are live */
    put_counter(ST_KEY_NEXT_SHARD, 1, 4);
    expect_refused(VT_ECORRUPT, ST_KEY_NEXT_SHARD, "is 1", "shard id 3");
    put_counter(ST_KEY_NEXT_SHARD, 3, 4);
    expect_refused(VT_ECORRUPT, ST_KEY_NEXT_SHARD, "is 3", "shard id 3");
    put_counter(ST_KEY_NEXT_SHARD, UINT32_MAX - 1, 4);
    expect_refused(VT_ECORRUPT, ST_KEY_NEXT_SHARD, "4294967294", "last usable");
    put_counter(ST_KEY_NEXT_SHARD, 4, 8); /* right value, wrong length */
    expect_refused(VT_ECORRUPT, ST_KEY_NEXT_SHARD, "8 bytes", "not 4");
    put_counter(ST_KEY_NEXT_SHARD, 4, 4);

    /* stale tensor counter: below a chunked tensor, at the empty tensor's id, the last id */
    put_counter(ST_KEY_NEXT_TENSOR, 2, 8);
    expect_refused(VT_ECORRUPT, ST_KEY_NEXT_TENSOR, "is 2", "tensor id 4");
    put_counter(ST_KEY_NEXT_TENSOR, 4, 8);
    expect_refused(VT_ECORRUPT, ST_KEY_NEXT_TENSOR, "is 4", "tensor id 4");
    put_counter(ST_KEY_NEXT_TENSOR, UINT64_MAX, 8);
    expect_refused(VT_ECORRUPT, ST_KEY_NEXT_TENSOR, "18446744073709551615", "last usable");
    put_counter(ST_KEY_NEXT_TENSOR, 5, 8);

    /* a file already named like the next shard is left alone */
    char leftover[4400];
    snprintf(leftover, sizeof leftover, "%s/data/shard-%06u.vts", path, 4u);
    FILE *f = fopen(leftover, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("not the writer's to overwrite", f);
        fclose(f);
    }
    CHECK_RC(vt_store_open(path, VT_STORE_RDWR, NULL, &s));
    if (!s) return vt_test_done("test_store_counters");
    CHECK_RC(vt_store_verify(s, NULL, NULL, NULL));
    CHECK_RC(vt_store_writer_begin(s, &w));
    CHECK_RC(tu_put_gen(w, "t3", 1, 64, 200, 0));
    CHECK_RC(vt_store_writer_commit(w));
    char buf[64] = {0};
    f = fopen(leftover, "r");
    CHECK(f && fgets(buf, sizeof buf, f) && strcmp(buf, "not the writer's to overwrite") == 0);
    if (f) fclose(f);
    vt_chunk_info ci;
    CHECK_RC(vt_store_chunk_info(s, "t3", 0, &ci));
    CHECKF(ci.shard_id == 5, "t3 in shard %u", ci.shard_id);
    for (int i = 0; i < 4; i++) {
        char n[8];
        snprintf(n, sizeof n, "t%d", i);
        CHECK(tu_check_gen(s, n, NULL) == 0);
    }
    CHECK_RC(vt_store_verify(s, NULL, NULL, NULL));
    vt_store_gc_stats gs;
    CHECK_RC(vt_store_gc(s, &gs));
    CHECK(gs.files_removed == 1 && access(leftover, F_OK) != 0);
    CHECK_RC(vt_store_verify(s, NULL, NULL, NULL));
    vt_store_close(s);
    return vt_test_done("test_store_counters");
}
