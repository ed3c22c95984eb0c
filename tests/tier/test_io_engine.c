/* io engine: both engines read random aligned and unaligned ranges of a file and deliver the
 * same bytes as a plain read; injected EIO and short reads fail exactly the affected request;
 * VT_IO_ENGINE forces an engine. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "tiering/io_engine.h"
#include "vt_test.h"

#define FILE_BYTES (6u << 20)

static unsigned char *ref;

static void check_engine(const char *path, vt_io_engine want, uint32_t qd, uint32_t rs, int reg) {
    vt_io_config c = {.engine = want, .queue_depth = qd, .read_size = rs};
    vt_io *io = NULL;
    int rc = vt_io_open(&c, &io);
    if (rc && want == VT_IO_URING) {
        printf("io_uring refused here (%s): uring engine not exercised\n", vt_strerror(rc));
        return;
    }
    CHECK_RC(rc);
    if (rc) return;
    CHECK(vt_io_engine_of(io) == want);
    int f;
    CHECK_RC(vt_io_add_path(io, path, &f));
    size_t cap = 8u << 20;
    unsigned char *mem =
        mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(mem != MAP_FAILED);
    if (reg) {
        CHECK_RC(vt_io_register_memory(io, mem, cap));
        if (want == VT_IO_URING && !vt_io_has_registered_memory(io))
            printf("io_uring buffer registration refused: unregistered reads exercised\n");
    }
    enum { N = 24 };
    vt_io_req r[N];
    size_t at = 0;
    for (int i = 0; i < N; i++) {
        uint64_t off, len;
        if (i % 3 == 2) { /* unaligned: goes through the buffered descriptor */
            off = vt_rand_u64() % (FILE_BYTES - 70000);
            len = 1 + vt_rand_u64() % 65536;
        } else { /* aligned start, length up to the file end, rounded read stays in the file */
            off = (vt_rand_u64() % (FILE_BYTES / 4096 - 64)) * 4096;
            len = 1 + vt_rand_u64() % (200000 < FILE_BYTES - off ? 200000 : FILE_BYTES - off);
        }
        at = (at + 4095) / 4096 * 4096;
        if (at + len + 4096 > cap) at = 0;
        r[i] = (vt_io_req){.file = f, .off = off, .len = len, .buf = mem + at};
        at += len + 4096;
        /* two requests may share memory only if they are checked one by one; keep them apart */
        if (i == N / 2) at = cap / 2;
    }
    /* check each half after its own read_all, so overlapping buffers are not an issue */
    for (int half = 0; half < 2; half++) {
        vt_io_req *h = r + half * (N / 2);
        rc = vt_io_read_all(io, h, N / 2);
        CHECK_RC(rc);
        for (int i = 0; i < N / 2; i++)
            CHECKF(!memcmp(h[i].buf, ref + h[i].off, h[i].len),
                   "engine %s req %d off %llu len %llu", vt_io_engine_name(want), i,
                   (unsigned long long)h[i].off, (unsigned long long)h[i].len);
    }
    CHECK(vt_io_pending(io) == 0);

    /* EIO on one piece: exactly one request fails, the others deliver their bytes */
    for (int kind = 0; kind < 2; kind++) {
        int err = kind ? VT_FAULT_SHORT : -EIO;
        vt_io_req q[6];
        for (int i = 0; i < 6; i++)
            q[i] = (vt_io_req){.file = f,
                               .off = (uint64_t)i * 65536,
                               .len = 65536,
                               .buf = mem + (size_t)i * 65536};
        uint64_t nth = 1 + vt_rand_u64() % 6;
        vt_fault_arm(VT_FAULT_READ, nth, err);
        rc = vt_io_read_all(io, q, 6);
        vt_fault_disarm();
        CHECK(vt_fault_fired());
        CHECK(rc == (kind ? VT_EFORMAT : -EIO));
        int failed = 0;
        for (int i = 0; i < 6; i++) {
            if (q[i].result) {
                failed++;
                CHECK(q[i].result == (kind ? VT_EFORMAT : -EIO));
            } else {
                CHECK(!memcmp(q[i].buf, ref + q[i].off, q[i].len));
            }
        }
        CHECKF(failed == 1, "%d requests failed, expected 1", failed);
    }
    /* zero-length request completes */
    vt_io_req z = {.file = f, .off = 0, .len = 0, .buf = mem};
    CHECK_RC(vt_io_read_all(io, &z, 1));
    munmap(mem, cap);
    vt_io_close(io);
}

int main(void) {
    vt_test_seed();
    char dir[4096], path[4200];
    vt_test_tmpdir("io_engine", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/data.bin", dir);
    ref = malloc(FILE_BYTES);
    for (size_t i = 0; i < FILE_BYTES / 8; i++) ((uint64_t *)ref)[i] = vt_rand_u64();
    FILE *fp = fopen(path, "wb");
    CHECK(fp && fwrite(ref, 1, FILE_BYTES, fp) == FILE_BYTES);
    fclose(fp);

    /* probe: which engines does this machine give us */
    vt_io *probe = NULL;
    vt_io_config pc = {.engine = VT_IO_URING};
    int urc = vt_io_open(&pc, &probe);
    printf("io_uring on this machine: %s\n", urc ? vt_strerror(urc) : "available");
    vt_io_close(probe);

    for (int reg = 0; reg < 2; reg++) {
        check_engine(path, VT_IO_PREAD, 8, 65536, reg);
        check_engine(path, VT_IO_URING, 8, 65536, reg);
        check_engine(path, VT_IO_URING, 64, 1 << 20, reg);
        check_engine(path, VT_IO_PREAD, 3, 4096, reg);
    }

    /* the environment forces the engine under VT_IO_AUTO */
    setenv("VT_IO_ENGINE", "pread", 1);
    vt_io *io = NULL;
    CHECK_RC(vt_io_open(NULL, &io));
    CHECK(io && vt_io_engine_of(io) == VT_IO_PREAD);
    vt_io_close(io);
    setenv("VT_IO_ENGINE", "bogus", 1);
    CHECK(vt_io_open(NULL, &io) == -EINVAL);
    unsetenv("VT_IO_ENGINE");
    vt_io_config bad = {.read_size = 1000};
    CHECK(vt_io_open(&bad, &io) == -EINVAL);
    free(ref);
    return vt_test_done("test_io_engine");
}
