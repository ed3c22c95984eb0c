/* vtstore run — greedy decoding of a Llama-family model from a store, weights streamed through
 * the RAM/VRAM tiers (the model runner lives in run/). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../store/parse.h" /* vt_utf8_valid_len */
#include "cli.h"
#include "npy_io.h"
#include "run/llama.h"
#include "run/hf_config.h"
#include "run/tokenizer.h"
#include "store_print.h"
#include "vtstore/attn.h"
#include "vtstore/kernels.h"
#include "vtstore/meta.h"
#include "vtstore/store.h"
#include "vtstore/tier.h"

static const char *const CMD = "run";

static void usage(FILE *f) {
    fprintf(
        f, "usage: vtstore run STORE (--prompt TEXT | --tokens IDS) [options]\n"
           "\n"
           "Greedy decoding of the Llama-family model in STORE (hyperparameters and tokenizer\n"
           "from the GGUF metadata kept at import, or from the config.json and tokenizer.json\n"
           "kept beside safetensors). Weights are streamed through the tiers in\n"
           "forward order; generated text goes to stdout as it is produced, stats to stderr.\n"
           "\n"
           "  --prompt TEXT     text, encoded with the model's BPE; the model's BOS goes\n"
           "                    first when it asks for one (GGUF add_bos_token, tokenizer.json\n"
           "                    post_processor) and the text does not start with it\n"
           "  --tokens IDS      comma-separated token ids instead of a prompt (used as given;\n"
           "                    also for a SentencePiece vocabulary without piece scores)\n"
           "  --chat            wrap the prompt in the model's chat template: ChatML\n"
           "                    (<|im_start|>user\\nTEXT<|im_end|>\\n<|im_start|>assistant\\n),\n"
           "                    Llama 3's (<|start_header_id|>user<|end_header_id|>...),\n"
           "                    Gemma's (<start_of_turn>user\\nTEXT<end_of_turn>\\n...) or\n"
           "                    Llama 2's ([INST] TEXT [/INST]); any other is refused.\n"
           "                    A ChatML template's default system message (SmolLM2's,\n"
           "                    Qwen2.5's) goes first, as the template writes it\n"
           "  --system TEXT     with --chat: the system message (replaces the template's\n"
           "                    default; refused where the template has no place for one)\n"
           "  --max-new N       tokens to generate (default 32; stops early at any EOS or end\n"
           "                    of turn: config.json's eos_token_id list, GGUF eot/eom and\n"
           "                    fim_pad/rep/sep_token_id, <|eot_id|>, <|eom_id|>, the tokens\n"
           "                    llama.cpp stops at by name (<|im_end|>, <|endoftext|>,\n"
           "                    <end_of_turn>, ...), the template's)\n"
           "  --ram BYTES       RAM tier budget: bytes (K/M/G suffix) or N%% of the model\n"
           "                    (default: everything resident)\n"
           "  --vram BYTES      VRAM tier budget, same syntax (needs --device cuda on a GPU;\n"
           "                    without CUDA the device tier is host memory)\n"
           "  --prefetch N      tensors read ahead (default: the streamer's); streamed\n"
           "                    tensors only: it does not grow the default budget\n"
           "  --kv-format F     KV cache format: f16 (default), bf16, f32, q8_0, int8, q4_0,\n"
           "                    nf4, nvfp4, mxfp4\n"
           "  --ctx N           KV cache capacity (default: prompt + max-new)\n"
           "  --device D        cpu (default) or cuda\n"
           "  --logits FILE     write the logits of every evaluated position, [n, vocab] f32 .npy\n"
           "                    (written also when one is NaN or infinite; the run then fails)\n"
           "  --json            print one JSON object (text, ids, timings, stats) instead; bytes\n"
           "                    of the text that are not well-formed UTF-8 become U+FFFD\n"
           "  --quiet           no text while generating, no stats (with --logits for checks)\n"
           "\n"
           "exit: 0 ok, 1 error (also: logits that are NaN or infinite, at the first such\n"
           "position), 2 usage\n");
}

/* ---- small helpers -------------------------------------------------------------------------- */

/* "25%" of @p model, or bytes. */
static int parse_budget(const char *s, uint64_t model, uint64_t *out, int *pct) {
    size_t n = strlen(s);
    if (n && s[n - 1] == '%') {
        char *end;
        double v = strtod(s, &end);
        if (end != s + n - 1 || !(v > 0) || v > 100000) return -1;
        *out = (uint64_t)(v / 100.0 * (double)model);
        *pct = 1;
        return 0;
    }
    *pct = 0;
    return vt_cli_parse_bytes(s, out);
}

static int parse_ids(const char *s, int32_t **ids, uint32_t *n) {
    uint32_t cap = 16, k = 0;
    int32_t *v = malloc(cap * sizeof *v);
    if (!v) return -1;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < 0 || x > INT32_MAX) {
            free(v);
            return -1;
        }
        if (k == cap) {
            int32_t *w = realloc(v, (cap *= 2) * sizeof *v);
            if (!w) {
                free(v);
                return -1;
            }
            v = w;
        }
        v[k++] = (int32_t)x;
        p = end;
        while (*p == ' ') p++;
        if (*p == ',')
            p++;
        else if (*p) {
            free(v);
            return -1;
        }
    }
    if (!k) {
        free(v);
        return -1;
    }
    *ids = v;
    *n = k;
    return 0;
}

/* Index of the first NaN or infinity in v[0..n), or -1. */
static int64_t first_nonfinite(const float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return (int64_t)i;
    return -1;
}

