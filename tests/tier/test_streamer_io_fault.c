/* The read engine failing while reads are in flight (VT_FAULT_ENGINE: io_uring_submit refused,
 * or reaping completions failing), on both engines. The I/O thread once failed every job in
 * flight and handed it on while the engine still held its requests: ring slots and read buffers
 * were reused or freed under reads still landing, and a late completion pointed at a freed job
 * (crash, or wrong bytes handed out). Now:
 *  - a failure the engine recovers from (every site walked, one failure each) loses nothing:
 *    the reads complete, every handle holds the right bytes;
 *  - a failure that persists makes the streamer refuse acquire and plan with the engine's error
 *    (the in-flight reads keep their places: nothing is reused under them), and close returns.
 * A watchdog turns a hang into a failure naming the step. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>

#include "tier_util.h"
#include "tiering/io_engine.h"
#include "tiering/streamer_internal.h"

#define NT 8

static tu_store ts;
static const char *names[NT];

static vt_tier_config config(vt_io_engine e) {
    /* a ring of 4 slots, reads cut in 4 KiB pieces, 4 in flight: many reaps per pass */
    vt_tier_config c = {.ram_bytes = 4 * ts.bytes[0] + 65536,
                        .prefetch = 3,
                        .ring_slots = 4,
                        .queue_depth = 4,
                        .read_size = 4096,
                        .io_engine = e};
    return c;
}

/* Two cyclic passes; 0 or the first acquire error. *bad counts handles with wrong bytes. */
static int passes(vt_streamer *st, int *bad) {
    for (int p = 0; p < 2; p++)
        for (int i = 0; i < NT; i++) {
            vt_weight w;
            int rc = vt_streamer_acquire(st, names[i], &w);
            if (rc) return rc;
            if (!tu_match(&ts, i, &w)) ++*bad;
            CHECK_RC(vt_streamer_release(st, &w));
        }
    return 0;
}

/* One failure at engine site n (0: none, counting the sites). Returns the site count. */
static uint64_t run_once(vt_io_engine e, const char *ename, uint64_t n) {
    vt_tier_config c = config(e);
    vt_streamer *st = NULL;
    CHECK_RC(vt_streamer_open(ts.s, &c, &st));
    if (!st) return 0;
    CHECK_RC(vt_streamer_plan(st, names, NT, VT_SCHEDULE_CYCLIC));
    vt_fault_arm(VT_FAULT_ENGINE, n ? n : UINT64_MAX, n ? -EIO : 0);
    int bad = 0;
    int rc = passes(st, &bad);
    uint64_t count = vt_fault_count();
    int fired = vt_fault_fired();
    vt_fault_disarm();
    CHECKF(rc == 0, "%s, engine failure at site %llu%s: acquire returned %d: %s", ename,
           (unsigned long long)n, fired ? "" : " (not reached)", rc, vt_last_error());
    CHECKF(bad == 0, "%s, engine failure at site %llu: %d handles with wrong bytes", ename,
           (unsigned long long)n, bad);
    vt_streamer_close(st);
    return count;
}

static void transient(vt_io_engine e, const char *ename) {
    tu_step = ename;
    uint64_t count = run_once(e, ename, 0);
    CHECKF(count > 0, "%s: no engine fault site passed", ename);
    uint64_t walked = 0;
    for (uint64_t n = 1; n <= count; n += n < 32 ? 1 : count / 16 + 1, walked++)
        run_once(e, ename, n);
    printf("%s: %llu engine sites, %llu walked\n", ename, (unsigned long long)count,
           (unsigned long long)walked);
}

/* The engine keeps failing (every engine call from the first on; no retry allowed): acquire and
 * plan fail with its error, no hang, close returns. A one-shot fault is not this: a reap that
 * fails after collecting completions returns them and leaves the error to its next call, which
 * then succeeds (under load the first reap often has some), and the streamer rightly goes on. */
static void persistent(vt_io_engine e, const char *ename) {
    tu_step = "persistent engine failure";
    vt_tier_config c = config(e);
    vt_streamer *st = NULL;
    CHECK_RC(vt_streamer_open(ts.s, &c, &st));
    if (!st) return;
    pthread_mutex_lock(&st->mu);
    st->io_tries = 0;
    pthread_mutex_unlock(&st->mu);
    CHECK_RC(vt_streamer_plan(st, names, NT, VT_SCHEDULE_CYCLIC));
    vt_fault_arm(VT_FAULT_ENGINE | VT_FAULT_FROM_NTH, 1, -EIO);
    int bad = 0;
    int rc = passes(st, &bad);
    CHECKF(vt_fault_fired(), "%s: the engine fault was not reached", ename);
    vt_fault_disarm();
    CHECKF(rc == -EIO, "%s: acquire after a persistent engine failure returned %d (%s)", ename, rc,
           vt_last_error());
    CHECKF(strstr(vt_last_error(), "I/O engine failed"), "%s: message: %s", ename, vt_last_error());
    CHECK(bad == 0);
    vt_weight w;
    CHECK(vt_streamer_acquire(st, names[0], &w) == -EIO); /* again, at once */
    CHECK(vt_streamer_plan(st, names, NT, VT_SCHEDULE_CYCLIC) == -EIO);
    vt_streamer_close(st);
}

int main(void) {
    vt_test_seed();
    tu_watchdog("test_streamer_io_fault", 200); /* a hang, not a speed goal */
    char dir[4096];
    vt_test_tmpdir("streamer_io_fault", dir, sizeof dir);
    /* 32 rows of 4 KiB in 16 KiB chunks: 8 reads a tensor; odd tensors zstd (scratch buffers) */
    tu_make(&ts, dir, NT, 32, 32, 1024, 16384, 1);
    for (int i = 0; i < NT; i++) names[i] = ts.names[i];
    vt_io *probe = NULL;
    vt_io_config pc = {.engine = VT_IO_URING};
    int urc = vt_io_open(&pc, &probe);
    vt_io_close(probe);
    transient(VT_IO_PREAD, "pread");
    if (!urc)
        transient(VT_IO_URING, "io_uring");
    else
        printf("io_uring unavailable (%s): pread only\n", vt_strerror(urc));
    persistent(VT_IO_PREAD, "pread");
    if (!urc) persistent(VT_IO_URING, "io_uring");
    tu_free(&ts);
    alarm(0);
    return vt_test_done("test_streamer_io_fault");
}
