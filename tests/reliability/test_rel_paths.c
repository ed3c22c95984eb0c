/* Path safety.
 *  - Tensor names are index keys, never paths: importing tensors named "../../etc/x",
 *    "/abs/evil", "data/shard-000001.vts", "index/data.mdb" ... creates no file outside the
 *    store, the store's files keep their fixed names, and each tensor reads back under its name.
 *  - A shard file replaced by a symlink (to a byte-identical copy outside the store, so only the
 *    refusal can make the read fail) is refused by reads, verify (naming tensor and chunk) and
 *    `vtstore verify` (exit 1), and gc neither follows it nor changes the file it points to.
 *  Index records naming directories outside the store are refused by the decoder
 *  (tests/store/test_store_corrupt, fuzz_record). */
#include <dirent.h>

#include "rel_util.h"

static char dir[2048], store[2100];

/* 0 when every file under the store is LOCK, index/{data,lock}.mdb or data/shard-NNNNNN.vts */
static int store_files_ok(void) {
    char cmd[2400];
    snprintf(cmd, sizeof cmd, "cd '%s' && find . -mindepth 1 | sort", store);
    FILE *f = popen(cmd, "r");
    if (!f) return -1;
    char line[4096];
    int bad = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        unsigned id;
        char tail;
        if (!strcmp(line, "./LOCK") || !strcmp(line, "./index") || !strcmp(line, "./data") ||
            !strcmp(line, "./index/data.mdb") || !strcmp(line, "./index/lock.mdb") ||
            !strcmp(line, "./index/data.xxh") ||
            (sscanf(line, "./data/shard-%6u.vts%c", &id, &tail) == 1 && strlen(line) == 23))
            continue;
        fprintf(stderr, "unexpected path in the store: %s\n", line);
        bad = 1;
    }
    pclose(f);
    return bad;
}

/* listing of everything under dir except the store, for before/after comparison */
static char *outside_listing(void) {
    char cmd[4400];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && find . -path ./store -prune -o -print | sort; ls -la /tmp /etc | "
             "grep -c evil",
             dir);
    FILE *f = popen(cmd, "r");
    char *buf = calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = 0;
    pclose(f);
    return buf;
}

static void on_problem(void *ctx, const vt_verify_problem *p) {
    int *named = ctx;
    if (p->tensor[0] && p->chunk >= 0) *named = 1;
    printf("  verify: %s\n", p->message);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    vt_test_seed();
    vt_test_tmpdir("rel_paths", dir, sizeof dir);
    snprintf(store, sizeof store, "%s/store", dir);
    const char *names[] = {
        "../../etc/x",           "/abs/evil",      "a/../../b", "..",
        "data/shard-000001.vts", "index/data.mdb", "LOCK",      "../store/data/shard-000009.vts"};
    const int n = (int)(sizeof names / sizeof *names);
    char src[2200];
    snprintf(src, sizeof src, "%s/hostile.safetensors", dir);
    CHECK_RC(rel_write_st(src, NULL, names, n, 16, 256, 7));
    char *before = outside_listing();
    vt_store *s;
    vt_store_options o = {.chunk_target_bytes = 4096};
    CHECK_RC(vt_store_open(store, VT_STORE_RDWR | VT_STORE_CREATE, &o, &s));
    if (!s) return vt_test_done("test_rel_paths");
    int rc = vt_import_file(s, src, NULL, NULL);
    printf("import of hostile names: %s %s\n", rc ? vt_strerror(rc) : "ok",
           rc ? vt_last_error() : "");
    CHECKF(rc == 0 || (rc < 0 && vt_last_error()[0]), "import: %d without a message", rc);
    if (rc == 0)
        for (int i = 0; i < n; i++) {
            uint32_t g = 0;
            CHECKF(rel_check_tensor(s, names[i], &g) == 0 && g == 7, "tensor %s does not read back",
                   names[i]);
        }
    CHECK_RC(vt_store_verify(s, NULL, NULL, NULL));
    CHECK_RC(vt_store_gc(s, NULL));
    vt_store_close(s);
    char *after = outside_listing();
    CHECKF(!strcmp(before, after), "files outside the store changed:\n%s---\n%s", before, after);
    CHECK(store_files_ok() == 0);
    free(before);
    free(after);

    /* a shard replaced by a symlink to an identical file outside the store */
    CHECK_RC(vt_store_open(store, VT_STORE_RDWR, NULL, &s));
    if (!s) return vt_test_done("test_rel_paths");
    vt_chunk_info ci;
    CHECK_RC(vt_store_chunk_info(s, names[0], 0, &ci));
    char shard[4096], outside[2200];
    CHECK_RC(vt_store_shard_path(s, ci.shard_id, shard, sizeof shard));
    vt_store_close(s);
    snprintf(outside, sizeof outside, "%s/outside.vts", dir);
    CHECK(rel_sh("cp '%s' '%s' && ln -sf '%s' '%s'", shard, outside, outside, shard) == 0);
    struct stat st0, st1;
    CHECK(stat(outside, &st0) == 0);
    uint64_t sum0 = 0;
    {
        FILE *f = fopen(outside, "rb");
        int c;
        while (f && (c = fgetc(f)) != EOF) sum0 = sum0 * 31 + (uint64_t)c;
        if (f) fclose(f);
    }
    CHECK_RC(vt_store_open(store, VT_STORE_RDWR, NULL, &s));
    if (!s) return vt_test_done("test_rel_paths");
    uint8_t *buf = malloc(1 << 20);
    rc = vt_store_read_chunk(s, names[0], 0, buf, 1 << 20, NULL);
    CHECKF(rc == VT_ECORRUPT, "read through a symlinked shard: %d %s", rc, vt_store_errmsg(s));
    printf("read through symlinked shard: %s: %s\n", vt_strerror(rc), vt_store_errmsg(s));
    int fd = -1;
    rc = vt_store_shard_open(s, ci.shard_id, 0, &fd);
    CHECKF(rc == VT_ECORRUPT && fd < 0, "shard_open of a symlink: %d", rc);
    int named = 0;
    rc = vt_store_verify(s, on_problem, &named, NULL);
    CHECKF(rc == VT_ECORRUPT && named, "verify of a symlinked shard: %d (named %d)", rc, named);
    rc = vt_store_gc(s, NULL);
    printf("gc with a symlinked shard: %s %s\n", rc ? vt_strerror(rc) : "ok",
           rc ? vt_store_errmsg(s) : "");
    vt_store_close(s);
    int ex = rel_sh("'%s' verify '%s' > /dev/null 2>&1",
                    getenv("VT_BIN") ? getenv("VT_BIN") : "false", store);
    if (getenv("VT_BIN")) CHECKF(ex == 1, "vtstore verify exit %d, expected 1", ex);
    CHECK(stat(outside, &st1) == 0 && st1.st_size == st0.st_size);
    uint64_t sum1 = 0;
    {
        FILE *f = fopen(outside, "rb");
        int c;
        while (f && (c = fgetc(f)) != EOF) sum1 = sum1 * 31 + (uint64_t)c;
        if (f) fclose(f);
    }
    CHECKF(sum0 == sum1, "the file outside the store was modified");
    struct stat lst;
    CHECK(lstat(shard, &lst) != 0 || S_ISLNK(lst.st_mode)); /* not replaced by a real file */
    free(buf);
    if (!vt_test_failures) rel_sh("rm -rf '%s'", dir);
    return vt_test_done("test_rel_paths");
}
