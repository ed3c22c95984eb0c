/* bench/kernels/bench_kernels_main.c — the bench_kernels program (same as `vtstore bench kernels`).
 */
int vt_bench_kernels_main(int argc, char **argv);

int main(int argc, char **argv) {
    return vt_bench_kernels_main(argc, argv);
}
