/* Degraded environments, each in a child process:
 *  - io_uring refused by a seccomp filter (io_uring_setup -> EPERM, as container runtimes do):
 *    the default engine falls back to the pread pool and streams correct bytes; forcing
 *    VT_IO_URING fails with -EPERM and a message; VT_IO_ENGINE=bogus is -EINVAL.
 *  - RLIMIT_MEMLOCK of 64 KiB without CAP_IPC_LOCK: io_uring buffer registration is refused,
 *    the streamer runs with unregistered buffers and streams correct bytes.
 *  - budgets above what the machine has (VRAM tier: device memory, or host memory without a
 *    GPU; RAM tier): VT_EBUDGET with a message giving both numbers. */
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "rel_util.h"
#include "weight_eq.h"
#include "vtstore/tier.h"

static char dir[2048], store[2100];
static const char *names[8];
static uint8_t *raw[8];
static uint64_t rawlen[8];
static int nt;

static int install_seccomp(void) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {(unsigned short)(sizeof f / sizeof *f), f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) return -errno;
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) return -errno;
    return 0;
}

static int drop_ipc_lock(void) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d)) return -errno;
    d[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
    d[CAP_IPC_LOCK / 32].permitted &= ~(1u << (CAP_IPC_LOCK % 32));
    if (syscall(SYS_capset, &h, d)) return -errno;
    return 0;
}

/* Stream two passes; returns 0 when every handle holds the committed bytes. */
static int stream(vt_io_engine eng, vt_streamer_stats *stats_out) {
    vt_store *s;
    int rc = vt_store_open(store, VT_STORE_RDONLY, NULL, &s);
    if (rc) return rc;
    vt_tier_config c = {.ram_bytes = 4 << 20, .vram_bytes = 0, .io_engine = eng};
    vt_streamer *st = NULL;
    rc = vt_streamer_open(s, &c, &st);
    if (!rc) rc = vt_streamer_plan(st, names, (size_t)nt, VT_SCHEDULE_CYCLIC);
    for (int p = 0; p < 2 && !rc; p++)
        for (int i = 0; i < nt && !rc; i++) {
            vt_weight w;
            rc = vt_streamer_acquire(st, names[i], &w);
            if (rc) break;
            if (w.bytes != rawlen[i] || !vt_test_weight_eq(&w, raw[i], w.bytes)) rc = 1;
            vt_streamer_release(st, &w);
        }
    if (st && stats_out) vt_streamer_get_stats(st, stats_out);
    if (rc < 0) fprintf(stderr, "  stream: %s: %s\n", vt_strerror(rc), vt_last_error());
    vt_streamer_close(st);
    vt_store_close(s);
    return rc;
}

static int child_seccomp(void) {
    int rc = install_seccomp();
    if (rc) {
        printf("seccomp: skipped (%s)\n", strerror(-rc));
        return 77;
    }
    vt_streamer_stats stt;
    unsetenv("VT_IO_ENGINE");
    rc = stream(VT_IO_AUTO, &stt);
    CHECKF(rc == 0, "seccomp: default engine did not fall back: %d", rc);
    CHECK(stt.engine == VT_IO_PREAD);
    vt_clear_error();
    rc = stream(VT_IO_URING, NULL);
    CHECKF(rc == -EPERM || rc == -ENOSYS, "seccomp: forced io_uring returned %d", rc);
    CHECKF(vt_last_error()[0], "seccomp: forced io_uring failed without a message");
    printf("seccomp: default engine -> pread fallback, %llu bytes read; forced uring -> %s: %s\n",
           (unsigned long long)stt.bytes_read, vt_strerror(rc), vt_last_error());
    setenv("VT_IO_ENGINE", "bogus", 1);
    rc = stream(VT_IO_AUTO, NULL);
    CHECKF(rc == -EINVAL && vt_last_error()[0], "VT_IO_ENGINE=bogus returned %d", rc);
    return vt_test_failures ? 1 : 0;
}

