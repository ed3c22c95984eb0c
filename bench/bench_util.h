/* bench/bench_util.h — small helpers the benchmarks share: a seeded pseudo-random stream for their
 * inputs, medians of run times and the machine's 1-minute load average (CPU figures from a shared
 * machine mean little without it). */
#ifndef VT_BENCH_UTIL_H
#define VT_BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* xorshift64*: fixed seed, so every run of a benchmark measures the same inputs */
static uint64_t bench_rng = 0x9e3779b97f4a7c15ull;
static inline uint64_t bench_rand(void) {
    bench_rng ^= bench_rng >> 12;
    bench_rng ^= bench_rng << 25;
    bench_rng ^= bench_rng >> 27;
    return bench_rng * 0x2545F4914F6CDD1DULL;
}

/* qsort comparator for doubles, ascending */
static inline int bench_cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of v[0..n) (sorts v in place). */
static inline double bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, bench_cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* 1-minute load average (/proc/loadavg), or -1 where there is none. */
static inline double bench_load1(void) {
    FILE *f = fopen("/proc/loadavg", "r");
    double l = -1;
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

#endif
