/* Writes the seed corpus of fuzz_record (tests/fuzz/corpus/record/) with the store's own
 * encoders, in the layout vt_store_record_decode_test splits its input by: a tensor record
 * behind a key of (first byte % 40) bytes, a chunk record behind a 16-byte key, a shard record
 * behind a 4-byte key, a data-directory list. Built with VT_FUZZ=ON; run by hand:
 * gen_record_seeds OUTDIR. */
#include <stdio.h>
#include <string.h>

#include "store/store_internal.h"

static void put(const char *dir, const char *name, const void *p, size_t n) {
    if (vt_store_record_decode_test(p, n)) fprintf(stderr, "%s: does not decode\n", name);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) perror(path);
    if (f) fclose(f);
}

static void tensor_seed(const char *dir, const char *file, uint32_t fmt, vt_dtype dt, uint64_t r,
                        uint64_t c, const void *aux, size_t aux_len) {
    vt_tensor_info ti;
    memset(&ti, 0, sizeof ti);
    /* key length = first byte % 40 = '%' (37) % 40 */
    snprintf(ti.name, sizeof ti.name, "%%blk.0.attn_q.weight.xxxxxxxxxxxxxxxx");
    ti.name[37] = 0;
    ti.src_dtype = dt;
    ti.ndim = 2;
    ti.dims[0] = r;
    ti.dims[1] = c;
    ti.format = fmt;
    ti.rows_per_chunk = r > 32 ? 32 : r;
    ti.tensor_scale = 1;
    ti.aux_bytes = aux_len;
    ti.id = 7;
    snprintf(ti.source, sizeof ti.source, "model.safetensors");
    if (st_tensor_check(&ti, 1)) {
        fprintf(stderr, "%s: %s\n", file, vt_last_error());
        return;
    }
    ti.stored_bytes = ti.raw_bytes;
    uint8_t buf[8192];
    size_t n = st_tensor_rec_size(&ti);
    memcpy(buf, ti.name, 37);
    st_tensor_rec_encode(&ti, aux, buf + 37);
    put(dir, file, buf, 37 + n);
    if (vt_store_record_decode_test(buf, 37 + n))
        fprintf(stderr, "%s: %s\n", file, vt_last_error());
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : ".";
    tensor_seed(dir, "tensor_q4_0", VT_FMT_Q4_0, VT_DTYPE_F32, 64, 256, NULL, 0);
    tensor_seed(dir, "tensor_f16", VT_FMT_F16, VT_DTYPE_F16, 3, 5, NULL, 0);
    tensor_seed(dir, "tensor_raw", VT_STORE_FMT_RAW, VT_DTYPE_I32, 10, 10, NULL, 0);
    tensor_seed(dir, "tensor_nf4_sparse", VT_FMT_NF4 | VT_FMT_SPARSE24, VT_DTYPE_BF16, 16, 128,
                NULL, 0);
    float scales[128];
    for (int i = 0; i < 128; i++) scales[i] = 1.0f + i;
    tensor_seed(dir, "tensor_awq", VT_FMT_AWQ_INT4, VT_DTYPE_F16, 8, 128, scales, sizeof scales);

    vt_chunk_info ci = {.tensor_id = 7,
                        .index = 1,
                        .row0 = 32,
                        .rows = 32,
                        .shard_id = 2,
                        .codec = VT_CODEC_NONE,
                        .offset = 8192,
                        .stored_len = 4608,
                        .raw_len = 4608,
                        .checksum = 0x1234567890abcdefull};
    uint8_t b[16 + ST_CHUNK_REC_LEN];
    st_chunk_key(ci.tensor_id, ci.index, b);
    st_chunk_rec_encode(&ci, VT_STORE_FORMAT_VERSION, b + 16);
    put(dir, "chunk_plain", b, sizeof b);
    ci.codec = VT_CODEC_ZSTD;
    ci.stored_len = 1000;
    st_chunk_rec_encode(&ci, VT_STORE_FORMAT_VERSION, b + 16);
    put(dir, "chunk_zstd", b, sizeof b);

    st_shard_rec sr = {.id = 3, .dir = 1, .flags = 1, .size = 1 << 20};
    uint8_t s[4 + ST_SHARD_REC_LEN];
    st_put_be32(s, sr.id);
    st_shard_rec_encode(&sr, s + 4);
    put(dir, "shard", s, sizeof s);

    char p0[] = "", p1[] = "/mnt/nvme1/vts", p2[] = "/data/b";
    st_dirs d = {.n = 3, .path = {p0, p1, p2}};
    uint8_t *enc;
    size_t len;
    if (st_dirs_encode(&d, &enc, &len) == 0) {
        put(dir, "dirs", enc, len);
        vt_free(enc);
    }
    return 0;
}
