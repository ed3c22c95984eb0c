/* GPU: stream a store through the RAM tier into real device memory (cyclic passes with VRAM
 * pins and a ring) and compare the device bytes, copied back, with the written ones. Skipped
 * (77) without CUDA or a GPU. */
#include "tier_util.h"
#include "tiering/tier_internal.h"

int main(void) {
    vt_test_seed();
    if (!vt_tcuda_available(0)) TEST_SKIP("no CUDA device (or built without CUDA)");
    char dir[4096];
    vt_test_tmpdir("streamer_gpu", dir, sizeof dir);
    tu_store ts;
    tu_make(&ts, dir, 16, 32, 96, 512, 32768, 1);
    uint64_t model = 0, maxb = 0;
    for (int i = 0; i < ts.n; i++) {
        model += ts.bytes[i];
        if (ts.bytes[i] > maxb) maxb = ts.bytes[i];
    }
    vt_tier_config c = {
        .vram_bytes = model / 3 + 4 * maxb, .ram_bytes = model / 3 + 4 * maxb, .ring_slots = 4};
    vt_streamer *st = NULL;
    CHECK_RC(vt_streamer_open(ts.s, &c, &st));
    if (!st) return vt_test_done("test_streamer_gpu");
    vt_streamer_stats s;
    CHECK_RC(vt_streamer_get_stats(st, &s));
    CHECK(s.device_is_gpu == 1);
    const char *names[64];
    for (int i = 0; i < ts.n; i++) names[i] = ts.names[i];
    CHECK_RC(vt_streamer_plan(st, names, (size_t)ts.n, VT_SCHEDULE_CYCLIC));
    unsigned char *back = malloc(maxb);
    for (int p = 0; p < 3; p++)
        for (int i = 0; i < ts.n; i++) {
            vt_weight w;
            int rc = vt_streamer_acquire(st, names[i], &w);
            CHECK_RC(rc);
            if (rc) continue;
            CHECK(w.location == VT_LOC_DEVICE && w.bytes == ts.bytes[i]);
            CHECK_RC(vt_tcuda_d2h(back, w.data, w.bytes));
            CHECKF(!memcmp(back, ts.raw[i], w.bytes), "pass %d %s: device bytes differ", p,
                   names[i]);
            CHECK_RC(vt_streamer_release(st, &w));
        }
    CHECK_RC(vt_streamer_get_stats(st, &s));
    CHECK(s.vram.hits > 0 && s.vram.bytes_in > 0);
    printf("vram hits %llu misses %llu, H2D %.3f GB/s\n", (unsigned long long)s.vram.hits,
           (unsigned long long)s.vram.misses, s.vram.gbps);
    free(back);
    vt_streamer_close(st);
    tu_free(&ts);
    return vt_test_done("test_streamer_gpu");
}
