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
  tok_ref.py GGUF --encode TEXT --bos TOKEN
                                   the same with a TemplateProcessing post-processor
                                   that puts TOKEN first (a model's BOS)
  tok_ref.py GGUF --decode 1,2,3   print the text of ids

With --pre gpt-2 the oracle's pre-tokenizer is ByteLevel alone (GPT-2's
pattern, numbers grouped), the split GGUF's "gpt-2" and a tokenizer.json with a
bare ByteLevel pre_tokenizer name; the C tokenizer's VT_TOK_PRE_GPT2.

With --pre llama-bpe / qwen2 it is Llama 3's / Qwen2's tokenizer.json
pre_tokenizer: Sequence[Split(their regex, "isolated"), ByteLevel(use_regex=False)]
(the C tokenizer's VT_TOK_PRE_LLAMA3 / VT_TOK_PRE_QWEN2), still on this GGUF's
vocabulary.  For llama-bpe the BPE model has ignore_merges=True, as Llama 3's
tokenizer.json has and llama.cpp sets for that name; so that it matters, a few
tokens that no merge produces are appended to the vocabulary (EXTRA_TOKENS) and
the test strings use them (with --dump only); a few merges to multi-digit tokens are appended too
(EXTRA_MERGES), so that the digit grouping shows in the ids.  Both add EXTRA_STRINGS and, in the random strings,
EXTRA_PIECES: digit runs, contractions in both cases, CR/LF runs, whitespace
before newlines, punctuation before newlines.

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


# The Split regexes of Llama 3 and Qwen2 tokenizer.json files (Qwen2: \p{N} alone).
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = LLAMA3_REGEX.replace(r"\p{N}{1,3}", r"\p{N}")

# Added to the vocabulary for the Llama-3 / Qwen2 checks (raw text; stored in the byte-level
# alphabet).  EXTRA_TOKENS: no merge produces them, so only ignore_merges encodes a piece as
# one.  EXTRA_MERGES (appended, so ranked last) build multi-digit tokens, which SmolLM2's
# digit-by-digit vocabulary lacks: without them \p{N}{1,3} and \p{N} would give the same ids
# (and "ſa", so that "'ſa" shows whether "'ſ" is taken as the contraction "'s").
EXTRA_TOKENS = [" qzxj", "qzxjqzxj", " Zzkw", "日本語", " 日本語"]
EXTRA_MERGES = [("1", "2"), ("12", "3"), ("4", "5"), ("45", "6"), ("7", "8"), ("78", "9"),
                ("0", "0"), ("00", "0"), ("9", "9"), (b"\xc5", b"\xbf"), ("ſ", "a")]


def extend_vocab(tokens, types, merges):
    """Returns the vocabulary and merges with EXTRA_TOKENS and EXTRA_MERGES added."""
    b2u = gpt2_bytes_to_unicode()

    def bl(text):
        raw = text if isinstance(text, bytes) else text.encode("utf-8")
        return "".join(b2u[b] for b in raw)

    tokens, types, merges = list(tokens), list(types), list(merges)
    known = set(tokens)
    for a, b in EXTRA_MERGES:
        if bl(a) + bl(b) not in known:
            tokens.append(bl(a) + bl(b))
            types.append(TOKEN_TYPE_NORMAL)
            known.add(bl(a) + bl(b))
            merges.append(bl(a) + " " + bl(b))
    for t in EXTRA_TOKENS:
        if bl(t) not in known:
            tokens.append(bl(t))
            types.append(TOKEN_TYPE_NORMAL)
            known.add(bl(t))
    return tokens, types, merges


EXTRA_STRINGS = [
    "1", "12", "123", "1234", "12345", "123456", "1234567", "a1234567b", " 1234567 ",
    "x 42 y 7 z 0012 3.14159 1,000,000 2024-06-01",
    "I'M sure it'S THEY'RE WE'VE YOU'LL HE'D DON'T can't won'T",
    "'s 'S 'T 'Re 'rE 'VE 'vE 'M 'LL 'lL 'D 'x 'sound 'ſ 'ſa",
    "'ſa", "it'ſa", "IT'Sa it'Ta x'REa x'vEa x'lLa x'Ma x'Da", "x'ſ", "'ſ\n",
    "line\r\nline\r\n\r\nend\rcr\n\n\n",
    "trailing   \n  next\t\n\tline \n",
    "  \n\n  \r\n x",
    "end!!!\n\nnext...\r\n(paren)\n\" quote\"\n",
    " ?!\n ?? \n",
    "tab\tword\u00a0nbsp\u3000ideographic\u2003em",
    "\u00a0\n\u2028x\u2029y\x85z",
    "日本語のテキスト。東京は日本の首都です。",
    "Привет, мир! КАК ДЕЛА?",
    "مرحبا بالعالم ١٢٣٤",
    "emoji: 😀🎉 👍🏽 ❤️ 👨‍👩‍👧",
    "qzxj qzxj qzxjqzxj Zzkw Zzkw 日本語 日本語 qzxjs",
    "1234567890 999 0000000 45 456 4567 78 789",
]

EXTRA_PIECES = [
    "1", "23", "456", "7890", "'S", "'T", "'RE", "'Ve", "'LL", "'D", "'M", "'s", "'ll",
    "\r", "\n", "\r\n", "\n\n", " \n", "\t\n", "  \n", "\u3000\n", "!!\n", "...\r\n",
    " (", ":\n", "ſ", "'ſ", "'ſa", "qzxj", " qzxj", " Zzkw", "日本語", "\u0663\u0664", "٣",
]


def fuzz_strings(n, seed=1234, extra=()):
    """n deterministic random strings over FUZZ_PIECES (and extra)."""
    import random
    rng = random.Random(seed)
    pieces = FUZZ_PIECES + list(extra)
    out = []
    for _ in range(n):
        k = rng.randint(1, 12)
        out.append("".join(rng.choice(pieces) for _ in range(k)))
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

    def __init__(self, tokens, types, merges, pre="smollm", bos=None):
        self.pre = pre
        self.bos = bos  # a token the post-processor puts first (TemplateProcessing), or None
        self.tokens = tokens
        self.types = types
        self.merges = merges
        self.tok = None
        b2u = gpt2_bytes_to_unicode()
        self.u2b = {u: b for b, u in b2u.items()}

    def _build(self):
        """The `tokenizers` pipeline; built on first encode so decode needs no package."""
        from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

        from tokenizers import Regex

        vocab = {}
        for i, t in enumerate(self.tokens):
            vocab.setdefault(t, i)
        pairs = [tuple(m.split(" ", 1)) for m in self.merges]
        tok = Tokenizer(models.BPE(vocab=vocab, merges=pairs, fuse_unk=False, byte_fallback=False,
                                   ignore_merges=self.pre == "llama-bpe"))
        byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        if self.pre == "gpt-2":
            tok.pre_tokenizer = byte_level
        elif self.pre in ("llama-bpe", "qwen2"):
            regex = LLAMA3_REGEX if self.pre == "llama-bpe" else QWEN2_REGEX
            tok.pre_tokenizer = pre_tokenizers.Sequence([
                pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        else:
            tok.pre_tokenizer = pre_tokenizers.Sequence([
                pre_tokenizers.Digits(individual_digits=True), byte_level])
        tok.decoder = decoders.ByteLevel()
        special = [AddedToken(t, special=True, normalized=False, lstrip=False, rstrip=False,
                              single_word=False)
                   for t, ty in zip(self.tokens, self.types)
                   if ty in (TOKEN_TYPE_CONTROL, TOKEN_TYPE_USER_DEFINED)]
        tok.add_special_tokens(special)
        if self.bos is not None:
            from tokenizers import processors
            tok.post_processor = processors.TemplateProcessing(
                single=self.bos + " $A", special_tokens=[(self.bos, self.tokens.index(self.bos))])
        self.tok = tok

    def encode(self, text):
        if self.tok is None:
            self._build()
        return self.tok.encode(text, add_special_tokens=self.bos is not None).ids

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
    ap.add_argument("--pre", choices=["smollm", "gpt-2", "llama-bpe", "qwen2"],
                    help="the oracle's pre-tokenizer (default: the GGUF's, smollm if absent)")
    ap.add_argument("--bos", metavar="TOKEN",
                    help="with --encode: a TemplateProcessing post-processor puts TOKEN first "
                    "(as Llama 3's tokenizer.json does); encoded with add_special_tokens")
    ap.add_argument("--fuzz", type=int, default=300, metavar="N",
                    help="with --dump: add N seeded random strings (default 300)")
    args = ap.parse_args()

    tokens, types, merges, pre = read_vocab(args.gguf)
    if args.pre:
        pre = args.pre
    elif pre in (None, "smollm", "starcoder", "refact", "codeshell"):
        pre = "smollm"
    elif pre not in ("gpt-2", "llama-bpe", "qwen2"):
        print("tok_ref: warning: pre-tokenizer %r is not modelled; using smollm's" % pre,
              file=sys.stderr)
        pre = "smollm"
    strings = TEST_STRINGS + fuzz_strings(args.fuzz)
    if pre in ("llama-bpe", "qwen2") and args.dump:
        tokens, types, merges = extend_vocab(tokens, types, merges)
        strings = TEST_STRINGS + EXTRA_STRINGS + fuzz_strings(
            args.fuzz, seed=4321 if pre == "qwen2" else 1234, extra=EXTRA_PIECES)
    ref = RefTokenizer(tokens, types, merges, pre, args.bos if args.encode is not None else None)
    if args.dump:
        dump(args.dump, tokens, types, merges, ref, strings)
    elif args.encode is not None:
        print(",".join(str(i) for i in ref.encode(args.encode)))
    else:
        ids = [int(x) for x in args.decode.split(",") if x.strip()]
        sys.stdout.write(ref.decode(ids))


if __name__ == "__main__":
    main()
