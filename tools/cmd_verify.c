/* vtstore verify STORE: read every chunk, check checksums and the index; exit 1 on problems. */
#include <string.h>

#include "cli.h"
#include "store_print.h"

static void on_problem(void *ctx, const vt_verify_problem *p) {
    (void)ctx;
    static char safe[16384];
    fprintf(stderr, "vtstore verify: %s\n", vt_print_safe(p->message, safe, sizeof safe));
}

int vt_cmd_verify(int argc, char **argv) {
    const char *use =
        "usage: vtstore verify STORE\n"
        "  reads every chunk of every tensor, checks checksums, lengths and the index;\n"
        "  names each bad chunk; exit 1 if anything is wrong\n";
    int ex = vt_cli_fixed_args(argc, argv, 1, use);
    if (ex >= 0) return ex;
    vt_store *s = vt_print_open("verify", argv[1], 0);
    if (!s) return VT_EXIT_ERROR;
    vt_verify_report rep = {0};
    int rc = vt_store_verify(s, on_problem, NULL, &rep);
    char b[32];
    if (rc && rc != VT_ECORRUPT) vt_cli_error("verify", rc, "could not verify %s", argv[1]);
    printf("%s: %llu tensors, %llu chunks, %s read, %llu problem(s)\n", argv[1],
           (unsigned long long)rep.tensors, (unsigned long long)rep.chunks,
           vt_print_bytes(rep.bytes_read, b, sizeof b), (unsigned long long)rep.problems);
    vt_store_totals t;
    if (!vt_store_get_totals(s, &t) && t.format_version < VT_STORE_FORMAT_VERSION)
        fprintf(stderr,
                "vtstore verify: note: %s is format version %u (vtstore 0.1): its chunk checksums "
                "do not bind chunks to their tensor and index, so a chunk record naming another "
                "chunk's bytes goes unnoticed; `vtstore upgrade` rewrites it as version %d\n",
                argv[1], t.format_version, VT_STORE_FORMAT_VERSION);
    vt_store_close(s);
    return rc || rep.problems ? VT_EXIT_ERROR : VT_EXIT_OK;
}
