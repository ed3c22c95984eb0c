/*
 * vtstore/core.h — status codes, dtypes, tensor descriptors, allocation and I/O hooks,
 * fault injection and the thread pool that every other module builds on.
 *
 * Error convention: every function returns int, 0 on success or a negative code. Codes in
 * [-4095, -1] are -errno values (-EIO, -ENOMEM, -ENOSPC, ...); codes at or below VT_EBASE are
 * vtstore's own. vt_strerror() names any of them. Functions without a handle leave a human
 * message (which file, tensor, chunk and what was wrong) in a thread-local buffer that
 * vt_last_error() returns; handles (vt_store, vt_streamer) keep their own as well.
 *
 *     uint16_t h = vt_f32_to_f16(1.5f);
 *     float back = vt_f16_to_f32(h);                 // 1.5f
 *     int rc = vt_parallel_for(nblocks, work, ctx, 0); // 0 = all threads
 *     if (rc) fprintf(stderr, "%s: %s\n", vt_strerror(rc), vt_last_error());
 */
#ifndef VTSTORE_CORE_H
#define VTSTORE_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes ------------------------------------------------------------------------ */

#define VT_OK           0
#define VT_EBASE        (-10000)
#define VT_EFORMAT      (-10001) /* a file or record is malformed (header lies, truncated) */
#define VT_ECORRUPT     (-10002) /* corrupted or inconsistent: checksum, stored value, index */
#define VT_ENOTFOUND    (-10003) /* no such tensor, chunk or key */
#define VT_EUNSUPPORTED (-10004) /* valid request the build or format cannot serve */
#define VT_ENONFINITE   (-10005) /* NaN or Inf in data to be quantized */
#define VT_EVERSION     (-10006) /* store written by a newer, incompatible version */
#define VT_EEXIST       (-10007) /* name already present */
#define VT_EBUDGET      (-10008) /* request does not fit the configured budget */
#define VT_ECUDA        (-10009) /* CUDA runtime error */
#define VT_ENODEV       (-10010) /* no GPU present or CUDA disabled in this build */
#define VT_ELMDB        (-10011) /* LMDB error without an errno equivalent */
#define VT_EUSAGE       (-10012) /* API misuse: wrong order of calls, bad handle state */
#define VT_ESHAPE       (-10013) /* shapes of operands do not agree */
#define VT_EFAULT       (-10014) /* an injected fault without an errno (tests only) */

/** Static, never-NULL name and description of any status code (errno or VT_E*). */
const char *vt_strerror(int code);

/** Thread-local detail of the last error set on this thread ("" if none). Valid until the next
 *  vtstore call on the same thread. */
const char *vt_last_error(void);

/** Set the thread-local detail (printf style) and return @p code, for `return vt_fail(...)`. */
int vt_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Clear the thread-local detail. */
void vt_clear_error(void);

/* ---- dtypes ------------------------------------------------------------------------------- */

typedef enum vt_dtype {
    VT_DTYPE_F32 = 0,
    VT_DTYPE_F16 = 1,
    VT_DTYPE_BF16 = 2,
    VT_DTYPE_F64 = 3,
    VT_DTYPE_I8 = 4,
    VT_DTYPE_U8 = 5,
    VT_DTYPE_I16 = 6,
    VT_DTYPE_I32 = 7,
    VT_DTYPE_I64 = 8,
    VT_DTYPE_FP8_E4M3 = 9,
    VT_DTYPE_U16 = 10,
    VT_DTYPE_U32 = 11,
    VT_DTYPE_U64 = 12,
    VT_DTYPE_BOOL = 13,
    VT_DTYPE_COUNT
} vt_dtype;

/** Bytes per element of @p t (0 for an invalid value). */
size_t vt_dtype_size(vt_dtype t);
/** Lower-case name ("f32", "bf16", ...) or "?" for an invalid value. */
const char *vt_dtype_name(vt_dtype t);
/** Parse a name as printed by vt_dtype_name. Returns 0 or -EINVAL. */
int vt_dtype_from_name(const char *name, vt_dtype *out);
/** 1 if @p t is a floating-point type. */
int vt_dtype_is_float(vt_dtype t);

/* IEEE binary16. Conversions round to nearest even, keep subnormals, map Inf to Inf and NaN to a
 * quiet NaN (sign and top payload bits kept). */
