/* Status codes, thread-local error detail, logging, clock, version. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "vtstore/core.h"

static _Thread_local char last_error[1024];

const char *vt_strerror(int code) {
    switch (code) {
    case VT_OK:
        return "success";
    case VT_EFORMAT:
        return "malformed or truncated input";
    case VT_ECORRUPT:
        return "data corrupted or inconsistent";
    case VT_ENOTFOUND:
        return "not found";
    case VT_EUNSUPPORTED:
        return "not supported";
    case VT_ENONFINITE:
        return "NaN or Inf in input";
    case VT_EVERSION:
        return "store format version is newer than this build";
    case VT_EEXIST:
        return "already exists";
    case VT_EBUDGET:
        return "does not fit the memory budget";
    case VT_ECUDA:
        return "CUDA error";
    case VT_ENODEV:
        return "no GPU available";
    case VT_ELMDB:
        return "LMDB error";
    case VT_EUSAGE:
        return "invalid call sequence";
    case VT_ESHAPE:
        return "shape mismatch";
    case VT_EFAULT:
        return "injected fault";
    default:
        break;
    }
    if (code < 0 && code > -4096) {
        /* strerror is not thread-safe; use a thread-local copy of strerror_r's text */
        static _Thread_local char buf[128];
        const char *s = strerror_r(-code, buf, sizeof buf); /* GNU variant */
        return s ? s : "system error";
    }
    return "unknown error";
}

const char *vt_last_error(void) {
    return last_error;
}

void vt_clear_error(void) {
    last_error[0] = 0;
}

int vt_fail(int code, const char *fmt, ...) {
    /* format into a copy: callers often pass vt_last_error() itself as an argument, and
     * vsnprintf into the buffer it reads from is undefined (it garbled messages) */
    char tmp[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    memcpy(last_error, tmp, sizeof tmp);
    return code;
}

double vt_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

const char *vt_version(void) {
    return "0.1.0";
}

/* ---- logging ---- */
static vt_log_sink log_sink;
static int log_level = -1;

void vt_log_set_sink(vt_log_sink sink) {
    log_sink = sink;
}

static int log_level_get(void) {
    if (log_level < 0) {
        const char *e = getenv("VT_LOG");
        int l = VT_LOG_WARN;
        if (e) {
            if (!strcasecmp(e, "debug"))
                l = VT_LOG_DEBUG;
            else if (!strcasecmp(e, "info"))
                l = VT_LOG_INFO;
            else if (!strcasecmp(e, "warn"))
                l = VT_LOG_WARN;
            else if (!strcasecmp(e, "error"))
                l = VT_LOG_ERROR;
            else if (!strcasecmp(e, "off"))
                l = VT_LOG_OFF;
        }
        log_level = l;
    }
    return log_level;
}

void vt_log(vt_log_level lvl, const char *fmt, ...) {
    if ((int)lvl < log_level_get()) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (log_sink) {
        log_sink(lvl, msg);
        return;
    }
    static const char *names[] = {"debug", "info", "warn", "error"};
    fprintf(stderr, "vtstore %s: %s\n", names[lvl < VT_LOG_OFF ? lvl : 0], msg);
}
