/* tests/cli_util.h — running the vtstore CLI ($VT_BIN) from a test in a scratch directory.
 * Include once per test program; set bin and dir before calling vt(). */
#ifndef VT_TEST_CLI_UTIL_H
#define VT_TEST_CLI_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static const char *bin; /* the vtstore binary */
static char dir[4096];  /* working directory of the commands */

/* Run "$VT_BIN args" in dir with stdout to out.txt and stderr to err.txt; return exit code. */
static inline int vt(const char *args) {
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s >out.txt 2>err.txt", dir, bin, args);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Contents of dir/name (truncated to 64 KiB; "" if missing). Static buffer: valid until the
 * next call. */
static inline char *slurp(const char *name) {
    static char buf[1 << 16];
    char p[4300];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = 0;
    return buf;
}

/* Occurrences of needle in text. */
static inline int count(const char *text, const char *needle) {
    int n = 0;
    for (const char *s = strstr(text, needle); s; s = strstr(s + 1, needle)) n++;
    return n;
}

#endif