static int child_memlock(void) {
    int rc = drop_ipc_lock();
    struct rlimit rl = {64 << 10, 64 << 10};
    if (rc || setrlimit(RLIMIT_MEMLOCK, &rl)) {
        printf("memlock: skipped (cannot drop CAP_IPC_LOCK or set the limit)\n");
        return 77;
    }
    vt_streamer_stats stt;
    memset(&stt, 0, sizeof stt);
    rc = stream(VT_IO_AUTO, &stt);
    CHECKF(rc == 0, "memlock 64 KiB: streaming failed: %d %s", rc, vt_last_error());
    printf("memlock 64 KiB: engine %s, registered buffers %d, streaming ok\n",
           stt.engine == VT_IO_URING ? "uring" : "pread", stt.registered_buffers);
    CHECK(stt.engine != VT_IO_URING || stt.registered_buffers == 0);
    return vt_test_failures ? 1 : 0;
}

static int run_child(int (*fn)(void), const char *what) {
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) _exit(fn());
    int st;
    waitpid(p, &st, 0);
    CHECKF(WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 77), "%s: status 0x%x",
           what, st);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int collect(void *ctx, const vt_tensor_info *ti) {
    vt_store *s = ctx;
    names[nt] = strdup(ti->name);
    rawlen[nt] = ti->raw_bytes;
    raw[nt] = malloc(ti->raw_bytes);
    CHECK_RC(vt_store_read_tensor_raw(s, ti->name, raw[nt], ti->raw_bytes));
    nt++;
    return 0;
}

int main(void) {
    if (VT_TEST_TSAN) /* ThreadSanitizer does not support fork() after threads started */
        TEST_SKIP("test_rel_degrade: forks after starting threads, which ThreadSanitizer cannot "
                  "follow");
    setvbuf(stdout, NULL, _IOLBF, 0);
    vt_test_seed();
    vt_test_tmpdir("rel_degrade", dir, sizeof dir);
    snprintf(store, sizeof store, "%s/store", dir);
    char src[2200];
    snprintf(src, sizeof src, "%s/src.safetensors", dir);
    CHECK_RC(rel_write_st(src, "d.", NULL, 4, 64, 512, 1));
    vt_store *s;
    CHECK_RC(vt_store_open(store, VT_STORE_RDWR | VT_STORE_CREATE, NULL, &s));
    if (!s) return vt_test_done("test_rel_degrade");
    CHECK_RC(vt_import_file(s, src, NULL, NULL));
    CHECK_RC(vt_store_list(s, NULL, collect, s));
    vt_store_close(s);

    /* baseline: does this machine give io_uring with registered buffers? */
    vt_streamer_stats base;
    memset(&base, 0, sizeof base);
    CHECK_RC(stream(VT_IO_AUTO, &base));
    printf("baseline: engine %s, registered buffers %d\n",
           base.engine == VT_IO_URING ? "uring" : "pread", base.registered_buffers);
    run_child(child_seccomp, "seccomp");
    if (base.engine == VT_IO_URING && base.registered_buffers)
        run_child(child_memlock, "memlock");
    else
        printf("memlock: skipped (no registered io_uring buffers here to begin with)\n");

    /* budgets larger than the machine */
    CHECK_RC(vt_store_open(store, VT_STORE_RDONLY, NULL, &s));
    if (s) {
        vt_tier_config big_v = {.ram_bytes = 4 << 20, .vram_bytes = 1ull << 50};
        vt_tier_config big_r = {.ram_bytes = 1ull << 50};
        vt_streamer *st = NULL;
        int rc = vt_streamer_open(s, &big_v, &st);
        CHECKF(rc == VT_EBUDGET && strpbrk(vt_last_error(), "0123456789"),
               "VRAM budget of 1 PiB: %d %s", rc, vt_last_error());
        printf("VRAM budget 1 PiB: %s: %s\n", vt_strerror(rc), vt_last_error());
        vt_streamer_close(rc ? NULL : st);
        st = NULL;
        rc = vt_streamer_open(s, &big_r, &st);
        CHECKF(rc == VT_EBUDGET && strpbrk(vt_last_error(), "0123456789"),
               "RAM budget of 1 PiB: %d %s", rc, vt_last_error());
        printf("RAM budget 1 PiB: %s: %s\n", vt_strerror(rc), vt_last_error());
        vt_streamer_close(rc ? NULL : st);
        vt_store_close(s);
    }
    for (int i = 0; i < nt; i++) {
        free(raw[i]);
        free((void *)names[i]);
    }
    if (!vt_test_failures) rel_sh("rm -rf '%s'", dir);
    return vt_test_done("test_rel_degrade");
}
