/* Disk full: an import that runs out of space fails cleanly (a negative code and a message
 * naming the file), the store is left exactly as it was and verifies clean, gc reclaims what the
 * failed import wrote, and after space is freed an import succeeds.
 *   1. RLIMIT_FSIZE (any user): shard files may not grow past a limit (SIGXFSZ ignored, so
 *      writes fail with EFBIG).
 *   2. a 1 MiB tmpfs mounted in a private mount namespace (needs CAP_SYS_ADMIN; skipped
 *      otherwise, reported): writes fail with ENOSPC, including LMDB's. */
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include "rel_util.h"

static char dir[2048];

static int import(const char *store, const char *src, int create) {
    vt_store *s;
    vt_store_options o = {.chunk_target_bytes = 32 << 10, .map_size = 256 << 10};
    int rc = vt_store_open(store, VT_STORE_RDWR | (create ? VT_STORE_CREATE : 0), &o, &s);
    if (rc) return rc;
    vt_import_options io;
    vt_import_options_init(&io);
    rc = vt_import_file(s, src, &io, NULL);
    if (rc) fprintf(stderr, "  import %s: %s: %s\n", src, vt_strerror(rc), vt_last_error());
    vt_store_close(s);
    return rc;
}

static int gc_totals(const char *store, uint64_t *garbage) {
    vt_store *s;
    int rc = vt_store_open(store, VT_STORE_RDWR, NULL, &s);
    if (rc) return rc;
    vt_store_totals t;
    rc = vt_store_gc(s, NULL);
    if (!rc) rc = vt_store_get_totals(s, &t);
    if (!rc) *garbage = t.garbage_bytes + t.orphan_files;
    vt_store_close(s);
    return rc;
}

/* The scenario, in the calling process: base import, a failing import, checks, gc, retry.
 * @p limit_fn imposes the limit and @p unlimit_fn lifts it (may be NULL). Returns failures. */
static int scenario(const char *what, const char *store, const char *src_a, const char *src_b,
                    const char *src_c, void (*limit_fn)(void), void (*unlimit_fn)(void)) {
    int f0 = vt_test_failures;
    CHECK_RC(import(store, src_a, 1));
    rel_snap before, after;
    CHECK_RC(rel_open_check(store, &before, what));
    if (limit_fn) limit_fn();
    int rc = import(store, src_b, 0);
    CHECKF(rc < 0, "%s: import larger than the space left returned %d", what, rc);
    CHECKF(rc == -ENOSPC || rc == -EFBIG || rc == VT_ELMDB, "%s: unexpected error %d %s", what, rc,
           vt_strerror(rc));
    CHECKF(vt_last_error()[0], "%s: no message", what);
    printf("%s: import failed with %s: %s\n", what, vt_strerror(rc), vt_last_error());
    /* unchanged and clean, still under the limit */
    CHECK_RC(rel_open_check(store, &after, what));
    CHECKF(rel_snap_equal(&before, &after, what), "%s: store changed by a failed import", what);
    rel_snap_free(&after);
    uint64_t garbage = 1;
    CHECK_RC(gc_totals(store, &garbage));
    CHECKF(garbage == 0, "%s: gc left %llu garbage", what, (unsigned long long)garbage);
    /* a small import fits again (the failed import's bytes were reclaimed) */
    CHECKF(import(store, src_c, 0) == 0, "%s: small import after gc failed", what);
    if (unlimit_fn) {
        unlimit_fn();
        CHECKF(import(store, src_b, 0) == 0, "%s: import after lifting the limit", what);
    }
    rel_snap_free(&before);
    return vt_test_failures - f0;
}

static uint64_t fsize_limit;
static void limit_fsize(void) {
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {fsize_limit, RLIM_INFINITY};
    CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0);
}
static void unlimit_fsize(void) {
    struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
    CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    vt_test_seed();
    vt_test_tmpdir("rel_diskfull", dir, sizeof dir);
    char src_a[2100], src_b[2100], src_c[2100], store[2200];
    snprintf(src_a, sizeof src_a, "%s/a.safetensors", dir);
    snprintf(src_b, sizeof src_b, "%s/b.safetensors", dir);
    snprintf(src_c, sizeof src_c, "%s/c.safetensors", dir);
    CHECK_RC(rel_write_st(src_a, "a.", NULL, 2, 64, 512, 1)); /* 256 KiB */
    CHECK_RC(rel_write_st(src_b, "b.", NULL, 8, 64, 512, 2)); /* 1 MiB */
    CHECK_RC(rel_write_st(src_c, "c.", NULL, 1, 16, 512, 3)); /* 32 KiB */

    /* 1. RLIMIT_FSIZE in a child (the limit is per process) */
    snprintf(store, sizeof store, "%s/st-fsize", dir);
    fsize_limit = 640 << 10;
    pid_t p = fork();
    if (p == 0)
        _exit(scenario("RLIMIT_FSIZE", store, src_a, src_b, src_c, limit_fsize, unlimit_fsize) ? 1
                                                                                               : 0);
    int st;
    waitpid(p, &st, 0);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "RLIMIT_FSIZE scenario failed (status 0x%x)", st);

    /* 2. a 1 MiB tmpfs in a private mount namespace */
    char mnt[2100];
    snprintf(mnt, sizeof mnt, "%s/tmpfs", dir);
    mkdir(mnt, 0755);
    p = fork();
    if (p == 0) {
        if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
            mount("tmpfs", mnt, "tmpfs", 0, "size=1m")) {
            printf("tmpfs: skipped (%s: mount needs CAP_SYS_ADMIN)\n", strerror(errno));
            _exit(77);
        }
        snprintf(store, sizeof store, "%s/store", mnt);
        _exit(scenario("tmpfs 1 MiB", store, src_a, src_b, src_c, NULL, NULL) ? 1 : 0);
    }
    waitpid(p, &st, 0);
    CHECKF(WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 77),
           "tmpfs scenario failed (status 0x%x)", st);
    if (!vt_test_failures) rel_sh("rm -rf '%s'", dir);
    return vt_test_done("test_rel_diskfull");
}
