/* What the vtstore CLI ($VT_BIN) leaves behind and shows, on bad input and hostile names:
 *  1. output that cannot be written (stdout on a full disk) is an error (exit 1, saying so),
 *     not exit 0 with the output lost;
 *  2. a --where of thousands of && terms is refused (exit 2), not a crash (eval recursed with
 *     a 512-byte buffer per term: 16000 terms overflowed the 8 MiB stack, 2000 a 512 KiB one);
 *     a value longer than the parser's 511 bytes is named as such;
 *  3. tensor names holding a newline or an escape sequence (a safetensors file may name them
 *     so) are escaped in ls, info and error messages, and exact in ls --json;
 *  4. a failed import into a path with no store leaves no store there (it left an empty one),
 *     an empty directory stays empty, an existing store is kept;
 *  5. usage errors are usage errors (exit 2) whatever the store: export --dtype i8, get
 *     --dtype on a missing store; info shows an exact copy's SQNR as "exact", not "inf dB". */
#include <sys/stat.h>

#include "import/gen.h"
#include "store/parse.h"
#include "cli_util.h"
#include "vt_test.h"

/* Run the shell script @p script in dir (for commands longer than vt()'s buffer); exit code. */
static int sh(const char *script) {
    char p[4400], cmd[3 * 4400];
    snprintf(p, sizeof p, "%s/run.sh", dir);
    FILE *f = fopen(p, "w");
    if (!f) return -1;
    fprintf(f, "cd '%s' || exit 99\n%s\n", dir, script);
    fclose(f);
    snprintf(cmd, sizeof cmd, "sh '%s' >'%s/out.txt' 2>'%s/err.txt'", p, dir, dir);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A --where of @p n "rows>0" terms joined by &&; free() it. */
static char *chain(int n) {
    char *s = malloc((size_t)n * 8 + 1);
    size_t k = 0;
    for (int i = 0; s && i < n; i++) k += (size_t)sprintf(s + k, "%srows>0", i ? "&&" : "");
    return s;
}

static int exists(const char *name) {
    char p[4400];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return lstat(p, &st) == 0;
}

int main(void) {
    vt_test_seed();
    bin = getenv("VT_BIN");
    if (!bin || access(bin, X_OK)) TEST_SKIP("VT_BIN not set or not executable");
    vt_test_tmpdir("test_cli_output", dir, sizeof dir);

    enum { C = 64 };
    static float w[4 * C];
    for (int i = 0; i < 4 * C; i++) w[i] = vt_rand_normal();
    /* JSON escapes: the names are "a\nb" and "e<ESC>[31mred" */
    gen_st_tensor t[] = {
        {"a\\nb", "F32", 2, {4, C}, w, sizeof w, 0, 0, 0},
        {"e\\u001b[31mred", "F32", 2, {4, C}, w, sizeof w, 0, 0, 0},
        {"plain", "F32", 2, {4, C}, w, sizeof w, 0, 0, 0},
    };
    gbuf b = {0};
    gen_safetensors(&b, t, 3, NULL);
    char p[4400];
    snprintf(p, sizeof p, "%s/m.safetensors", dir);
    CHECK(gb_write_file(&b, p) == 0);
    gb_free(&b);
    CHECK(vt("import m.safetensors s.vts --format f32 -q") == 0);

    /* 1. */
    int rc = sh("\"$VT_BIN\" ls s.vts >/dev/full");
    CHECKF(rc == 1 && strstr(slurp("err.txt"), "vtstore ls: writing the output failed"),
           "ls >/dev/full: exit %d, stderr %s", rc, slurp("err.txt"));
    rc = sh("\"$VT_BIN\" info s.vts --json >/dev/full");
    CHECKF(rc == 1, "info --json >/dev/full: exit %d", rc);
    CHECK(vt("ls s.vts") == 0 && strstr(slurp("out.txt"), "3 tensor(s)"));

    /* 2. */
    char *e = chain(2000), *big = chain(16000);
    char *script = malloc(16000 * 8 + 256);
    CHECK(e && big && script);
    if (e && big && script) {
        sprintf(script, "ulimit -s 512; \"$VT_BIN\" ls s.vts --where '%s'", e);
        rc = sh(script);
        CHECKF(rc == 0 && strstr(slurp("out.txt"), "3 tensor(s)"),
               "2000 terms, 512 KiB stack: exit %d, %s", rc, slurp("err.txt"));
        sprintf(script, "\"$VT_BIN\" ls s.vts --where '%s'", big);
        rc = sh(script);
        CHECKF(rc == 2 && strstr(slurp("err.txt"), "filter too long"),
               "16000 terms: exit %d, %.300s", rc, slurp("err.txt"));
    }
    free(e);
    free(big);
    free(script);
    char lw[700] = "ls s.vts --where \"name ~ '";
    size_t k = strlen(lw);
    memset(lw + k, 'a', 600);
    strcpy(lw + k + 600, "'\"");
    CHECKF(vt(lw) == 2 && strstr(slurp("err.txt"), "longer than 511"), "long value: %s",
           slurp("err.txt"));

    /* 3. */
    CHECK(vt("ls s.vts") == 0);
    const char *o = slurp("out.txt");
    CHECKF(!strchr(o, 0x1b) && strstr(o, "\na\\nb ") && strstr(o, "\ne\\x1b[31mred "),
           "ls shows names unescaped:\n%s", o);
    CHECK(vt("info s.vts 'e\x1b[31mred'") == 0);
    CHECKF(!strchr(slurp("out.txt"), 0x1b) && strstr(slurp("out.txt"), "e\\x1b[31mred"), "info: %s",
           slurp("out.txt"));
    CHECK(vt("get s.vts 'e\x1b[31mred[9]' -o r.npy") == 1);
    CHECKF(!strchr(slurp("err.txt"), 0x1b) && strstr(slurp("err.txt"), "e\\x1b[31mred"),
           "get error: %s", slurp("err.txt"));
    CHECK(vt("info s.vts 'nope\x1b[2J'") == 1);
    CHECKF(!strchr(slurp("err.txt"), 0x1b), "info error: %s", slurp("err.txt"));
    CHECK(vt("ls s.vts --json") == 0);
    o = slurp("out.txt");
    vt_json j;
    int prc = vt_json_parse(o, strlen(o), "ls --json", &j);
    CHECKF(prc == 0, "ls --json is not JSON: %s\n%s", vt_last_error(), o);
    if (!prc) {
        uint32_t r0 = j.nodes[0].child, nm = r0 ? vt_json_get(&j, r0, "name") : 0;
        CHECKF(nm && !strcmp(vt_json_str(&j, nm), "a\nb"), "first name '%s'",
               nm ? vt_json_str(&j, nm) : "(none)");
        vt_json_free(&j);
    }

    /* 4. */
    snprintf(p, sizeof p, "%s/bad.safetensors", dir);
    FILE *f = fopen(p, "w");
    CHECK(f && fputs("not a safetensors file", f) >= 0);
    if (f) fclose(f);
    CHECK(vt("import bad.safetensors new.vts") == 1);
    CHECKF(!exists("new.vts"), "a failed import left new.vts behind");
    CHECK(vt("import missing.safetensors new.vts") == 1);
    CHECKF(!exists("new.vts"), "a failed import of a missing file left new.vts behind");
    CHECK(vt("ls new.vts") == 1);
    CHECK(sh("mkdir empty.vts") == 0);
    CHECK(vt("import bad.safetensors empty.vts") == 1);
    CHECK(sh("test -z \"$(ls -A empty.vts)\"") == 0);
    CHECK(vt("import bad.safetensors s.vts") == 1);
    CHECK(vt("ls s.vts") == 0 && strstr(slurp("out.txt"), "3 tensor(s)"));
    CHECK(vt("import m.safetensors new.vts -q") == 0 && exists("new.vts/index"));

    /* 5. */
    rc = vt("export s.vts x.safetensors --dtype i8");
    CHECKF(rc == 2 && !exists("x.safetensors"), "export --dtype i8: exit %d", rc);
    CHECK(vt("export s.vts x.safetensors --dtype bf16") == 0);
    rc = vt("get nosuch.vts plain -o r.npy --dtype f64");
    CHECKF(rc == 2, "get --dtype f64 on a missing store: exit %d", rc);
    CHECK(vt("info s.vts plain") == 0);
    CHECKF(strstr(slurp("out.txt"), "sqnr          exact\n"), "info: %s", slurp("out.txt"));

    if (!vt_test_failures) {
        char cmd[4400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd)) fprintf(stderr, "cannot remove %s\n", dir);
    }
    return vt_test_done("test_cli_output");
}
