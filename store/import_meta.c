/* Metadata kept by import: GGUF key/values ("gguf.<key>"), safetensors __metadata__
 * ("safetensors.<key>") and config.json / tokenizer.json / generation_config.json /
 * tokenizer_config.json beside a safetensors source, each as a typed value
 * (include/vtstore/meta.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "import_internal.h"

int imp_encode_string(const char *s, size_t n, unsigned char **out, size_t *len) {
    unsigned char *b = vt_malloc(12 + n);
    if (!b) return vt_fail(-ENOMEM, "out of memory encoding metadata");
    b[0] = VT_GGUF_STRING;
    b[1] = b[2] = b[3] = 0;
    for (int i = 0; i < 8; i++) b[4 + i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(b + 12, s, n);
    *out = b;
    *len = 12 + n;
    return 0;
}

static int put_typed(vt_store_writer *w, const char *prefix, const vt_src_kv *kv) {
    char key[VT_MAX_NAME];
    if (strlen(prefix) + strlen(kv->key) >= sizeof key) {
        vt_log(VT_LOG_WARN, "metadata key '%.60s...' is longer than %d bytes; not kept", kv->key,
               VT_MAX_NAME - 1);
        return 0;
    }
    if (snprintf(key, sizeof key, "%s%s", prefix, kv->key) >= (int)sizeof key) return 0;
    unsigned char *b = vt_malloc((size_t)kv->val_len + 4);
    if (!b) return vt_fail(-ENOMEM, "out of memory for metadata '%s'", key);
    for (int i = 0; i < 4; i++) b[i] = (unsigned char)(kv->type >> (8 * i));
    memcpy(b + 4, kv->val, (size_t)kv->val_len);
    int rc = vt_writer_put_meta(w, key, b, (size_t)kv->val_len + 4);
    vt_free(b);
    return rc;
}

/* Keep a small JSON file beside the source as a string value (if present and valid JSON). */
static int put_side_file(vt_store_writer *w, const char *dir, const char *name) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0; /* absent: nothing to keep */
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > (64u << 20)) {
        close(fd);
        vt_log(VT_LOG_WARN, "%s: not kept (not a regular file of at most 64 MiB)", path);
        return 0;
    }
    char *text = vt_malloc((size_t)st.st_size + 1);
    if (!text) rc = vt_fail(-ENOMEM, "%s: out of memory", path);
    if (!rc && (rc = vt_pread_full(fd, text, (size_t)st.st_size, 0)))
        rc = vt_fail(rc, "%s: read failed: %s", path, vt_strerror(rc));
    close(fd);
    vt_json j;
    if (!rc) {
        if (vt_json_parse(text, (size_t)st.st_size, path, &j)) {
            vt_log(VT_LOG_WARN, "%s is not valid JSON; not kept (%s)", path, vt_last_error());
            vt_clear_error();
        } else {
            vt_json_free(&j);
            unsigned char *b;
            size_t len;
            if (!(rc = imp_encode_string(text, (size_t)st.st_size, &b, &len))) {
                rc = vt_writer_put_meta(w, name, b, len);
                vt_free(b);
            }
        }
    }
    vt_free(text);
    return rc;
}

int imp_put_meta(vt_store_writer *w, const imp_source *src) {
    int rc = 0;
    int any_st = 0;
    for (uint32_t k = 0; k < src->n_files && !rc; k++) {
        const vt_src_file *f = &src->files[k];
        const char *prefix = f->kind == VT_SRC_GGUF ? "gguf." : "safetensors.";
        any_st |= f->kind == VT_SRC_SAFETENSORS;
        for (uint32_t i = 0; i < f->n_kv && !rc; i++) rc = put_typed(w, prefix, &f->kv[i]);
    }
    if (!rc && any_st) rc = put_side_file(w, src->dir, "config.json");
    if (!rc && any_st) rc = put_side_file(w, src->dir, "tokenizer.json");
    if (!rc && any_st) rc = put_side_file(w, src->dir, "generation_config.json");
    if (!rc && any_st) rc = put_side_file(w, src->dir, "tokenizer_config.json");
    return rc;
}
