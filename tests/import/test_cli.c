/* The store subcommands of the vtstore CLI ($VT_BIN): exit codes (0/1/2), --help everywhere,
 * import + ls/query --where + info + get (compared with the library's read) + export + verify
 * (a flipped shard byte is named and gives exit 1) + rm + gc. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sys/wait.h>

#include "gen.h"
#include "store/parse.h"
#include "cli_util.h"
#include "vt_test.h"
#include "vtstore/store.h"

int main(void) {
    vt_test_seed();
    bin = getenv("VT_BIN");
    if (!bin || access(bin, X_OK)) TEST_SKIP("VT_BIN not set or not executable");
    vt_test_tmpdir("test_cli", dir, sizeof dir);

    static const char *cmds[] = {"import", "ls",     "query", "info", "get",
                                 "export", "verify", "gc",    "rm"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char a[64];
        snprintf(a, sizeof a, "%s --help", cmds[i]);
        CHECKF(vt(a) == 0 && strstr(slurp("out.txt"), "usage:"), "%s --help", cmds[i]);
        snprintf(a, sizeof a, "%s", cmds[i]);
        CHECKF(vt(a) == 2, "%s without arguments should exit 2", cmds[i]);
    }

    /* a small Llama-shaped model: 4 layers of q/up weights + norms */
    enum { L = 4, R = 64, C = 96 };
    static float w[2 * L][R * C], nrm[L][C];
    gen_st_tensor t[3 * L];
    char names[3 * L][64];
    int k = 0;
    for (int l = 0; l < L; l++) {
        for (int j = 0; j < 2; j++) {
            for (int i = 0; i < R * C; i++) w[2 * l + j][i] = vt_rand_normal();
            snprintf(names[k], sizeof names[k], "model.layers.%d.%s.weight", l,
                     j ? "mlp.up_proj" : "self_attn.q_proj");
            t[k] = (gen_st_tensor){names[k], "F32", 2, {R, C}, w[2 * l + j], sizeof w[0], 0, 0, 0};
            k++;
        }
        for (int i = 0; i < C; i++) nrm[l][i] = 1 + 0.1f * vt_rand_normal();
        snprintf(names[k], sizeof names[k], "model.layers.%d.input_layernorm.weight", l);
        t[k] = (gen_st_tensor){names[k], "F32", 1, {C}, nrm[l], sizeof nrm[0], 0, 0, 0};
        k++;
    }
    gbuf b = {0};
    gen_safetensors(&b, t, k, NULL);
    char p[4300];
    snprintf(p, sizeof p, "%s/m.safetensors", dir);
    CHECK(gb_write_file(&b, p) == 0);
    gb_free(&b);

    CHECK(vt("import m.safetensors s.vts --format nf4 --rule '*up_proj*=q8_0' --chunk-size 4K") ==
          0);
    CHECKF(strstr(slurp("out.txt"), "imported 12 tensors (8 converted, 4 kept)"), "summary: %s",
           slurp("out.txt"));
    CHECK(vt("import m.safetensors s.vts --format nosuch") == 2);
    CHECK(vt("import missing.safetensors s.vts") == 1 &&
          strstr(slurp("err.txt"), "missing.safetensors"));

    CHECK(vt("ls s.vts") == 0 && strstr(slurp("out.txt"), "12 tensor(s)"));
    CHECK(vt("ls s.vts --where \"layer < 2 && format == nf4\"") == 0);
    CHECKF(strstr(slurp("out.txt"), "2 tensor(s)"), "where 1: %s", slurp("out.txt"));
    CHECK(vt("query s.vts '*layers.3.*' --where \"format ~ 'q8*' || name ~ '*norm*'\" --json") ==
          0);
    CHECK(count(slurp("out.txt"), "\"name\":") == 2);
    CHECK(vt("ls s.vts --where \"!(sqnr > 30) && dtype == f32 && shape == 64x96\"") == 0);
    CHECKF(strstr(slurp("out.txt"), "4 tensor(s)"), "where 3: %s", slurp("out.txt"));
    CHECK(vt("ls s.vts --where \"rows >= 64 && cols == 96 && bytes > 1K\"") == 0);
    CHECKF(strstr(slurp("out.txt"), "8 tensor(s)"), "where 4: %s", slurp("out.txt"));
    CHECK(vt("ls s.vts --where \"layer <\"") == 2);
    CHECK(vt("ls s.vts --where \"(layer < 2\"") == 2);
    CHECK(vt("ls s.vts --where \"nosuch == 1\"") == 2);

    CHECK(vt("info s.vts") == 0 && strstr(slurp("out.txt"), "tensors       12"));
    CHECK(vt("info s.vts model.layers.0.mlp.up_proj.weight --json") == 0 &&
          strstr(slurp("out.txt"), "\"format\":\"q8_0\""));
    CHECK(vt("info s.vts nosuch") == 1 && strstr(slurp("err.txt"), "nosuch"));

    /* get a row range and compare with the library's read */
    CHECK(vt("get s.vts 'model.layers.1.self_attn.q_proj.weight[5:20]' -o g.npy") == 0);
    CHECK(vt("get s.vts 'model.layers.1.self_attn.q_proj.weight[60:70]' -o g2.npy") == 1);
    CHECK(vt("get s.vts 'model.layers.1.self_attn.q_proj.weight[x]' -o g2.npy") == 2);
    snprintf(p, sizeof p, "%s/s.vts", dir);
    vt_store *s = NULL;
    CHECK_RC(vt_store_open(p, VT_STORE_RDONLY, NULL, &s));
    if (s) {
        static float want[15 * C], got[15 * C];
        CHECK_RC(vt_store_read_rows(s, "model.layers.1.self_attn.q_proj.weight", 5, 15,
                                    VT_DTYPE_F32, want, sizeof want));
        snprintf(p, sizeof p, "%s/g.npy", dir);
        int fd = open(p, O_RDONLY);
        vt_src_file f;
        int rc = vt_parse_npy_fd(fd, p, NULL, &f);
        CHECKF(rc == 0, "get output: %s", vt_last_error());
        if (!rc) {
            CHECK(f.tensors[0].desc.dims[0] == 15 && f.tensors[0].desc.dims[1] == C);
            CHECK(vt_pread_full(fd, got, sizeof got, f.tensors[0].offset) == 0);
            CHECK(!memcmp(got, want, sizeof got));
            /* and it is the nf4 approximation of the source */
            double se = 0, sx = 0;
            for (int i = 0; i < 15 * C; i++) {
                double x = w[2][5 * C + i];
                se += (x - got[i]) * (x - got[i]);
                sx += x * x;
            }
            CHECKF(10 * log10(sx / se) > 18, "nf4 rows sqnr %g", 10 * log10(sx / se));
            vt_src_file_free(&f);
        }
        close(fd);
        vt_store_close(s);
    }

    CHECK(vt("export s.vts e.safetensors") == 0);
    CHECK(vt("export s.vts e.gguf --pattern '*layers.0*'") == 0);
    /* the extension in any case picks GGUF (E.GGUF was written as safetensors) */
    CHECK(vt("export s.vts E.GGUF --pattern '*layers.0*'") == 0);
    {
        char p[4300], magic[4] = {0};
        snprintf(p, sizeof p, "%s/E.GGUF", dir);
        FILE *f = fopen(p, "rb");
        CHECK(f && fread(magic, 1, 4, f) == 4 && !memcmp(magic, "GGUF", 4));
        if (f) fclose(f);
    }
    CHECK(vt("export s.vts e.bin --format nosuch") == 2);

    CHECK(vt("verify s.vts") == 0 && strstr(slurp("out.txt"), "0 problem(s)"));
    /* flip one byte of the first chunk of a shard: verify names the chunk and exits 1 */
    char cmd[8400];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && f=$(find s.vts -name 'shard-*' -type f | head -1) && printf '\\377' | "
             "dd of=\"$f\" bs=1 seek=4100 conv=notrunc status=none",
             dir);
    CHECK(system(cmd) == 0);
    CHECK(vt("verify s.vts") == 1);
    CHECKF(strstr(slurp("err.txt"), "chunk"), "verify message: %s", slurp("err.txt"));

    CHECK(vt("rm s.vts 'nothing*'") == 1);
    CHECK(vt("rm s.vts '*layers.3.*'") == 0 && strstr(slurp("out.txt"), "removed 3"));
    CHECK(vt("ls s.vts") == 0 && strstr(slurp("out.txt"), "9 tensor(s)"));
    CHECK(vt("nosuchcommand") == 2);

    if (!vt_test_failures) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd)) fprintf(stderr, "cannot remove %s\n", dir);
    }
    return vt_test_done("test_cli");
}
