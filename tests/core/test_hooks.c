/* Hooks and fault injection: the nth call fails with the injected code, counting is right,
 * short transfers are reported, and vt_strerror names every code. */
#include <errno.h>
#include <fcntl.h>

#include "vt_test.h"
#include "vtstore/core.h"

int main(void) {
    char dir[4096], path[4200];
    vt_test_tmpdir("test_hooks", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/f", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    char buf[4096], back[4096];
    for (int i = 0; i < 4096; i++) buf[i] = (char)i;
    CHECK_RC(vt_pwrite_full(fd, buf, sizeof buf, 0));
    CHECK_RC(vt_pread_full(fd, back, sizeof back, 0));
    CHECK(memcmp(buf, back, sizeof buf) == 0);
    CHECK(vt_pread_full(fd, back, 10, 4090) == VT_EFORMAT); /* past end of file */

    vt_fault_arm(VT_FAULT_READ, 2, -EIO);
    CHECK_RC(vt_pread_full(fd, back, 16, 0));
    CHECK(vt_pread_full(fd, back, 16, 0) == -EIO);
    CHECK(vt_fault_fired());
    CHECK_RC(vt_pread_full(fd, back, 16, 0));
    CHECK(vt_fault_count() == 3);
    vt_fault_arm(VT_FAULT_WRITE, 1, -ENOSPC);
    CHECK(vt_pwrite_full(fd, buf, 16, 0) == -ENOSPC);
    vt_fault_arm(VT_FAULT_WRITE, 1, VT_FAULT_SHORT);
    CHECK(vt_pwrite_full(fd, buf, 16, 0) == -ENOSPC);
    vt_fault_arm(VT_FAULT_READ, 1, VT_FAULT_SHORT);
    CHECK(vt_pread_full(fd, back, 16, 0) == VT_EFORMAT);
    vt_fault_arm(VT_FAULT_SYNC, 1, -EIO);
    CHECK(vt_fdatasync(fd) == -EIO);
    vt_fault_arm(VT_FAULT_ALLOC, 1, -ENOMEM);
    CHECK(vt_malloc(10) == NULL);
    void *p = vt_malloc(10);
    CHECK(p != NULL);
    vt_free(p);
    vt_fault_disarm();
    vt_free(NULL);
    close(fd);

    const int codes[] = {VT_EFORMAT,    VT_ECORRUPT, VT_ENOTFOUND, VT_EUNSUPPORTED,
                         VT_ENONFINITE, VT_EVERSION, VT_EEXIST,    VT_EBUDGET,
                         VT_ECUDA,      VT_ENODEV,   VT_ELMDB,     VT_EUSAGE,
                         VT_ESHAPE,     VT_EFAULT,   -EIO,         -ENOSPC};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *s = vt_strerror(codes[i]);
        CHECK(s && *s && strcmp(s, "unknown error") != 0);
    }
    CHECK(vt_fail(-EIO, "file %s chunk %d", "x.vts", 3) == -EIO);
    CHECK(strcmp(vt_last_error(), "file x.vts chunk 3") == 0);
    return vt_test_done("test_hooks");
}
