#!/usr/bin/env python3
"""Independent reference for vtstore's byte-level BPE tokenizer (tools/run/tokenizer.c).

The oracle is Hugging Face `tokenizers` (Rust), configured the way SmolLM2's own
tokenizer.json is: BPE over the GGUF vocabulary and merges, pre-tokenizer
Sequence[Digits(individual_digits=True), ByteLevel(add_prefix_space=False,
use_regex=True)], ByteLevel decoder, and every CONTROL / USER_DEFINED token of
the GGUF registered as an added token matched whole.  GGUF's
tokenizer.ggml.pre = "smollm" names exactly that split (llama.cpp: "\\p{N}" then
the GPT-2 regex).  It shares no code with the C tokenizer, which splits by hand.

Usage:
  tok_ref.py GGUF --dump OUT [--fuzz N]
                                   write vocab, merges, test strings (fixed ones
                                   plus N seeded random ones) and the oracle's
                                   ids as a text file for test_tokenizer
  tok_ref.py GGUF --encode TEXT    print the oracle's ids for TEXT
  tok_ref.py GGUF --decode 1,2,3   print the text of ids

With --pre gpt-2 the oracle's pre-tokenizer is ByteLevel alone (GPT-2's
pattern, numbers grouped), the split GGUF's "gpt-2" and a tokenizer.json with a
bare ByteLevel pre_tokenizer name; the C tokenizer's VT_TOK_PRE_GPT2.

Dump format (line based; every string is lowercase hex of its UTF-8 bytes, "-"
when empty):
  vt-tok-dump 2
  pre NAME            the GGUF tokenizer.ggml.pre name of the oracle's split
  tokens N            then N lines "HEX TYPE"
  merges M            then M lines "HEX"          (the merge string "a b")
  cases K             then K lines "HEX COUNT ID ID ..."
"""

import argparse
import sys

# GGUF token types (llama.cpp's llama_token_type)
TOKEN_TYPE_NORMAL = 1
TOKEN_TYPE_CONTROL = 3
TOKEN_TYPE_USER_DEFINED = 4

# Strings the C tokenizer must encode exactly as the oracle does.
TEST_STRINGS = [
    "",
    "Hello world",
    "Hello, world! How are you today?",
    "The quick brown fox jumps over the lazy dog.",
    " leading space",
    "trailing space ",
    "  two leading spaces",
    "a  b   c    d",
    "tabs\tand\t\ttabs",
    "line one\nline two\n\nline four\n",
    "\n\n\n",
    "   ",
    " ",
    "x \n y",
    "It's, we're, they've, I'm, you'll, he'd, don't, can't",
    "IT'S WE'RE (capital contractions are not special)",
    "''s 'tis 'x",
    "12345",
    "Pi is 3.14159 and e is 2.71828; 1,000,000 people; 2024-06-01",
    "a1b2c3 x 42 y",
    "price: $99.99 (approx. 100%)",
    "email@example.com, https://example.org/path?q=1&r=2#frag",
    "def f(x):\n    return x**2 + 1  # comment\n",
    "if (a != b && c >= d) { return -1; }",
    "!!!??? ... --- ___ *** ///",
    "café, naïve, résumé, Ångström, Zürich",
    "日本語のテキスト。東京は日本の首都です。",
    "日本 Nippon 日本",
    "Привет, мир! Как дела?",
    "Γειά σου Κόσμε",
    "مرحبا بالعالم",
    "emoji: 😀 🎉 👍🏽 ❤️",
    "superscripts ² ³ and fractions ½ ¾ and full-width １２３",
    "non\u00a0breaking\u2003em space",
    "zero\u200bwidth",
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n",
    "text<|endoftext|>more text<|im_end|>",
    "<|im_start|><|im_end|>",
    "<|im_start",
    "< |im_start|>",
    "<filename>main.c<file_sep><gh_stars>10",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "          ten spaces then text",
    "mixed   \t \n  whitespace\r\nwindows line",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism",
]


# Pieces the random strings are built from: every character class the
# pre-tokenizer distinguishes, contraction fragments, and boundary cases.
FUZZ_PIECES = [
    "a", "Z", "word", "The", " ", "  ", "\t", "\n", "\r\n", "\x0b", "\x0c", "0", "7", "42",
    "'", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "''", ".", ",", "!", "?", "-", "_",
    "(", ")", "\"", "#", "$", "%", "&", "*", "/", "\\", "<", ">", "|", "~", "`", "^", "@",
    "\x01", "\x1c", "\x1f", "\x7f", "\x85", "\xa0", "é", "ß", "ø", "e\u0301", "\u0301",
    "日本", "語", "。", "、", "ä", "Ω", "д", "\u0627\u0644", "\u0663", "²", "½", "Ⅻ", "１", "Ａ",
    "\u2003", "\u200b", "\u2028", "\u3000", "\u2019", "\u201c", "—", "…", "€", "😀", "👍🏽",
    "\u2764\ufe0f", "\U0001d400", "ǅ", "ʰ", "<|im_start|>", "<|im_end|>", "<|endoftext|>",
    "<|im", "|>",
]


def fuzz_strings(n, seed=1234):
    """n deterministic random strings over FUZZ_PIECES."""
    import random
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.randint(1, 12)
        out.append("".join(rng.choice(FUZZ_PIECES) for _ in range(k)))
    return out


