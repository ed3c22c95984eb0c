/* Data directories named at a read-write open are recorded by the handle's next commit, in the
 * commit's own transaction: a writer that aborts (a failed import) or a handle that commits
 * nothing leaves vt.data_dirs as it was and removes the directories the open created; "/" is
 * refused at open with a message naming it, and the store stays openable; a handle whose list
 * another process changed meanwhile refuses to write (-EBUSY) instead of misplacing shards; a
 * committed directory is remembered by later opens. */
#include <errno.h>
#include <glob.h>
#include <sys/stat.h>

#include "store/store_internal.h"
#include "store_rawidx.h"
#include "store_testutil.h"

static char path[4200];

static size_t dirs_rec(uint8_t *out, size_t cap) {
    size_t len = 0;
    CHECK(raw_get(path, "meta", ST_KEY_DIRS, strlen(ST_KEY_DIRS), out, cap, &len) == 0);
    return len;
}

/* Number of vts-<store id> shard directories in @p dd. */
static size_t n_vts(const char *dd) {
    char pat[4300];
    snprintf(pat, sizeof pat, "%s/vts-*", dd);
    glob_t g;
    size_t n = glob(pat, GLOB_ONLYDIR, NULL, &g) == 0 ? g.gl_pathc : 0;
    if (n) globfree(&g);
    return n;
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int main(void) {
    vt_test_seed();
    char dir[4096], d1[4200], d2[4200], d3[4200];
    vt_test_tmpdir("test_store_datadir", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/s.vts", dir);
    snprintf(d1, sizeof d1, "%s/new1", dir); /* does not exist yet */
    snprintf(d2, sizeof d2, "%s/have2", dir);
    snprintf(d3, sizeof d3, "%s/other3", dir);
    CHECK(mkdir(d2, 0755) == 0);
    vt_store *s;
    CHECK_RC(vt_store_open(path, VT_STORE_RDWR | VT_STORE_CREATE, NULL, &s));
    if (!s) return vt_test_done("test_store_datadir");
    vt_store_writer *w;
    CHECK_RC(vt_store_writer_begin(s, &w));
    CHECK_RC(tu_put_gen(w, "t0", 1, 32, 100, 0));
    CHECK_RC(vt_store_writer_commit(w));
    vt_store_close(s);
    uint8_t base[512], now[512];
    size_t base_len = dirs_rec(base, sizeof base);
    CHECK(base_len == 7);

    /* ---- a failed import: the writer aborts ---- */
    const char *dd1[] = {d1};
    vt_store_options o = {0};
    o.data_dirs = dd1;
    o.n_data_dirs = 1;
    o.no_root_shards = 1; /* the aborted shard goes to the new directory */
    CHECK_RC(vt_store_open(path, VT_STORE_RDWR, &o, &s));
    if (!s) return vt_test_done("test_store_datadir");
    CHECK(is_dir(d1));
    CHECK_RC(vt_store_writer_begin(s, &w));
    CHECK_RC(tu_put_gen(w, "t1", 1, 32, 100, 0));
    vt_store_writer_abort(w);
    vt_store_close(s);
    CHECK(dirs_rec(now, sizeof now) == base_len && memcmp(now, base, base_len) == 0);
    CHECKF(!is_dir(d1), "%s was left behind", d1);

    /* ---- an open that commits nothing; the named directory existed before ---- */
    const char *dd2[] = {d2};
    o.data_dirs = dd2;
    o.no_root_shards = 0;
    CHECK_RC(vt_store_open(path, VT_STORE_RDWR, &o, &s));
    if (!s) return vt_test_done("test_store_datadir");
    CHECK(n_vts(d2) == 1);
    vt_store_close(s);
    CHECK(dirs_rec(now, sizeof now) == base_len && memcmp(now, base, base_len) == 0);
    CHECK(is_dir(d2) && n_vts(d2) == 0);

    /* ---- "/" is refused at open and the store stays usable ---- */
    const char *root[] = {"/"};
    o.data_dirs = root;
    s = NULL;
    int rc = vt_store_open(path, VT_STORE_RDWR, &o, &s);
    printf("  root: %d %s\n", rc, vt_last_error());
    CHECK(rc == -EINVAL && s == NULL && strstr(vt_last_error(), "data directory /"));
    if (s) { /* the open wrongly took it: undo what it made in / */
        char p[4400];
        if (!st_dir_path(s, s->dirs.n - 1, p, sizeof p)) rmdir(p);
        vt_store_close(s);
    }
    CHECK(dirs_rec(now, sizeof now) == base_len && memcmp(now, base, base_len) == 0);
    CHECK_RC(vt_store_open(path, VT_STORE_RDONLY, NULL, &s));
    if (!s) return vt_test_done("test_store_datadir");
    CHECK(tu_check_gen(s, "t0", NULL) == 0);
    vt_store_close(s);

    /* ---- the list changed under a handle: it refuses to write ---- */
    const char *dd3[] = {d3};
    vt_store *a, *b;
    o.data_dirs = dd1;
    o.no_root_shards = 1;
    CHECK_RC(vt_store_open(path, VT_STORE_RDWR, &o, &a));
    o.data_dirs = dd3;
    CHECK_RC(vt_store_open(path, VT_STORE_RDWR, &o, &b));
    if (!a || !b) return vt_test_done("test_store_datadir");
    CHECK_RC(vt_store_writer_begin(b, &w));
    CHECK_RC(tu_put_gen(w, "t3", 1, 32, 100, 0));
    CHECK_RC(vt_store_writer_commit(w)); /* records other3 as directory 1 */
    vt_store_close(b);
    rc = vt_store_writer_begin(a, &w);
    printf("  changed: %d %s\n", rc, vt_store_errmsg(a));
    CHECK(rc == -EBUSY && strstr(vt_store_errmsg(a), "changed"));
    if (rc == 0) {
        CHECK_RC(tu_put_gen(w, "t1", 1, 32, 100, 0));
        CHECK_RC(vt_store_writer_commit(w));
    }
    vt_store_close(a);
    CHECKF(!is_dir(d1), "%s was left behind", d1);

    /* ---- committed directories are remembered ---- */
    CHECK_RC(vt_store_open(path, VT_STORE_RDONLY, NULL, &s));
    if (!s) return vt_test_done("test_store_datadir");
    CHECK(s->dirs.n == 2 && strstr(s->dirs.path[1], "/other3"));
    vt_chunk_info ci;
    char sp[4400];
    CHECK_RC(vt_store_chunk_info(s, "t3", 0, &ci));
    CHECK_RC(vt_store_shard_path(s, ci.shard_id, sp, sizeof sp));
    CHECK(strstr(sp, "/other3/vts-") != NULL);
    CHECK(tu_check_gen(s, "t0", NULL) == 0 && tu_check_gen(s, "t3", NULL) == 0);
    CHECK_RC(vt_store_verify(s, NULL, NULL, NULL));
    vt_store_close(s);
    return vt_test_done("test_store_datadir");
}
