/* config.json rope_scaling (tools/run/hf_config.c): null, absent or rope_type "default" is no
 * scaling; "llama3" (rope_type, or the older "type") needs factor, low_freq_factor,
 * high_freq_factor and original_max_position_embeddings, and vt_hf_rope_llama3 turns them into
 * per-pair frequency divisors (checked on Llama 3.1 8B's values: 1 for the high frequencies,
 * factor for the low ones, monotone in between, and equal to transformers' smoothing written
 * out here); other types parse with their name kept (the runner refuses them); bad values are
 * VT_EFORMAT naming the key. eos_token_id: every id of a list is kept (Llama 3.1 stops at three);
 * generation_config.json's eos_token_id / bos_token_id replace config.json's.
 */
#include <math.h>

#include "hf_config.h"
#include "vt_test.h"

static const char *base =
    "{\"model_type\": \"llama\", \"hidden_size\": 4096, \"intermediate_size\": "
    "14336, \"num_hidden_layers\": 32, \"num_attention_heads\": 32, "
    "\"rope_theta\": 500000.0, \"rope_scaling\": %s}";

static int parse(const char *rs, vt_hf_config *c) {
    char json[1024];
    snprintf(json, sizeof json, base, rs);
    return vt_hf_config_parse(json, c);
}

int main(void) {
    vt_hf_config c;
    CHECK_RC(parse("null", &c));
    CHECK(c.rope_type[0] == 0);
    CHECK_RC(parse("{\"rope_type\": \"default\"}", &c));
    CHECK(!strcmp(c.rope_type, "default"));
    CHECK_RC(parse("{\"type\": \"linear\", \"factor\": 2.0}", &c));
    CHECK(!strcmp(c.rope_type, "linear"));

    const char *l31 = "{\"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
                      "\"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"}";
    CHECK_RC(parse(l31, &c));
    CHECK(!strcmp(c.rope_type, "llama3") && c.rope_factor == 8.0f && c.rope_low_freq == 1.0f &&
          c.rope_high_freq == 4.0f && c.rope_orig_max_pos == 8192);
    float ff[64];
    CHECK_RC(vt_hf_rope_llama3(&c, 500000.0f, 128, ff));
    int n1 = 0, n8 = 0, mid = 0;
    double worst = 0;
    for (int i = 0; i < 64; i++) {
        n1 += ff[i] == 1.0f;
        n8 += ff[i] == 8.0f;
        if (i) CHECKF(ff[i] >= ff[i - 1], "ff[%d] %g < ff[%d] %g", i, ff[i], i - 1, ff[i - 1]);
        /* transformers: smoothed = (1 - s) * f / factor + s * f in the middle band */
        double f = pow(500000.0, -2.0 * i / 128), wl = 2 * M_PI / f;
        if (wl >= 8192 / 4.0 && wl <= 8192 / 1.0) {
            mid++;
            double s = (8192 / wl - 1) / 3, want = f / ((1 - s) * f / 8 + s * f);
            double e = fabs(ff[i] - want) / want;
            if (e > worst) worst = e;
        }
    }
    printf("llama 3.1 8B: %d pairs unscaled, %d divided by 8, %d smoothed (max rel diff %.2g)\n",
           n1, n8, mid, worst);
    CHECK(n1 + n8 + mid == 64 && n1 > 0 && n8 > 0 && mid > 0 && worst < 1e-6);

    /* the older "type" key, numbers as integers */
    CHECK_RC(parse("{\"type\": \"llama3\", \"factor\": 32, \"low_freq_factor\": 1, "
                   "\"high_freq_factor\": 4, \"original_max_position_embeddings\": 8192}",
                   &c));
    CHECK(!strcmp(c.rope_type, "llama3") && c.rope_factor == 32.0f);

    CHECK(parse("{\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, "
                "\"high_freq_factor\": 4.0}",
                &c) == VT_EFORMAT &&
          strstr(vt_last_error(), "original_max_position_embeddings"));
    CHECK(parse("{\"rope_type\": \"llama3\", \"factor\": \"8\", \"low_freq_factor\": 1.0, "
                "\"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192}",
                &c) == VT_EFORMAT &&
          strstr(vt_last_error(), "factor"));
    CHECK(parse("{\"factor\": 8.0}", &c) == VT_EFORMAT && strstr(vt_last_error(), "rope_type"));
    CHECK(parse("3", &c) == VT_EFORMAT && strstr(vt_last_error(), "rope_scaling"));
    CHECK_RC(parse("{\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 4.0, "
                   "\"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192}",
                   &c));
    CHECK(vt_hf_rope_llama3(&c, 500000.0f, 128, ff) == VT_EFORMAT &&
          strstr(vt_last_error(), "high_freq_factor"));

    /* eos_token_id: every id of a list (Llama 3.1's three), one id, or none; a list longer than
     * VT_HF_MAX_EOS is refused by name, not cut short */
    CHECK_RC(parse("null, \"eos_token_id\": [128001, 128008, 128009]", &c));
    CHECK(c.n_eos == 3 && c.eos_id == 128001 && c.eos_ids[1] == 128008 && c.eos_ids[2] == 128009);
    CHECK_RC(parse("null, \"eos_token_id\": 2", &c));
    CHECK(c.n_eos == 1 && c.eos_id == 2 && c.eos_ids[0] == 2);
    CHECK_RC(parse("null", &c));
    CHECK(c.n_eos == 0 && c.eos_id == -1);
    char many[512] = "null, \"eos_token_id\": [0";
    for (int i = 1; i <= VT_HF_MAX_EOS; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), ", %d", i);
    strcat(many, "]");
    CHECK(parse(many, &c) == VT_EFORMAT && strstr(vt_last_error(), "eos_token_id"));
    /* generation_config.json over it: its eos list and bos replace config.json's when present
     * and not null (what transformers' generate() stops at); absent or null keep them */
    CHECK_RC(parse("null, \"eos_token_id\": 2, \"bos_token_id\": 1", &c));
    CHECK_RC(vt_hf_generation_config_apply("{\"eos_token_id\": [7, 2], \"bos_token_id\": 5}", &c));
    CHECK(c.n_eos == 2 && c.eos_id == 7 && c.eos_ids[1] == 2 && c.bos_id == 5);
    CHECK_RC(vt_hf_generation_config_apply("{\"eos_token_id\": null, \"do_sample\": true}", &c));
    CHECK(c.n_eos == 2 && c.eos_id == 7 && c.bos_id == 5);
    CHECK(vt_hf_generation_config_apply("[1]", &c) == VT_EFORMAT &&
          strstr(vt_last_error(), "generation_config.json"));
    char gmany[512] = "{\"eos_token_id\": [0";
    for (int i = 1; i <= VT_HF_MAX_EOS; i++)
        snprintf(gmany + strlen(gmany), sizeof gmany - strlen(gmany), ", %d", i);
    strcat(gmany, "]}");
    CHECK(vt_hf_generation_config_apply(gmany, &c) == VT_EFORMAT &&
          strstr(vt_last_error(), "generation_config.json: eos_token_id"));
    /* layer_types is Gemma 3's only: another model's (Qwen3-Next's linear_attention) parses,
     * so that the runner refuses its model_type by name instead of a "malformed" layer_types */
    static const char *const lt =
        "{\"model_type\": \"%s\", \"hidden_size\": 64, \"intermediate_size\": 128, "
        "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, "
        "\"layer_types\": [\"linear_attention\", \"full_attention\"]}";
    char js[512];
    snprintf(js, sizeof js, lt, "qwen3_next");
    CHECK_RC(vt_hf_config_parse(js, &c));
    CHECK(!strcmp(c.model_type, "qwen3_next") && c.n_layer_types == 0);
    snprintf(js, sizeof js, lt, "gemma3_text");
    CHECK(vt_hf_config_parse(js, &c) == VT_EFORMAT && strstr(vt_last_error(), "layer_types[0]"));
    /* transformers 5's rope_parameters replaces rope_theta / rope_scaling; Gemma 3's holds one
     * object per attention kind, whose sliding one gives the windowed layers' base */
    static const char *const rp =
        "{\"model_type\": \"%s\", \"hidden_size\": 64, \"intermediate_size\": 128, "
        "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"rope_theta\": 10000, "
        "\"rope_parameters\": %s}";
    snprintf(js, sizeof js, rp, "llama", "{\"rope_type\": \"default\", \"rope_theta\": 1e6}");
    CHECK_RC(vt_hf_config_parse(js, &c));
    CHECK(c.rope_theta == 1e6f && !strcmp(c.rope_type, "default"));
    snprintf(js, sizeof js, rp, "llama",
             "{\"rope_type\": \"linear\", \"factor\": 8, \"rope_theta\": 5e5}");
    CHECK_RC(vt_hf_config_parse(js, &c));
    CHECK(c.rope_theta == 5e5f && !strcmp(c.rope_type, "linear") && c.rope_factor == 8);
    snprintf(js, sizeof js, rp, "gemma3_text",
             "{\"full_attention\": {\"rope_type\": \"linear\", \"factor\": 8, \"rope_theta\": "
             "1e6}, \"sliding_attention\": {\"rope_type\": \"default\", \"rope_theta\": 1e4}}");
    CHECK_RC(vt_hf_config_parse(js, &c));
    CHECK(c.rope_theta == 1e6f && !strcmp(c.rope_type, "linear") && c.rope_factor == 8 &&
          c.rope_local_base == 1e4f);
    snprintf(js, sizeof js, rp, "gemma3_text",
             "{\"full_attention\": {\"rope_type\": \"default\", \"rope_theta\": 1e6}, "
             "\"sliding_attention\": {\"rope_type\": \"linear\", \"factor\": 2}}");
    CHECK(vt_hf_config_parse(js, &c) == VT_EUNSUPPORTED &&
          strstr(vt_last_error(), "sliding_attention"));
    snprintf(js, sizeof js, rp, "llama", "3");
    CHECK(vt_hf_config_parse(js, &c) == VT_EFORMAT && strstr(vt_last_error(), "rope_parameters"));
    snprintf(js, sizeof js, rp, "llama", "{\"rope_type\": \"llama3\", \"factor\": 8}");
    CHECK(vt_hf_config_parse(js, &c) == VT_EFORMAT &&
          strstr(vt_last_error(), "rope_parameters (llama3) has no number low_freq_factor"));
    /* Gemma3ForConditionalGeneration (model_type gemma3): the keys of text_config, absent ones
     * Gemma3TextConfig's defaults; bos/eos from the top level when given there */
    CHECK_RC(vt_hf_config_parse(
        "{\"model_type\": \"gemma3\", \"eos_token_id\": [1, 106], \"hidden_size\": 9, "
        "\"text_config\": {\"hidden_size\": 2560, \"intermediate_size\": 10240, "
        "\"model_type\": \"gemma3_text\", \"num_hidden_layers\": 34, \"rope_scaling\": "
        "{\"factor\": 8.0, \"rope_type\": \"linear\"}, \"sliding_window\": 1024}, "
        "\"vision_config\": {\"hidden_size\": 1152}}",
        &c));
    CHECK(c.multimodal && !strcmp(c.model_type, "gemma3_text") && c.hidden_size == 2560 &&
          c.intermediate_size == 10240 && c.n_layers == 34 && c.n_heads == 8 && c.n_kv_heads == 4 &&
          c.head_dim == 256 && c.window == 1024 && c.vocab_size == 262208 && c.max_pos == 131072 &&
          c.rope_theta == 1e6f && c.rms_eps == 1e-6f && c.tie == 1 &&
          !strcmp(c.rope_type, "linear") && c.rope_factor == 8);
    CHECK(c.n_eos == 2 && c.eos_ids[0] == 1 && c.eos_ids[1] == 106 && c.bos_id == 2);
    /* the defaults for a gemma3_text config that omits keys; other models need them */
    CHECK_RC(vt_hf_config_parse("{\"model_type\": \"gemma3_text\", \"num_attention_heads\": 4, "
                                "\"eos_token_id\": 7, \"bos_token_id\": 5}",
                                &c));
    CHECK(!c.multimodal && c.hidden_size == 2304 && c.n_layers == 26 && c.n_heads == 4 &&
          c.n_kv_heads == 4 && c.window == 4096 && c.n_eos == 1 && c.eos_id == 7 && c.bos_id == 5);
    CHECK(vt_hf_config_parse("{\"model_type\": \"llama\", \"num_attention_heads\": 4}", &c) ==
              VT_EFORMAT &&
          strstr(vt_last_error(), "hidden_size"));
    CHECK(vt_hf_config_parse("{\"model_type\": \"gemma3\", \"text_config\": 3}", &c) ==
              VT_EFORMAT &&
          strstr(vt_last_error(), "text_config"));
    CHECK(vt_hf_config_parse("{\"model_type\": \"gemma3\", \"text_config\": {\"model_type\": "
                             "\"llama\", \"hidden_size\": 64}}",
                             &c) == VT_EUNSUPPORTED &&
          strstr(vt_last_error(), "'llama'"));
    return vt_test_done("test_hf_config");
}
