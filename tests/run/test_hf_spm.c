/* tokenizer.json BPE over SentencePiece pieces (Gemma's, Llama 2's, Mistral's Hugging Face files)
 * against Hugging Face's `tokenizers`: tests/model/hfspm_ref.py writes DIR/{gemma,llama,mistral,
 * metaspace_always}.json (the ways these files mark spaces) and .cases (text and the ids
 * `tokenizers` gives); vt_hf_tokenizer_parse must read each as SentencePiece BPE and vt_tok_encode
 * give the same ids for every case. Usage: test_hf_spm DIR (run_hfspm_test.sh makes DIR). */
#include <errno.h>

#include "hf_config.h"
#include "vt_test.h"

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    if (b) b[n] = 0;
    fclose(f);
    return b;
}

static int unhex(const char *h, size_t n, char *out) {
    if (n == 1 && h[0] == '-') {
        out[0] = 0;
        return 0;
    }
    if (n % 2) return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(h + 2 * i, "%2x", &v) != 1) return -1;
        out[i] = (char)v;
    }
    out[n / 2] = 0;
    return 0;
}

static void variant(const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    char *json = slurp(path);
    CHECKF(json, "%s: cannot read", path);
    if (!json) return;
    vt_tok *tok = NULL;
    char desc[256] = "";
    int rc = vt_hf_tokenizer_parse(json, &tok, desc, sizeof desc);
    free(json);
    CHECKF(!rc && tok, "%s: parse rc %d: %s", path, rc, vt_last_error());
    if (!tok) return;
    CHECKF(strstr(desc, "SentencePiece BPE"), "%s: read as '%s'", name, desc);
    snprintf(path, sizeof path, "%s/%s.cases", dir, name);
    FILE *f = fopen(path, "r");
    CHECKF(f, "%s: cannot read", path);
    if (!f) {
        vt_tok_destroy(tok);
        return;
    }
    static char line[1 << 16], text[1 << 15];
    int32_t want[4096], got[4096];
    unsigned n_cases = 0, n_bad = 0;
    while (fgets(line, sizeof line, f)) {
        char *sp = strchr(line, ' ');
        if (!sp || unhex(line, (size_t)(sp - line), text)) {
            CHECKF(0, "%s: bad line", path);
            break;
        }
        char *p = sp + 1, *end;
        unsigned long nw = strtoul(p, &end, 10);
        if (nw > 4096) nw = 4096;
        for (unsigned long k = 0; k < nw; k++) want[k] = (int32_t)strtol(end, &end, 10);
        uint32_t n = 0;
        rc = vt_tok_encode(tok, text, got, 4096, &n);
        n_cases++;
        if (rc || n != nw || memcmp(got, want, n * sizeof *got)) {
            if (n_bad++ < 5) {
                fprintf(stderr, "%s: '%s': rc %d (%s), %u ids:", name, text, rc,
                        rc ? vt_tok_error() : "", n);
                for (uint32_t k = 0; k < n && k < 40; k++) fprintf(stderr, " %d", got[k]);
                fprintf(stderr, "\n  tokenizers, %lu ids:", nw);
                for (unsigned long k = 0; k < nw && k < 40; k++) fprintf(stderr, " %d", want[k]);
                fputc('\n', stderr);
            }
        }
    }
    fclose(f);
    CHECKF(n_bad == 0 && n_cases > 100, "%s: %u of %u cases differ from tokenizers", name, n_bad,
           n_cases);
    printf("%s (%s): %u cases as tokenizers encodes them\n", name, desc, n_cases - n_bad);
    vt_tok_destroy(tok);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_hf_spm DIR\n");
        return 2;
    }
    variant(argv[1], "gemma");
    variant(argv[1], "llama");
    variant(argv[1], "mistral");
    variant(argv[1], "metaspace_always");
    return vt_test_done("test_hf_spm");
}
