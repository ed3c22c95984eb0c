/*
 * test_tokenizer - tests tools/run/tokenizer.c.
 *
 *   test_tokenizer             built-in cases on a tiny synthetic vocabulary
 *   test_tokenizer DUMP        the model's vocabulary and the oracle's encodings
 *                              from `tok_ref.py GGUF --dump DUMP` (format there)
 *
 * Exit 0 pass, 1 fail, 2 usage or unreadable dump.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokenizer.h"

static int failures;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

/* ------------------------------------------------------------ helpers */

static void print_escaped(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\x%02x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void print_ids(FILE *f, const int32_t *ids, uint32_t n) {
    fputc('[', f);
    for (uint32_t i = 0; i < n; i++) fprintf(f, i ? " %d" : "%d", ids[i]);
    fputc(']', f);
}

/* Encodes text and compares with want[0..n_want); reports a mismatch. */
static void expect_encode(const vt_tok *tok, const char *text, const int32_t *want,
                          uint32_t n_want) {
    int32_t ids[4096];
    uint32_t n = 0;
    int rc = vt_tok_encode(tok, text, ids, 4096, &n);
    if (rc != 0 || n != n_want || (n && memcmp(ids, want, n * sizeof *ids) != 0)) {
        fprintf(stderr, "encode mismatch (rc %d) for ", rc);
        print_escaped(stderr, text, strlen(text));
        fprintf(stderr, "\n  got  ");
        print_ids(stderr, ids, n < 4096 ? n : 4096);
        fprintf(stderr, "\n  want ");
        print_ids(stderr, want, n_want);
        fputc('\n', stderr);
        failures++;
    }
}

/* Decodes ids and checks that the bytes equal text. */
static void expect_roundtrip(const vt_tok *tok, const char *text, const int32_t *ids, uint32_t n) {
    size_t tl = strlen(text), o = 0;
    char *buf = malloc(tl + 64);
    if (!buf) {
        failures++;
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        size_t len;
        int rc = vt_tok_decode(tok, ids[i], buf + o, tl + 64 - o, &len);
        if (rc != 0) {
            fprintf(stderr, "decode of id %d failed: %d\n", ids[i], rc);
            failures++;
            break;
        }
        o += len;
    }
    if (o != tl || memcmp(buf, text, tl) != 0) {
        fprintf(stderr, "round trip mismatch: ");
        print_escaped(stderr, buf, o);
        fprintf(stderr, " != ");
        print_escaped(stderr, text, tl);
        fputc('\n', stderr);
        failures++;
    }
    free(buf);
}

/* ------------------------------------------------------------ synthetic */

/* GPT-2 stand-in code point of byte b (independent of the library's table). */
static unsigned byte_cp(unsigned b) {
    unsigned n = 0;
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) return b;
    for (unsigned x = 0; x < b; x++) {
        if (!((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE)) n++;
    }
    return 256 + n;
}

static void put_utf8(char *dst, unsigned cp) {
    if (cp < 0x80) {
        dst[0] = (char)cp;
        dst[1] = 0;
    } else {
        dst[0] = (char)(0xC0 | (cp >> 6));
        dst[1] = (char)(0x80 | (cp & 0x3F));
        dst[2] = 0;
    }
}

enum {
    T_AA = 256,
    T_SP_A,
    T_SP_AB,
    T_HE,
    T_HEL,
    T_HELL,
    T_HELLO,
    T_SP_SP,
    T_IM_START,
    T_IM,
    T_12,
    T_ZQ, /* no merge makes it: only ignore_merges does */
    T_COUNT
};

static int test_synthetic(void) {
    static char bytes[256][4];
    const char *tokens[T_COUNT];
    int32_t types[T_COUNT];
    for (unsigned b = 0; b < 256; b++) {
        put_utf8(bytes[b], byte_cp(b));
        tokens[b] = bytes[b];
        types[b] = VT_TOK_TYPE_NORMAL;
    }
    tokens[T_AA] = "aa";
    tokens[T_SP_A] = "\304\240a"; /* "Ġa" */
    tokens[T_SP_AB] = "\304\240ab";
    tokens[T_HE] = "he";
    tokens[T_HEL] = "hel";
    tokens[T_HELL] = "hell";
    tokens[T_HELLO] = "hello";
    tokens[T_SP_SP] = "\xc4\xa0\xc4\xa0";
    tokens[T_IM_START] = "<|im_start|>";
    tokens[T_IM] = "<|im";
    tokens[T_12] = "12";
    tokens[T_ZQ] = "zq";
    for (int i = 256; i < T_COUNT; i++) types[i] = VT_TOK_TYPE_NORMAL;
    types[T_IM_START] = VT_TOK_TYPE_CONTROL;
    types[T_IM] = VT_TOK_TYPE_USER_DEFINED;
    const char *merges[] = {
        "a a",   "\xc4\xa0 a", "\304\240a b",       "h e", "he l",
        "hel l", "hell o",     "\xc4\xa0 \xc4\xa0", "1 2", "a a" /* repeated: ignored */,
    };
    uint32_t n_merges = sizeof merges / sizeof merges[0];

    vt_tok *tok = NULL;
    int rc = vt_tok_create(tokens, T_COUNT, merges, n_merges, types, &tok);
    CHECK(rc == 0 && tok);
    if (!tok) return 1;
    CHECK(vt_tok_n_tokens(tok) == T_COUNT);

    {
        int32_t w[] = {T_AA, 'a'}; /* leftmost pair first on equal rank */
        expect_encode(tok, "aaa", w, 2);
    }
    {
        int32_t w[] = {T_AA, T_AA};
        expect_encode(tok, "aaaa", w, 2);
    }
    {
        int32_t w[] = {T_SP_AB};
        expect_encode(tok, " ab", w, 1);
    }
    {
        int32_t w[] = {' ', T_HELLO};
        expect_encode(tok, " hello", w, 2);
    }
    {
        int32_t w[] = {'a', '1', '2'}; /* every digit alone */
        expect_encode(tok, "a12", w, 3);
    }
    {
        int32_t w[] = {' ', T_SP_A}; /* "\s+(?!\S)" leaves the last space to " a" */
        expect_encode(tok, "  a", w, 2);
    }
    {
        int32_t w[] = {T_SP_SP, ' '}; /* trailing run is one piece */
        expect_encode(tok, "   ", w, 2);
    }
    {
        int32_t w[] = {'a', ' ', '1'}; /* digit split first: " " is its own piece */
        expect_encode(tok, "a 1", w, 3);
    }
    {
        int32_t w[] = {'\n', T_SP_A}; /* "\n a": \s+(?!\S) takes "\n" */
        expect_encode(tok, "\n a", w, 2);
    }
    {
        int32_t w[] = {T_IM_START, T_AA, T_IM, 'x'}; /* longest special wins */
        expect_encode(tok, "<|im_start|>aa<|imx", w, 4);
    }
    {
        int32_t w[] = {'i', 't', '\'', 's', '!', '\'', 's'}; /* 's after a word; "!'" is one run */
        expect_encode(tok, "it's!'s", w, 7);
    }
    {
        int32_t w[] = {0xff, 0xfe, 'a'}; /* invalid UTF-8 is punctuation, bytes kept */
        expect_encode(tok, "\377\376a", w, 3);
    }
    {
        int32_t w[] = {0xc3, 0xa9, 0xe6, 0x97, 0xa5}; /* "é日": letters, one piece */
        expect_encode(tok, "\xc3\xa9\xe6\x97\xa5", w, 5);
    }
    expect_encode(tok, "", NULL, 0);
    {
        /* one long piece: grows the scratch buffers; merges stay leftmost-first */
        enum { LONG = 3001 };
        char *text = malloc(LONG + 1);
        int32_t *w = malloc((LONG / 2 + 1) * sizeof *w);
        if (text && w) {
            memset(text, 'a', LONG);
            text[LONG] = 0;
            for (int i = 0; i < LONG / 2; i++) w[i] = T_AA;
            w[LONG / 2] = 'a';
            expect_encode(tok, text, w, LONG / 2 + 1);
            memset(text, ' ', LONG); /* a trailing whitespace run: one piece */
            for (int i = 0; i < LONG / 2; i++) w[i] = T_SP_SP;
            w[LONG / 2] = ' ';
            expect_encode(tok, text, w, LONG / 2 + 1);
        } else {
            failures++;
        }
        free(text);
        free(w);
    }

    /* any bytes (no NUL) round-trip, valid UTF-8 or not, under every split */
    static const enum vt_tok_pre modes[] = {VT_TOK_PRE_DIGITS_GPT2, VT_TOK_PRE_GPT2,
                                            VT_TOK_PRE_LLAMA3, VT_TOK_PRE_QWEN2};
    for (size_t mi = 0; mi < sizeof modes / sizeof modes[0]; mi++) {
        CHECK(vt_tok_set_pre(tok, modes[mi]) == 0);
        CHECK(vt_tok_set_ignore_merges(tok, modes[mi] == VT_TOK_PRE_LLAMA3) == 0);
        uint32_t seed = 12345;
        char text[48];
        int32_t rids[64];
        for (int it = 0; it < 5000; it++) {
            size_t len = 0, want = (seed = seed * 1103515245u + 12345u) >> 27;
            while (len < want) {
                seed = seed * 1103515245u + 12345u;
                unsigned b = (seed >> 16) & 0xFF;
                /* favour ASCII structure, spaces and UTF-8 lead/continuation bytes */
                static const unsigned char pick[] = {' ',  'a',  '\'', 's',  '1',  '\n', '!',
                                                     0xC3, 0xA9, 0xE6, 0x97, 0xF0, 0x9F, '<',
                                                     '|',  '\r', 'S',  0xC5, 0xBF, '\t'};
                text[len++] = (char)(b < 128 ? pick[b % sizeof pick] : (b ? b : 1));
            }
            text[len] = 0;
            uint32_t n = 0;
            int rc = vt_tok_encode(tok, text, rids, 64, &n);
            CHECK(rc == 0);
            if (rc == 0) expect_roundtrip(tok, text, rids, n);
        }
    }
    CHECK(vt_tok_set_pre(tok, VT_TOK_PRE_DIGITS_GPT2) == 0);
    CHECK(vt_tok_set_ignore_merges(tok, 0) == 0);

    /* decode */
    char buf[32];
    size_t len = 0;
    CHECK(vt_tok_decode(tok, ' ', buf, sizeof buf, &len) == 0 && len == 1 && buf[0] == ' ');
    CHECK(vt_tok_decode(tok, 0, buf, sizeof buf, &len) == 0 && len == 1 && buf[0] == 0);
    CHECK(vt_tok_decode(tok, T_SP_AB, buf, sizeof buf, &len) == 0 && len == 3 &&
          strcmp(buf, " ab") == 0);
    CHECK(vt_tok_decode(tok, T_IM_START, buf, sizeof buf, &len) == 0 &&
          strcmp(buf, "<|im_start|>") == 0);
    CHECK(vt_tok_decode(tok, T_IM_START, buf, 4, &len) == -ENOSPC && len == 12);
    CHECK(vt_tok_decode(tok, T_IM_START, NULL, 0, &len) == -ENOSPC && len == 12);
    CHECK(vt_tok_decode(tok, T_COUNT, buf, sizeof buf, &len) == -EINVAL);
    CHECK(vt_tok_decode(tok, -1, buf, sizeof buf, &len) == -EINVAL);

    /* lookup */
    int32_t id = -1;
    CHECK(vt_tok_lookup(tok, "<|im_start|>", &id) == 0 && id == T_IM_START);
    CHECK(vt_tok_lookup(tok, " a", &id) == 0 && id == T_SP_A);
    CHECK(vt_tok_lookup(tok, "zzz", &id) == -ENOENT);

    /* capacity */
    int32_t ids[2];
    uint32_t n = 0;
    CHECK(vt_tok_encode(tok, "a1b2c", ids, 2, &n) == -ENOSPC && n == 5 && ids[0] == 'a' &&
          ids[1] == '1');
    CHECK(vt_tok_encode(tok, "a1b2c", NULL, 0, &n) == -ENOSPC && n == 5);
    CHECK(vt_tok_encode(tok, "", NULL, 0, &n) == 0 && n == 0);
    CHECK(vt_tok_encode(tok, NULL, ids, 2, &n) == -EINVAL);
    CHECK(vt_tok_encode(tok, "a", NULL, 2, &n) == -EINVAL);

    /* pre-tokenizers: GPT-2's pattern alone keeps "12" together (" ?\p{N}+"), so the merge
     * applies; an unsupported split refuses to encode but still decodes */
    {
        int32_t id = -1;
        CHECK(vt_tok_find_special(tok, "<|im_start|>", &id) == 0 && id == T_IM_START);
        CHECK(vt_tok_find_special(tok, "<|im", &id) == 0 && id == T_IM);
        CHECK(vt_tok_find_special(tok, "hello", &id) == -ENOENT); /* normal, not special */
        CHECK(vt_tok_find_special(tok, "<|im_", &id) == -ENOENT);
        CHECK(vt_tok_find_special(NULL, "x", &id) == -EINVAL);
    }
    CHECK(vt_tok_pre_from_gguf("smollm") == VT_TOK_PRE_DIGITS_GPT2);
    CHECK(vt_tok_pre_from_gguf("starcoder") == VT_TOK_PRE_DIGITS_GPT2);
    CHECK(vt_tok_pre_from_gguf("gpt-2") == VT_TOK_PRE_GPT2);
    CHECK(vt_tok_pre_from_gguf("llama-bpe") == VT_TOK_PRE_LLAMA3);
    CHECK(vt_tok_pre_from_gguf("llama3") == VT_TOK_PRE_LLAMA3);
    CHECK(vt_tok_pre_from_gguf("qwen2") == VT_TOK_PRE_QWEN2);
    CHECK(vt_tok_pre_from_gguf("deepseek-llm") == VT_TOK_PRE_UNSUPPORTED);
    CHECK(vt_tok_pre_from_gguf("default") == VT_TOK_PRE_UNSUPPORTED);
    CHECK(vt_tok_pre_from_gguf("") == VT_TOK_PRE_UNSUPPORTED);
    CHECK(vt_tok_pre_from_gguf(NULL) == VT_TOK_PRE_UNSUPPORTED);
    CHECK(vt_tok_set_pre(tok, (enum vt_tok_pre)7) == -EINVAL);
    CHECK(vt_tok_set_pre(NULL, VT_TOK_PRE_GPT2) == -EINVAL);
    CHECK(vt_tok_set_pre(tok, VT_TOK_PRE_GPT2) == 0);
    {
        int32_t w[] = {'a', T_12, ' ', '1', T_12}; /* "a" "12" " 112": ' 1' no merge, then 12 */
        expect_encode(tok, "a12 112", w, 5);
    }
    {
        int32_t w[] = {T_IM_START, ' ', T_HELLO, ' ', '1', T_12}; /* specials first as before */
        expect_encode(tok, "<|im_start|> hello 112", w, 6);
    }
    /* Llama 3: numbers in groups of up to three; a lone space before one stays alone;
     * contractions in either case; one non-letter (not CR/LF) joins the letters after it */
    CHECK(vt_tok_set_pre(tok, VT_TOK_PRE_LLAMA3) == 0);
    {
        int32_t w[] = {'a', T_12, ' ', '1', T_12, T_12, '1', '1'}; /* a 12 " " 112 121 1 */
        expect_encode(tok, "a12 1121211", w, 8);
    }
    {
        int32_t w[] = {'a', '\'', 'L', 'L', '\t', T_HELLO, '\n', T_SP_A}; /* 'LL; "\thello" */
        expect_encode(tok, "a'LL\thello\n a", w, 8);
    }
    {
        int32_t w[] = {T_SP_SP, '\n', ' ', T_SP_A}; /* "  \n" then " " " a" */
        expect_encode(tok, "  \n  a", w, 4);
    }
    {
        int32_t w[] = {'!', '!', '\r', '\n', 'a'}; /* punctuation takes the CR/LF after it */
        expect_encode(tok, "!!\r\na", w, 5);
    }
    {
        int32_t w[] = {'z', 'q'}; /* no merge */
        expect_encode(tok, "zq", w, 2);
        CHECK(vt_tok_set_ignore_merges(tok, 1) == 0);
        int32_t w2[] = {T_ZQ, ' ', 'z', 'q'}; /* the whole piece is a token; " zq" is not */
        expect_encode(tok, "zq zq", w2, 4);
        CHECK(vt_tok_set_ignore_merges(tok, 0) == 0);
        CHECK(vt_tok_set_ignore_merges(NULL, 1) == -EINVAL);
    }
    CHECK(vt_tok_set_pre(tok, VT_TOK_PRE_QWEN2) == 0);
    {
        int32_t w[] = {'a', '1', '2', ' ', '1', '1', '2'}; /* numbers one by one */
        expect_encode(tok, "a12 112", w, 7);
    }
    CHECK(vt_tok_set_pre(tok, VT_TOK_PRE_DIGITS_GPT2) == 0);
    {
        int32_t w[] = {'a', '1', '2'};
        expect_encode(tok, "a12", w, 3);
    }
    CHECK(vt_tok_set_pre(tok, VT_TOK_PRE_UNSUPPORTED) == 0);
    CHECK(vt_tok_encode(tok, "a", ids, 2, &n) == -ENOTSUP);
    {
        char b[8];
        size_t len = 0;
        CHECK(vt_tok_decode(tok, T_HELLO, b, sizeof b, &len) == 0 && len == 5 &&
              !memcmp(b, "hello", 5));
    }
    vt_tok_destroy(tok);
    vt_tok_destroy(NULL);

    /* bad inputs */
    const char *bad1[] = {"a a", "ab"}; /* no space */
    const char *bad2[] = {"a zz"};      /* unknown part */
    const char *bad3[] = {"a  "};       /* empty right part */
    tok = (vt_tok *)&failures;
    CHECK(vt_tok_create(tokens, T_COUNT, bad1, 2, types, &tok) == -EINVAL && tok == NULL);
    CHECK(vt_tok_create(tokens, T_COUNT, bad2, 1, types, &tok) == -EINVAL);
    CHECK(vt_tok_create(tokens, T_COUNT, bad3, 1, types, &tok) == -EINVAL);
    CHECK(vt_tok_create(tokens, 0, merges, n_merges, types, &tok) == -EINVAL);
    CHECK(vt_tok_create(NULL, T_COUNT, merges, n_merges, types, &tok) == -EINVAL);
    CHECK(vt_tok_create(tokens, T_COUNT, NULL, 3, types, &tok) == -EINVAL);
    CHECK(vt_tok_create(tokens, T_COUNT, merges, n_merges, types, NULL) == -EINVAL);

    /* without types nothing is special and no merges is fine */
    CHECK(vt_tok_create(tokens, T_COUNT, NULL, 0, NULL, &tok) == 0);
    if (tok) {
        CHECK(vt_tok_encode(tok, "<|im", ids, 2, &n) == -ENOSPC && n == 4);
        vt_tok_destroy(tok);
    }

    /* UNUSED tokens (a tokenizer.json gap's placeholder, GGUF padding) decode to nothing, as
     * llama.cpp's token_to_piece and transformers do; the others as before */
    {
        static const char *const u[3] = {"a", "<|vt_unused_1|>", "<pad>"};
        static const int32_t ut[3] = {VT_TOK_TYPE_NORMAL, VT_TOK_TYPE_UNUSED, VT_TOK_TYPE_CONTROL};
        char buf[32];
        size_t len = 99;
        CHECK(vt_tok_create(u, 3, NULL, 0, ut, &tok) == 0);
        if (tok) {
            CHECK(vt_tok_decode(tok, 1, buf, sizeof buf, &len) == 0 && len == 0 && !buf[0]);
            CHECK(vt_tok_decode(tok, 1, NULL, 0, &len) == 0 && len == 0);
            CHECK(vt_tok_decode(tok, 2, buf, sizeof buf, &len) == 0 && len == 5 &&
                  !memcmp(buf, "<pad>", 5));
            vt_tok_destroy(tok);
        }
    }

    /* SentencePiece pieces (without scores: decode-only): U+2581 is a space (not in an UNKNOWN
     * token, copied verbatim), a BYTE "<0xNN>" is the byte (either case of hex), a malformed one is
     * its text; CONTROL verbatim, UNUSED nothing; encoding refuses until scores are set */
    {
        static const char *const p[8] = {"<unk>",  "<s>",    "\xe2\x96\x81the", "<0x0A>",
                                         "<0xe9>", "<0xZZ>", "\xe2\x96\x81",    "x"};
        static const int32_t pt[8] = {VT_TOK_TYPE_UNKNOWN, VT_TOK_TYPE_CONTROL, VT_TOK_TYPE_NORMAL,
                                      VT_TOK_TYPE_BYTE,    VT_TOK_TYPE_BYTE,    VT_TOK_TYPE_BYTE,
                                      VT_TOK_TYPE_NORMAL,  VT_TOK_TYPE_UNUSED};
        static const char *const want[8] = {"<unk>", "<s>",    " the", "\n",
                                            "\xe9",  "<0xZZ>", " ",    ""};
        char buf[32];
        size_t len;
        CHECK(vt_tok_create_spm(p, 8, pt, &tok) == 0);
        for (int32_t i = 0; tok && i < 8; i++) {
            int ok = vt_tok_decode(tok, i, buf, sizeof buf, &len) == 0 && len == strlen(want[i]) &&
                     !memcmp(buf, want[i], len);
            if (!ok) fprintf(stderr, "spm token %d: got %zu bytes\n", (int)i, len);
            CHECK(ok);
        }
        if (tok) {
            CHECK(vt_tok_encode(tok, "the", ids, 8, &n) == -ENOTSUP &&
                  strstr(vt_tok_error(), "SentencePiece"));
            /* with scores it encodes: a space in front ("\xe2\x96\x81", id 6); "\n" is no piece
             * and falls back to its byte token "<0x0A>"; that token's text is not a piece (so
             * "<0x0A>" typed in the text cannot be encoded here: '<' has no byte token) */
            static const float sc[8] = {0, 0, -1, 0, 0, 0, -2, 0};
            CHECK(vt_tok_set_spm_scores(tok, sc, 1) == 0);
            CHECK(vt_tok_encode(tok, "\n", ids, 8, &n) == 0 && n == 2 && ids[0] == 6 &&
                  ids[1] == 3);
            CHECK(vt_tok_encode(tok, "<0x0A>", ids, 8, &n) == -EINVAL &&
                  strstr(vt_tok_error(), "0x3c"));
            vt_tok_destroy(tok);
        }
        CHECK(vt_tok_create_spm(p, 0, pt, &tok) == -EINVAL && tok == NULL);
    }
    return failures ? 1 : 0;
}

/* ------------------------------------------------------------ dump */

static char *hex_decode(const char *h) {
    if (strcmp(h, "-") == 0) return calloc(1, 1);
    size_t n = strlen(h);
    if (n % 2) return NULL;
    char *s = malloc(n / 2 + 1);
    if (!s) return NULL;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(h + 2 * i, "%2x", &v) != 1) {
            free(s);
            return NULL;
        }
        s[i] = (char)v;
    }
    s[n / 2] = 0;
    return s;
}

