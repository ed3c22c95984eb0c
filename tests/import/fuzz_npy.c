/* libFuzzer target of the npy parser (built with VT_FUZZ=ON and clang). */
#include <stddef.h>
#include <stdint.h>

#include "store/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    vt_src_file f;
    if (vt_parse_npy_mem(data, size, size, "fuzz.npy", NULL, &f) == 0) vt_src_file_free(&f);
    return 0;
}
