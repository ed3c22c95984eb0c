/* libFuzzer target of the index record decoders (tensor, chunk, shard and data-directory
 * records) through the store's fuzz entry vt_store_record_decode_test (store_internal.h). */
#include <stddef.h>
#include <stdint.h>

#include "store/store_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    (void)vt_store_record_decode_test(data, size);
    return 0;
}
