/* The index checksum (index/data.xxh, docs/FORMAT.md section 1.1): a damaged data.mdb is refused
 * at open and reported by verify before LMDB walks it, naming the file; a store without the
 * record, with a pending record or with a record older than the index (another LMDB writer)
 * opens; an index older than its record is refused; readers opening while a writer commits in
 * another process never see a false mismatch. */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <xxhash.h>

#include "store_testutil.h"

static char path[4200], mdb[4300], xxh[4300], saved[4300];

static int sh(const char *fmt, const char *a, const char *b) {
    char cmd[9000];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    return system(cmd);
}

static uint64_t fsize(const char *p) {
    struct stat st;
    return stat(p, &st) ? 0 : (uint64_t)st.st_size;
}

static void poke(const char *p, uint64_t off, const void *b, size_t n) {
    int fd = open(p, O_RDWR);
    CHECK(fd >= 0 && pwrite(fd, b, n, (off_t)off) == (ssize_t)n);
    if (fd >= 0) close(fd);
}

static void commit_gen(const char *name, uint32_t gen) {
    vt_store *s;
    CHECK_RC(vt_store_open(path, VT_STORE_RDWR, NULL, &s));
    if (!s) return;
    vt_store_writer *w;
    CHECK_RC(vt_store_writer_begin(s, &w));
    CHECK_RC(tu_put_gen(w, name, gen, 20, 64, 0));
    CHECK_RC(vt_store_writer_commit(w));
    vt_store_close(s);
}

/* open read-only: 0, or the error with its message checked to name the file */
static int open_rc(void) {
    vt_store *s;
    int rc = vt_store_open(path, VT_STORE_RDONLY, NULL, &s);
    if (rc == 0) {
        CHECKF(vt_store_verify(s, NULL, NULL, NULL) == 0, "verify: %s", vt_store_errmsg(s));
        vt_store_close(s);
    }
    return rc;
}

static void expect_refused(const char *what, const char *needle) {
    int rc = open_rc();
    CHECKF(rc == VT_ECORRUPT, "%s: open returned %d (%s)", what, rc, vt_strerror(rc));
    CHECKF(strstr(vt_last_error(), "index/data.mdb") && strstr(vt_last_error(), needle),
           "%s: message '%s'", what, vt_last_error());
}

typedef struct vctx {
    int n, named;
} vctx;
static void on_problem(void *ctx, const vt_verify_problem *p) {
    vctx *v = ctx;
    v->n++;
    v->named |= strstr(p->message, "index/data.mdb is damaged") != NULL;
}

