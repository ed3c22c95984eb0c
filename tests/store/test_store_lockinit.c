/* An opener killed while LMDB initialises its lock table (index/lock.mdb) must not make the next
 * writer roll the index back.
 *
 * The first process to open the environment holds lock.mdb exclusively, resets the table (the
 * last txnid it records, mti_txnid, becomes 0) and sets mti_txnid from the meta pages at the end
 * of mdb_env_open. Killed in between (test_rel_soak SIGKILLs `vtstore get` processes at random
 * moments), it leaves 0 to a process that was waiting for the lock. A writer in that state got
 * txn id 1 on the tree of meta slot 0 and wrote meta slot 1: the newest commit was lost, its own
 * commit hidden, and the next open refused the index ("txn N is older than the N+1 recorded in
 * index/data.xxh", or a meta page checksum mismatch when the newest commit was in slot 0).
 *
 * The opener is stopped inside that window (this program's mmap stands in for liblmdb's: an
 * armed process stops at the map of data.mdb, between the reset and mdb_env_share_locks), a
 * writer opens meanwhile and waits for the lock, the opener is SIGKILLed, and the writer
 * commits. Both meta slots are tried. Then the store must open and verify, with both the commit
 * before and the writer's commit in it. */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "store_testutil.h"

static volatile int armed;
static int notify_fd = -1;
static dev_t data_dev;
static ino_t data_ino;

/* liblmdb.so's calls land here (the executable's definition comes first); only an armed
 * process ever stops. Not in a ThreadSanitizer build, whose runtime maps its shadow memory
 * through mmap before main (the test skips there). */
#if !VT_TEST_TSAN
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    struct stat st;
    if (armed && fd >= 0 && fstat(fd, &st) == 0 && st.st_ino == data_ino && st.st_dev == data_dev) {
        char c = 1;
        if (write(notify_fd, &c, 1) != 1) _exit(3);
        for (;;) pause();
    }
    return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}
#endif

static char path[4200], ipath[4300], lpath[4400];

/* last txnid of the index, from a child (this process never has the env open next to another
 * of its handles: closing one would drop the fcntl locks of both) */
static uint64_t last_txnid(void) {
    int p[2];
    if (pipe(p)) return 0;
    pid_t c = fork();
    if (c == 0) {
        MDB_env *env;
        MDB_envinfo ei = {0};
        mdb_env_create(&env);
        mdb_env_set_maxdbs(env, 8);
        mdb_env_set_maxreaders(env, 510);
        if (mdb_env_open(env, ipath, MDB_RDONLY | MDB_NOTLS, 0644) == 0) mdb_env_info(env, &ei);
        uint64_t t = ei.me_last_txnid;
        _exit(write(p[1], &t, 8) == 8 ? 0 : 1);
    }
    close(p[1]);
    uint64_t t = 0;
    if (read(p[0], &t, 8) != 8) t = 0;
    close(p[0]);
    waitpid(c, NULL, 0);
    return t;
}

