/* Memory regions behind the two tiers: the RAM tier is one anonymous mapping (populated up
 * front, pinned with CUDA when a GPU is present: io_uring may refuse cudaHostAlloc memory), the
 * VRAM tier one cudaMalloc. Budgets beyond what the machine has fail here, at open. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>

#include "tier_internal.h"
#include "core/fault_internal.h"

uint64_t vt_host_mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[256];
        unsigned long long kb;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
                fclose(f);
                return (uint64_t)kb * 1024;
            }
        fclose(f);
    }
    struct sysinfo si;
    if (sysinfo(&si) == 0) return ((uint64_t)si.freeram + si.bufferram) * si.mem_unit;
    return UINT64_MAX;
}

/* A budget within 4095 bytes of 2^64 rounds up to 0: refuse it rather than open an empty tier. */
static int too_big(uint64_t bytes, const char *what) {
    if (bytes <= UINT64_MAX - (VT_TIER_ALIGN - 1)) return 0;
    return vt_fail(VT_EBUDGET, "%s budget of %llu bytes is beyond any machine's memory", what,
                   (unsigned long long)bytes);
}

int vt_region_host_open(uint64_t bytes, int cuda_pin, const char *what, vt_region *out) {
    memset(out, 0, sizeof *out);
    if (too_big(bytes, what)) return VT_EBUDGET;
    bytes = VT_ROUND_UP(bytes, VT_TIER_ALIGN);
    if (!bytes) return 0;
    uint64_t avail = vt_host_mem_available();
    if (bytes > avail)
        return vt_fail(VT_EBUDGET,
                       "%s budget of %llu bytes exceeds the %llu bytes of host memory available",
                       what, (unsigned long long)bytes, (unsigned long long)avail);
    int f = vt_fault_check(VT_FAULT_DEVICE);
    if (f)
        return vt_fail(f, "%s: cannot map %llu bytes (injected)", what, (unsigned long long)bytes);
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                   -1, 0);
    if (p == MAP_FAILED)
        return vt_fail(-ENOMEM, "%s: mmap of %llu bytes failed: %s", what,
                       (unsigned long long)bytes, strerror(errno));
    out->base = p;
    out->size = bytes;
    out->kind = VT_REGION_HOST;
    if (cuda_pin) {
        int rc = vt_tcuda_host_register(p, bytes);
        if (rc) {
            munmap(p, bytes);
            memset(out, 0, sizeof *out);
            return vt_fail(rc, "%s: pinning %llu bytes with CUDA failed: %s", what,
                           (unsigned long long)bytes, vt_last_error());
        }
        out->cuda_pinned = 1;
    }
    return 0;
}

int vt_region_device_open(uint64_t bytes, const char *what, vt_region *out) {
    memset(out, 0, sizeof *out);
    if (too_big(bytes, what)) return VT_EBUDGET;
    bytes = VT_ROUND_UP(bytes, VT_TIER_ALIGN);
    if (!bytes) return 0;
    uint64_t fr = 0, tot = 0;
    int rc = vt_tcuda_mem_info(&fr, &tot);
    if (rc) return rc;
    if (bytes > fr)
        return vt_fail(
            VT_EBUDGET, "%s budget of %llu bytes exceeds the %llu bytes free on the GPU (of %llu)",
            what, (unsigned long long)bytes, (unsigned long long)fr, (unsigned long long)tot);
    int f = vt_fault_check(VT_FAULT_DEVICE);
    if (f)
        return vt_fail(f, "%s: cannot allocate %llu device bytes (injected)", what,
                       (unsigned long long)bytes);
    void *p = NULL;
    rc = vt_tcuda_malloc(&p, bytes);
    if (rc)
        return vt_fail(rc, "%s: cudaMalloc of %llu bytes: %s", what, (unsigned long long)bytes,
                       vt_last_error());
    out->base = p;
    out->size = bytes;
    out->kind = VT_REGION_DEVICE;
    return 0;
}

void vt_region_close(vt_region *r) {
    if (!r || !r->base) return;
    if (r->kind == VT_REGION_DEVICE) {
        vt_tcuda_free(r->base);
    } else {
        if (r->cuda_pinned) vt_tcuda_host_unregister(r->base);
        munmap(r->base, r->size);
    }
    memset(r, 0, sizeof *r);
}