int main(void) {
    vt_test_seed();
    char dir[4096];
    vt_test_tmpdir("test_store_idxsum", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/s.vts", dir);
    snprintf(mdb, sizeof mdb, "%s/index/data.mdb", path);
    snprintf(xxh, sizeof xxh, "%s/index/data.xxh", path);
    snprintf(saved, sizeof saved, "%s/saved.mdb", dir);
    vt_store *s;
    CHECK_RC(vt_store_open(path, VT_STORE_RDWR | VT_STORE_CREATE, NULL, &s));
    if (!s) return vt_test_done("test_store_idxsum");
    vt_store_close(s);
    commit_gen("a", 1);
    CHECK(fsize(xxh) == 64);
    CHECK_RC(open_rc());
    CHECK(sh("cp '%s' '%s'", mdb, saved) == 0);
    uint64_t pages = fsize(mdb) / 4096;
    CHECK(pages > 2);

    /* one flipped byte in a data page: refused at open */
    uint8_t b = 0x5a;
    poke(mdb, (2 + vt_rand_u64() % (pages - 2)) * 4096 + vt_rand_u64() % 4096, &b, 1);
    expect_refused("byte in a data page", "checksum mismatch");
    /* a garbage page anywhere, meta pages included: an error, never a crash */
    for (int i = 0; i < 8; i++) {
        uint8_t page[4096];
        for (int k = 0; k < 4096; k++) page[k] = (uint8_t)vt_rand_u64();
        CHECK(sh("cp '%s' '%s'", saved, mdb) == 0);
        poke(mdb, (i < 2 ? (uint64_t)i : vt_rand_u64() % pages) * 4096, page, 4096);
        int rc = open_rc();
        CHECKF(rc == VT_ECORRUPT || rc == VT_EFORMAT, "garbage page %d: open returned %d", i, rc);
    }
    /* truncated below the recorded size: refused */
    CHECK(sh("cp '%s' '%s'", saved, mdb) == 0);
    CHECK(truncate(mdb, (off_t)(fsize(mdb) - 4096)) == 0);
    CHECK(open_rc() != 0);
    CHECK(sh("cp '%s' '%s'", saved, mdb) == 0);
    CHECK_RC(open_rc());

    /* damage after the open: verify reports it (naming the file) without walking the index */
    CHECK_RC(vt_store_open(path, VT_STORE_RDONLY, NULL, &s));
    if (s) {
        b = 0xa5;
        poke(mdb, 2 * 4096 + 100, &b, 1);
        vctx v = {0, 0};
        CHECK(vt_store_verify(s, on_problem, &v, NULL) == VT_ECORRUPT);
        CHECKF(v.n == 1 && v.named, "verify: %d problem(s), named %d", v.n, v.named);
        vt_store_close(s);
    }
    CHECK(sh("cp '%s' '%s'", saved, mdb) == 0);

    /* no record (a store of an older vtstore): opens; the next commit writes it */
    CHECK(unlink(xxh) == 0);
    CHECK_RC(open_rc());
    commit_gen("b", 2);
    CHECK(fsize(xxh) == 64);
    CHECK_RC(open_rc());

    /* the index older than its record (an old copy restored): refused */
    CHECK(sh("cp '%s' '%s'", saved, mdb) == 0);
    expect_refused("older index", "older than");
    CHECK(unlink(xxh) == 0); /* what the message tells the person to do */
    CHECK_RC(open_rc());
    commit_gen("b", 3);

    /* a commit by another LMDB writer: record older than the index, accepted */
    {
        char ip[4300];
        snprintf(ip, sizeof ip, "%s/index", path);
        MDB_env *env;
        MDB_txn *txn;
        MDB_dbi dbi;
        CHECK(mdb_env_create(&env) == 0);
        mdb_env_set_maxdbs(env, 8);
        CHECK(mdb_env_open(env, ip, MDB_NOTLS, 0644) == 0);
        CHECK(mdb_txn_begin(env, NULL, 0, &txn) == 0);
        CHECK(mdb_dbi_open(txn, "meta", 0, &dbi) == 0);
        MDB_val k = {6, "kv.ext"}, d = {1, "x"};
        CHECK(mdb_put(txn, dbi, &k, &d, 0) == 0);
        CHECK(mdb_txn_commit(txn) == 0);
        mdb_env_close(env);
        CHECK_RC(open_rc());
    }

    /* a pending record (a commit was interrupted): accepted unchecked */
    commit_gen("c", 4);
    CHECK(sh("cp '%s' '%s'", mdb, saved) == 0);
    {
        uint8_t r[64];
        int fd = open(xxh, O_RDWR);
        CHECK(fd >= 0 && pread(fd, r, 64, 0) == 64);
        r[12] |= 1;
        uint64_t h = XXH3_64bits(r, 56);
        for (int i = 0; i < 8; i++) r[56 + i] = (uint8_t)(h >> (8 * i));
        CHECK(pwrite(fd, r, 64, 0) == 64);
        if (fd >= 0) close(fd);
        b = 0; /* a free page rewritten by the interrupted commit */
        poke(mdb, fsize(mdb) - 1, &b, 1);
        vt_store *t;
        CHECK_RC(vt_store_open(path, VT_STORE_RDONLY, NULL, &t));
        vt_store_close(t);
    }
    CHECK(sh("cp '%s' '%s'", saved, mdb) == 0);
    commit_gen("c", 5); /* rewrites the record */
    CHECK_RC(open_rc());

    /* readers opening while another process commits: never a false mismatch */
    pid_t pid = fork();
    if (pid == 0) {
        for (uint32_t g = 0; g < 40; g++) {
            char n[16];
            snprintf(n, sizeof n, "w%u", g % 7);
            commit_gen(n, 10 + g);
            if (vt_test_failures) _exit(1);
        }
        _exit(0);
    }
    int opens = 0, fails = 0, st = 0;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        vt_store *t;
        int rc = vt_store_open(path, VT_STORE_RDONLY, NULL, &t);
        opens++;
        if (rc) {
            fails++;
            fprintf(stderr, "open during commits: %s\n", vt_last_error());
        }
        vt_store_close(t);
    }
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECKF(fails == 0, "%d of %d opens failed while another process committed", fails, opens);
    printf("%d opens during 40 commits, %d failed\n", opens, fails);
    CHECK_RC(open_rc());
    if (!vt_test_failures) sh("rm -rf '%s'%s", dir, "");
    return vt_test_done("test_store_idxsum");
}
