/* vtstore upgrade STORE: rewrite a format-1 store's index as the newest format in place. */
#include "cli.h"
#include "store_print.h"

int vt_cmd_upgrade(int argc, char **argv) {
    const char *use =
        "usage: vtstore upgrade STORE\n"
        "  rewrites a store of an older format version (vtstore 0.1: format 1) in the newest\n"
        "  one: reads and checks every chunk, then rewrites the index in one transaction\n"
        "  (shard files are not touched; on any error the store is left as it was).\n"
        "  Older vtstore versions cannot open the store afterwards.\n";
    int ex = vt_cli_fixed_args(argc, argv, 1, use);
    if (ex >= 0) return ex;
    vt_store *s = vt_print_open("upgrade", argv[1], 1);
    if (!s) return VT_EXIT_ERROR;
    vt_store_upgrade_stats st;
    int rc = vt_store_upgrade(s, &st);
    char b[32];
    if (rc)
        vt_cli_error("upgrade", rc, "%s", argv[1]);
    else if (st.from_version == st.to_version)
        printf("%s: already format version %u, nothing to do\n", argv[1], st.to_version);
    else
        printf("%s: format version %u -> %u, %llu chunk record(s) rewritten, %s read\n", argv[1],
               st.from_version, st.to_version, (unsigned long long)st.chunks,
               vt_print_bytes(st.bytes_read, b, sizeof b));
    vt_store_close(s);
    return rc ? VT_EXIT_ERROR : VT_EXIT_OK;
}