uint16_t vt_f32_to_f16(float f);
float vt_f16_to_f32(uint16_t h);
/* bfloat16: upper half of binary32, rounded to nearest even; NaN stays NaN (quieted). */
uint16_t vt_f32_to_bf16(float f);
float vt_bf16_to_f32(uint16_t h);
/* OCP FP8 E4M3 ("fn": no Inf, max finite 448, NaN = S.1111.111). Finite values beyond 448
 * saturate to ±448 (the convention NVFP4 block scales use); NaN and ±Inf map to NaN (0x7f|sign). */
uint8_t vt_f32_to_e4m3(float f);
float vt_e4m3_to_f32(uint8_t v);
/* OCP E8M0 shared scale: 2^(v-127), v = 255 is NaN. vt_f32_to_e8m0 returns the exponent of the
 * power of two that is >= |f| rounded up (ceil(log2|f|)) clamped to [-127, 127]; used by MX. */
uint8_t vt_f32_to_e8m0_ceil(float f);
float vt_e8m0_to_f32(uint8_t v);
/* OCP FP4 E2M1 magnitudes {0, .5, 1, 1.5, 2, 3, 4, 6}; code bit 3 is the sign. Encoding rounds
 * to nearest, ties to the even code, and saturates at ±6. */
uint8_t vt_f32_to_e2m1(float f);
float vt_e2m1_to_f32(uint8_t code);

/* Bulk conversions (n elements). */
void vt_f16_to_f32_row(const uint16_t *src, float *dst, size_t n);
void vt_f32_to_f16_row(const float *src, uint16_t *dst, size_t n);
void vt_bf16_to_f32_row(const uint16_t *src, float *dst, size_t n);
void vt_f32_to_bf16_row(const float *src, uint16_t *dst, size_t n);
/** Convert @p n elements of any numeric dtype to f32 (integers exactly where representable). */
int vt_convert_to_f32(vt_dtype src_type, const void *src, float *dst, size_t n);

/* ---- tensor descriptor -------------------------------------------------------------------- */

#define VT_MAX_DIMS 8
#define VT_MAX_NAME 256

/** Shape and type of a dense tensor. dims[0] is the outermost (slowest) dimension, as in
 *  safetensors and numpy; GGUF's ne[] order is reversed on import. */
typedef struct vt_tensor_desc {
    char name[VT_MAX_NAME]; /* NUL-terminated */
    vt_dtype dtype;
    uint32_t ndim;              /* 0..VT_MAX_DIMS */
    uint64_t dims[VT_MAX_DIMS]; /* [ndim] */
} vt_tensor_desc;

/** Element count (1 for a scalar). Returns 0 and sets -EOVERFLOW detail if it overflows. */
uint64_t vt_tensor_numel(const vt_tensor_desc *d);
/** Rows and columns of the 2-D view used by quantization: cols = last dim, rows = the product
 *  of the others (a 1-D tensor is one row). */
void vt_tensor_rows_cols(const vt_tensor_desc *d, uint64_t *rows, uint64_t *cols);

/* ---- allocation and I/O hooks (fault injection) -------------------------------------------- */

/** Every allocation and file I/O in vtstore goes through these. Replace them to account,
 *  to inject failures, or to redirect I/O. Return conventions match the libc calls
 *  (NULL / -1 with errno set). */
typedef struct vt_hooks {
    void *(*malloc_fn)(size_t size);
    void *(*calloc_fn)(size_t n, size_t size);
    void *(*realloc_fn)(void *p, size_t size);
    void (*free_fn)(void *p);
    ssize_t (*pread_fn)(int fd, void *buf, size_t n, off_t off);
    ssize_t (*pwrite_fn)(int fd, const void *buf, size_t n, off_t off);
    int (*fdatasync_fn)(int fd);
} vt_hooks;

/** Install @p h (NULL restores the libc defaults). Not thread-safe against concurrent I/O. */
void vt_hooks_set(const vt_hooks *h);

/* Call sites use these. */
void *vt_malloc(size_t size);
void *vt_calloc(size_t n, size_t size);
void *vt_realloc(void *p, size_t size);
void vt_free(void *p);
char *vt_strdup(const char *s);
/** aligned allocation (alignment a power of two >= sizeof(void*)); free with vt_free_aligned */
void *vt_malloc_aligned(size_t align, size_t size);
void vt_free_aligned(void *p);
/** pread/pwrite loops that retry EINTR and short transfers; return 0 or -errno. A read that hits
 *  end of file before @p n bytes returns VT_EFORMAT (truncated). */
