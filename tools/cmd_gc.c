/* vtstore gc STORE: reclaim garbage (orphan shards, dead chunks). */
#include "cli.h"
#include "store_print.h"

int vt_cmd_gc(int argc, char **argv) {
    const char *use = "usage: vtstore gc STORE\n"
                      "  deletes orphaned shard files and compacts shards holding removed chunks\n";
    int ex = vt_cli_fixed_args(argc, argv, 1, use);
    if (ex >= 0) return ex;
    vt_store *s = vt_print_open("gc", argv[1], 1);
    if (!s) return VT_EXIT_ERROR;
    vt_store_gc_stats st;
    int rc = vt_store_gc(s, &st);
    char a[32], b[32];
    if (rc)
        vt_cli_error("gc", rc, "%s", argv[1]);
    else
        printf("%s: shards %llu -> %llu, %s -> %s, %llu chunk(s) moved, %llu file(s) removed\n",
               argv[1], (unsigned long long)st.shards_before, (unsigned long long)st.shards_after,
               vt_print_bytes(st.bytes_before, a, sizeof a),
               vt_print_bytes(st.bytes_after, b, sizeof b), (unsigned long long)st.chunks_moved,
               (unsigned long long)st.files_removed);
    vt_store_close(s);
    return rc ? VT_EXIT_ERROR : VT_EXIT_OK;
}
