/* Text in source headers must be well-formed UTF-8 (RFC 3629), as JSON output of the names
 * (ls --json, export) would otherwise be invalid:
 *  - vt_utf8_valid_len accepts every valid 1..4-byte form and stops at the first byte of an
 *    overlong form, a surrogate, a code point above U+10FFFF, a stray continuation byte, a
 *    bad continuation or a sequence cut off by the end;
 *  - JSON strings (safetensors tensor names, metadata, config.json) with raw invalid bytes are
 *    VT_EFORMAT naming the file and the byte offset; \u escapes still decode;
 *  - GGUF tensor names and metadata keys with invalid bytes are VT_EFORMAT naming the file,
 *    the tensor / key index and the byte;
 *  - `vtstore import` of such a safetensors file fails (exit 1) naming the file, and so does
 *    that of a .npy file whose tensor name (--name, or the file's name) is not UTF-8. */
#include <unistd.h>

#include "cli_util.h"
#include "gen.h"
#include "store/parse.h"
#include "store/store_testutil.h"
#include "vt_test.h"

static const struct {
    const char *s;
    size_t valid; /* length of the valid prefix */
} cases[] = {
    {"plain", 5},
    {"\xc3\xa9", 2},                     /* U+00E9 */
    {"\xdf\xbf", 2},                     /* U+07FF */
    {"\xe0\xa0\x80", 3},                 /* U+0800, smallest 3-byte */
    {"\xed\x9f\xbf", 3},                 /* U+D7FF, below the surrogates */
    {"\xee\x80\x80", 3},                 /* U+E000, above them */
    {"\xef\xbf\xbf", 3},                 /* U+FFFF */
    {"\xf0\x90\x80\x80", 4},             /* U+10000 */
    {"\xf4\x8f\xbf\xbf", 4},             /* U+10FFFF, the last */
    {"ab\xff", 2},                       /* 0xFF never occurs */
    {"a\xfe", 1},                        /* nor 0xFE */
    {"\x80", 0},                         /* stray continuation */
    {"\xc0\xaf", 0},                     /* overlong '/' */
    {"\xc1\xbf", 0},                     /* overlong */
    {"\xe0\x9f\xbf", 0},                 /* overlong 3-byte */
    {"\xf0\x8f\xbf\xbf", 0},             /* overlong 4-byte */
    {"x\xed\xa0\x80", 1},                /* U+D800, a surrogate */
    {"\xed\xbf\xbf", 0},                 /* U+DFFF */
    {"\xf4\x90\x80\x80", 0},             /* U+110000 */
    {"\xf5\x80\x80\x80", 0},             /* lead byte beyond F4 */
    {"\xc3", 0},                         /* cut off */
    {"\xe2\x82", 0},                     /* cut off */
    {"ok\xc3(", 2},                      /* bad continuation */
    {"\xe2\x82\xac\xf0\x9f\x99\x82", 7}, /* euro sign, emoji */
};

static const char *path = "bad.safetensors";

/* A safetensors file with one tensor named @p name (written into the JSON as is). */
static void st_file(gbuf *b, const char *name) {
    static float v[2] = {1, 2};
    gen_st_tensor t[] = {{name, "F32", 1, {2}, v, sizeof v, 0, 0, 0}};
    gen_safetensors(b, t, 1, NULL);
}