int vt_pread_full(int fd, void *buf, size_t n, uint64_t off);
int vt_pwrite_full(int fd, const void *buf, size_t n, uint64_t off);
int vt_fdatasync(int fd);

/** Fault injection: the @p nth (1-based) hooked call of a kind in @p kinds_mask from now on
 *  fails with @p err (a -errno or VT_E* code; short transfers when err == VT_FAULT_SHORT). Use
 *  vt_fault_count() after a clean run to learn how many sites an operation passes. */
enum {
    VT_FAULT_ALLOC = 1u << 0,
    VT_FAULT_READ = 1u << 1,
    VT_FAULT_WRITE = 1u << 2,
    VT_FAULT_SYNC = 1u << 3,
    VT_FAULT_DEVICE = 1u << 4, /* device/pinned allocations (tiering) */
    VT_FAULT_ENGINE = 1u << 5, /* the read engine: io_uring submit, reaping (tiering) */
    VT_FAULT_ALL = 0x3f,
    /* with this bit, every hooked call of the kinds from the nth on fails (a fault that lasts),
     * not the nth alone */
    VT_FAULT_FROM_NTH = 1u << 30,
};
#define VT_FAULT_SHORT 1 /* pass as err: the read/write transfers half and reports it */
void vt_fault_arm(unsigned kinds_mask, uint64_t nth, int err);
void vt_fault_disarm(void);
/** Number of hooked calls of the armed kinds seen since vt_fault_arm/vt_fault_reset_count. */
uint64_t vt_fault_count(void);
/** 1 if the armed fault has fired. */
int vt_fault_fired(void);

/* ---- thread pool -------------------------------------------------------------------------- */

/** Work item for vt_parallel_for: process task index @p i. Return 0 or an error; the first
 *  error stops handing out new tasks and is returned by vt_parallel_for. */
typedef int (*vt_task_fn)(void *ctx, uint64_t i, int thread_id);

/** Run fn(ctx, i) for i in [0, n) on up to @p nthreads threads of the shared pool (0 = the
 *  number of online CPUs or VT_THREADS from the environment; 1 = inline on the caller).
 *  Blocks until all tasks have finished. Re-entrant calls from a task run inline. Calls from
 *  several threads queue: one job runs at a time. */
int vt_parallel_for(uint64_t n, vt_task_fn fn, void *ctx, int nthreads);
/** Threads the pool uses for nthreads = 0. */
int vt_default_threads(void);
/** Microseconds an idle pool worker spins for the next job before sleeping, and the caller for
 *  the workers to finish (VT_POOL_SPIN_US, default 100; 0: they sleep at once). A hand-off to
 *  spinning workers costs well under a microsecond, one to sleeping workers a futex wake-up
 *  (tens of microseconds in a VM), so callers may size their inline thresholds by it. */
int vt_pool_spin_us(void);

/* ---- CPU features ------------------------------------------------------------------------- */

enum { VT_CPU_AVX2 = 1, VT_CPU_FMA = 2, VT_CPU_F16C = 4, VT_CPU_AVX512F = 8 };
/** Bit set of VT_CPU_* this CPU has; detected once and cached (cpuid traps in a VM). */
int vt_cpu_features(void);

/* ---- misc --------------------------------------------------------------------------------- */

/** Monotonic clock in seconds. */
double vt_now(void);

/** Log levels for vt_log; VT_LOG=debug|info|warn|error|off in the environment sets the level.
 *  Messages go to stderr through a replaceable sink, never stdout. */
typedef enum vt_log_level {
    VT_LOG_DEBUG,
    VT_LOG_INFO,
    VT_LOG_WARN,
    VT_LOG_ERROR,
    VT_LOG_OFF
} vt_log_level;
typedef void (*vt_log_sink)(vt_log_level lvl, const char *msg);
void vt_log_set_sink(vt_log_sink sink);
void vt_log(vt_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Library version string ("0.1.0"). */
const char *vt_version(void);

#ifdef __cplusplus
}
#endif
#endif /* VTSTORE_CORE_H */