static void free_strings(char **v, uint32_t n) {
    if (!v) return;
    for (uint32_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* Reads "WORD N\n", returns N or -1. */
static long read_header(FILE *f, const char *word) {
    char w[32];
    long n;
    if (fscanf(f, "%31s %ld", w, &n) != 2 || strcmp(w, word) != 0 || n < 0) return -1;
    return n;
}

/* A SentencePiece dump of spm_ref.py (format there): vt_tok_create_spm +
 * vt_tok_set_spm_scores must encode every case as `sentencepiece` does, and decoding the ids
 * gives the text back after the space add_space_prefix put in front (U+2581 in the text comes
 * back as a space, as llama.cpp's and sentencepiece's decoders give it). */
static int test_spm_dump(FILE *f, const char *path) {
    static char hex[1 << 16];
    char **tokens = NULL;
    int32_t *types = NULL;
    float *scores = NULL;
    long n_tok = -1, n_case = -1, space = -1;
    int ret = 2;
    vt_tok *tok = NULL;
    if ((space = read_header(f, "space")) < 0 || (n_tok = read_header(f, "tokens")) <= 0) goto bad;
    tokens = calloc((size_t)n_tok, sizeof *tokens);
    types = calloc((size_t)n_tok, sizeof *types);
    scores = calloc((size_t)n_tok, sizeof *scores);
    if (!tokens || !types || !scores) goto bad;
    for (long i = 0; i < n_tok; i++)
        if (fscanf(f, "%65535s %d %f", hex, &types[i], &scores[i]) != 3 ||
            !(tokens[i] = hex_decode(hex)))
            goto bad;
    int rc = vt_tok_create_spm((const char *const *)tokens, (uint32_t)n_tok, types, &tok);
    if (!rc) rc = vt_tok_set_spm_scores(tok, scores, (int)space);
    if (rc) {
        fprintf(stderr, "vt_tok_create_spm failed: %d %s\n", rc, vt_tok_error());
        ret = 1;
        goto out;
    }
    if ((n_case = read_header(f, "cases")) < 0) goto bad;
    for (long c = 0; c < n_case; c++) {
        long n_ids;
        int32_t want[4096];
        if (fscanf(f, "%65535s %ld", hex, &n_ids) != 2 || n_ids < 0 || n_ids > 4096) goto bad;
        for (long i = 0; i < n_ids; i++)
            if (fscanf(f, "%d", &want[i]) != 1) goto bad;
        char *text = hex_decode(hex);
        if (!text) goto bad;
        expect_encode(tok, text, want, (uint32_t)n_ids);
        if (*text) { /* " " + text, U+2581 as a space */
            size_t tl = strlen(text), o = 1;
            char *exp = malloc(tl + 2);
            if (!exp) goto bad;
            exp[0] = space ? ' ' : 0;
            o = space ? 1 : 0;
            for (size_t i = 0; i < tl;) {
                if (!strncmp(text + i, "\xe2\x96\x81", 3))
                    exp[o++] = ' ', i += 3;
                else
                    exp[o++] = text[i++];
            }
            exp[o] = 0;
            expect_roundtrip(tok, exp, want, (uint32_t)n_ids);
            free(exp);
        }
        free(text);
    }
    printf("test_tokenizer: SentencePiece, %ld pieces, %ld cases, %d failures\n", n_tok, n_case,
           failures);
    ret = failures ? 1 : 0;
    goto out;
bad:
    fprintf(stderr, "test_tokenizer: %s: malformed dump\n", path);
    ret = 2;
out:
    vt_tok_destroy(tok);
    free_strings(tokens, n_tok > 0 ? (uint32_t)n_tok : 0);
    free(types);
    free(scores);
    return ret;
}

static int test_dump(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "test_tokenizer: cannot open %s: %s\n", path, strerror(errno));
        return 2;
    }
    static char hex[1 << 16];
    char **tokens = NULL, **merges = NULL;
    int32_t *types = NULL;
    long n_tok = -1, n_mer = -1, n_case = -1;
    int ret = 2;
    vt_tok *tok = NULL;

    char pre[64], pw[16];
    long pos = ftell(f);
    if (fscanf(f, "%15s", pw) == 1 && !strcmp(pw, "vt-spm-dump")) {
        int r = fscanf(f, "%ld", &n_tok) == 1 && n_tok == 1 ? test_spm_dump(f, path) : 2;
        fclose(f);
        return r;
    }
    fseek(f, pos, SEEK_SET);
    if (read_header(f, "vt-tok-dump") != 2 || fscanf(f, "%7s %63s", pw, pre) != 2 ||
        strcmp(pw, "pre") || (n_tok = read_header(f, "tokens")) <= 0)
        goto bad;
    tokens = calloc((size_t)n_tok, sizeof *tokens);
    types = calloc((size_t)n_tok, sizeof *types);
    if (!tokens || !types) goto bad;
    for (long i = 0; i < n_tok; i++) {
        if (fscanf(f, "%65535s %d", hex, &types[i]) != 2 || !(tokens[i] = hex_decode(hex)))
            goto bad;
    }
    if ((n_mer = read_header(f, "merges")) < 0) goto bad;
    merges = calloc((size_t)n_mer + 1, sizeof *merges);
    if (!merges) goto bad;
    for (long i = 0; i < n_mer; i++) {
        if (fscanf(f, "%65535s", hex) != 1 || !(merges[i] = hex_decode(hex))) goto bad;
    }

    clock_t t0 = clock();
    int rc = vt_tok_create((const char *const *)tokens, (uint32_t)n_tok,
                           (const char *const *)merges, (uint32_t)n_mer, types, &tok);
    double t_create = (double)(clock() - t0) / CLOCKS_PER_SEC;
    enum vt_tok_pre mode = vt_tok_pre_from_gguf(pre);
    if (!rc && mode == VT_TOK_PRE_UNSUPPORTED) {
        fprintf(stderr, "test_tokenizer: %s: pre-tokenizer '%s' is not implemented\n", path, pre);
        goto bad;
    }
    if (!rc) rc = vt_tok_set_pre(tok, mode);
    /* as `vtstore run` does for a GGUF: llama.cpp's ignore_merges for the Llama-3 names */
    if (!rc) rc = vt_tok_set_ignore_merges(tok, mode == VT_TOK_PRE_LLAMA3);
    if (rc) {
        fprintf(stderr, "vt_tok_create failed: %d\n", rc);
        ret = 1;
        goto out;
    }

    if ((n_case = read_header(f, "cases")) < 0) goto bad;
    size_t corpus_len = 0, corpus_cap = 1 << 16;
    char *corpus = malloc(corpus_cap);
    if (!corpus) goto bad;
    corpus[0] = 0;
    for (long c = 0; c < n_case; c++) {
        long n_ids;
        if (fscanf(f, "%65535s %ld", hex, &n_ids) != 2 || n_ids < 0 || n_ids > 4096) {
            free(corpus);
            goto bad;
        }
        char *text = hex_decode(hex);
        int32_t want[4096];
        for (long i = 0; i < n_ids; i++) {
            if (fscanf(f, "%d", &want[i]) != 1) n_ids = -1;
        }
        if (!text || n_ids < 0) {
            free(text);
            free(corpus);
            goto bad;
        }
        expect_encode(tok, text, want, (uint32_t)n_ids);
        expect_roundtrip(tok, text, want, (uint32_t)n_ids);
        size_t tl = strlen(text);
        if (corpus_len + tl + 2 < corpus_cap) {
            memcpy(corpus + corpus_len, text, tl);
            corpus_len += tl;
            corpus[corpus_len++] = '\n';
            corpus[corpus_len] = 0;
        }
        free(text);
    }

    /* throughput on the concatenated cases, repeated to ~1 MB */
    size_t reps = (1u << 20) / (corpus_len + 1) + 1;
    char *big = malloc(reps * corpus_len + 1);
    if (big) {
        for (size_t r = 0; r < reps; r++) memcpy(big + r * corpus_len, corpus, corpus_len);
        big[reps * corpus_len] = 0;
        uint32_t n = 0;
        t0 = clock();
        rc = vt_tok_encode(tok, big, NULL, 0, &n);
        double dt = (double)(clock() - t0) / CLOCKS_PER_SEC;
        CHECK(rc == -ENOSPC || (rc == 0 && n == 0));
        printf("test_tokenizer: pre %s, vocab %ld, merges %ld, create %.3fs; encode %.2f MB -> %u "
               "ids in %.3fs (%.1f MB/s)\n",
               pre, n_tok, n_mer, t_create, (double)(reps * corpus_len) / 1e6, n, dt,
               (double)(reps * corpus_len) / 1e6 / (dt > 0 ? dt : 1e-9));
        free(big);
    }
    free(corpus);
    printf("test_tokenizer: %ld cases, %d failures\n", n_case, failures);
    ret = failures ? 1 : 0;
    goto out;
bad:
    fprintf(stderr, "test_tokenizer: %s: malformed dump\n", path);
    ret = 2;
out:
    vt_tok_destroy(tok);
    free_strings(tokens, n_tok > 0 ? (uint32_t)n_tok : 0);
    free_strings(merges, n_mer > 0 ? (uint32_t)n_mer : 0);
    free(types);
    fclose(f);
    return ret;
}

int main(int argc, char **argv) {
    if (argc == 1) {
        int rc = test_synthetic();
        printf("test_tokenizer: synthetic %s\n", rc ? "FAILED" : "ok");
        return rc;
    }
    if (argc == 2) return test_dump(argv[1]);
    fprintf(stderr, "usage: %s [DUMP]\n", argv[0]);
    return 2;
}
