/* vt_store_discard_new: a store this handle created goes again while it holds nothing, and
 * nothing else is ever removed.
 *  - created at a missing path: removed (1), the path is gone, the handle can only be closed
 *    (a writer, gc and upgrade fail with VT_EUSAGE);
 *  - created in an empty directory: emptied (1), the directory stays;
 *  - a failed writer's shard in a data directory this open made: both go;
 *  - kept (0, nothing touched): a store that existed before this open, one holding a
 *    committed tensor or only a metadata key, and one whose writer lock another handle holds;
 *  - a writer of this handle still open: VT_EUSAGE, kept. */
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

#include "store_testutil.h"

static int exists(const char *p) {
    struct stat st;
    return lstat(p, &st) == 0;
}

static int entries(const char *p) { /* entries of a directory, -1 if it cannot be read */
    DIR *d = opendir(p);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static vt_store *create(const char *p, const vt_store_options *o) {
    vt_store *s = NULL;
    CHECK_RC(vt_store_open(p, VT_STORE_RDWR | VT_STORE_CREATE, o, &s));
    return s;
}

int main(void) {
    vt_test_seed();
    char dir[4096], p[4200], dd[4200];
    vt_test_tmpdir("test_store_discard", dir, sizeof dir);
    vt_store *s, *s2;
    vt_store_writer *w, *w2;

    /* ---- created at a missing path ---- */
    snprintf(p, sizeof p, "%s/new.vts", dir);
    if (!(s = create(p, NULL))) return vt_test_done("test_store_discard");
    CHECK(exists(p));
    CHECK(vt_store_discard_new(s) == 1);
    CHECKF(!exists(p), "%s left behind", p);
    CHECK(vt_store_writer_begin(s, &w) == VT_EUSAGE);
    CHECK(strstr(vt_last_error(), "discarded") != NULL);
    vt_store_gc_stats gs;
    CHECK(vt_store_gc(s, &gs) == VT_EUSAGE);
    vt_store_upgrade_stats us;
    CHECK(vt_store_upgrade(s, &us) == VT_EUSAGE);
    CHECK(vt_store_discard_new(s) == 0); /* once */
    vt_store_close(s);
    CHECK(!exists(p));

    /* ---- created in an empty directory: emptied, kept ---- */
    snprintf(p, sizeof p, "%s/empty.vts", dir);
    CHECK(mkdir(p, 0755) == 0);
    if (!(s = create(p, NULL))) return vt_test_done("test_store_discard");
    CHECK(entries(p) > 0);
    CHECK(vt_store_discard_new(s) == 1);
    vt_store_close(s);
    CHECKF(entries(p) == 0, "%s: %d entries left", p, entries(p));

    /* ---- a failed writer's shard in a data directory this open made ---- */
    snprintf(p, sizeof p, "%s/dd.vts", dir);
    snprintf(dd, sizeof dd, "%s/nvme1", dir);
    const char *dds[] = {dd};
    vt_store_options o = {.data_dirs = dds, .n_data_dirs = 1, .no_root_shards = 1};
    if (!(s = create(p, &o))) return vt_test_done("test_store_discard");
    CHECK_RC(vt_store_writer_begin(s, &w));
    CHECK_RC(tu_put_gen(w, "t", 1, 64, 100, 0));
    vt_store_writer_abort(w);
    CHECK(vt_store_discard_new(s) == 1);
    vt_store_close(s);
    CHECKF(!exists(p) && !exists(dd), "%s or %s left behind", p, dd);

    /* ---- kept: a store that existed before this open ---- */
    snprintf(p, sizeof p, "%s/old.vts", dir);
    if (!(s = create(p, NULL))) return vt_test_done("test_store_discard");
    vt_store_close(s);
    if (!(s = create(p, NULL))) return vt_test_done("test_store_discard");
    CHECK(vt_store_discard_new(s) == 0);
    CHECK_RC(vt_store_writer_begin(s, &w)); /* still writable */
    vt_store_writer_abort(w);
    vt_store_close(s);
    CHECK(exists(p));

    /* ---- kept: a committed tensor; only a metadata key ---- */
    for (int meta = 0; meta < 2; meta++) {
        snprintf(p, sizeof p, "%s/full%d.vts", dir, meta);
        if (!(s = create(p, NULL))) return vt_test_done("test_store_discard");
        CHECK_RC(vt_store_writer_begin(s, &w));
        if (meta)
            CHECK_RC(vt_writer_put_meta(w, "k", "v", 1));
        else
            CHECK_RC(tu_put_gen(w, "t", 1, 64, 100, 0));
        CHECK_RC(vt_store_writer_commit(w));
        CHECK(vt_store_discard_new(s) == 0);
        vt_store_close(s);
        CHECK_RC(vt_store_open(p, VT_STORE_RDONLY, NULL, &s));
        if (!meta) CHECK(tu_check_gen(s, "t", NULL) == 0);
        vt_store_close(s);
    }

    /* ---- kept: another handle is writing; this handle's own writer open ---- */
    snprintf(p, sizeof p, "%s/busy.vts", dir);
    if (!(s = create(p, NULL))) return vt_test_done("test_store_discard");
    CHECK_RC(vt_store_open(p, VT_STORE_RDWR, NULL, &s2));
    CHECK_RC(vt_store_writer_begin(s2, &w2));
    CHECK(vt_store_discard_new(s) == 0);
    CHECK(exists(p));
    vt_store_writer_abort(w2);
    vt_store_close(s2);
    CHECK_RC(vt_store_writer_begin(s, &w));
    CHECK(vt_store_discard_new(s) == VT_EUSAGE);
    vt_store_writer_abort(w);
    CHECK(exists(p));
    CHECK(vt_store_discard_new(s) == 1); /* nothing was committed */
    vt_store_close(s);
    CHECK(!exists(p));
    return vt_test_done("test_store_discard");
}
