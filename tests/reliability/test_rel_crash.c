/* Crash loop: a child process imports a safetensors file (replacing some tensors, adding others)
 * or runs gc, and is killed with SIGKILL after a random delay drawn from [0, 1.3 x the
 * operation's measured clean duration]. After every kill a checker process opens the store,
 * verifies it, and reads every tensor back: each must be whole and of one generation, an
 * import must be all or nothing (every tensor of the killed import has the new generation, or
 * every one the old), a gc must change nothing. At the end a clean gc must leave zero garbage
 * bytes and zero orphan files. All library work runs in child processes (the parent only forks,
 * kills and keeps the expected state), so no thread pool crosses a fork.
 * Kills per operation: VT_CRASH_ITERS (default 30; docs/RELIABILITY.md gives a 250 run). */
#include "rel_util.h"

#define NT   8
#define ROWS 32
#define COLS 512

static char dir[2048], store[2100], src[2100];
static uint32_t expect[NT]; /* generation of t<i> in the store, 0 = absent */
static const vt_store_options opt = {
    .chunk_target_bytes = 16 << 10, .shard_cap_bytes = 160 << 10, .zstd_level = 0};

static void name_of(int i, char *b) {
    sprintf(b, "t%d", i);
}

static int child_import(void) {
    vt_store *s;
    int rc = vt_store_open(store, VT_STORE_RDWR | VT_STORE_CREATE, &opt, &s);
    if (rc) return rc;
    vt_import_options o;
    vt_import_options_init(&o);
    o.nthreads = 2;
    rc = vt_import_file(s, src, &o, NULL);
    vt_store_close(s);
    return rc;
}

static int child_gc(void) {
    vt_store *s;
    int rc = vt_store_open(store, VT_STORE_RDWR, &opt, &s);
    if (rc) return rc;
    rc = vt_store_gc(s, NULL);
    vt_store_close(s);
    return rc;
}

static int child_remove(int i) {
    vt_store *s;
    int rc = vt_store_open(store, VT_STORE_RDWR, &opt, &s);
    if (rc) return rc;
    char nm[16];
    name_of(i, nm);
    rc = vt_store_remove(s, nm, NULL);
    vt_store_close(s);
    return rc;
}

/* Checker: verify, read back every tensor, write the generations found to @p fd.
 * Exit 0 consistent, 1 inconsistent (printed). */
static int child_check(int fd, int final_gc) {
    vt_store *s;
    int rc = vt_store_open(store, final_gc ? VT_STORE_RDWR : VT_STORE_RDONLY, NULL, &s);
    if (rc) {
        fprintf(stderr, "check: open: %s %s\n", vt_strerror(rc), vt_last_error());
        return 1;
    }
    int bad = 0;
    if (final_gc) {
        vt_store_gc_stats gs;
        rc = vt_store_gc(s, &gs);
        if (rc) {
            fprintf(stderr, "final gc: %s %s\n", vt_strerror(rc), vt_store_errmsg(s));
            bad = 1;
        }
        vt_store_totals t;
        rc = vt_store_get_totals(s, &t);
        if (rc || t.garbage_bytes || t.orphan_files) {
            fprintf(stderr, "after final gc: %llu garbage bytes, %llu orphan files\n",
                    (unsigned long long)t.garbage_bytes, (unsigned long long)t.orphan_files);
            bad = 1;
        }
        printf("final gc: %llu files removed, %llu -> %llu shard bytes, garbage now %llu\n",
               (unsigned long long)gs.files_removed, (unsigned long long)gs.bytes_before,
               (unsigned long long)gs.bytes_after, (unsigned long long)t.garbage_bytes);
    }
    vt_verify_report rep;
    rc = vt_store_verify(s, NULL, NULL, &rep);
    if (rc) {
        fprintf(stderr, "check: verify: %s %s\n", vt_strerror(rc), vt_store_errmsg(s));
        bad = 1;
    }
    vt_store_totals t;
    uint64_t garbage = 0;
    if (vt_store_get_totals(s, &t) == 0) {
        garbage = t.garbage_bytes;
        if (t.tensors > NT) bad = 1;
    }
    uint32_t gen[NT + 2];
    for (int i = 0; i < NT; i++) {
        char nm[16];
        name_of(i, nm);
        gen[i] = 0;
        rc = rel_check_tensor(s, nm, &gen[i]);
        if (rc == VT_ENOTFOUND) {
            gen[i] = 0;
        } else if (rc) {
            fprintf(stderr, "check: tensor %s: %s %s\n", nm,
                    rc == 1 ? "wrong bytes" : vt_strerror(rc), rc == 1 ? "" : vt_last_error());
            bad = 1;
        }
    }
    memcpy(&gen[NT], &garbage, 8);
    if (write(fd, gen, sizeof gen) != (ssize_t)sizeof gen) bad = 1;
    vt_store_close(s);
    return bad;
}

