/* vtstore info STORE [TENSOR] [--json]: store totals or one tensor's record. */
#include <math.h>
#include <string.h>

#include "cli.h"
#include "store_print.h"

int vt_cmd_info(int argc, char **argv) {
    const char *use = "usage: vtstore info STORE [TENSOR] [--json]\n"
                      "  without TENSOR: totals (tensors, bytes by format, shards, garbage)\n"
                      "  with TENSOR: its record (format, shape, chunks, bytes, import metrics)\n";
    if (vt_cli_wants_help(argc, argv)) {
        fputs(use, stdout);
        return VT_EXIT_OK;
    }
    const char *pos[2] = {0};
    int npos = 0, json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (argv[i][0] != '-' && npos < 2)
            pos[npos++] = argv[i];
        else {
            fputs(use, stderr);
            return VT_EXIT_USAGE;
        }
    }
    if (npos < 1) {
        fputs(use, stderr);
        return VT_EXIT_USAGE;
    }
    vt_store *s = vt_print_open("info", pos[0], 0);
    if (!s) return VT_EXIT_ERROR;
    int rc;
    char a[32], b[32], c[32], g[32];
    if (pos[1]) {
        vt_tensor_info ti;
        if ((rc = vt_store_stat(s, pos[1], &ti))) {
            vt_cli_error("info", rc, "%s", pos[1]);
        } else if (json) {
            vt_print_record_json(stdout, &ti);
            fputc('\n', stdout);
        } else {
            char f[32], sh[128], nm[1024], src[1024], q[32];
            /* as ls: "exact" for a lossless copy, "-" where nothing was measured */
            if (isnan(ti.metrics.sqnr_db))
                snprintf(q, sizeof q, "-");
            else if (isinf(ti.metrics.sqnr_db) && ti.metrics.sqnr_db > 0)
                snprintf(q, sizeof q, "exact");
            else
                snprintf(q, sizeof q, "%.3f dB", ti.metrics.sqnr_db);
            printf("name          %s\nformat        %s\nsource dtype  %s\nshape         %s (%llu "
                   "rows x %llu cols)\n"
                   "chunks        %llu of %llu rows\nraw bytes     %s\nstored bytes  %s\n"
                   "sqnr          %s\ncosine        %.6f\nmax error     %.6g\nsource        "
                   "%s\nid            %llu\n",
                   vt_print_safe(ti.name, nm, sizeof nm), vt_print_format(&ti, f, sizeof f),
                   vt_dtype_name(ti.src_dtype), vt_print_shape(&ti, sh, sizeof sh),
                   (unsigned long long)ti.rows, (unsigned long long)ti.cols,
                   (unsigned long long)ti.n_chunks, (unsigned long long)ti.rows_per_chunk,
                   vt_print_bytes(ti.raw_bytes, a, sizeof a),
                   vt_print_bytes(ti.stored_bytes, b, sizeof b), q, ti.metrics.cosine,
                   ti.metrics.max_err, vt_print_safe(ti.source, src, sizeof src),
                   (unsigned long long)ti.id);
        }
    } else {
        vt_store_totals t;
        if ((rc = vt_store_get_totals(s, &t))) {
            vt_cli_error("info", rc, "totals of %s", pos[0]);
        } else if (json) {
            printf("{\"format_version\":%u,\"tensors\":%llu,\"chunks\":%llu,\"shards\":%llu,\"raw_"
                   "bytes\":%llu,"
                   "\"stored_bytes\":%llu,\"shard_bytes\":%llu,\"garbage_bytes\":%llu,\"orphan_"
                   "files\":%llu,"
                   "\"by_format\":{",
                   t.format_version, (unsigned long long)t.tensors, (unsigned long long)t.chunks,
                   (unsigned long long)t.shards, (unsigned long long)t.raw_bytes,
                   (unsigned long long)t.stored_bytes, (unsigned long long)t.shard_bytes,
                   (unsigned long long)t.garbage_bytes, (unsigned long long)t.orphan_files);
            int first = 1;
            for (uint32_t f = 0; f <= VT_FMT_COUNT; f++) {
                if (!t.tensors_by_format[f]) continue;
                char nb[32];
                printf("%s\"%s\":{\"tensors\":%llu,\"stored_bytes\":%llu}", first ? "" : ",",
                       f == VT_FMT_COUNT ? "raw" : vt_format_name(f, nb, sizeof nb),
                       (unsigned long long)t.tensors_by_format[f],
                       (unsigned long long)t.stored_by_format[f]);
                first = 0;
            }
            printf("}}\n");
        } else {
            printf("store         %s (format version %u)\ntensors       %llu in %llu chunks\n"
                   "raw bytes     %s\nstored bytes  %s\nshards        %llu, %s\ngarbage       %s "
                   "(%llu orphan file(s); `vtstore gc` reclaims it)\n",
                   pos[0], t.format_version, (unsigned long long)t.tensors,
                   (unsigned long long)t.chunks, vt_print_bytes(t.raw_bytes, a, sizeof a),
                   vt_print_bytes(t.stored_bytes, b, sizeof b), (unsigned long long)t.shards,
                   vt_print_bytes(t.shard_bytes, c, sizeof c),
                   vt_print_bytes(t.garbage_bytes, g, sizeof g),
                   (unsigned long long)t.orphan_files);
            for (uint32_t f = 0; f <= VT_FMT_COUNT; f++) {
                if (!t.tensors_by_format[f]) continue;
                char nb[32];
                printf("  %-10s %6llu tensor(s) %12s\n",
                       f == VT_FMT_COUNT ? "raw" : vt_format_name(f, nb, sizeof nb),
                       (unsigned long long)t.tensors_by_format[f],
                       vt_print_bytes(t.stored_by_format[f], b, sizeof b));
            }
        }
    }
    vt_store_close(s);
    return rc ? VT_EXIT_ERROR : VT_EXIT_OK;
}
