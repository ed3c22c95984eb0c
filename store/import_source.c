/* Opening an import source: detect the kind of a file, parse its header, or follow a
 * safetensors index (model.safetensors.index.json) to the files it names. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "import_internal.h"

static int open_one(const char *path, const char *npy_name, vt_src_file *f, int *fd_out) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return vt_fail(-errno, "%s: cannot open: %s", path, strerror(errno));
    unsigned char head[16];
    struct stat st;
    if (fstat(fd, &st)) {
        int e = -errno;
        close(fd);
        return vt_fail(e, "%s: fstat failed", path);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return vt_fail(-EINVAL, "%s: not a regular file", path);
    }
    size_t n = st.st_size < 16 ? (size_t)st.st_size : 16;
    int rc = vt_pread_full(fd, head, n, 0);
    if (rc) {
        close(fd);
        return vt_fail(rc, "%s: cannot read: %s", path, vt_strerror(rc));
    }
    switch (vt_src_detect(head, n)) {
    case VT_SRC_GGUF:
        rc = vt_parse_gguf_fd(fd, path, f);
        break;
    case VT_SRC_NPY:
        rc = vt_parse_npy_fd(fd, path, npy_name, f);
        if (!rc) rc = vt_src_check_names(f); /* the name given or the file's */
        break;
    case VT_SRC_SAFETENSORS:
        rc = vt_parse_safetensors_fd(fd, path, f);
        break;
    default:
        rc = vt_fail(VT_EFORMAT, "%s: not a safetensors, GGUF or .npy file", path);
    }
    if (rc) {
        close(fd);
        return rc;
    }
#ifdef POSIX_FADV_SEQUENTIAL
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    *fd_out = fd;
    return 0;
}

static int read_text(const char *path, char **out, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return vt_fail(-errno, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st))
        rc = vt_fail(-errno, "%s: fstat failed", path);
    else if ((uint64_t)st.st_size > VT_PARSE_MAX_HEADER)
        rc = vt_fail(VT_EFORMAT, "%s: %lld bytes is larger than the JSON cap", path,
                     (long long)st.st_size);
    char *b = NULL;
    if (!rc && !(b = vt_malloc((size_t)st.st_size + 1)))
        rc = vt_fail(-ENOMEM, "%s: out of memory", path);
    if (!rc && (rc = vt_pread_full(fd, b, (size_t)st.st_size, 0)))
        rc = vt_fail(rc, "%s: read failed: %s", path, vt_strerror(rc));
    close(fd);
    if (rc) {
        vt_free(b);
        return rc;
    }
    b[st.st_size] = 0;
    *out = b;
    *len = (size_t)st.st_size;
    return 0;
}

static int join(const char *dir, const char *name, char *out, size_t cap) {
    if (snprintf(out, cap, "%s/%s", dir, name) >= (int)cap)
        return vt_fail(-ENAMETOOLONG, "path too long: %s/%s", dir, name);
    return 0;
}

