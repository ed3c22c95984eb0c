/* Conventions of the vtstore CLI ($VT_BIN): -h/--help after other arguments prints the usage
 * (exit 0) for every subcommand, bench included; the top-level help names the bench areas that
 * exist; --where comparisons on `layer` are false for names without a layer number; a failing
 * `stream --json` leaves stdout empty (error on stderr, exit 1) and a passing one prints one
 * complete object; `quant --json` writes a --file name with quotes, backslashes, control
 * characters or ill-formed UTF-8 as a valid JSON string. */
#include <sys/wait.h>

#include "import/gen.h"
#include "store/parse.h"
#include "cli_util.h"
#include "vt_test.h"

int main(void) {
    vt_test_seed();
    bin = getenv("VT_BIN");
    if (!bin || access(bin, X_OK)) TEST_SKIP("VT_BIN not set or not executable");
    vt_test_tmpdir("test_cli_conventions", dir, sizeof dir);

    /* 1. -h/--help after another argument (even an unknown or incomplete one) */
    static const char *cmds[] = {"import", "ls",     "query", "info",  "get",
                                 "export", "verify", "gc",    "rm",    "stream",
                                 "run",    "attn",   "quant", "bench", "upgrade"};
    static const char *tails[] = {"--nosuch --help", "x.vts -h", "--n 4096 --help", "--json -h"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        for (size_t j = 0; j < sizeof tails / sizeof tails[0]; j++) {
            char a[128];
            snprintf(a, sizeof a, "%s %s", cmds[i], tails[j]);
            int rc = vt(a);
            CHECKF(rc == 0 && strstr(slurp("out.txt"), "usage:"), "'%s': exit %d, stdout: %.200s",
                   a, rc, slurp("out.txt"));
        }
    CHECK(vt("bench kernels --nosuch --help") == 0 && strstr(slurp("out.txt"), "kernels"));
    CHECK(vt("bench kernels --rows -h") == 0 && strstr(slurp("out.txt"), "kernels"));
    CHECK(vt("quant --nosuch") == 2 && !*slurp("out.txt"));
    CHECK(vt("bench nosuch") == 2);

    /* 4. the top-level help names only the bench areas that exist */
    CHECK(vt("--help") == 0);
    CHECKF(strstr(slurp("out.txt"), "bench kernels") && !strstr(slurp("out.txt"), "quant|") &&
               !strstr(slurp("out.txt"), "..."),
           "top-level help: %s", slurp("out.txt"));
    CHECK(vt("bench --help") == 0 && count(slurp("out.txt"), "\n  ") == 1 &&
          strstr(slurp("out.txt"), "  kernels"));

    /* a GGUF-named model: embeddings and output norm outside the blocks, 3 blocks */
    enum { C = 256 };
    static float big[256 * C], w[3][16 * C], nrm[C];
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) big[i] = vt_rand_normal();
    for (int l = 0; l < 3; l++)
        for (int i = 0; i < 16 * C; i++) w[l][i] = vt_rand_normal();
    for (int i = 0; i < C; i++) nrm[i] = 1;
    gen_st_tensor t[] = {
        {"token_embd.weight", "F32", 2, {256, C}, big, sizeof big, 0, 0, 0},
        {"blk.0.attn_q.weight", "F32", 2, {16, C}, w[0], sizeof w[0], 0, 0, 0},
        {"blk.1.attn_q.weight", "F32", 2, {16, C}, w[1], sizeof w[1], 0, 0, 0},
        {"blk.2.attn_q.weight", "F32", 2, {16, C}, w[2], sizeof w[2], 0, 0, 0},
        {"output_norm.weight", "F32", 1, {C}, nrm, sizeof nrm, 0, 0, 0},
    };
    gbuf b = {0};
    gen_safetensors(&b, t, 5, NULL);
    char p[4300];
    snprintf(p, sizeof p, "%s/m.safetensors", dir);
    CHECK(gb_write_file(&b, p) == 0);
    gb_free(&b);
    CHECK(vt("import m.safetensors s.vts --format f32") == 0);

    /* 3. layer exists only for blk.N. / layers.N. names */
    static const struct {
        const char *where;
        int n;
    } cases[] = {
        {"layer < 2", 2},
        {"layer <= 2", 3},
        {"layer >= 0", 3},
        {"layer != 1", 2},
        {"layer == 1", 1},
        {"layer > -5", 3},
        {"!(layer >= 0)", 2},
        {"layer < 1 || name ~ '*norm*'", 2},
        {"!(layer < 2) && !(layer >= 2)", 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char a[256], want[32];
        snprintf(a, sizeof a, "ls s.vts --where \"%s\"", cases[i].where);
        snprintf(want, sizeof want, "%d tensor(s)", cases[i].n);
        CHECKF(vt(a) == 0 && strstr(slurp("out.txt"), want), "--where '%s': want %d, got %s",
               cases[i].where, cases[i].n, slurp("out.txt"));
    }
    CHECK(vt("ls s.vts --where 'layer < 2' --json") == 0);
    CHECKF(!strstr(slurp("out.txt"), "token_embd") && !strstr(slurp("out.txt"), "output_norm") &&
               count(slurp("out.txt"), "\"name\":") == 2,
           "layer < 2: %s", slurp("out.txt"));

    /* 1. stream --json: success prints one complete object, failure prints nothing on stdout */
    CHECK(vt("stream s.vts --ram 4M --passes 2 --json") == 0);
    const char *o = slurp("out.txt");
    size_t n = strlen(o);
    CHECKF(o[0] == '{' && n > 3 && !strcmp(o + n - 3, "]}\n") && count(o, "\"pass\":") == 2 &&
               strstr(o, "\"store\":\"s.vts\""),
           "stream --json: %s", o);
    /* token_embd.weight (256 KiB) does not fit 64 KiB without --chunkwise: exit 1 */
    int rc = vt("stream s.vts --ram 64K --passes 1 --json");
    CHECKF(rc == 1, "stream too small: exit %d", rc);
    CHECKF(!*slurp("out.txt"), "stream --json failure wrote stdout: %s", slurp("out.txt"));
    CHECKF(strstr(slurp("err.txt"), "vtstore stream:"), "stream error: %s", slurp("err.txt"));
    CHECK(vt("stream nosuch.vts --ram 4M --json") == 1 && !*slurp("out.txt"));

    /* 5. quant --json: a --file name with a quote, a backslash, a tab and a byte that is no
     * UTF-8 gives valid JSON whose dataset name is that name (the byte as U+FFFD) */
    {
        static const char fname[] = "q\"u\\o\tte\xff.npy";
        static float qx[4 * 64];
        for (size_t i = 0; i < sizeof qx / sizeof qx[0]; i++) qx[i] = vt_rand_normal();
        qx[2 * 64 + 5] = 1e5f; /* beyond f16: its line says so, the other formats report */
        gbuf qb = {0};
        gen_npy(&qb, 1, "<f4", (const uint64_t[]){4, 64}, 2, qx, sizeof qx);
        char qp[4400];
        snprintf(qp, sizeof qp, "%s/%s", dir, fname);
        CHECK(gb_write_file(&qb, qp) == 0);
        gb_free(&qb);
        char a[256];
        snprintf(a, sizeof a, "quant --file '%s' --runs 1 --threads 1 --json q.json", fname);
        rc = vt(a);
        CHECKF(rc == 0, "quant --file: exit %d, %s", rc, slurp("err.txt"));
        CHECKF(strstr(slurp("out.txt"), "f16       cannot hold these values") &&
                   strstr(slurp("out.txt"), "\nbf16 "),
               "quant output: %s", slurp("out.txt"));
        const char *js = slurp("q.json");
        vt_json j;
        int prc = vt_json_parse(js, strlen(js), "q.json", &j);
        CHECKF(prc == 0, "quant --json is not JSON: %s\n%.400s", vt_last_error(), js);
        if (!prc) {
            uint32_t ds = vt_json_get(&j, 0, "datasets");
            uint32_t d0 = ds ? j.nodes[ds].child : 0;
            uint32_t nm = d0 ? vt_json_get(&j, d0, "name") : 0;
            uint32_t fm = d0 ? vt_json_get(&j, d0, "formats") : 0;
            uint32_t f0 = fm ? j.nodes[fm].child : 0;
            uint32_t ff = f0 ? vt_json_get(&j, f0, "format") : 0;
            CHECKF(nm && j.nodes[nm].type == VT_JSON_STRING &&
                       !strcmp(vt_json_str(&j, nm), "q\"u\\o\tte\xef\xbf\xbd.npy"),
                   "dataset name '%s'", nm ? vt_json_str(&j, nm) : "(none)");
            CHECKF(ff && j.nodes[ff].type == VT_JSON_STRING && !strcmp(vt_json_str(&j, ff), "f16"),
                   "first format '%s'", ff ? vt_json_str(&j, ff) : "(none)");
            uint32_t oor = f0 ? vt_json_get(&j, f0, "out_of_range") : 0;
            CHECKF(oor && j.nodes[oor].type == VT_JSON_STRING &&
                       strstr(vt_json_str(&j, oor), "row 2, column 5"),
                   "f16 out_of_range '%s'", oor ? vt_json_str(&j, oor) : "(none)");
            uint32_t f1 = f0 ? j.nodes[f0].next : 0;
            CHECKF(f1 && vt_json_get(&j, f1, "sqnr_db"), "no figures after the f16 entry");
            vt_json_free(&j);
        }
    }

    if (!vt_test_failures) {
        char cmd[4400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd)) fprintf(stderr, "cannot remove %s\n", dir);
    }
    return vt_test_done("test_cli_conventions");
}
