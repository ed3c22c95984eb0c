/* Chunk codec: XXH3-64 checksums of stored bytes and optional zstd compression, with zstd's
 * allocations routed through vt_malloc so fault injection reaches them. */
#include <errno.h>
#include <xxhash.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_customMem: route zstd allocations through vt_malloc */
#include <zstd.h>
#include <zstd_errors.h>

#include "store_internal.h"

uint64_t st_chunk_sum(const vt_chunk_info *ci, const void *stored) {
    return (uint64_t)XXH3_64bits_withSeed(stored, ci->stored_len, ci->checksum_seed);
}

static void *zalloc(void *opaque, size_t n) {
    (void)opaque;
    return vt_malloc(n);
}
static void zfree(void *opaque, void *p) {
    (void)opaque;
    vt_free(p);
}
static const ZSTD_customMem zmem = {zalloc, zfree, NULL};

int st_compress(int level, const void *src, size_t n, void **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    size_t bound = ZSTD_compressBound(n);
    void *buf = vt_malloc(bound);
    if (!buf) return vt_fail(-ENOMEM, "out of memory compressing a %zu-byte chunk", n);
    ZSTD_CCtx *c = ZSTD_createCCtx_advanced(zmem);
    if (!c) {
        vt_free(buf);
        return vt_fail(-ENOMEM, "out of memory creating a zstd context");
    }
    size_t r = ZSTD_compressCCtx(c, buf, bound, src, n, level);
    ZSTD_freeCCtx(c);
    if (ZSTD_isError(r)) {
        vt_free(buf);
        if (ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation)
            return vt_fail(-ENOMEM, "zstd: out of memory");
        return vt_fail(VT_EUNSUPPORTED, "zstd compression failed: %s", ZSTD_getErrorName(r));
    }
    if ((uint64_t)r * 100 > (uint64_t)n * 95) { /* saves < 5%: keep raw */
        vt_free(buf);
        return 0;
    }
    *out = buf;
    *out_len = r;
    return 0;
}

int st_decompress(const void *src, size_t n, void *dst, size_t raw_len) {
    unsigned long long fcs = ZSTD_getFrameContentSize(src, n);
    if (fcs != raw_len)
        return vt_fail(VT_ECORRUPT, "zstd frame declares %llu bytes, expected %zu", fcs, raw_len);
    ZSTD_DCtx *d = ZSTD_createDCtx_advanced(zmem);
    if (!d) return vt_fail(-ENOMEM, "out of memory creating a zstd context");
    size_t r = ZSTD_decompressDCtx(d, dst, raw_len, src, n);
    ZSTD_freeDCtx(d);
    if (ZSTD_isError(r)) {
        if (ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation)
            return vt_fail(-ENOMEM, "zstd: out of memory");
        return vt_fail(VT_ECORRUPT, "zstd frame does not decode: %s", ZSTD_getErrorName(r));
    }
    if (r != raw_len)
        return vt_fail(VT_ECORRUPT, "zstd frame decoded to %zu bytes, expected %zu", r, raw_len);
    return 0;
}
