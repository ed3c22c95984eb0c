/* libFuzzer target of the JSON reader behind safetensors headers and index files (VT_FUZZ=ON). */
#include <stddef.h>
#include <stdint.h>

#include "store/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    vt_json j;
    if (vt_json_parse((const char *)data, size, "fuzz.json", &j) == 0) {
        uint64_t u;
        for (uint32_t i = 0; i < j.n; i++) (void)vt_json_u64(&j, i, &u);
        vt_json_free(&j);
    }
    return 0;
}