/* The index: {"metadata": {...}, "weight_map": {"tensor": "file.safetensors", ...}} */
static int open_index(const char *path, imp_source *src) {
    char *text = NULL;
    size_t len = 0;
    int rc = read_text(path, &text, &len);
    if (rc) return rc;
    vt_json j;
    rc = vt_json_parse(text, len, path, &j);
    vt_free(text);
    if (rc) return rc;
    uint32_t wm = vt_json_get(&j, 0, "weight_map");
    if (!wm || j.nodes[wm].type != VT_JSON_OBJECT) {
        vt_json_free(&j);
        return vt_fail(VT_EFORMAT, "%s: safetensors index without a \"weight_map\" object", path);
    }
    /* distinct file names in order of first appearance */
    uint32_t cap = j.nodes[wm].count, nf = 0;
    const char **names = vt_calloc(cap ? cap : 1, sizeof *names);
    if (!names) rc = vt_fail(-ENOMEM, "%s: out of memory", path);
    for (uint32_t c = j.nodes[wm].child; c && !rc; c = j.nodes[c].next) {
        if (j.nodes[c].type != VT_JSON_STRING) {
            rc = vt_fail(VT_EFORMAT, "%s: weight_map entry '%s' is not a file name", path,
                         vt_json_key(&j, c));
            break;
        }
        const char *fn = vt_json_str(&j, c);
        if (!*fn || strchr(fn, '/') || !strcmp(fn, "..")) {
            rc = vt_fail(VT_EFORMAT,
                         "%s: weight_map entry '%s' names '%s', not a file beside the index", path,
                         vt_json_key(&j, c), fn);
            break;
        }
        uint32_t k;
        for (k = 0; k < nf; k++)
            if (!strcmp(names[k], fn)) break;
        if (k == nf) names[nf++] = fn;
    }
    if (!rc) {
        src->files = vt_calloc(nf ? nf : 1, sizeof *src->files);
        src->fds = vt_malloc((nf ? nf : 1) * sizeof *src->fds);
        if (!src->files || !src->fds) rc = vt_fail(-ENOMEM, "%s: out of memory", path);
    }
    for (uint32_t k = 0; k < nf && !rc; k++) {
        char p[4096];
        if (!(rc = join(src->dir, names[k], p, sizeof p)))
            rc = open_one(p, NULL, &src->files[k], &src->fds[k]);
        if (rc) break;
        for (uint32_t t = 0; t < src->files[k].n_tensors; t++) src->files[k].tensors[t].file = k;
        src->n_files++;
    }
    /* every tensor the map names must be in the file it names */
    for (uint32_t c = j.nodes[wm].child; c && !rc; c = j.nodes[c].next) {
        const char *tn = vt_json_key(&j, c), *fn = vt_json_str(&j, c);
        uint32_t k;
        for (k = 0; k < nf; k++)
            if (!strcmp(names[k], fn)) break;
        const vt_src_file *f = &src->files[k];
        uint32_t t;
        for (t = 0; t < f->n_tensors; t++)
            if (!strcmp(f->tensors[t].desc.name, tn)) break;
        if (t == f->n_tensors)
            rc = vt_fail(VT_EFORMAT, "%s: tensor '%s' is listed in the index but not in %s", path,
                         tn, f->path);
    }
    vt_free(names);
    vt_json_free(&j);
    return rc;
}

int imp_source_open(const char *path, const char *npy_name, imp_source *src) {
    memset(src, 0, sizeof *src);
    src->path = path;
    const char *sl = strrchr(path, '/');
    size_t dl = sl ? (size_t)(sl - path) : 1;
    src->dir = vt_malloc(dl + 1);
    if (!src->dir) return vt_fail(-ENOMEM, "out of memory");
    memcpy(src->dir, sl ? path : ".", dl);
    src->dir[dl] = 0;
    if (sl == path) strcpy(src->dir, "/");
    size_t n = strlen(path);
    int rc;
    if (n > 5 && !strcmp(path + n - 5, ".json")) {
        src->is_index = 1;
        rc = open_index(path, src);
    } else {
        src->files = vt_calloc(1, sizeof *src->files);
        src->fds = vt_malloc(sizeof *src->fds);
        if (!src->files || !src->fds)
            rc = vt_fail(-ENOMEM, "out of memory");
        else
            rc = open_one(path, npy_name, &src->files[0], &src->fds[0]);
        if (!rc) src->n_files = 1;
    }
    /* names must be unique across the files */
    if (!rc && src->n_files > 1) {
        uint64_t total = 0;
        for (uint32_t k = 0; k < src->n_files; k++) total += src->files[k].n_tensors;
        vt_src_file all = {0};
        all.path = (char *)path;
        all.tensors = vt_malloc((total ? total : 1) * sizeof *all.tensors);
        if (!all.tensors) rc = vt_fail(-ENOMEM, "out of memory");
        for (uint32_t k = 0; k < src->n_files && !rc; k++) {
            memcpy(all.tensors + all.n_tensors, src->files[k].tensors,
                   src->files[k].n_tensors * sizeof *all.tensors);
            all.n_tensors += src->files[k].n_tensors;
        }
        if (!rc) rc = vt_src_check_names(&all);
        vt_free(all.tensors);
    }
    if (rc) imp_source_close(src);
    return rc;
}

void imp_source_close(imp_source *src) {
    for (uint32_t k = 0; k < src->n_files; k++) {
        vt_src_file_free(&src->files[k]);
        if (src->fds[k] >= 0) close(src->fds[k]);
    }
    vt_free(src->files);
    vt_free(src->fds);
    vt_free(src->dir);
    memset(src, 0, sizeof *src);
}
