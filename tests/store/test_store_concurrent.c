/* Concurrency: reader processes list and read every tensor while a writer process replaces them
 * commit after commit (with a tiny initial LMDB map so the map grows under the readers). Each
 * read must see a whole tensor of one generation, and generations never go backwards. A second
 * writer is refused while the first holds the lock. */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

#include "store_testutil.h"

#define NW      4
#define COMMITS 30
#define READERS 3

static char path[4200], done_path[4300];

static int writer(void) {
    vt_store_options o = {0};
    o.chunk_target_bytes = 4 << 10;
    o.map_size = 64 << 10; /* grows on MDB_MAP_FULL while readers hold snapshots */
    vt_store *s;
    if (vt_store_open(path, VT_STORE_RDWR, &o, &s)) return 3;
    for (uint32_t g = 2; g <= COMMITS + 1; g++) {
        vt_store_writer *w;
        int rc;
        while ((rc = vt_store_writer_begin(s, &w)) == -EBUSY) usleep(1000);
        if (rc) return 4;
        for (int i = 0; i < NW; i++) {
            char name[16];
            snprintf(name, sizeof name, "w%d", i);
            if (tu_put_gen(w, name, g, 24 + 8 * i, 200 + 50 * i, 0)) return 5;
        }
        if (vt_store_writer_commit(w)) return 6;
        if (g % 10 == 0 && vt_store_gc(s, NULL)) return 7;
    }
    vt_store_close(s);
    return 0;
}

static int reader(void) {
    vt_store *s;
    if (vt_store_open(path, VT_STORE_RDONLY, NULL, &s)) return 3;
    uint32_t last[NW] = {0};
    int reads = 0, seen_new = 0;
    while (access(done_path, F_OK) != 0 || reads < 8) {
        for (int i = 0; i < NW; i++) {
            char name[16];
            snprintf(name, sizeof name, "w%d", i);
            uint32_t gen = 0;
            int rc = tu_check_gen(s, name, &gen);
            if (rc) {
                fprintf(stderr, "reader %d: %s: rc %d %s\n", (int)getpid(), name, rc,
                        vt_store_errmsg(s));
                return 8;
            }
            if (gen < last[i]) {
                fprintf(stderr, "reader: %s went back from gen %u to %u\n", name, last[i], gen);
                return 9;
            }
            seen_new |= gen > 1;
            last[i] = gen;
            reads++;
        }
    }
    vt_store_close(s);
    printf("reader %d: %d reads, last gens %u %u %u %u\n", (int)getpid(), reads, last[0], last[1],
           last[2], last[3]);
    fflush(stdout);
    return seen_new ? 0 : 10;
}

int main(void) {
    vt_test_seed();
    char dir[4096];
    vt_test_tmpdir("test_store_concurrent", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/s.vts", dir);
    snprintf(done_path, sizeof done_path, "%s/done", dir);
    vt_store *s;
    CHECK_RC(vt_store_open(path, VT_STORE_RDWR | VT_STORE_CREATE, NULL, &s));
    if (!s) return vt_test_done("test_store_concurrent");
    vt_store_writer *w;
    CHECK_RC(vt_store_writer_begin(s, &w));
    for (int i = 0; i < NW; i++) {
        char name[16];
        snprintf(name, sizeof name, "w%d", i);
        CHECK_RC(tu_put_gen(w, name, 1, 24 + 8 * i, 200 + 50 * i, 0));
    }
    CHECK_RC(vt_store_writer_commit(w));
    vt_store_close(s);

    pid_t rp[READERS], wp;
    fflush(stdout);
    for (int i = 0; i < READERS; i++)
        if ((rp[i] = fork()) == 0) _exit(reader());
    if ((wp = fork()) == 0) _exit(writer());
    /* while the child writes, a writer of ours is refused or waits its turn; never both */
    CHECK_RC(vt_store_open(path, VT_STORE_RDWR, NULL, &s));
    int busy = 0;
    for (int i = 0; i < 50 && s; i++) {
        int rc = vt_store_writer_begin(s, &w);
        if (rc == -EBUSY)
            busy++;
        else if (rc == 0)
            vt_store_writer_abort(w);
        else
            CHECK_RC(rc);
        usleep(500);
    }
    printf("second writer refused %d of 50 times\n", busy);
    int st;
    waitpid(wp, &st, 0);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer status %d", st);
    FILE *f = fopen(done_path, "w");
    if (f) fclose(f);
    for (int i = 0; i < READERS; i++) {
        waitpid(rp[i], &st, 0);
        CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "reader %d status %d", i,
               WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    }
    for (int i = 0; s && i < NW; i++) {
        char name[16];
        snprintf(name, sizeof name, "w%d", i);
        uint32_t gen;
        CHECK(tu_check_gen(s, name, &gen) == 0 && gen == COMMITS + 1);
    }
    CHECK_RC(vt_store_verify(s, NULL, NULL, NULL));
    vt_store_close(s);
    return vt_test_done("test_store_concurrent");
}