/* Run @p fn in a child; kill it after @p delay_s (< 0: never). Returns 0 exited 0, 1 killed,
 * or -1 (exited with an error). */
static int run_child(int (*fn)(void), double delay_s) {
    pid_t p = fork();
    if (p == 0) _exit(fn() ? 3 : 0);
    if (delay_s >= 0) {
        struct timespec ts = {(time_t)delay_s, (long)((delay_s - (time_t)delay_s) * 1e9)};
        nanosleep(&ts, NULL);
        kill(p, SIGKILL);
    }
    int st;
    waitpid(p, &st, 0);
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) return 1;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
    fprintf(stderr, "child failed: status 0x%x\n", st);
    return -1;
}

static int check(uint32_t *gen, uint64_t *garbage, int final_gc) {
    int pfd[2];
    if (pipe(pfd)) return -1;
    pid_t p = fork();
    if (p == 0) {
        close(pfd[0]);
        _exit(child_check(pfd[1], final_gc));
    }
    close(pfd[1]);
    uint32_t g[NT + 2];
    ssize_t n = read(pfd[0], g, sizeof g);
    close(pfd[0]);
    int st;
    waitpid(p, &st, 0);
    if (n != (ssize_t)sizeof g || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return -1;
    memcpy(gen, g, NT * 4);
    memcpy(garbage, &g[NT], 8);
    return 0;
}

/* median of 3 clean runs */
static double time_op(int (*fn)(void), int (*prep)(void)) {
    double t[3];
    for (int i = 0; i < 3; i++) {
        if (prep) CHECK(run_child(prep, -1) == 0);
        double t0 = rel_now();
        CHECK(run_child(fn, -1) == 0);
        t[i] = rel_now() - t0;
    }
    double a = t[0] < t[1] ? t[0] : t[1], b = t[0] < t[1] ? t[1] : t[0];
    return t[2] < a ? a : t[2] > b ? b : t[2];
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    vt_test_seed();
    long iters = argc > 1 ? atol(argv[1]) : rel_env_long("VT_CRASH_ITERS", 30);
    vt_test_tmpdir("rel_crash", dir, sizeof dir);
    snprintf(store, sizeof store, "%s/store", dir);
    snprintf(src, sizeof src, "%s/src.safetensors", dir);

    /* start: every tensor at generation 1 */
    char names[NT][16];
    const char *np[NT];
    for (int i = 0; i < NT; i++) {
        name_of(i, names[i]);
        np[i] = names[i];
    }
    CHECK_RC(rel_write_st(src, NULL, np, NT, ROWS, COLS, 1));
    double t_import = time_op(child_import, NULL);
    for (int i = 0; i < NT; i++) expect[i] = 1;
    /* calibrate gc on a store with garbage (half the tensors replaced before each run) */
    CHECK_RC(rel_write_st(src, NULL, np, NT / 2, ROWS, COLS, 2));
    for (int i = 0; i < NT / 2; i++) expect[i] = 2;
    double t_gc = time_op(child_gc, child_import);
    printf("clean durations: import %.1f ms, gc %.1f ms\n", t_import * 1e3, t_gc * 1e3);
    if (vt_test_failures) return vt_test_done("test_rel_crash");

    uint32_t next_gen = 3;
    long kills[2] = {0, 0}, done[2] = {0, 0}, commits_killed = 0;
    uint64_t max_garbage = 0;
    for (int phase = 0; phase < 2; phase++) {
        double span = 1.3 * (phase == 0 ? t_import : t_gc);
        /* iterate until @p iters kills landed while the operation ran */
        for (long it = 0; kills[phase] < iters && it < 4 * iters && vt_test_failures == 0; it++) {
            uint32_t before[NT];
            memcpy(before, expect, sizeof before);
            int in_set[NT] = {0};
            if (phase == 0) {
                /* import 2..5 tensors, replacing existing ones or re-adding removed ones */
                const char *sel[NT];
                int k = 2 + (int)(vt_rand_u64() % 4), m = 0;
                int start = (int)(vt_rand_u64() % NT);
                for (int j = 0; j < k; j++) {
                    int i = (start + j * 3) % NT;
                    if (in_set[i]) continue;
                    in_set[i] = 1;
                    sel[m++] = names[i];
                }
                CHECK_RC(rel_write_st(src, NULL, sel, m, ROWS, COLS, next_gen));
            } else {
                /* make garbage for gc to reclaim: replace one tensor, remove another, cleanly */
                const char *one[1] = {names[vt_rand_u64() % NT]};
                CHECK_RC(rel_write_st(src, NULL, one, 1, ROWS, COLS, next_gen));
                CHECK(run_child(child_import, -1) == 0);
                expect[one[0][1] - '0'] = next_gen;
                int r = (int)(vt_rand_u64() % NT);
                pid_t p = fork();
                if (p == 0) _exit(child_remove(r) ? 3 : 0);
                int st;
                waitpid(p, &st, 0);
                CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
                expect[r] = 0;
                memcpy(before, expect, sizeof before);
            }
            double delay = vt_rand_uniform() * span;
            int r = run_child(phase == 0 ? child_import : child_gc, delay);
            CHECKF(r >= 0, "phase %d iteration %ld: the operation failed on its own", phase, it);
            if (r == 1)
                kills[phase]++;
            else
                done[phase]++;
            uint32_t gen[NT];
            uint64_t garbage = 0;
            int c = check(gen, &garbage, 0);
            CHECKF(c == 0, "phase %d iteration %ld (delay %.2f ms, %s): store inconsistent", phase,
                   it, delay * 1e3, r == 1 ? "killed" : "finished");
            if (c) break;
            if (garbage > max_garbage) max_garbage = garbage;
            if (phase == 0) {
                /* all or nothing over the imported set; the rest untouched */
                int n_new = 0, n_set = 0;
                for (int i = 0; i < NT; i++) {
                    if (in_set[i]) {
                        n_set++;
                        n_new += gen[i] == next_gen;
                        CHECKF(gen[i] == next_gen || gen[i] == before[i],
                               "iteration %ld: t%d has generation %u (expected %u or %u)", it, i,
                               gen[i], before[i], next_gen);
                    } else {
                        CHECKF(gen[i] == before[i], "iteration %ld: untouched t%d changed %u -> %u",
                               it, i, before[i], gen[i]);
                    }
                }
                CHECKF(n_new == 0 || n_new == n_set,
                       "iteration %ld: import half visible (%d of %d)", it, n_new, n_set);
                CHECKF(r == 1 || n_new == n_set, "iteration %ld: finished import not visible", it);
                if (r == 1 && n_new) commits_killed++;
            } else {
                for (int i = 0; i < NT; i++)
                    CHECKF(gen[i] == before[i], "gc iteration %ld: t%d changed %u -> %u", it, i,
                           before[i], gen[i]);
            }
            memcpy(expect, gen, sizeof expect);
            next_gen++;
        }
    }
    uint32_t gen[NT];
    uint64_t garbage = 1;
    CHECKF(check(gen, &garbage, 1) == 0, "final gc + check failed");
    for (int i = 0; i < NT; i++) CHECK(gen[i] == expect[i]);
    printf("import: %ld killed (%ld after commit), %ld finished; gc: %ld killed, %ld finished; "
           "max garbage seen %llu bytes; %d failed checks\n",
           kills[0], commits_killed, done[0], kills[1], done[1], (unsigned long long)max_garbage,
           vt_test_failures);
    if (!vt_test_failures) rel_sh("rm -rf '%s'", dir);
    return vt_test_done("test_rel_crash");
}
