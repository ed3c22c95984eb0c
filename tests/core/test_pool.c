/* Thread pool: every index runs exactly once, errors propagate, nesting runs inline. */
#include <errno.h>
#include <stdatomic.h>

#include "vt_test.h"
#include "vtstore/core.h"

static _Atomic int hits[10000];

static int mark(void *ctx, uint64_t i, int tid) {
    (void)ctx;
    (void)tid;
    atomic_fetch_add(&hits[i], 1);
    return 0;
}
static int fail_at_500(void *ctx, uint64_t i, int tid) {
    (void)ctx;
    (void)tid;
    return i == 500 ? -EIO : 0;
}
static int nested(void *ctx, uint64_t i, int tid) {
    (void)tid;
    (void)i;
    return vt_parallel_for(10, mark, ctx, 0);
}

int main(void) {
    for (int round = 0; round < 50; round++) {
        memset(hits, 0, sizeof hits);
        int nt = 1 + round % 4;
        CHECK_RC(vt_parallel_for(10000, mark, NULL, nt));
        for (int i = 0; i < 10000; i++)
            CHECKF(hits[i] == 1, "round %d index %d ran %d times", round, i, hits[i]);
    }
    CHECK(vt_parallel_for(1000, fail_at_500, NULL, 0) == -EIO);
    memset(hits, 0, sizeof hits);
    CHECK_RC(vt_parallel_for(20, nested, NULL, 0));
    for (int i = 0; i < 10; i++) CHECK(hits[i] == 20);
    CHECK(vt_parallel_for(0, mark, NULL, 0) == 0);
    return vt_test_done("test_pool");
}
