/* vtstore ls|query STORE [PATTERN] [--where EXPR] [--json]: list tensors. */
#include <math.h>
#include <string.h>

#include "cli.h"
#include "filter.h"
#include "store_print.h"

typedef struct ls_ctx {
    vt_filter *f;
    int json;
    uint64_t n, bytes;
} ls_ctx;

static int ls_cb(void *ctx, const vt_tensor_info *ti) {
    ls_ctx *c = ctx;
    if (c->f && !vt_filter_eval(c->f, ti)) return 0;
    if (c->json) {
        fputs(c->n ? ",\n  " : "\n  ", stdout);
        vt_print_record_json(stdout, ti);
    } else {
        char f[32], sh[128], by[32], q[32], nm[1024];
        if (isnan(ti->metrics.sqnr_db))
            snprintf(q, sizeof q, "-");
        else if (isinf(ti->metrics.sqnr_db))
            snprintf(q, sizeof q, "exact");
        else
            snprintf(q, sizeof q, "%.2f", ti->metrics.sqnr_db);
        printf("%-56s %-9s %-5s %-16s %10s %8s\n", vt_print_safe(ti->name, nm, sizeof nm),
               vt_print_format(ti, f, sizeof f), vt_dtype_name(ti->src_dtype),
               vt_print_shape(ti, sh, sizeof sh), vt_print_bytes(ti->stored_bytes, by, sizeof by),
               q);
    }
    c->n++;
    c->bytes += ti->stored_bytes;
    return 0;
}

static int run(const char *cmd, int argc, char **argv) {
    if (vt_cli_wants_help(argc, argv)) {
        printf("usage: vtstore %s STORE [PATTERN] [--where EXPR] [--json]\n"
               "  PATTERN  glob over tensor names (default: all)\n"
               "  --where  filter, e.g. \"layer < 4 && format == nf4 || name ~ '*norm*'\"\n"
               "           fields: name format dtype shape rows cols bytes sqnr layer;\n"
               "           operators: == != < <= > >= ~ (glob) && || ! ( )\n"
               "  --json   one JSON array of records\n",
               cmd);
        return VT_EXIT_OK;
    }
    const char *pos[2] = {0}, *where = NULL;
    int npos = 0, json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--where") && i + 1 < argc)
            where = argv[++i];
        else if (argv[i][0] != '-' && npos < 2)
            pos[npos++] = argv[i];
        else {
            fprintf(stderr, "usage: vtstore %s STORE [PATTERN] [--where EXPR] [--json]\n", cmd);
            return VT_EXIT_USAGE;
        }
    }
    if (npos < 1) {
        fprintf(stderr, "usage: vtstore %s STORE [PATTERN] [--where EXPR] [--json]\n", cmd);
        return VT_EXIT_USAGE;
    }
    ls_ctx c = {0};
    c.json = json;
    char err[256];
    if (where && vt_filter_parse(where, &c.f, err, sizeof err)) {
        fprintf(stderr, "vtstore %s: bad --where: %s\n", cmd, err);
        return VT_EXIT_USAGE;
    }
    vt_store *s = vt_print_open(cmd, pos[0], 0);
    if (!s) {
        vt_filter_free(c.f);
        return VT_EXIT_ERROR;
    }
    if (json)
        fputs("[", stdout);
    else
        printf("%-56s %-9s %-5s %-16s %10s %8s\n", "NAME", "FORMAT", "DTYPE", "SHAPE", "STORED",
               "SQNR");
    int rc = vt_store_list(s, pos[1], ls_cb, &c);
    if (json)
        fputs(c.n ? "\n]\n" : "]\n", stdout);
    else if (!rc) {
        char b[32];
        printf("%llu tensor(s), %s stored\n", (unsigned long long)c.n,
               vt_print_bytes(c.bytes, b, sizeof b));
    }
    if (rc) vt_cli_error(cmd, rc, "listing %s failed", pos[0]);
    vt_filter_free(c.f);
    vt_store_close(s);
    return rc ? VT_EXIT_ERROR : VT_EXIT_OK;
}

int vt_cmd_ls(int argc, char **argv) {
    return run("ls", argc, argv);
}

int vt_cmd_query(int argc, char **argv) {
    return run("query", argc, argv);
}
