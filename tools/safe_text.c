/* Text for the terminal: names and messages with control characters or bytes that are no UTF-8
 * escaped, so that a tensor name (a safetensors file may name a tensor "a\nb" or put an escape
 * sequence in it) can neither break a line of `ls` nor drive the terminal. */
#include <stdio.h>
#include <string.h>

#include "../store/parse.h" /* vt_utf8_valid_len */
#include "store_print.h"

/* Append @p t to out[0..cap) at *k (cut at cap, NUL-terminated). */
static void put(char *out, size_t cap, size_t *k, const char *t) {
    size_t n = strlen(t);
    if (*k + n >= cap) n = *k + 1 < cap ? cap - 1 - *k : 0;
    memcpy(out + *k, t, n);
    *k += n;
    out[*k] = 0;
}

const char *vt_print_safe(const char *s, char *out, size_t cap) {
    size_t n = strlen(s), k = 0, ok = 0; /* s[i..ok) is well-formed UTF-8 */
    if (cap) out[0] = 0;
    for (size_t i = 0; i < n && k + 1 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        char e[8] = {(char)c, 0};
        if (i == ok) ok = i + vt_utf8_valid_len(s + i, n - i);
        if (i >= ok) { /* no well-formed sequence starts here */
            snprintf(e, sizeof e, "\\x%02x", c);
            ok = i + 1;
        } else if (c == '\\') {
            snprintf(e, sizeof e, "\\\\");
        } else if (c == '\n' || c == '\t' || c == '\r') {
            snprintf(e, sizeof e, "\\%c", c == '\n' ? 'n' : c == '\t' ? 't' : 'r');
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(e, sizeof e, "\\x%02x", c);
        } else if (c == 0xc2 && i + 1 < ok && (unsigned char)s[i + 1] < 0xa0) {
            /* U+0080..U+009F, the C1 controls (U+009B is a CSI for some terminals) */
            snprintf(e, sizeof e, "\\u%04x", (unsigned char)s[i + 1]);
            i++;
        }
        put(out, cap, &k, e);
    }
    return out;
}