/* The largest of v[0..n), all finite (first_nonfinite checks before). */
static int32_t argmax(const float *v, uint32_t n) {
    uint32_t b = 0;
    for (uint32_t i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return (int32_t)b;
}

/* The BOS of a GGUF vocabulary, decided as llama.cpp does (llama-vocab.cpp): the key
 * tokenizer.ggml.add_bos_token when present; without it, yes for an SPM vocabulary
 * (tokenizer.ggml.model "llama") and for the BPE pre-tokenizers llama.cpp sets it for (the
 * Llama-3 names, falcon3, tekken, chameleon), no for the other BPE ones (smollm, qwen2, gpt-2,
 * ...). The id is tokenizer.ggml.bos_token_id, else llama.cpp's default for the model (1 for
 * llama, 11 for gpt2). */
static void gguf_bos(vt_store *s, vt_tok *tok, const char *model, const char *pre, char *bad,
                     size_t bad_cap) {
    static const char *const bos_pre[] = {"llama3",  "llama-v3", "llama-bpe",
                                          "falcon3", "tekken",   "chameleon"};
    uint32_t add = 0, id;
    int add_key = !vt_meta_get_u32(s, "gguf.tokenizer.ggml.add_bos_token", &add);
    if (!add_key) {
        add = !strcmp(model, "llama");
        for (size_t i = 0; pre && i < sizeof bos_pre / sizeof bos_pre[0]; i++)
            if (!strcmp(pre, bos_pre[i])) add = 1;
    }
    int id_key = !vt_meta_get_u32(s, "gguf.tokenizer.ggml.bos_token_id", &id);
    if (!id_key) id = !strcmp(model, "llama") ? 1 : !strcmp(model, "gpt2") ? 11 : UINT32_MAX;
    vt_clear_error();
    if (!add) return;
    if (id < vt_tok_n_tokens(tok)) {
        vt_tok_set_bos(tok, (int32_t)id);
        return;
    }
    /* a BOS the vocabulary does not have: left out, the prompt would silently lack it (llama.cpp
     * warns and falls back to its default id, 1 or 11, some other token); refused with --prompt */
    char why[96];
    if (id_key)
        snprintf(why, sizeof why, "tokenizer.ggml.bos_token_id is %u", id);
    else if (id != UINT32_MAX)
        snprintf(why, sizeof why, "tokenizer.ggml.bos_token_id is absent and the default is %u",
                 id);
    else
        snprintf(why, sizeof why, "tokenizer.ggml.bos_token_id is absent");
    snprintf(bad, bad_cap,
             "the model asks for a BOS before the prompt (tokenizer.ggml.add_bos_token %s) but %s, "
             "not one of its %u tokens",
             add_key ? "true" : "absent, true by llama.cpp's default for this tokenizer", why,
             vt_tok_n_tokens(tok));
}

/* Tokenizer from the GGUF vocabulary kept in the store: tokens, merges, token types, and the
 * pre-tokenizer named by tokenizer.ggml.pre; or, in a store imported from safetensors, from the
 * tokenizer.json kept beside it. @p pre_desc gets a description of the pre-tokenizer. A
 * SentencePiece vocabulary (tokenizer.ggml.model "llama": no merges) sets *spm: 2 when it encodes
 * (tokenizer.ggml.scores, one per token), 1 when it only decodes.
 * A BOS the model asks for but the vocabulary lacks is described in @p bad_bos (else ""). */
static int load_tokenizer(vt_store *s, vt_tok **tok, char *pre_desc, size_t pre_cap, int *spm,
                          char *bad_bos, size_t bad_cap) {
    vt_meta_strings *toks = NULL, *merges = NULL;
    int32_t *types = NULL;
    uint64_t ntypes = 0;
    const char *key = "gguf.tokenizer.ggml.tokens";
    uint32_t ty;
    char model[32] = "";
    *spm = 0;
    *bad_bos = 0;
    if (vt_meta_get_type(s, key, &ty, NULL) == VT_ENOTFOUND &&
        !vt_meta_get_type(s, "tokenizer.json", &ty, NULL)) {
        vt_clear_error();
        int rc = vt_hf_tokenizer_load(s, tok, pre_desc, pre_cap);
        return rc ? vt_fail(rc, "store metadata tokenizer.json: %s", vt_last_error()) : 0;
    }
    vt_clear_error();
    if (vt_meta_get_string(s, "gguf.tokenizer.ggml.model", model, sizeof model, NULL)) model[0] = 0;
    vt_clear_error();
    *spm = !strcmp(model, "llama"); /* SentencePiece: llama.cpp's LLAMA_VOCAB_TYPE_SPM */
    int rc = vt_meta_get_strings(s, key, &toks);
    if (!rc && !*spm) rc = vt_meta_get_strings(s, key = "gguf.tokenizer.ggml.merges", &merges);
    if (rc == VT_ENOTFOUND && merges == NULL && toks) {
        char safe[4 * sizeof model];
        rc = vt_fail(rc,
                     "store metadata %s: not found (a BPE vocabulary needs its merges; "
                     "tokenizer.ggml.model is '%s')",
                     key, vt_print_safe(model, safe, sizeof safe));
    } else if (rc) {
        rc = vt_fail(rc, "store metadata %s: %s", key, vt_strerror(rc));
    } else if (toks->count == 0 || toks->count > INT32_MAX ||
               (merges && merges->count > UINT32_MAX)) {
        rc = vt_fail(VT_EFORMAT, "store metadata: %llu tokens, %llu merges",
                     (unsigned long long)toks->count,
                     (unsigned long long)(merges ? merges->count : 0));
    } else {
        if (vt_meta_get_i32_array(s, "gguf.tokenizer.ggml.token_type", &types, &ntypes) ||
            ntypes != toks->count) { /* optional: without it no special token is matched */
            vt_free(types);
            types = NULL;
            vt_clear_error();
        }
        rc = *spm ? vt_tok_create_spm(toks->str, (uint32_t)toks->count, types, tok)
                  : vt_tok_create(toks->str, (uint32_t)toks->count, merges->str,
                                  (uint32_t)merges->count, types, tok);
        if (rc) {
            rc = vt_fail(rc, "tokenizer from store metadata gguf.tokenizer.ggml.*: %s",
                         *vt_tok_error() ? vt_tok_error() : vt_strerror(rc));
        } else {
            char pre[64];
            int absent = vt_meta_get_string(s, "gguf.tokenizer.ggml.pre", pre, sizeof pre, NULL);
            vt_clear_error();
            enum vt_tok_pre mode = vt_tok_pre_from_gguf(absent ? NULL : pre);
            vt_tok_set_pre(*tok, mode);
            /* llama.cpp sets ignore_merges for the Llama-3 names, as their tokenizer.json does */
            vt_tok_set_ignore_merges(*tok, mode == VT_TOK_PRE_LLAMA3);
            gguf_bos(s, *tok, model, absent ? NULL : pre, bad_bos, bad_cap);
            float *scores = NULL;
            uint64_t nscores = 0;
            uint32_t space = 1; /* tokenizer.ggml.add_space_prefix: llama.cpp's default true */
            if (*spm &&
                !vt_meta_get_f32_array(s, "gguf.tokenizer.ggml.scores", &scores, &nscores) &&
                nscores == toks->count) {
                if (vt_meta_get_u32(s, "gguf.tokenizer.ggml.add_space_prefix", &space)) space = 1;
                if (!vt_tok_set_spm_scores(*tok, scores, (int)space)) *spm = 2; /* encodes */
            }
            vt_free(scores);
            vt_clear_error();
            if (*spm)
                snprintf(pre_desc, pre_cap, "GGUF tokenizer.ggml.model 'llama': SentencePiece");
            else
                snprintf(pre_desc, pre_cap, "GGUF tokenizer.ggml.pre %s%s%s", absent ? "" : "'",
                         absent ? "absent" : pre, absent ? "" : "'");
        }
    }
    vt_meta_strings_free(toks);
    vt_meta_strings_free(merges);
    vt_free(types);
    return rc;
}

/* ---- chat templates ------------------------------------------------------------------------- */

/* CHAT_LLAMA2*: llama.cpp's llama2 template family (Llama 2 chat, Mistral 7B Instruct v0.1),
 * CHAT_LLAMA2_STRIP the variant whose Jinja strips the message (`content.strip()`) */
enum chat_kind { CHAT_CHATML, CHAT_LLAMA3, CHAT_LLAMA2, CHAT_LLAMA2_STRIP, CHAT_GEMMA };

/* 1 if the template trims the message (Llama 3's and Gemma's `| trim`, Llama 2 chat's
 * content.strip()). */
static int chat_trims(enum chat_kind k) {
    return k == CHAT_LLAMA3 || k == CHAT_LLAMA2_STRIP || k == CHAT_GEMMA;
}

static const char *chat_name(enum chat_kind k) {
    return k == CHAT_LLAMA3   ? "Llama 3"
           : k == CHAT_CHATML ? "ChatML"
           : k == CHAT_GEMMA  ? "Gemma"
                              : "Llama 2 [INST]";
}

static const char *const llama3_specials[] = {"<|begin_of_text|>", "<|start_header_id|>",
                                              "<|end_header_id|>", "<|eot_id|>"};
static const char *const gemma_specials[] = {"<start_of_turn>", "<end_of_turn>"};

static int has_specials(const vt_tok *tok, const char *const *names, size_t n) {
    int32_t id;
    for (size_t i = 0; i < n; i++)
        if (vt_tok_find_special(tok, names[i], &id)) return 0;
    return 1;
}

/* What --chat knows of the template beyond its kind: whether it takes a system message, and the
 * one it writes when the conversation has none. */
typedef struct chat_info {
    enum chat_kind kind;
    int takes_system; /* a system message has a place in the template */
    char *def_system; /* the template's default system message (malloc'd) or NULL */
    char *sys_head;   /* Llama 3.1+: the text its system turn always starts with ("Cutting
                       * Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"), or NULL */
} chat_info;

/* The constant text of a Jinja string literal whose body starts at @p p (after its opening
 * @p quote), escapes undone, up to its closing quote. NULL on a missing end or no memory (*oom
 * set). */
static char *jinja_literal(const char *p, char quote, int *oom) {
    const char *e = p;
    while (*e && *e != quote) e += *e == '\\' && e[1] ? 2 : 1;
    if (!*e) return NULL;
    char *out = malloc((size_t)(e - p) + 1), *o = out;
    if (!out) {
        *oom = 1;
        return NULL;
    }
    for (const char *c = p; c < e; c++) {
        if (*c == '\\' && c + 1 < e) {
            c++;
            *o++ = *c == 'n' ? '\n' : *c == 't' ? '\t' : *c == 'r' ? '\r' : *c;
        } else
            *o++ = *c;
    }
    *o = 0;
    return out;
}

/* The default system message of a ChatML template: the text of a string constant
 * '<|im_start|>system\n...<|im_end|>' (SmolLM2's "You are a helpful AI assistant named SmolLM,
 * ...", Qwen2.5's "You are Qwen, ..."), which such templates write when the conversation has no
 * system message, the newline written as itself or as the Jinja escape; escapes undone. NULL when
 * no such constant is there (Qwen3's template, plain ChatML: the system turn is the caller's).
 * 0 or -ENOMEM. */
static int chatml_default_system(const char *t, char **def) {
    *def = NULL;
    static const char mark[] = "<|im_start|>system";
    for (const char *p = t; (p = strstr(p, mark)); p += sizeof mark - 1) {
        const char quote = p > t ? p[-1] : 0;
        if (quote != '\'' && quote != '"') continue; /* not the start of a string constant */
        const char *q = p + sizeof mark - 1;
        if (*q == '\n')
            q++;
        else if (q[0] == '\\' && q[1] == 'n')
            q += 2;
        else
            continue;
        int oom = 0;
        char *lit = jinja_literal(q, quote, &oom), *e = lit ? strstr(lit, "<|im_end|>") : NULL;
        if (e) { /* one constant up to <|im_end|> */
            *e = 0;
            *def = lit;
            return 0;
        }
        free(lit); /* the constant ends first: '...system\n' + content + ... */
        if (oom) return -ENOMEM;
    }
    return 0;
}

/* Llama 3.1+'s templates (3.1, 3.2, 3.3) always write a system turn that starts "Cutting
 * Knowledge Date: December 2023\nToday Date: " + date_string + "\n\n", before the system message
 * (empty when none): the knowledge line is the template's string constant; date_string is
 * today's date ("%d %b %Y", local time) where the template takes it from strftime_now (3.2, as
 * transformers defines it), else the template's default literal (`set date_string = "26 Jul
 * 2024"`). *head NULL for other Llama 3 templates (3.0's has none). 0 or -ENOMEM. */
static int llama31_sys_head(const char *t, char **head) {
    *head = NULL;
    const char *k = strstr(t, "Cutting Knowledge Date:");
    if (!k || k == t || (k[-1] != '"' && k[-1] != '\'') || !strstr(t, "Today Date: ")) return 0;
    int oom = 0;
    char *know = jinja_literal(k, k[-1], &oom);
    if (!know) return oom ? -ENOMEM : 0;
    char date[64] = "26 Jul 2024";
    const char *ds = strstr(t, "set date_string = ");
    if (ds && (ds[18] == '"' || ds[18] == '\'')) {
        char *d = jinja_literal(ds + 19, ds[18], &oom);
        if (d) snprintf(date, sizeof date, "%s", d);
        free(d);
    }
    if (strstr(t, "strftime_now")) {
        time_t now = time(NULL);
        struct tm tmv;
        if (localtime_r(&now, &tmv)) strftime(date, sizeof date, "%d %b %Y", &tmv);
    }
    size_t n = strlen(know) + strlen(date) + 32;
    *head = oom ? NULL : malloc(n);
    if (*head) snprintf(*head, n, "%sToday Date: %s\n\n", know, date);
    free(know);
    return *head ? 0 : -ENOMEM;
}

/* The chat template --chat applies: named by the template text when the store has one (GGUF
 * tokenizer.chat_template, or for a store from safetensors tokenizer_config.json's chat_template;
 * Llama 3's uses <|start_header_id|> and <|eot_id|>, ChatML <|im_start|>, Gemma's
 * <start_of_turn>, Llama 2's [INST]), else
 * by the vocabulary's special tokens. Either way the template's special tokens must be in the
 * vocabulary. A system message has a place in ChatML and Llama 3's, in Gemma's when the template
 * prefixes it to the first user turn (Gemma 3's first_user_prefix; Gemma 2's refuses one) and in
 * Llama 2's when it has <<SYS>>. 0, or -1 with the reason in @p why. */
static int chat_template(vt_store *s, const vt_tok *tok, chat_info *ci, char *why, size_t cap) {
    enum chat_kind *kind = &ci->kind;
    ci->takes_system = 0;
    ci->def_system = NULL;
    ci->sys_head = NULL;
    static const char *const chatml[] = {"<|im_start|>", "<|im_end|>"};
    size_t len = 0;
    char *t = NULL;
    const char *src = "GGUF tokenizer.chat_template";
    if (vt_meta_get_string(s, "gguf.tokenizer.chat_template", NULL, 0, &len) == -ERANGE &&
        (t = malloc(len + 1)) &&
        vt_meta_get_string(s, "gguf.tokenizer.chat_template", t, len + 1, NULL)) {
        free(t);
        t = NULL;
    }
    if (!t) { /* a store from safetensors: tokenizer_config.json's */
        char *h = NULL;
        if (!vt_hf_chat_template(s, &h) && (t = strdup(h))) src = "tokenizer_config.json";
        vt_free(h);
    }
    vt_clear_error();
    int ok = 0;
    if (t) {
        if (strstr(t, "<|start_header_id|>") && strstr(t, "<|eot_id|>")) {
            *kind = CHAT_LLAMA3;
            ok = has_specials(tok, llama3_specials, 4);
            ci->takes_system = 1;
            if (ok && llama31_sys_head(t, &ci->sys_head)) {
                free(t);
                snprintf(why, cap, "out of memory");
                return -1;
            }
        } else if (strstr(t, "<|im_start|>")) {
            *kind = CHAT_CHATML;
            ok = has_specials(tok, chatml, 2);
            ci->takes_system = 1;
            if (ok && chatml_default_system(t, &ci->def_system)) {
                free(t);
                snprintf(why, cap, "out of memory");
                return -1;
            }
        } else if (strstr(t, "<start_of_turn>")) {
            *kind = CHAT_GEMMA;
            ok = has_specials(tok, gemma_specials, 2);
            ci->takes_system = strstr(t, "first_user_prefix") != NULL;
        } else if (strstr(t, "[INST]") && !strstr(t, "[SYSTEM_PROMPT]") &&
                   !strstr(t, "' [INST] ' + system_message") && !strstr(t, "[AVAILABLE_TOOLS]")) {
            /* llama.cpp's llama2 family (its Mistral v1/v3/v7 variants, told apart by those
             * strings, place spaces differently: refused); plain text, no special tokens */
            *kind = strstr(t, "content.strip()") ? CHAT_LLAMA2_STRIP : CHAT_LLAMA2;
            ok = 1;
            ci->takes_system = strstr(t, "<<SYS>>") != NULL;
        }
        if (!ok)
            snprintf(why, cap,
                     "its chat template (%s) is %s; --chat implements ChatML, Llama 3's, "
                     "Gemma's and Llama 2's [INST]",
                     src,
                     strstr(t, "<|start_header_id|>") || strstr(t, "<|im_start|>") ||
                             strstr(t, "<start_of_turn>")
                         ? "named, but the vocabulary lacks its special tokens"
                     : strstr(t, "[INST]") ? "a Mistral [INST] variant (v1, v3 or v7)"
                                           : "none of ChatML, Llama 3's, Gemma's and Llama 2's");
        free(t);
        return ok ? 0 : -1;
    }
    if (has_specials(tok, llama3_specials, 4)) {
        *kind = CHAT_LLAMA3;
        ci->takes_system = 1;
        return 0;
    }
    if (has_specials(tok, chatml, 2)) {
        *kind = CHAT_CHATML;
        ci->takes_system = 1;
        return 0;
    }
    if (has_specials(tok, gemma_specials, 2)) {
        *kind = CHAT_GEMMA;
        return 0;
    }
    snprintf(why, cap,
             "the store has no chat template and the vocabulary has none of ChatML's special "
             "tokens (<|im_start|>, <|im_end|>), Llama 3's (<|begin_of_text|>, "
             "<|start_header_id|>, <|end_header_id|>, <|eot_id|>) and Gemma's "
             "(<start_of_turn>, <end_of_turn>)");
    return -1;
}

typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

static int sb_add(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t c = (b->n + n + 1) * 2;
        char *q = realloc(b->p, c);
        if (!q) return -1;
        b->p = q;
        b->cap = c;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

/* The UTF-8 code point at p[0..n) is whitespace as Python's str.isspace() has it (Jinja's
 * `trim`, `strip()`): its length in bytes, else 0. */
static size_t ws_at(const unsigned char *p, size_t n) {
    if (!n) return 0;
    if (p[0] < 0x80) return strchr(" \t\n\r\v\f\x1c\x1d\x1e\x1f", p[0]) && p[0] ? 1 : 0;
    if (n >= 2 && p[0] == 0xC2 && (p[1] == 0x85 || p[1] == 0xA0)) return 2; /* U+0085, U+00A0 */
    if (n < 3) return 0;
    const unsigned c = (unsigned)(p[0] & 0x0F) << 12 | (unsigned)(p[1] & 0x3F) << 6 | (p[2] & 0x3F);
    if ((p[0] & 0xF0) != 0xE0 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
    return c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
                   c == 0x202F || c == 0x205F || c == 0x3000
               ? 3
               : 0;
}

/* Trim Jinja's / Python's whitespace (ws_at) from both ends of [*p, *p + *n). */
static void trim_ws(const char **p, size_t *n) {
    size_t l;
    while ((l = ws_at((const unsigned char *)*p, *n))) *p += l, *n -= l;
    for (int again = 1; again && *n;) {
        again = 0;
        for (size_t k = 1; k <= 3 && k <= *n; k++)
            if (ws_at((const unsigned char *)*p + *n - k, k) == k) {
                *n -= k;
                again = 1;
                break;
            }
    }
}

/* The prompt text --chat encodes: a system turn when @p sys is not NULL (the caller checked that
 * the template takes one), one user turn and the assistant's header. Llama 3's and Gemma's
 * templates trim the message (their Jinja `| trim`, llama.cpp's trim()), and so does the Llama 2
 * variant with `content.strip()`; ChatML and plain Llama 2 keep it as is. ChatML's system turn is
 * "<|im_start|>system\nSYS<|im_end|>\n" as is, Llama 3's a system header and SYS trimmed. Gemma's
 * is "<start_of_turn>user\n[SYS\n\n]MSG<end_of_turn>\n<start_of_turn>model\n" after the
 * tokenizer's BOS (Gemma 3's first_user_prefix: SYS as is). Llama 2's is "[INST] CONTENT [/INST]"
 * after the BOS the tokenizer puts first (as llama.cpp writes it; the Jinja template has bos_token
 * in its text), CONTENT "<<SYS>>\nSYS\n<</SYS>>\n\nMSG" or MSG, stripped as a whole by the
 * strip variant. *start gets the offset of the (trimmed) message in the text. */
static char *chat_text(enum chat_kind kind, const char *sys_head, const char *sys, const char *msg,
                       size_t *start) {
    size_t n = strlen(msg), ns = sys ? strlen(sys) : 0;
    if (kind == CHAT_LLAMA3 || kind == CHAT_GEMMA) trim_ws(&msg, &n);
    if (kind == CHAT_LLAMA3 && sys) trim_ws(&sys, &ns);
    sbuf b = {0};
    int e = 0;
#define ADD(str, len) (e |= sb_add(&b, (str), (len)))
#define ADDS(str)     ADD((str), strlen(str))
    switch (kind) {
    case CHAT_LLAMA3:
        ADDS("<|begin_of_text|>");
        if (sys || sys_head) {
            ADDS("<|start_header_id|>system<|end_header_id|>\n\n");
            if (sys_head) ADDS(sys_head);
            if (sys) ADD(sys, ns);
            ADDS("<|eot_id|>");
        }
        ADDS("<|start_header_id|>user<|end_header_id|>\n\n");
        *start = b.n;
        ADD(msg, n);
        ADDS("<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    case CHAT_CHATML:
        if (sys) {
            ADDS("<|im_start|>system\n");
            ADD(sys, ns);
            ADDS("<|im_end|>\n");
        }
        ADDS("<|im_start|>user\n");
        *start = b.n;
        ADD(msg, n);
        ADDS("<|im_end|>\n<|im_start|>assistant\n");
        break;
    case CHAT_GEMMA:
        ADDS("<start_of_turn>user\n");
        if (sys) {
            ADD(sys, ns);
            ADDS("\n\n");
        }
        *start = b.n;
        ADD(msg, n);
        ADDS("<end_of_turn>\n<start_of_turn>model\n");
        break;
    default: { /* Llama 2: [INST] CONTENT [/INST], CONTENT stripped as a whole by the variant */
        ADDS("[INST] ");
        const size_t c0 = b.n;
        if (sys) {
            ADDS("<<SYS>>\n");
            ADD(sys, ns);
            ADDS("\n<</SYS>>\n\n");
        }
        *start = b.n;
        ADD(msg, n);
        if (!e && kind == CHAT_LLAMA2_STRIP) {
            const char *c = b.p + c0;
            size_t nc = b.n - c0;
            trim_ws(&c, &nc);
            const size_t lead = (size_t)(c - (b.p + c0));
            memmove(b.p + c0, c, nc);
            b.n = c0 + nc;
            *start = *start > c0 + lead ? *start - lead : c0;
        }
        ADDS(" [/INST]");
        break;
    }
    }
#undef ADD
#undef ADDS
    if (e) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* Append the bytes of token @p id to @p text, and with @p print write them to stdout. A token
 * of any length (a vocabulary may hold tokens of hundreds of bytes); an id the tokenizer does
 * not have (an embedding padded beyond the vocabulary) has no text. -1: out of memory. */
static int add_piece(const vt_tok *tok, int32_t id, sbuf *text, int print) {
    char buf[256], *piece = buf;
    size_t pl = 0;
    int rc = vt_tok_decode(tok, id, buf, sizeof buf, &pl);
    if (rc == -ENOSPC) {
        if (!(piece = malloc(pl + 1))) return -1;
        rc = vt_tok_decode(tok, id, piece, pl + 1, &pl);
    }
    int bad = 0;
    if (rc == 0) {
        bad = sb_add(text, piece, pl);
        if (!bad && print) {
            fwrite(piece, 1, pl, stdout);
            fflush(stdout);
        }
    }
    if (piece != buf) free(piece);
    return bad;
}

static double hit_rate(const vt_tier_stats *t) {
    uint64_t a = t->hits + t->misses;
    /* no acquires: the model holds every (all pinned) handle since its first pass */
    return a ? (double)t->hits / (double)a : 1.0;
}

static void print_tier(FILE *f, const char *name, const vt_tier_stats *t, double ntok) {
    fprintf(f,
            "  %-4s budget %.1f MiB, pinned %llu tensors (%.1f MiB), %u slots of %.1f MiB; "
            "hits %llu, misses %llu (hit rate %.1f%%), filled %.2f MiB/token at %.2f GB/s\n",
            name, t->capacity / 1048576.0, (unsigned long long)t->pinned_tensors,
            t->pinned_bytes / 1048576.0, t->slots, t->slot_bytes / 1048576.0,
            (unsigned long long)t->hits, (unsigned long long)t->misses, 100 * hit_rate(t),
            ntok > 0 ? t->bytes_in / ntok / 1048576.0 : 0.0, t->gbps);
}

static void json_tier(FILE *f, const vt_tier_stats *t) {
    fprintf(f,
            "{\"capacity\": %llu, \"pinned_bytes\": %llu, \"pinned_tensors\": %llu, "
            "\"slots\": %u, \"slot_bytes\": %llu, \"hits\": %llu, \"misses\": %llu, "
            "\"hit_rate\": %.6f, \"bytes_in\": %llu, \"fill_seconds\": %.6f, \"gbps\": %.4f}",
            (unsigned long long)t->capacity, (unsigned long long)t->pinned_bytes,
            (unsigned long long)t->pinned_tensors, t->slots, (unsigned long long)t->slot_bytes,
            (unsigned long long)t->hits, (unsigned long long)t->misses, hit_rate(t),
            (unsigned long long)t->bytes_in, t->fill_seconds, t->gbps);
}

static void json_phase(FILE *f, const char *name, uint32_t ntok, double sec,
                       const vt_streamer_stats *s) {
    fprintf(f,
            "\"%s\": {\"tokens\": %u, \"seconds\": %.6f, \"tokens_per_s\": %.4f, "
            "\"bytes_read\": %llu, \"bytes_read_per_token\": %.1f, \"stall_seconds\": %.6f, "
            "\"acquires\": %llu, \"ram\": ",
            name, ntok, sec, sec > 0 ? ntok / sec : 0.0, (unsigned long long)s->bytes_read,
            ntok ? (double)s->bytes_read / ntok : 0.0, s->stall_seconds,
            (unsigned long long)s->acquires);
    json_tier(f, &s->ram);
    fputs(", \"vram\": ", f);
    json_tier(f, &s->vram);
    fputc('}', f);
}

static void print_phase(FILE *f, const char *name, uint32_t ntok, double sec,
                        const vt_streamer_stats *s) {
    fprintf(f,
            "%s: %u tokens in %.3f s = %.2f tokens/s; read %.2f MiB/token from disk, "
            "stalled %.1f ms/token\n",
            name, ntok, sec, sec > 0 ? ntok / sec : 0.0,
            ntok ? s->bytes_read / (double)ntok / 1048576.0 : 0.0,
            ntok ? 1e3 * s->stall_seconds / ntok : 0.0);
    if (s->vram.capacity) print_tier(f, "vram", &s->vram, ntok);
    print_tier(f, "ram", &s->ram, ntok);
}

/* ---- the command ---------------------------------------------------------------------------- */

int vt_cmd_run(int argc, char **argv) {
    if (vt_cli_wants_help(argc, argv)) {
        usage(stdout);
        return VT_EXIT_OK;
    }
    const char *store_path = NULL, *prompt = NULL, *ids_arg = NULL, *ram_arg = NULL,
               *vram_arg = NULL, *kv_arg = "f16", *dev_arg = "cpu", *logits_path = NULL,
               *system_arg = NULL;
    int chat = 0, json = 0, quiet = 0;
    long max_new = 32, ctx = 0, prefetch = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
#define NEXT()                                                                                     \
    (i + 1 < argc ? argv[++i]                                                                      \
                  : (fprintf(stderr, "vtstore run: %s needs a value\n", a), (char *)NULL))
        if (!strcmp(a, "--prompt")) {
            if (!(prompt = NEXT())) return VT_EXIT_USAGE;
        } else if (!strcmp(a, "--tokens")) {
            if (!(ids_arg = NEXT())) return VT_EXIT_USAGE;
        } else if (!strcmp(a, "--system")) {
            if (!(system_arg = NEXT())) return VT_EXIT_USAGE;
        } else if (!strcmp(a, "--chat"))
            chat = 1;
        else if (!strcmp(a, "--json"))
            json = 1;
        else if (!strcmp(a, "--quiet"))
            quiet = 1;
        else if (!strcmp(a, "--ram")) {
            if (!(ram_arg = NEXT())) return VT_EXIT_USAGE;
        } else if (!strcmp(a, "--vram")) {
            if (!(vram_arg = NEXT())) return VT_EXIT_USAGE;
        } else if (!strcmp(a, "--kv-format")) {
            if (!(kv_arg = NEXT())) return VT_EXIT_USAGE;
        } else if (!strcmp(a, "--device")) {
            if (!(dev_arg = NEXT())) return VT_EXIT_USAGE;
        } else if (!strcmp(a, "--logits")) {
            if (!(logits_path = NEXT())) return VT_EXIT_USAGE;
        } else if (!strcmp(a, "--max-new") || !strcmp(a, "--ctx") || !strcmp(a, "--prefetch")) {
            const char *v = NEXT();
            char *end;
            if (!v) return VT_EXIT_USAGE;
            long x = strtol(v, &end, 10);
            if (*end || end == v || x < 0 || x > (1L << 24)) {
                fprintf(stderr, "vtstore run: %s: '%s' is not a count\n", a, v);
                return VT_EXIT_USAGE;
            }
            if (!strcmp(a, "--max-new"))
                max_new = x;
            else if (!strcmp(a, "--ctx"))
                ctx = x;
            else
                prefetch = x;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "vtstore run: unknown option %s (see --help)\n", a);
            return VT_EXIT_USAGE;
        } else if (!store_path) {
            store_path = a;
        } else {
            fprintf(stderr, "vtstore run: unexpected argument %s\n", a);
            return VT_EXIT_USAGE;
        }
#undef NEXT
    }
    if (!store_path || (!prompt == !ids_arg)) {
        fprintf(stderr, "vtstore run: need STORE and exactly one of --prompt / --tokens\n");
        usage(stderr);
        return VT_EXIT_USAGE;
    }
    if (chat && !prompt) {
        fprintf(stderr, "vtstore run: --chat wraps --prompt text\n");
        return VT_EXIT_USAGE;
    }
    if (system_arg && !chat) {
        fprintf(stderr, "vtstore run: --system is a system message for --chat's template\n");
        return VT_EXIT_USAGE;
    }
    vt_llama_opts o;
    vt_llama_opts_init(&o);
    o.prefetch = (uint32_t)prefetch;
    if (vt_format_from_name(kv_arg, &o.kv_format) || !vt_attn_kv_format_ok(o.kv_format)) {
        fprintf(stderr, "vtstore run: --kv-format %s: not a format a KV cache can use\n", kv_arg);
        return VT_EXIT_USAGE;
    }
    if (!strcmp(dev_arg, "cuda"))
        o.use_cuda = 1;
    else if (strcmp(dev_arg, "cpu")) {
        fprintf(stderr, "vtstore run: --device %s: cpu or cuda\n", dev_arg);
        return VT_EXIT_USAGE;
    }

    int code = VT_EXIT_ERROR, rc;
    vt_store *s = NULL;
    vt_tok *tok = NULL;
    vt_llama *m = NULL;
    int32_t *ids = NULL;
    uint32_t n_prompt = 0;
    float *logits = NULL, *all = NULL;
    sbuf text = {0};
    chat_info ci = {CHAT_CHATML, 0, NULL, NULL};
    const char *sys = NULL; /* the system message --chat writes: --system's or the template's */
    int32_t *gen = NULL;
    uint32_t n_gen = 0;

    if ((rc = vt_store_open(store_path, VT_STORE_RDONLY, NULL, &s))) {
        vt_cli_error(CMD, rc, "cannot open store %s", store_path);
        goto done;
    }
    uint64_t model_bytes = 0;
    if ((rc = vt_llama_plan_bytes(s, &model_bytes, NULL))) {
        vt_cli_error(CMD, rc, "%s: model", store_path);
        goto done;
    }
    char pre_desc[256] = "", bad_bos[256];
    int spm = 0;
    if ((rc = load_tokenizer(s, &tok, pre_desc, sizeof pre_desc, &spm, bad_bos, sizeof bad_bos))) {
        vt_cli_error(CMD, rc, "%s: tokenizer", store_path);
        goto done;
    }
    if (prompt && spm == 1) {
        fprintf(stderr,
                "vtstore run: %s: this model's tokenizer is SentencePiece (GGUF "
                "tokenizer.ggml.model 'llama') without one piece score per token "
                "(tokenizer.ggml.scores), which text cannot be encoded without; give token ids "
                "with --tokens instead (the output is decoded)\n",
                store_path);
        goto done;
    }
    if (prompt && *bad_bos) {
        fprintf(stderr, "vtstore run: %s: %s; give token ids with --tokens instead\n", store_path,
                bad_bos);
        goto done;
    }
    if (chat) {
        char why[320];
        if (chat_template(s, tok, &ci, why, sizeof why)) {
            fprintf(stderr,
                    "vtstore run: %s: --chat: %s; write the model's own template into --prompt "
                    "instead\n",
                    store_path, why);
            goto done;
        }
        if (system_arg && !ci.takes_system) {
            fprintf(stderr,
                    "vtstore run: %s: --system: the model's %s chat template has no place for a "
                    "system message%s\n",
                    store_path, chat_name(ci.kind),
                    ci.kind == CHAT_GEMMA ? " (Gemma 3's prefixes it to the user turn; this one "
                                            "has no first_user_prefix, or the store keeps no "
                                            "template)"
                    : ci.kind == CHAT_CHATML || ci.kind == CHAT_LLAMA3 ? ""
                                                                       : " (no <<SYS>> block)");
            goto done;
        }
        sys = system_arg ? system_arg : ci.def_system;
    }
    const enum chat_kind chat_kind = ci.kind;
    int32_t bos = vt_tok_bos(tok);
    int bos_added = 0;
    if (prompt) {
        size_t start = 0;
        char *t = chat ? chat_text(chat_kind, ci.sys_head, sys, prompt, &start) : strdup(prompt);
        uint32_t n = 0;
        if (!t) goto oom;
        rc = vt_tok_encode(tok, t, NULL, 0, &n);
        if (rc == 0 || rc == -ENOSPC) {
            ids = malloc((n + 1) * sizeof *ids);
            rc = ids ? vt_tok_encode(tok, t, ids + 1, n, &n_prompt) : -ENOMEM;
        }
        free(t);
        if (rc == -ENOTSUP) {
            char safe[4 * sizeof pre_desc]; /* the names come from the store's metadata */
            fprintf(stderr,
                    "vtstore run: %s: this model's pre-tokenizer (%s) is not implemented, so the "
                    "prompt cannot be encoded exactly; give token ids with --tokens instead\n",
                    store_path, vt_print_safe(pre_desc, safe, sizeof safe));
            goto done;
        }
        if (rc == -EINVAL && *vt_tok_error()) {
            fprintf(stderr, "vtstore run: %s: cannot encode the prompt: %s", store_path,
                    vt_tok_error());
            if (chat)
                fprintf(stderr,
                        " (the text is the prompt in the chat template: the prompt%s starts at "
                        "offset %zu)",
                        chat_trims(chat_kind) ? ", trimmed," : "", start);
            fputc('\n', stderr);
            goto done;
        }
        if (rc) {
            vt_cli_error(CMD, rc, "%s: encoding the prompt", store_path);
            goto done;
        }
        if (!n_prompt && bos < 0) {
            fprintf(stderr, "vtstore run: the prompt encodes to no tokens (and the model adds no "
                            "BOS to start from)\n");
            code = VT_EXIT_USAGE;
            goto done;
        }
        /* the model's BOS first, unless the text already starts with it (Llama 3's template
         * does): one BOS, not two; an empty prompt is the BOS alone, as in llama.cpp and HF */
        bos_added = bos >= 0 && (!n_prompt || ids[1] != bos);
        if (bos_added)
            ids[0] = bos;
        else
            memmove(ids, ids + 1, n_prompt * sizeof *ids);
        n_prompt += (uint32_t)bos_added;
    } else if (parse_ids(ids_arg, &ids, &n_prompt)) {
        fprintf(stderr, "vtstore run: --tokens '%s': expected comma-separated ids\n", ids_arg);
        code = VT_EXIT_USAGE;
        goto done;
    }

    int pct;
    if (ram_arg && (parse_budget(ram_arg, model_bytes, &o.ram_bytes, &pct) || !o.ram_bytes)) {
        fprintf(stderr, "vtstore run: --ram '%s': expected bytes (K/M/G) or a percentage\n",
                ram_arg);
        code = VT_EXIT_USAGE;
        goto done;
    }
    if (vram_arg && parse_budget(vram_arg, model_bytes, &o.vram_bytes, &pct)) {
        fprintf(stderr, "vtstore run: --vram '%s': expected bytes (K/M/G) or a percentage\n",
                vram_arg);
        code = VT_EXIT_USAGE;
        goto done;
    }
    o.max_ctx = ctx ? (uint32_t)ctx : n_prompt + (uint32_t)max_new;
    if (o.max_ctx < n_prompt + (uint32_t)max_new) {
        fprintf(stderr, "vtstore run: --ctx %ld is smaller than prompt + max-new (%u)\n", ctx,
                n_prompt + (uint32_t)max_new);
        code = VT_EXIT_USAGE;
        goto done;
    }
    if ((rc = vt_llama_open(s, &o, &m))) {
        vt_cli_error(CMD, rc, "%s: loading the model", store_path);
        goto done;
    }
    const vt_llama_hparams *hp = vt_llama_hparams_of(m);
    for (uint32_t i = 0; i < n_prompt; i++) {
        if (ids[i] >= 0 && (uint32_t)ids[i] < hp->vocab) continue;
        if (!prompt) {
            fprintf(stderr, "vtstore run: token id %d is outside the vocabulary [0, %u)\n", ids[i],
                    hp->vocab);
            code = VT_EXIT_USAGE;
            goto done;
        }
        /* not the user's doing: the store's tokenizer has tokens the model has no row for */
        fprintf(stderr,
                "vtstore run: %s: the prompt encodes to token %d%s, but the model's %s has only "
                "%u rows while its tokenizer has %u tokens: the tokenizer does not fit the "
                "model\n",
                store_path, ids[i], bos_added && i == 0 ? " (the BOS)" : "",
                hp->hf ? hp->hf_embd : "token_embd.weight", hp->vocab, vt_tok_n_tokens(tok));
        goto done;
    }
    size_t V = hp->vocab;
    size_t n_pos_max = (size_t)n_prompt + (size_t)max_new;
    if (logits_path && !(all = malloc(n_pos_max * V * sizeof(float)))) goto oom;
    if (!(logits = malloc(V * sizeof(float))) || !(gen = malloc((max_new + 1) * sizeof *gen)))
        goto oom;
    FILE *err = stderr;
    if (!json && !quiet) {
        char kb[32];
        fprintf(err,
                "model: %s, %u layers, dim %u, %u/%u heads of %u, vocab %u%s, %.1f MiB in the "
                "store; KV cache %s; device %s (kernels %s)",
                hp->arch, hp->n_layers, hp->dim, hp->n_heads, hp->n_kv_heads, hp->head_dim,
                hp->vocab, hp->rope_scaled ? ", RoPE scaled" : "",
                vt_llama_model_bytes(m) / 1048576.0, vt_format_name(o.kv_format, kb, sizeof kb),
                dev_arg, vt_kernels_cpu_isa());
        fprintf(err, "\nprompt: %u tokens%s%s%s%s%s\n", n_prompt, bos_added ? " (BOS added)" : "",
                chat ? ", " : "", chat ? chat_name(chat_kind) : "", chat ? " chat template" : "",
                ci.sys_head && !sys ? ", the template's dated system turn"
                : !sys              ? ""
                : sys == system_arg ? ", system message given"
                                    : ", the template's default system message");
    }

    /* generation ends at any EOS (config.json may list several: Llama 3.1's <|end_of_text|>,
     * <|eom_id|>, <|eot_id|>), at the GGUF end-of-turn, end-of-message and FIM pad / repo /
     * file-separator tokens, at the tokens llama.cpp ends generation at by their text, of any
     * type (<|eot_id|>, <|eom_id|>, <|im_end|>, <|endoftext|>, <end_of_turn>, ...: vt_tok_find_eog)
     * and, with --chat, at the template's end of turn (<|im_end|> / <|eot_id|>) */
    int32_t stops[VT_LLAMA_MAX_EOS + 6 + VT_TOK_MAX_EOG];
    int n_stops = 0;
    for (uint32_t k = 0; k < hp->n_eos; k++) stops[n_stops++] = hp->eos_ids[k];
    static const char *const end_keys[5] = {
        "gguf.tokenizer.ggml.eot_token_id", "gguf.tokenizer.ggml.eom_token_id",
        "gguf.tokenizer.ggml.fim_pad_token_id", "gguf.tokenizer.ggml.fim_rep_token_id",
        "gguf.tokenizer.ggml.fim_sep_token_id"};
    for (int k = 0; k < 5; k++) {
        uint32_t id;
        if (!vt_meta_get_u32(s, end_keys[k], &id) && id < hp->vocab) stops[n_stops++] = (int32_t)id;
        vt_clear_error();
    }
    if (chat && chat_kind == CHAT_CHATML &&
        !vt_tok_find_special(tok, "<|im_end|>", &stops[n_stops]))
        n_stops++;
    uint32_t n_eog = 0;
    if (!vt_tok_find_eog(tok, &stops[n_stops], &n_eog)) n_stops += (int)n_eog;

    vt_streamer *st = vt_llama_streamer(m);
    vt_streamer_stats pre, dec;
    double t0 = vt_now();
    rc = vt_llama_eval(m, ids, n_prompt, all ? all : logits, all != NULL);
    double t1 = vt_now();
    if (rc) {
        vt_cli_error(CMD, rc, "%s: prefill", store_path);
        goto done;
    }
    vt_streamer_get_stats(st, &pre);
    vt_streamer_reset_stats(st);
    size_t n_pos = n_prompt;
    const float *last = all ? all + (n_pos - 1) * V : logits;
    double t2 = vt_now();
    uint32_t n_dec = 0;
    /* the first position whose logits hold a NaN or an infinity (at bad_col): no token can be
     * chosen from them, and they are no result */
    size_t bad_row = SIZE_MAX;
    int64_t bad_col = -1;
    for (long g = 0; g < max_new; g++) {
        if ((bad_col = first_nonfinite(last, V)) >= 0) {
            bad_row = n_pos - 1;
            break;
        }
        int32_t next = argmax(last, hp->vocab);
        int stop = 0;
        for (int k = 0; k < n_stops; k++) stop |= next == stops[k];
        gen[n_gen++] = next;
        /* the end-of-turn token ends the text; it is not part of it */
        if (!stop && add_piece(tok, next, &text, !json && !quiet)) goto oom;
        if (stop || g + 1 == max_new) break;
        float *dst = all ? all + n_pos * V : logits;
        if ((rc = vt_llama_eval(m, &next, 1, dst, 0))) {
            vt_cli_error(CMD, rc, "%s: decoding token %u", store_path, n_gen);
            goto done;
        }
        n_pos++;
        n_dec++;
        last = dst;
    }
    double t3 = vt_now();
    vt_streamer_get_stats(st, &dec);
    if (!json && !quiet) {
        fputc('\n', stdout);
        fflush(stdout);
    }

    for (size_t r = 0; all && r < n_pos; r++) /* --logits: every row is output */
        if ((bad_col = first_nonfinite(all + r * V, V)) >= 0) {
            bad_row = r;
            break;
        }
    /* written even when a row is not finite, so that it can be looked at; the exit code says it
     * is no result */
    uint64_t ldims[2] = {n_pos, V};
    if (logits_path && (rc = vt_npy_write(logits_path, VT_DTYPE_F32, 2, ldims, all))) {
        vt_cli_error(CMD, rc, "cannot write %s", logits_path);
        goto done;
    }
    if (bad_row != SIZE_MAX) {
        const float *row = all ? all + bad_row * V : logits;
        fprintf(stderr,
                "vtstore run: %s: the logits at position %zu (%s) are not finite: logit %lld is "
                "%g; the model's weights or its computation overflow%s%s\n",
                store_path, bad_row, bad_row < n_prompt ? "a prompt token" : "a generated token",
                (long long)bad_col, row[bad_col], logits_path ? "; written to " : "",
                logits_path ? logits_path : "");
        goto done;
    }
    if (json) {
        FILE *f = stdout;
        fputs("{\"text\": ", f);
        vt_print_json_strn(f, text.p ? text.p : "", text.n);
        fputs(", \"prompt_ids\": [", f);
        for (uint32_t i = 0; i < n_prompt; i++) fprintf(f, "%s%d", i ? ", " : "", ids[i]);
        fputs("], \"chat_template\": ", f);
        if (chat)
            fprintf(f, "\"%s\", \"system\": ", chat_name(chat_kind));
        else
            fputs("null, \"system\": ", f);
        if (sys)
            vt_print_json_strn(f, sys, strlen(sys));
        else
            fputs("null", f);
        fputs(", \"generated_ids\": [", f);
        for (uint32_t i = 0; i < n_gen; i++) fprintf(f, "%s%d", i ? ", " : "", gen[i]);
        char kb[32];
        fprintf(f,
                "], \"model_bytes\": %llu, \"ram_budget\": %llu, \"vram_budget\": %llu, "
                "\"kv_format\": \"%s\", \"device\": \"%s\", \"cpu_isa\": \"%s\", "
                "\"io_engine\": \"%s\", ",
                (unsigned long long)vt_llama_model_bytes(m), (unsigned long long)pre.ram.capacity,
                (unsigned long long)pre.vram.capacity, vt_format_name(o.kv_format, kb, sizeof kb),
                dev_arg, vt_kernels_cpu_isa(), pre.engine == VT_IO_URING ? "io_uring" : "pread");
        json_phase(f, "prefill", n_prompt, t1 - t0, &pre);
        fputs(", ", f);
        json_phase(f, "decode", n_dec, t3 - t2, &dec);
        fputs("}\n", f);
    } else if (!quiet) {
        fprintf(err, "io engine: %s%s\n", pre.engine == VT_IO_URING ? "io_uring" : "pread pool",
                pre.device_is_gpu ? ", device tier on the GPU" : "");
        print_phase(err, "prefill", n_prompt, t1 - t0, &pre);
        print_phase(err, "decode", n_dec, t3 - t2, &dec);
    }
    code = VT_EXIT_OK;
    goto done;
oom:
    fprintf(stderr, "vtstore run: out of memory\n");
    code = VT_EXIT_ERROR;
done:
    free(ci.def_system);
    free(ci.sys_head);
    vt_llama_close(m);
    vt_tok_destroy(tok);
    vt_store_close(s);
    free(ids);
    free(logits);
    free(all);
    free(gen);
    free(text.p);
    return code;
}
