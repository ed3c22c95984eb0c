/* JSON string literals for --json output. Not in store_print.c, which calls into main.c
 * (vt_cli_error), so that bench_quant can link it with cmd_quant.c alone. */
#include <stdio.h>
#include <string.h>

#include "../store/parse.h" /* vt_utf8_valid_len */
#include "store_print.h"

void vt_print_json_strn(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    size_t ok = 0; /* s[i..ok) is well-formed */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i == ok) {
            ok = i + vt_utf8_valid_len(s + i, n - i);
            if (ok == i) { /* s[i] starts no well-formed sequence */
                fputs("\\ufffd", f);
                ok++;
                continue;
            }
        }
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c == '\r')
            fputs("\\r", f);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

void vt_print_json_str(FILE *f, const char *s) {
    vt_print_json_strn(f, s, strlen(s));
}
