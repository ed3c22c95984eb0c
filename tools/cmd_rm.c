/* vtstore rm STORE PATTERN: remove matching tensors (space is reclaimed by gc). */
#include "cli.h"
#include "store_print.h"

int vt_cmd_rm(int argc, char **argv) {
    const char *use =
        "usage: vtstore rm STORE PATTERN\n"
        "  removes the tensors whose names match the glob PATTERN in one transaction;\n"
        "  exit 1 if none matches. `vtstore gc` reclaims their space.\n";
    int ex = vt_cli_fixed_args(argc, argv, 2, use);
    if (ex >= 0) return ex;
    vt_store *s = vt_print_open("rm", argv[1], 1);
    if (!s) return VT_EXIT_ERROR;
    uint64_t n = 0;
    int rc = vt_store_remove(s, argv[2], &n);
    if (rc)
        vt_cli_error("rm", rc, "removing '%s' from %s", argv[2], argv[1]);
    else if (!n)
        fprintf(stderr, "vtstore rm: no tensor in %s matches '%s'\n", argv[1], argv[2]);
    else
        printf("removed %llu tensor(s)\n", (unsigned long long)n);
    vt_store_close(s);
    return rc || !n ? VT_EXIT_ERROR : VT_EXIT_OK;
}