/* mti_txnid as LMDB 0.9 on Linux lays it out (after magic, format and the reader mutex) */
static uint64_t lock_txnid(void) {
    size_t v = (size_t)-1;
    int fd = open(lpath, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        size_t off =
            (8 + sizeof(pthread_mutex_t) + sizeof(size_t) - 1) / sizeof(size_t) * sizeof(size_t);
        if (pread(fd, &v, sizeof v, (off_t)off) != (ssize_t)sizeof v) v = (size_t)-1;
        close(fd); /* only called by processes without an env on the store */
    }
    return v;
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

/* wait (up to ~2 s) until process @p pid is blocked on a POSIX lock */
static int wait_blocked(pid_t pid) {
    char me[32];
    snprintf(me, sizeof me, " %d ", (int)pid);
    for (int i = 0; i < 2000; i++) {
        FILE *f = fopen("/proc/locks", "r");
        if (!f) break;
        char line[512];
        int found = 0;
        while (fgets(line, sizeof line, f))
            if (strstr(line, "->") && strstr(line, "POSIX") && strstr(line, me)) found = 1;
        fclose(f);
        if (found) return 1;
        usleep(1000);
    }
    usleep(200000); /* no /proc/locks: give it time */
    return 0;
}

static int repaired_logged;
static void sink(vt_log_level lvl, const char *msg) {
    if (lvl >= VT_LOG_WARN && strstr(msg, "repaired index/lock.mdb")) repaired_logged = 1;
    fprintf(stderr, "  writer log: %s\n", msg);
}

typedef struct zres {
    uint64_t seen; /* lock table txnid after the writer's open */
    int rc, repaired;
} zres;

/* One round: the newest commit of gen @p gen_a is in meta slot @p slot; returns 1 if the lock
 * table was left reset (the scenario ran), 0 if this LMDB does not get there. */
static int run_round(int slot, uint32_t *gen) {
    uint32_t gen_a = (*gen)++;
    commit_gen("a", gen_a);
    if (last_txnid() % 2 != (uint64_t)slot) {
        gen_a = (*gen)++;
        commit_gen("a", gen_a);
    }
    uint64_t t0 = last_txnid();
    CHECK(t0 % 2 == (uint64_t)slot);
    char data[4400];
    snprintf(data, sizeof data, "%s/data.mdb", ipath);
    struct stat st;
    CHECK(stat(data, &st) == 0);
    data_dev = st.st_dev;
    data_ino = st.st_ino;

    int np[2];
    CHECK(pipe(np) == 0);
    pid_t x = fork();
    if (x == 0) { /* the opener that is killed */
        close(np[0]);
        notify_fd = np[1];
        armed = 1;
        vt_store *t;
        int rc = vt_store_open(path, VT_STORE_RDONLY, NULL, &t);
        _exit(rc ? 1 : 0); /* the mmap above did not stop it */
    }
    close(np[1]);
    char c;
    int stopped = read(np[0], &c, 1) == 1;
    close(np[0]);
    uint64_t during = stopped ? lock_txnid() : 1;
    if (!stopped || during != 0) {
        kill(x, SIGKILL);
        waitpid(x, NULL, 0);
        printf("slot %d: the opener %s (lock table txnid %llu): LMDB does not reset the table "
               "there, nothing to test\n",
               slot, stopped ? "stopped" : "did not stop", (unsigned long long)during);
        return 0;
    }

    zres *z = mmap(NULL, sizeof *z, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(z != MAP_FAILED);
    memset(z, 0, sizeof *z);
    uint32_t gen_z = (*gen)++;
    pid_t w = fork();
    if (w == 0) { /* a writer command opening meanwhile: waits for the shared lock */
        vt_log_set_sink(sink);
        vt_store *t;
        int rc = vt_store_open(path, VT_STORE_RDWR, NULL, &t);
        z->seen = lock_txnid();
        if (!rc) {
            vt_store_writer *wr;
            rc = vt_store_writer_begin(t, &wr);
            if (!rc) rc = tu_put_gen(wr, "z", gen_z, 20, 64, 0);
            if (!rc) rc = vt_store_writer_commit(wr);
            vt_store_close(t);
        }
        if (rc) fprintf(stderr, "writer: %s: %s\n", vt_strerror(rc), vt_last_error());
        z->rc = rc;
        z->repaired = repaired_logged;
        _exit(0);
    }
    int blocked = wait_blocked(w);
    kill(x, SIGKILL);
    waitpid(x, NULL, 0);
    int wst;
    waitpid(w, &wst, 0);
    CHECK(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
    printf("slot %d: txn %llu, opener killed with the lock table reset, writer %s blocked, lock "
           "table txnid %llu after its open, commit %s, repair logged %d; index now at txn %llu\n",
           slot, (unsigned long long)t0, blocked ? "was" : "maybe", (unsigned long long)z->seen,
           z->rc ? vt_strerror(z->rc) : "ok", z->repaired, (unsigned long long)last_txnid());
    CHECKF(z->rc == 0, "slot %d: the writer's commit failed", slot);
    if (blocked) /* it opened on the table the opener left: repairing it must have said so */
        CHECKF(z->repaired, "slot %d: no 'repaired index/lock.mdb' warning", slot);
    CHECKF(z->seen == t0, "slot %d: lock table txnid %llu after the writer's open, index at %llu",
           slot, (unsigned long long)z->seen, (unsigned long long)t0);

    /* the store opens and verifies, nothing lost */
    vt_store *s;
    int rc = vt_store_open(path, VT_STORE_RDONLY, NULL, &s);
    CHECKF(rc == 0, "slot %d: open after the writer: %s", slot, vt_last_error());
    if (!rc) {
        CHECKF(vt_store_verify(s, NULL, NULL, NULL) == 0, "slot %d: verify: %s", slot,
               vt_store_errmsg(s));
        uint32_t g = 0;
        CHECK_RC(tu_check_gen(s, "a", &g));
        CHECKF(g == gen_a, "slot %d: tensor a has gen %u, the last commit before wrote %u", slot, g,
               gen_a);
        g = 0;
        CHECK_RC(tu_check_gen(s, "z", &g));
        CHECKF(g == gen_z, "slot %d: tensor z has gen %u, the writer committed %u", slot, g, gen_z);
        vt_store_close(s);
    } else {
        char xxh[4400];
        snprintf(xxh, sizeof xxh, "%s/data.xxh", ipath);
        unlink(xxh); /* let the next round run */
    }
    CHECKF(last_txnid() == t0 + 1, "slot %d: index at txn %llu after one commit on txn %llu", slot,
           (unsigned long long)last_txnid(), (unsigned long long)t0);
    munmap(z, sizeof *z);
    return 1;
}

int main(void) {
    if (VT_TEST_TSAN) /* its mmap above replaces the one ThreadSanitizer intercepts */
        TEST_SKIP("test_store_lockinit: replaces mmap, which ThreadSanitizer's runtime needs");
    vt_test_seed();
    char dir[4096];
    vt_test_tmpdir("test_store_lockinit", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/s.vts", dir);
    snprintf(ipath, sizeof ipath, "%s/index", path);
    snprintf(lpath, sizeof lpath, "%s/lock.mdb", ipath);
    vt_store *s;
    CHECK_RC(vt_store_open(path, VT_STORE_RDWR | VT_STORE_CREATE, NULL, &s));
    if (!s) return vt_test_done("test_store_lockinit");
    vt_store_close(s);
    uint32_t gen = 1;
    int ran = 0;
    for (int r = 0; r < 4; r++) ran += run_round(r % 2 ? 0 : 1, &gen);
    if (!ran) TEST_SKIP("this LMDB does not reset its lock table where the test stops an opener");
    if (!vt_test_failures) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        CHECK(system(cmd) == 0);
    }
    return vt_test_done("test_store_lockinit");
}
