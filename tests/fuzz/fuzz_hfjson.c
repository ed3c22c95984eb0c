/* libFuzzer target of the model runner's JSON inputs (tools/run/hf_config.c, its own JSON
 * reader): the input is parsed as config.json and as tokenizer.json; a tokenizer that builds is
 * then used to encode a few strings (and the input itself) and to decode every id it returns. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hf_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    vt_hf_config c;
    (void)vt_hf_config_parse(text, &c);
    vt_tok *tok = NULL;
    char desc[160];
    if (vt_hf_tokenizer_parse(text, &tok, desc, sizeof desc) == 0 && tok) {
        static const char *s[] = {"Hello, world! 123", "<|im_start|>user\n\xc3\xa9\xff<|im_end|>",
                                  "  \t\n x"};
        int32_t ids[256];
        char buf[64];
        for (int k = 0; k < 4; k++) {
            uint32_t n = 0;
            const char *t = k < 3 ? s[k] : text;
            if (vt_tok_encode(tok, t, ids, 256, &n) != 0) continue;
            for (uint32_t i = 0; i < n; i++) {
                size_t len;
                (void)vt_tok_decode(tok, ids[i], buf, sizeof buf, &len);
            }
        }
        vt_tok_destroy(tok);
    }
    free(text);
    return 0;
}