int main(void) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(cases[i].s), got = vt_utf8_valid_len(cases[i].s, n);
        CHECKF(got == cases[i].valid, "case %zu: valid prefix %zu, want %zu", i, got,
               cases[i].valid);
    }

    /* JSON */
    vt_json j;
    const char good_json[] = "{\"a\\u00e9\\ud83d\\ude42\": \"\xc3\xa9\"}";
    CHECK_RC(vt_json_parse(good_json, sizeof good_json - 1, "x.json", &j));
    vt_json_free(&j);
    const char bad_json[] = "{\"ab\xed\xa0\x80\": 1}";
    CHECK(vt_json_parse(bad_json, sizeof bad_json - 1, "x.json", &j) == VT_EFORMAT);
    CHECKF(strstr(vt_last_error(), "x.json") && strstr(vt_last_error(), "byte 4") &&
               strstr(vt_last_error(), "UTF-8"),
           "json: %s", vt_last_error());

    /* safetensors names */
    vt_src_file f;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gbuf b = {0};
        char name[64];
        snprintf(name, sizeof name, "w.%s", cases[i].s);
        st_file(&b, name);
        int rc = vt_parse_safetensors_mem(b.p, b.n, b.n, path, &f);
        if (cases[i].valid == strlen(cases[i].s)) {
            CHECKF(rc == 0, "case %zu: %s", i, vt_last_error());
            if (!rc) CHECK(!strcmp(f.tensors[0].desc.name, name));
            vt_src_file_free(&f);
        } else {
            CHECKF(rc == VT_EFORMAT && strstr(vt_last_error(), path) &&
                       strstr(vt_last_error(), "not valid UTF-8"),
                   "case %zu: rc %d: %s", i, rc, vt_last_error());
        }
        gb_free(&b);
    }

    /* GGUF tensor names and metadata keys */
    static const float gv[32];
    for (int which = 0; which < 3; which++) {
        gbuf kv = {0}, b = {0};
        kv_u32(&kv, which == 1 ? "general.\xc0\xafx" : "general.alignment", 32);
        kv_string(&kv, "general.name", "\xe2\x82\xac");
        gen_gguf_tensor t[] = {
            {"blk.0.ok", 1, {32}, 0, gv, sizeof gv},
            {which == 2 ? "blk.1.\xf4\x90\x80\x80" : "blk.1.ok", 1, {32}, 0, gv, sizeof gv}};
        gen_gguf(&b, 3, &kv, 2, t, 2, 32);
        int rc = vt_parse_gguf_mem(b.p, b.n, b.n, "m.gguf", &f);
        if (which == 0) {
            CHECKF(rc == 0, "gguf: %s", vt_last_error());
            vt_src_file_free(&f);
        } else {
            CHECKF(rc == VT_EFORMAT && strstr(vt_last_error(), "m.gguf") &&
                       strstr(vt_last_error(), which == 1 ? "metadata key 0" : "tensor 1") &&
                       strstr(vt_last_error(), which == 1 ? "0xc0" : "0xf4"),
                   "gguf %d: rc %d: %s", which, rc, vt_last_error());
        }
        printf("gguf %d: %s\n", which, rc ? vt_last_error() : "ok");
        gb_free(&kv);
        gb_free(&b);
    }

    /* the CLI: import refuses, naming the file */
    bin = getenv("VT_BIN");
    if (bin && !access(bin, X_OK)) {
        vt_test_tmpdir("test_parse_utf8", dir, sizeof dir);
        gbuf b = {0};
        char p[4400];
        /* s.vts exists first: a failed import into a new path leaves no store to list */
        st_file(&b, "good");
        snprintf(p, sizeof p, "%s/good.safetensors", dir);
        CHECK(gb_write_file(&b, p) == 0);
        gb_free(&b);
        CHECK(vt("import good.safetensors s.vts -q") == 0);
        st_file(&b, "w\xff");
        snprintf(p, sizeof p, "%s/%s", dir, path);
        CHECK(gb_write_file(&b, p) == 0);
        gb_free(&b);
        int rc = vt("import bad.safetensors s.vts -q");
        CHECKF(rc == 1 && strstr(slurp("err.txt"), path) && strstr(slurp("err.txt"), "UTF-8"),
               "import: exit %d: %s", rc, slurp("err.txt"));
        CHECK(vt("ls s.vts --json") == 0 && !strstr(slurp("out.txt"), "\xff"));
        /* .npy: the name given with --name, or the file's name */
        static const float v[2] = {1, 2};
        const uint64_t dims[1] = {2};
        gen_npy(&b, 1, "<f4", dims, 1, v, sizeof v);
        snprintf(p, sizeof p, "%s/x\xfey.npy", dir);
        CHECK(gb_write_file(&b, p) == 0);
        snprintf(p, sizeof p, "%s/w.npy", dir);
        CHECK(gb_write_file(&b, p) == 0);
        gb_free(&b);
        rc = vt("import w.npy s.vts -q --name 'bad\xffname'");
        CHECKF(rc == 1 && strstr(slurp("err.txt"), "w.npy") && strstr(slurp("err.txt"), "UTF-8"),
               "import --name: exit %d: %s", rc, slurp("err.txt"));
        rc = vt("import 'x\xfey.npy' s.vts -q");
        CHECKF(rc == 1 && strstr(slurp("err.txt"), "UTF-8"), "import .npy: exit %d: %s", rc,
               slurp("err.txt"));
        CHECK(vt("ls s.vts --json") == 0 && !strstr(slurp("out.txt"), "\xfe") &&
              !strstr(slurp("out.txt"), "\xff"));
        /* a store that holds such a name (imported before the check; here through the writer):
         * ls --json and info --json write its bad byte as U+FFFD, keeping the output JSON */
        vt_store *st;
        snprintf(p, sizeof p, "%s/old.vts", dir);
        CHECK_RC(vt_store_open(p, VT_STORE_RDWR | VT_STORE_CREATE, NULL, &st));
        if (st) {
            vt_store_writer *w;
            CHECK_RC(vt_store_writer_begin(st, &w));
            CHECK_RC(tu_put_f32(w, "old\xe9name", v, 2));
            CHECK_RC(vt_store_writer_commit(w));
            vt_store_close(st);
            CHECK(vt("ls old.vts --json") == 0 && !strstr(slurp("out.txt"), "\xe9") &&
                  strstr(slurp("out.txt"), "\"old\\ufffdname\""));
            CHECK(vt("info old.vts 'old\xe9name' --json") == 0 &&
                  !strstr(slurp("out.txt"), "\xe9") &&
                  strstr(slurp("out.txt"), "\"old\\ufffdname\""));
        }
    }
    return vt_test_done("test_parse_utf8");
}
