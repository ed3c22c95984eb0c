/* The GGUF importer on a real model (SmolLM2-135M-Instruct Q4_1, from scripts/model_path.sh):
 * every tensor's blocks come back byte-identical from the store and from a GGUF export, the
 * tokenizer's string arrays and hyper-parameters are kept. Skipped (77) when the file is absent. */
#include <fcntl.h>

#include "store/parse.h"
#include "vt_test.h"
#include "vtstore/import.h"
#include "vtstore/meta.h"

static int same_tensors(const vt_src_file *a, int fa, const vt_src_file *b, int fb) {
    int bad = 0;
    for (uint32_t i = 0; i < a->n_tensors; i++) {
        const vt_src_tensor *x = &a->tensors[i], *y = NULL;
        for (uint32_t j = 0; j < b->n_tensors; j++)
            if (!strcmp(b->tensors[j].desc.name, x->desc.name)) y = &b->tensors[j];
        if (!y || y->nbytes != x->nbytes || y->ggml_type != x->ggml_type) {
            fprintf(stderr, "tensor %s missing or different type/size\n", x->desc.name);
            bad++;
            continue;
        }
        void *p = malloc(x->nbytes), *q = malloc(x->nbytes);
        if (vt_pread_full(fa, p, x->nbytes, x->offset) ||
            vt_pread_full(fb, q, x->nbytes, y->offset) || memcmp(p, q, x->nbytes)) {
            fprintf(stderr, "tensor %s bytes differ\n", x->desc.name);
            bad++;
        }
        free(p);
        free(q);
    }
    return bad;
}

int main(void) {
    vt_test_seed();
    char model[4096] = {0}, cmd[4400];
    const char *src = getenv("VT_SOURCE_DIR");
    snprintf(cmd, sizeof cmd, "sh '%s/scripts/model_path.sh' 2>/dev/null", src ? src : ".");
    FILE *pp = popen(cmd, "r");
    if (!pp || !fgets(model, sizeof model, pp)) {
        if (pp) pclose(pp);
        TEST_SKIP("SmolLM2 GGUF not installed (run scripts/setup_python.sh)");
    }
    pclose(pp);
    model[strcspn(model, "\n")] = 0;
    if (access(model, R_OK)) TEST_SKIP("%s not readable", model);
    char dir[4096], store[4300], out[4300];
    vt_test_tmpdir("test_real_gguf", dir, sizeof dir);
    snprintf(store, sizeof store, "%s/s.vts", dir);
    snprintf(out, sizeof out, "%s/back.gguf", dir);
    vt_store *s = NULL;
    CHECK_RC(vt_store_open(store, VT_STORE_RDWR | VT_STORE_CREATE, NULL, &s));
    if (!s) return vt_test_done("test_real_gguf");
    vt_import_options o;
    vt_import_options_init(&o);
    o.format = VT_FMT_NF4; /* GGUF blocks must be kept regardless */
    vt_import_summary sum;
    int rc = vt_import_file(s, model, &o, &sum);
    CHECKF(rc == 0, "import %s: %s", model, vt_last_error());
    int fd = open(model, O_RDONLY);
    vt_src_file f;
    CHECK_RC(vt_parse_gguf_fd(fd, model, &f));
    CHECK(sum.tensors == f.n_tensors && sum.kept == f.n_tensors);
    printf("%s: %u tensors, %u kv, %.2f s\n", model, f.n_tensors, f.n_kv, sum.seconds);
    /* through the store */
    int bad = 0;
    for (uint32_t i = 0; i < f.n_tensors; i++) {
        const vt_src_tensor *t = &f.tensors[i];
        void *p = malloc(t->nbytes), *q = malloc(t->nbytes);
        CHECK(vt_pread_full(fd, p, t->nbytes, t->offset) == 0);
        rc = vt_store_read_tensor_raw(s, t->desc.name, q, t->nbytes);
        if (rc || memcmp(p, q, t->nbytes)) bad++;
        free(p);
        free(q);
    }
    CHECKF(bad == 0, "%d tensors differ in the store", bad);
    /* tokenizer and hyper-parameters */
    vt_meta_strings *tok = NULL, *merges = NULL;
    CHECK_RC(vt_meta_get_strings(s, "gguf.tokenizer.ggml.tokens", &tok));
    CHECK_RC(vt_meta_get_strings(s, "gguf.tokenizer.ggml.merges", &merges));
    CHECK(tok && tok->count == 49152);
    CHECK(merges && merges->count > 0);
    vt_meta_strings_free(tok);
    vt_meta_strings_free(merges);
    uint32_t nl = 0;
    CHECK_RC(vt_meta_get_u32(s, "gguf.llama.block_count", &nl));
    CHECK(nl == 30);
    char arch[64];
    CHECK_RC(vt_meta_get_string(s, "gguf.general.architecture", arch, sizeof arch, NULL));
    CHECK(!strcmp(arch, "llama"));
    /* through a GGUF export */
    CHECK_RC(vt_export_gguf(s, out, NULL));
    int fd2 = open(out, O_RDONLY);
    vt_src_file g;
    rc = vt_parse_gguf_fd(fd2, out, &g);
    CHECKF(rc == 0, "parse export: %s", vt_last_error());
    if (!rc) {
        CHECK(g.n_tensors == f.n_tensors && g.n_kv == f.n_kv);
        for (uint32_t i = 0; i < f.n_kv; i++) {
            uint32_t j;
            for (j = 0; j < g.n_kv; j++)
                if (!strcmp(g.kv[j].key, f.kv[i].key)) break;
            CHECKF(j < g.n_kv && g.kv[j].type == f.kv[i].type &&
                       g.kv[j].val_len == f.kv[i].val_len &&
                       !memcmp(g.kv[j].val, f.kv[i].val, f.kv[i].val_len),
                   "kv %s not kept", f.kv[i].key);
        }
        CHECKF(same_tensors(&f, fd, &g, fd2) == 0, "exported tensors differ");
        vt_src_file_free(&g);
    }
    close(fd2);
    vt_src_file_free(&f);
    close(fd);
    CHECK(vt_store_verify(s, NULL, NULL, NULL) == 0);
    vt_store_close(s);
    if (!vt_test_failures) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd)) fprintf(stderr, "cannot remove %s\n", dir);
    }
    return vt_test_done("test_real_gguf");
}
