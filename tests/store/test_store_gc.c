/* Multi-shard stores: a small shard cap and two extra data directories spread shards over all
 * directories; replacing and removing tensors leaves garbage that gc reclaims (live data intact,
 * fewer bytes on disk, verify clean); an aborted writer leaves nothing behind; orphan shard files
 * are removed by gc. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "store_testutil.h"

static uint64_t dir_bytes(const char *dir) {
    char cmd[8600];
    snprintf(cmd, sizeof cmd, "cat %s/shard-*.vts 2>/dev/null | wc -c", dir);
    FILE *f = popen(cmd, "r");
    unsigned long long n = 0;
    if (f) {
        if (fscanf(f, "%llu", &n) != 1) n = 0;
        pclose(f);
    }
    return n;
}

static void check_gen(vt_store *s, const char *name, uint32_t gen) {
    uint32_t g = 0;
    int rc = tu_check_gen(s, name, &g);
    CHECKF(rc == 0 && g == gen, "%s: rc %d (%s) gen %u expected %u", name, rc, vt_store_errmsg(s),
           g, gen);
}

int main(void) {
    vt_test_seed();
    char dir[4096], path[4200], d1[4200], d2[4200];
    vt_test_tmpdir("test_store_gc", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/s.vts", dir);
    snprintf(d1, sizeof d1, "%s/nvme1", dir);
    snprintf(d2, sizeof d2, "%s/nvme2", dir);
    const char *dd[] = {d1, d2};
    vt_store_options o = {0};
    o.data_dirs = dd;
    o.n_data_dirs = 2;
    o.shard_cap_bytes = 96 << 10;
    o.chunk_target_bytes = 16 << 10;
    vt_store *s;
    CHECK_RC(vt_store_open(path, VT_STORE_RDWR | VT_STORE_CREATE, &o, &s));
    if (!s) return vt_test_done("test_store_gc");

    /* ---- many shards over three directories ---- */
    vt_store_writer *w;
    const int NT = 8;
    uint64_t rows[8], cols[8];
    char name[8][32];
    CHECK_RC(vt_store_writer_begin(s, &w));
    for (int i = 0; i < NT; i++) {
        snprintf(name[i], sizeof name[i], "t%d", i);
        /* at least 40 KiB each: 8 of them cannot fit in fewer than 4 shards of 96 KiB */
        rows[i] = 40 + vt_rand_u64() % 40;
        cols[i] = 256 + vt_rand_u64() % 512;
        CHECK_RC(tu_put_gen(w, name[i], 1, rows[i], cols[i], 0));
    }
    CHECK_RC(vt_store_writer_commit(w));
    vt_store_totals t;
    CHECK_RC(vt_store_get_totals(s, &t));
    CHECK(t.tensors == (uint64_t)NT && t.shards >= 3 && t.garbage_bytes == 0 &&
          t.orphan_files == 0);
    CHECK(t.tensors_by_format[VT_FMT_COUNT] == (uint64_t)NT);
    int per_dir[3] = {0, 0, 0};
    for (uint32_t id = 1; id < 1000; id++) {
        char p[4400];
        if (vt_store_shard_path(s, id, p, sizeof p)) continue;
        per_dir[strstr(p, "/nvme1/") ? 1 : strstr(p, "/nvme2/") ? 2 : 0]++;
        struct stat st;
        CHECK(stat(p, &st) == 0 && (uint64_t)st.st_size <= o.shard_cap_bytes + 4096);
    }
    CHECKF(per_dir[0] > 0 && per_dir[1] > 0 && per_dir[2] > 0, "shards per dir %d %d %d",
           per_dir[0], per_dir[1], per_dir[2]);
    for (int i = 0; i < NT; i++) check_gen(s, name[i], 1);

    /* ---- reopen without options: the data dirs are remembered ---- */
    vt_store_close(s);
    CHECK_RC(vt_store_open(path, VT_STORE_RDWR, NULL, &s));
    if (!s) return vt_test_done("test_store_gc");
    for (int i = 0; i < NT; i++) check_gen(s, name[i], 1);

    /* ---- abort leaves nothing ---- */
    vt_store_totals before;
    CHECK_RC(vt_store_get_totals(s, &before));
    CHECK_RC(vt_store_writer_begin(s, &w));
    CHECK_RC(tu_put_gen(w, "aborted", 1, 100, 300, 0));
    CHECK_RC(tu_put_gen(w, "t0", 9, rows[0], cols[0], 0));
    vt_store_writer_abort(w);
    vt_tensor_info ti;
    CHECK(vt_store_stat(s, "aborted", &ti) == VT_ENOTFOUND);
    check_gen(s, "t0", 1);
    CHECK_RC(vt_store_get_totals(s, &t));
    CHECK(t.shards == before.shards && t.orphan_files == 0 && t.garbage_bytes == 0);

    /* ---- replace half, remove two: garbage appears ---- */
    CHECK_RC(vt_store_writer_begin(s, &w));
    for (int i = 0; i < NT; i += 2) CHECK_RC(tu_put_gen(w, name[i], 2, rows[i], cols[i], 0));
    CHECK_RC(vt_store_writer_commit(w));
    uint64_t removed = 0;
    CHECK_RC(vt_store_remove(s, "t[13]", &removed));
    CHECK(removed == 2);
    CHECK(vt_store_stat(s, "t1", &ti) == VT_ENOTFOUND);
    CHECK_RC(vt_store_get_totals(s, &t));
    CHECK(t.tensors == (uint64_t)NT - 2 && t.garbage_bytes > 0);
    /* an orphan file, as a crashed writer would leave */
    char orphan[4400];
    snprintf(orphan, sizeof orphan, "%s/data/shard-%06u.vts", path, 900000u);
    FILE *fo = fopen(orphan, "w");
    CHECK(fo != NULL);
    if (fo) {
        fputs("garbage", fo);
        fclose(fo);
    }
    CHECK_RC(vt_store_get_totals(s, &t));
    CHECK(t.orphan_files == 1);
    uint64_t disk_before = dir_bytes(d1) + dir_bytes(d2);
    char d0[4300];
    snprintf(d0, sizeof d0, "%s/data", path);
    disk_before += dir_bytes(d0);
    CHECK(disk_before > 0);

    vt_store_gc_stats gs;
    CHECK_RC(vt_store_gc(s, &gs));
    CHECK(gs.files_removed >= 1 && gs.bytes_after < gs.bytes_before);
    CHECK(access(orphan, F_OK) != 0);
    CHECK_RC(vt_store_get_totals(s, &t));
    CHECKF(t.garbage_bytes == 0 && t.orphan_files == 0, "garbage %llu orphans %llu",
           (unsigned long long)t.garbage_bytes, (unsigned long long)t.orphan_files);
    for (int i = 0; i < NT; i++)
        if (i != 1 && i != 3) check_gen(s, name[i], i % 2 == 0 ? 2 : 1);
    vt_verify_report rep;
    CHECK_RC(vt_store_verify(s, NULL, NULL, &rep));
    CHECK(rep.problems == 0 && rep.tensors == (uint64_t)NT - 2);
    /* a second gc has nothing to do */
    CHECK_RC(vt_store_gc(s, &gs));
    CHECK(gs.chunks_moved == 0 && gs.files_removed == 0 && gs.bytes_after == gs.bytes_before);

    /* ---- gc is refused while a writer holds the lock ---- */
    CHECK_RC(vt_store_writer_begin(s, &w));
    CHECK(vt_store_gc(s, &gs) == -EBUSY);
    vt_store_writer_abort(w);

    /* ---- remove everything; gc leaves no shard ---- */
    CHECK_RC(vt_store_remove(s, "*", &removed));
    CHECK(removed == (uint64_t)NT - 2);
    CHECK_RC(vt_store_gc(s, &gs));
    CHECK_RC(vt_store_get_totals(s, &t));
    CHECK(t.tensors == 0 && t.shards == 0 && t.garbage_bytes == 0);
    CHECK(tu_count_files(d0, "shard-*") == 0 && tu_count_files(d1, "vts-*/shard-*") == 0);
    vt_store_close(s);
    return vt_test_done("test_store_gc");
}
