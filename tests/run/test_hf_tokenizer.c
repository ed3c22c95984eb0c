/* tokenizer.json's pre_tokenizer picks the split (tools/run/hf_config.c): Sequence[Digits
 * (individual_digits), ByteLevel] splits numbers digit by digit, a bare ByteLevel keeps them
 * together (GPT-2's " ?\p{N}+"), and every other split (Llama-3's Split regex, add_prefix_space,
 * Digits without individual_digits, none at all) is refused at encode time with -ENOTSUP while
 * decoding still works. A tiny vocabulary with the merge "1 2" tells the splits apart. */
#include <errno.h>

#include "hf_config.h"
#include "vt_test.h"

static const char *fmt =
    "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"1\": 1, \"2\": 2, \"12\": 3, "
    "\"\\u0120\": 4}, \"merges\": [\"1 2\"]}, \"added_tokens\": [], \"pre_tokenizer\": %s}";

static void expect(const char *pre, int want_rc, const int32_t *want, uint32_t nwant,
                   const char *desc_has) {
    char json[2048], desc[160] = "";
    snprintf(json, sizeof json, fmt, pre);
    vt_tok *tok = NULL;
    int rc = vt_hf_tokenizer_parse(json, &tok, desc, sizeof desc);
    CHECKF(rc == 0 && tok, "%s: parse rc %d: %s", pre, rc, vt_last_error());
    if (!tok) return;
    CHECKF(strstr(desc, desc_has), "%s: description '%s' lacks '%s'", pre, desc, desc_has);
    int32_t ids[16];
    uint32_t n = 0;
    rc = vt_tok_encode(tok, "a12 12", ids, 16, &n);
    CHECKF(rc == want_rc, "%s: encode rc %d, want %d", pre, rc, want_rc);
    if (!rc && !want_rc) {
        CHECKF(n == nwant && !memcmp(ids, want, n * sizeof *ids), "%s: %u ids", pre, n);
        for (uint32_t i = 0; i < n; i++) printf(" %d", ids[i]);
        printf("  <- %s\n", pre);
    }
    char b[8];
    size_t len = 0;
    CHECKF(vt_tok_decode(tok, 3, b, sizeof b, &len) == 0 && len == 2 && !memcmp(b, "12", 2),
           "%s: decode", pre);
    vt_tok_destroy(tok);
}

int main(void) {
    static const int32_t digits[] = {0, 1, 2, 4, 1, 2}, grouped[] = {0, 3, 4, 3};
    const char *bl = "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": "
                     "true, \"use_regex\": true}";
    char seq[512];
    snprintf(seq, sizeof seq,
             "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Digits\", "
             "\"individual_digits\": true}, %s]}",
             bl);
    expect(seq, 0, digits, 6, "Sequence [Digits, ByteLevel]");
    expect(bl, 0, grouped, 4, "ByteLevel");
    expect("{\"type\": \"ByteLevel\", \"add_prefix_space\": false}", 0, grouped, 4, "ByteLevel");
    expect("{\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"use_regex\": true}", -ENOTSUP,
           NULL, 0, "ByteLevel");
    expect("{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": false}", -ENOTSUP,
           NULL, 0, "ByteLevel");
    expect("{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": "
           "{\"Regex\": \"(?i:'s|'t)\"}, \"behavior\": \"Isolated\", \"invert\": false}, "
           "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": false}]}",
           -ENOTSUP, NULL, 0, "Sequence [Split, ByteLevel]");
    expect("{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Digits\", "
           "\"individual_digits\": false}, {\"type\": \"ByteLevel\"}]}",
           -ENOTSUP, NULL, 0, "Digits");
    expect("{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Digits\", "
           "\"individual_digits\": true}]}",
           -ENOTSUP, NULL, 0, "Sequence [Digits]");
    expect("null", -ENOTSUP, NULL, 0, "null");
    expect("{\"type\": \"Whitespace\"}", -ENOTSUP, NULL, 0, "Whitespace");
    /* a stray huge id is refused, not turned into gigabytes of placeholders */
    {
        vt_tok *tok = NULL;
        int rc = vt_hf_tokenizer_parse(
            "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 207444390}, "
            "\"merges\": []}}",
            &tok, NULL, 0);
        CHECKF(rc == VT_EFORMAT && !tok && strstr(vt_last_error(), "207444390"), "rc %d: %s", rc,
               vt_last_error());
    }
    return vt_test_done("test_hf_tokenizer");
}
