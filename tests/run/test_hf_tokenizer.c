/* tokenizer.json's pre_tokenizer picks the split (tools/run/hf_config.c): Sequence[Digits
 * (individual_digits), ByteLevel] splits numbers digit by digit, a bare ByteLevel keeps them
 * together (GPT-2's " ?\p{N}+"), Sequence[Split(Llama 3's regex), ByteLevel(use_regex false)]
 * groups them by three and Qwen2's regex splits them one by one; every other split (another
 * Split regex, add_prefix_space, Digits without individual_digits, none at all) and a normalizer
 * other than NFC is refused at encode time with -ENOTSUP while decoding still works. A tiny
 * vocabulary with the merges "1 2" and "12 3" tells the splits apart; model.ignore_merges is
 * read (the token "zq" has no merge). The post_processor gives the BOS (vt_tok_bos). */
#include <errno.h>

#include "hf_config.h"
#include "vt_test.h"

static const char *fmt =
    "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"1\": 1, \"2\": 2, \"12\": 3, "
    "\"\\u0120\": 4, \"3\": 5, \"123\": 6, \"z\": 7, \"q\": 8, \"zq\": 9}, \"merges\": [\"1 2\", "
    "\"12 3\"]%s}, \"added_tokens\": [], \"normalizer\": %s, \"pre_tokenizer\": %s}";

/* Encodes "a12 12" (and "zq" when want_zq is not 0) under pre_tokenizer @p pre, normalizer
 * @p norm and model extras @p model_extra. */
static void expect_full(const char *model_extra, const char *norm, const char *pre, int want_rc,
                        const int32_t *want, uint32_t nwant, const char *desc_has,
                        const char *text) {
    char json[4096], desc[256] = "";
    snprintf(json, sizeof json, fmt, model_extra, norm, pre);
    vt_tok *tok = NULL;
    int rc = vt_hf_tokenizer_parse(json, &tok, desc, sizeof desc);
    CHECKF(rc == 0 && tok, "%s: parse rc %d: %s", pre, rc, vt_last_error());
    if (!tok) return;
    CHECKF(strstr(desc, desc_has), "%s: description '%s' lacks '%s'", pre, desc, desc_has);
    int32_t ids[16];
    uint32_t n = 0;
    rc = vt_tok_encode(tok, text, ids, 16, &n);
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

static void expect(const char *pre, int want_rc, const int32_t *want, uint32_t nwant,
                   const char *desc_has) {
    expect_full("", "null", pre, want_rc, want, nwant, desc_has, "a12 12");
}

/* Sequence[Split(regex), ByteLevel(use_regex: false)], as Llama 3 and Qwen2 write it */
static void split_pre(char *buf, size_t cap, const char *regex) {
    snprintf(buf, cap,
             "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": "
             "{\"Regex\": \"%s\"}, \"behavior\": \"Isolated\", \"invert\": false}, {\"type\": "
             "\"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": "
             "false}]}",
             regex);
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
    {
        /* JSON text of the regexes (backslashes escaped once more) */
        static const char *l3 =
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| "
            "?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+";
        static const char *qw =
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}| "
            "?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+";
        static const int32_t l3_ids[] = {0, 6, 4, 6, 5}, qw_ids[] = {0, 1, 2, 5, 4, 1, 2, 5};
        static const int32_t zq[] = {7, 8}, zq_whole[] = {9};
        char pre[1024];
        split_pre(pre, sizeof pre, l3);
        expect_full("", "null", pre, 0, l3_ids, 5, "(Llama-3 regex)", "a123 1233");
        expect_full("", "null", pre, 0, zq, 2, "Split, ByteLevel", "zq");
        expect_full(", \"ignore_merges\": true", "null", pre, 0, zq_whole, 1, "Llama-3", "zq");
        expect_full("", "{\"type\": \"NFC\"}", pre, 0, l3_ids, 5, "normalizer NFC (not applied)",
                    "a123 1233");
        expect_full("", "{\"type\": \"Lowercase\"}", pre, -ENOTSUP, NULL, 0, "normalizer Lowercase",
                    "a123 1233");
        split_pre(pre, sizeof pre, qw);
        expect_full("", "{\"type\": \"NFC\"}", pre, 0, qw_ids, 8, "(Qwen2 regex)", "a123 123");
        /* the Llama-3 Split before a ByteLevel that splits again is another pipeline */
        char bad[1024];
        snprintf(bad, sizeof bad, "%.*s", (int)(strstr(pre, "false}]}") - pre), pre);
        strcat(bad, "true}]}");
        expect_full("", "null", bad, -ENOTSUP, NULL, 0, "Split, ByteLevel", "a");
        split_pre(pre, sizeof pre, "\\\\p{N}{1,3}");
        expect_full("", "null", pre, -ENOTSUP, NULL, 0, "a regex not implemented here", "a");
    }
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
    /* post_processor: the SpecialToken that starts TemplateProcessing's "single" is the BOS
     * (Llama 3 writes it inside a Sequence after a ByteLevel); its id from special_tokens, else
     * from the vocabulary; Qwen2's ByteLevel alone, none or a template starting with $A: no BOS */
    {
        static const struct {
            const char *pp;
            int32_t bos;
        } cases[] = {
            {"{\"type\": \"Sequence\", \"processors\": [{\"type\": \"ByteLevel\"}, {\"type\": "
             "\"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\", "
             "\"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], "
             "\"special_tokens\": {\"<s>\": {\"id\": \"<s>\", \"ids\": [10], \"tokens\": "
             "[\"<s>\"]}}}]}",
             10},
            {"{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": "
             "\"<s>\"}}, {\"Sequence\": {\"id\": \"A\"}}], \"special_tokens\": {}}",
             10},
            {"{\"type\": \"TemplateProcessing\", \"single\": [{\"Sequence\": {\"id\": \"A\"}}, "
             "{\"SpecialToken\": {\"id\": \"<s>\"}}], \"special_tokens\": {}}",
             -1},
            {"{\"type\": \"ByteLevel\", \"add_prefix_space\": false}", -1},
            {"null", -1},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            char json[2048];
            snprintf(json, sizeof json,
                     "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, "
                     "\"merges\": []}, \"added_tokens\": [{\"id\": 10, \"content\": \"<s>\", "
                     "\"special\": true}], \"post_processor\": %s}",
                     cases[i].pp);
            vt_tok *tok = NULL;
            int rc = vt_hf_tokenizer_parse(json, &tok, NULL, 0);
            CHECKF(rc == 0 && vt_tok_bos(tok) == cases[i].bos, "post_processor %zu: rc %d, bos %d",
                   i, rc, vt_tok_bos(tok));
            vt_tok_destroy(tok);
        }
    }
    return vt_test_done("test_hf_tokenizer");
}
