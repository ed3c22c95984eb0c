/* bench/quant/bench_quant.c — the quantization benchmark: the same report as `vtstore quant`
 * (tools/cmd_quant.c is compiled into this program), with the same options. */
#include "cli.h"

int main(int argc, char **argv) {
    return vt_cmd_quant(argc, argv);
}