def gpt2_bytes_to_unicode():
    """GPT-2's printable stand-in character for each byte value."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def read_vocab(path):
    """Returns (tokens, types, merges, pre) from a GGUF file."""
    import gguf

    r = gguf.GGUFReader(path)

    def strings(key):
        f = r.fields[key]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    tokens = strings("tokenizer.ggml.tokens")
    merges = strings("tokenizer.ggml.merges")
    if "tokenizer.ggml.token_type" in r.fields:
        f = r.fields["tokenizer.ggml.token_type"]
        types = [int(f.parts[i][0]) for i in f.data]
    else:
        types = [TOKEN_TYPE_NORMAL] * len(tokens)
    pre = None
    if "tokenizer.ggml.pre" in r.fields:
        f = r.fields["tokenizer.ggml.pre"]
        pre = bytes(f.parts[f.data[0]]).decode()
    return tokens, types, merges, pre


class RefTokenizer:
    """The `tokenizers`-based oracle, plus a decoder by the inverse byte map."""

    def __init__(self, tokens, types, merges, pre="smollm"):
        self.pre = pre
        self.tokens = tokens
        self.types = types
        self.merges = merges
        self.tok = None
        b2u = gpt2_bytes_to_unicode()
        self.u2b = {u: b for b, u in b2u.items()}

    def _build(self):
        """The `tokenizers` pipeline; built on first encode so decode needs no package."""
        from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

        vocab = {}
        for i, t in enumerate(self.tokens):
            vocab.setdefault(t, i)
        pairs = [tuple(m.split(" ", 1)) for m in self.merges]
        tok = Tokenizer(models.BPE(vocab=vocab, merges=pairs, fuse_unk=False, byte_fallback=False))
        byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        if self.pre == "gpt-2":
            tok.pre_tokenizer = byte_level
        else:
            tok.pre_tokenizer = pre_tokenizers.Sequence([
                pre_tokenizers.Digits(individual_digits=True), byte_level])
        tok.decoder = decoders.ByteLevel()
        special = [AddedToken(t, special=True, normalized=False, lstrip=False, rstrip=False,
                              single_word=False)
                   for t, ty in zip(self.tokens, self.types)
                   if ty in (TOKEN_TYPE_CONTROL, TOKEN_TYPE_USER_DEFINED)]
        tok.add_special_tokens(special)
        self.tok = tok

    def encode(self, text):
        if self.tok is None:
            self._build()
        return self.tok.encode(text, add_special_tokens=False).ids

    def token_bytes(self, i):
        """Bytes of token i: special tokens verbatim, others through the inverse byte map."""
        t = self.tokens[i]
        if self.types[i] in (TOKEN_TYPE_CONTROL, TOKEN_TYPE_USER_DEFINED):
            return t.encode("utf-8")
        out = bytearray()
        for ch in t:
            if ch in self.u2b:
                out.append(self.u2b[ch])
            else:
                out += ch.encode("utf-8")
        return bytes(out)

    def decode(self, ids):
        return b"".join(self.token_bytes(i) for i in ids).decode("utf-8", errors="replace")


def hexs(s):
    b = s.encode("utf-8") if isinstance(s, str) else s
    return b.hex() if b else "-"


def dump(path, tokens, types, merges, ref, strings):
    with open(path, "w") as f:
        f.write("vt-tok-dump 2\n")
        f.write("pre %s\n" % ref.pre)
        f.write("tokens %d\n" % len(tokens))
        for t, ty in zip(tokens, types):
            f.write("%s %d\n" % (hexs(t), ty))
        f.write("merges %d\n" % len(merges))
        for m in merges:
            f.write(hexs(m) + "\n")
        f.write("cases %d\n" % len(strings))
        for s in strings:
            ids = ref.encode(s)
            if ref.decode(ids) != s:
                raise SystemExit("tok_ref: oracle does not round-trip %r" % s)
            f.write("%s %d%s\n" % (hexs(s), len(ids), "".join(" %d" % i for i in ids)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("gguf")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--dump", metavar="OUT")
    g.add_argument("--encode", metavar="TEXT")
    g.add_argument("--decode", metavar="IDS")
    ap.add_argument("--pre", choices=["smollm", "gpt-2"],
                    help="the oracle's pre-tokenizer (default: the GGUF's, smollm if absent)")
    ap.add_argument("--fuzz", type=int, default=300, metavar="N",
                    help="with --dump: add N seeded random strings (default 300)")
    args = ap.parse_args()

    tokens, types, merges, pre = read_vocab(args.gguf)
    if args.pre:
        pre = args.pre
    elif pre in (None, "smollm", "starcoder", "refact", "codeshell"):
        pre = "smollm"
    elif pre != "gpt-2":
        print("tok_ref: warning: pre-tokenizer %r is not modelled; using smollm's" % pre,
              file=sys.stderr)
        pre = "smollm"
    ref = RefTokenizer(tokens, types, merges, pre)
    if args.dump:
        dump(args.dump, tokens, types, merges, ref, TEST_STRINGS + fuzz_strings(args.fuzz))
    elif args.encode is not None:
        print(",".join(str(i) for i in ref.encode(args.encode)))
    else:
        ids = [int(x) for x in args.decode.split(",") if x.strip()]
        sys.stdout.write(ref.decode(ids))


if __name__ == "__main__":
    main()
