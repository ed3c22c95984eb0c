/* Crash safety: a child process writes, replaces and removes tensors (and runs gc) in a loop and
 * is killed with SIGKILL at a random moment; then the store must open, verify clean, every
 * tensor the index names must read back whole and of one generation matching its record, and
 * gc must reclaim all orphaned bytes. Iterations: argv[1] or VT_CRASH_ITERS (default 20). */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

#include "store_testutil.h"

static char path[4200];

static void child(uint32_t iter) {
    vt_store_options o = {0};
    o.chunk_target_bytes = 8 << 10;
    o.shard_cap_bytes = 64 << 10;
    o.zstd_level = (int)(iter % 2);
    vt_store *s;
    if (vt_store_open(path, VT_STORE_RDWR | VT_STORE_CREATE, &o, &s)) _exit(3);
    for (uint32_t k = 0;; k++) {
        uint32_t gen = iter * 100000u + k + 1;
        uint64_t r = vt_rand_u64() % 10;
        if (r == 0) {
            vt_store_gc(s, NULL);
            continue;
        }
        if (r == 1) {
            char pat[8];
            snprintf(pat, sizeof pat, "c%u", (unsigned)(vt_rand_u64() % 6));
            vt_store_remove(s, pat, NULL);
            continue;
        }
        vt_store_writer *w;
        if (vt_store_writer_begin(s, &w)) _exit(4);
        int n = 1 + (int)(vt_rand_u64() % 3);
        for (int i = 0; i < n; i++) {
            char name[8];
            snprintf(name, sizeof name, "c%u", (unsigned)(vt_rand_u64() % 6));
            int rc = tu_put_gen(w, name, gen, 1 + vt_rand_u64() % 40, 16 + vt_rand_u64() % 300, 0);
            if (rc && rc != VT_EEXIST) _exit(5);
        }
        if (vt_store_writer_commit(w)) _exit(6);
    }
}

static int check_fn(void *ctx, const vt_tensor_info *ti) {
    vt_store *s = ctx;
    uint32_t gen = 0, rec_gen = 0;
    int rc = tu_check_gen(s, ti->name, &gen);
    CHECKF(rc == 0, "tensor %s: %d %s", ti->name, rc, vt_store_errmsg(s));
    CHECKF(sscanf(ti->source, "gen=%u", &rec_gen) == 1 && rec_gen == gen,
           "%s: record says %s, data gen %u", ti->name, ti->source, gen);
    return 0;
}

static void on_problem(void *ctx, const vt_verify_problem *p) {
    (void)ctx;
    fprintf(stderr, "verify: %s\n", p->message);
}

int main(int argc, char **argv) {
    uint64_t seed = vt_test_seed();
    int iters = 20;
    if (argc > 1)
        iters = atoi(argv[1]);
    else if (getenv("VT_CRASH_ITERS"))
        iters = atoi(getenv("VT_CRASH_ITERS"));
    char dir[4096];
    vt_test_tmpdir("test_store_crash", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/s.vts", dir);
    int killed_mid = 0;
    for (int it = 0; it < iters; it++) {
        pid_t pid = fork();
        if (pid == 0) {
            vt_rng_state = seed * 31 + (uint64_t)it + 1;
            child((uint32_t)it);
        }
        usleep((useconds_t)(vt_rand_u64() % 40000));
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        if (WIFEXITED(st)) {
            CHECKF(0, "iteration %d: writer exited with %d before the kill", it, WEXITSTATUS(st));
            continue;
        }
        killed_mid++;
        vt_store *s;
        int rc = vt_store_open(path, VT_STORE_RDWR, NULL, &s);
        if (rc == -ENOENT || rc == VT_EFORMAT) continue; /* killed before the store existed */
        CHECK_RC(rc);
        if (rc) break;
        CHECKF(vt_store_verify(s, on_problem, NULL, NULL) == 0, "iteration %d: verify after kill",
               it);
        CHECK_RC(vt_store_list(s, NULL, check_fn, s));
        vt_store_gc_stats gs;
        CHECK_RC(vt_store_gc(s, &gs));
        vt_store_totals t;
        CHECK_RC(vt_store_get_totals(s, &t));
        CHECKF(t.garbage_bytes == 0 && t.orphan_files == 0,
               "iteration %d: after gc garbage %llu orphans %llu", it,
               (unsigned long long)t.garbage_bytes, (unsigned long long)t.orphan_files);
        CHECK_RC(vt_store_verify(s, on_problem, NULL, NULL));
        CHECK_RC(vt_store_list(s, NULL, check_fn, s));
        vt_store_close(s);
        if (vt_test_failures) break;
    }
    printf("%d kills checked\n", killed_mid);
    CHECK(killed_mid > 0);
    return vt_test_done("test_store_crash");
}
