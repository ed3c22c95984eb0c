/* test_umbrella — vtstore/vtstore.h compiles on its own (first include, nothing before it),
 * pulls in every public header, and links: one symbol of each header is referenced. The usage
 * example of vtstore.h is compiled here too; it runs when a store path is given:
 *   test_umbrella STORE.vts   (a store imported from a Llama GGUF, e.g. SmolLM2) */
#include "vtstore/vtstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vt_test.h"

/* the example of vtstore.h's header comment, with error checks */
static int example(const char *path) {
    vt_store *s;
    int rc = vt_store_open(path, VT_STORE_RDONLY, NULL, &s);
    if (rc) {
        fprintf(stderr, "%s: %s\n", vt_strerror(rc), vt_last_error());
        return rc;
    }
    vt_tier_config cfg = {.ram_bytes = 256ull << 20};
    vt_streamer *st = NULL;
    rc = vt_streamer_open(s, &cfg, &st);
    const char *names[] = {"blk.0.attn_q.weight", "blk.0.ffn_up.weight"};
    if (!rc) rc = vt_streamer_plan(st, names, 2, VT_SCHEDULE_CYCLIC);
    for (size_t i = 0; i < 2 && !rc; i++) {
        vt_weight w;
        rc = vt_streamer_acquire(st, names[i], &w);
        if (rc) break;
        float *x = calloc(w.cols, sizeof *x), *y = calloc(w.rows, sizeof *y);
        for (uint64_t c = 0; x && c < w.cols; c++) x[c] = 1.0f;
        rc = x && y ? vt_gemv(&w, x, y, 1, NULL) : -12;
        if (!rc)
            printf("%s: %llux%llu, y[0] = %g\n", names[i], (unsigned long long)w.rows,
                   (unsigned long long)w.cols, y[0]);
        free(x);
        free(y);
        int rc2 = vt_streamer_release(st, &w);
        if (!rc) rc = rc2;
    }
    if (rc) fprintf(stderr, "%s: %s\n", vt_strerror(rc), vt_last_error());
    vt_streamer_close(st);
    vt_store_close(s);
    return rc;
}

typedef void (*any_fn)(void);

int main(int argc, char **argv) {
    const char *v = vt_version();
    CHECK(v != NULL && v[0] != '\0');
    if (v) printf("vtstore %s\n", v);

    /* one declaration of each public header, resolved at link time */
    const any_fn fns[] = {
        (any_fn)vt_strerror,        /* core.h */
        (any_fn)vt_quantize,        /* quant.h */
        (any_fn)vt_store_open,      /* store.h */
        (any_fn)vt_import_file,     /* import.h */
        (any_fn)vt_meta_get_u32,    /* meta.h */
        (any_fn)vt_streamer_open,   /* tier.h */
        (any_fn)vt_gemv,            /* kernels.h */
        (any_fn)vt_dev_malloc,      /* device.h */
        (any_fn)vt_kv_cache_create, /* attn.h */
    };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) CHECK(fns[i] != NULL);
    CHECK(sizeof(vt_block_q8_0) == 34); /* blocks.h */
    vt_weight w;                        /* weight.h */
    memset(&w, 0, sizeof w);
    CHECK(w.data == NULL);

    if (argc > 1) CHECK_RC(example(argv[1]));
    return vt_test_done("test_umbrella");
}
