/* Mutation test of the safetensors, GGUF and .npy parsers (the CI stand-in for the libFuzzer
 * targets): valid generated headers are mutated at random thousands of times; every parse must
 * either fail with a message naming the file, or succeed with a result that honours the
 * parser's promises (data inside the file, no overlaps, byte counts = shape x type). Run under
 * ASan/UBSan in CI, a crash or leak is a failure too. */
#include "gen.h"
#include "store/parse.h"
#include "vt_test.h"

#define ITERS 30000

static void gen_valid(int kind, gbuf *b) {
    float w[96];
    for (int i = 0; i < 96; i++) w[i] = vt_rand_normal();
    if (kind == 0) {
        gen_st_tensor t[3] = {{"model.layers.0.q_proj.weight", "F32", 2, {4, 8}, w, 128, 0, 0, 0},
                              {"model.norm.weight", "BF16", 1, {8}, w, 16, 0, 0, 0},
                              {"ids", "I64", 2, {2, 2}, w, 32, 0, 0, 0}};
        gen_safetensors(b, t, 3, "{\"format\":\"pt\"}");
    } else if (kind == 1) {
        gbuf kv = {0};
        const char *toks[] = {"a", "bb", "ccc"};
        kv_string(&kv, "general.architecture", "llama");
        kv_u32(&kv, "llama.block_count", 2);
        kv_str_array(&kv, "tokenizer.ggml.tokens", toks, 3);
        kv_f32(&kv, "eps", 1e-5f);
        gen_gguf_tensor t[3] = {{"blk.0.attn_q.weight", 2, {32, 2}, 8, w, 68},
                                {"output_norm.weight", 1, {16}, 0, w, 64},
                                {"token_embd.weight", 2, {32, 1}, 2, w, 18}};
        gen_gguf(b, 3, &kv, 4, t, 3, 32);
        gb_free(&kv);
    } else {
        uint64_t dims[2] = {3, 8};
        gen_npy(b, 1 + (int)(vt_rand_u64() % 3), "<f4", dims, 2, w, 96);
    }
}

static void mutate(gbuf *b) {
    int nm = 1 + (int)(vt_rand_u64() % 4);
    for (int m = 0; m < nm && b->n; m++) {
        size_t pos = (size_t)(vt_rand_u64() % b->n);
        switch (vt_rand_u64() % 7) {
        case 0:
            b->p[pos] ^= (unsigned char)(1u << (vt_rand_u64() % 8));
            break;
        case 1:
            b->p[pos] = (unsigned char)vt_rand_u64();
            break;
        case 2: { /* an extreme little-endian integer */
            static const uint64_t v[] = {0,          1,          0xff,       0xffffffffull,
                                         1ull << 40, UINT64_MAX, 1ull << 63, 0x7fffffffffffffffull};
            uint64_t x = v[vt_rand_u64() % 8];
            for (int i = 0; i < 8 && pos + (size_t)i < b->n; i++)
                b->p[pos + (size_t)i] = (unsigned char)(x >> (8 * i));
            break;
        }
        case 3:
            b->n = pos;
            break; /* truncate */
        case 4:    /* delete a byte */
            memmove(b->p + pos, b->p + pos + 1, b->n - pos - 1);
            b->n--;
            break;
        case 5: { /* duplicate a slice */
            size_t len = (size_t)(vt_rand_u64() % 16);
            if (pos + len > b->n) len = b->n - pos;
            unsigned char tmp[16];
            memcpy(tmp, b->p + pos, len);
            gbuf c = {0};
            gb_put(&c, b->p, pos + len);
            gb_put(&c, tmp, len);
            gb_put(&c, b->p + pos + len, b->n - pos - len);
            gb_free(b);
            *b = c;
            break;
        }
        default: { /* a JSON/dict punctuation character */
            static const char pun[] = "{}[]\",:\\'() 0123456789-eE.";
            b->p[pos] = (unsigned char)pun[vt_rand_u64() % (sizeof pun - 1)];
        }
        }
    }
}

static void check_result(const vt_src_file *f, uint64_t size) {
    for (uint32_t i = 0; i < f->n_tensors; i++) {
        const vt_src_tensor *t = &f->tensors[i];
        CHECK(t->offset <= size && t->nbytes <= size - t->offset);
        CHECK(strlen(t->desc.name) > 0 && strlen(t->desc.name) < VT_MAX_NAME);
        CHECK(t->desc.ndim <= VT_MAX_DIMS);
        uint64_t numel;
        CHECK(vt_dims_product(t->desc.dims, t->desc.ndim, &numel) == 0);
        if (t->block_fmt == VT_FMT_COUNT) CHECK(t->nbytes == numel * vt_dtype_size(t->desc.dtype));
        for (uint32_t j = 0; j < i; j++) {
            const vt_src_tensor *u = &f->tensors[j];
            if (t->nbytes && u->nbytes)
                CHECK(t->offset >= u->offset + u->nbytes || u->offset >= t->offset + t->nbytes);
            CHECK(strcmp(t->desc.name, u->desc.name) != 0);
        }
    }
}

int main(void) {
    vt_test_seed();
    static const char *paths[] = {"mut.safetensors", "mut.gguf", "mut.npy"};
    uint64_t ok[3] = {0}, failed[3] = {0};
    for (int it = 0; it < ITERS; it++) {
        int kind = it % 3;
        gbuf b = {0};
        gen_valid(kind, &b);
        mutate(&b);
        vt_src_file f;
        vt_clear_error();
        int rc = kind == 0   ? vt_parse_safetensors_mem(b.p, b.n, b.n, paths[0], &f)
                 : kind == 1 ? vt_parse_gguf_mem(b.p, b.n, b.n, paths[1], &f)
                             : vt_parse_npy_mem(b.p, b.n, b.n, paths[2], NULL, &f);
        if (rc) {
            failed[kind]++;
            CHECKF(rc < 0, "rc %d", rc);
            CHECKF(strstr(vt_last_error(), paths[kind]) != NULL, "message '%s' lacks the file",
                   vt_last_error());
            CHECK(f.tensors == NULL && f.kv == NULL && f.path == NULL);
        } else {
            ok[kind]++;
            check_result(&f, b.n);
            vt_src_file_free(&f);
        }
        gb_free(&b);
    }
    printf("safetensors %llu ok / %llu refused, gguf %llu / %llu, npy %llu / %llu\n",
           (unsigned long long)ok[0], (unsigned long long)failed[0], (unsigned long long)ok[1],
           (unsigned long long)failed[1], (unsigned long long)ok[2], (unsigned long long)failed[2]);
    /* the mutations must exercise both outcomes, or this test proves nothing */
    for (int k = 0; k < 3; k++) CHECK(ok[k] > 0 && failed[k] > 0);
    return vt_test_done("test_parse_mutate");
}
