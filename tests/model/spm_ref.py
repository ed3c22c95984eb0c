#!/usr/bin/env python3
"""Independent reference for vtstore's SentencePiece encoding (tools/run/tokenizer.c,
vt_tok_set_spm_scores): Google's `sentencepiece` library itself.

A small BPE model is trained here, configured as Llama 2's tokenizer.model is (model_type bpe,
byte_fallback, identity normalization, add_dummy_prefix, extra whitespace kept, digits split),
on a seeded corpus. Its pieces, types and scores are what a GGUF conversion stores
(tokenizer.ggml.tokens / token_type / scores); `sentencepiece` encodes the test strings (fixed
ones, seeded random ones mixing trained words, unseen characters that need byte fallback,
runs of spaces, newlines and U+2581) and the C tokenizer must give the same ids. It shares no
code with the C tokenizer.

Usage: spm_ref.py OUT [--fuzz N] [--seed S]

Dump format (line based; strings as lowercase hex of their UTF-8 bytes, "-" when empty):
  vt-spm-dump 1
  space 1                       add_space_prefix (sentencepiece's add_dummy_prefix)
  tokens N                      then N lines "HEX TYPE SCORE" (GGUF token types)
  cases K                       then K lines "HEX COUNT ID ID ..."
"""

import argparse
import io
import random
import sys

import sentencepiece as spm

WORDS = ("the quick brown fox jumps over the lazy dog while a small model learns "
         "pieces from text tokens merge scores vocabulary byte fallback llama mistral "
         "sentence piece encode decode python numbers 2024 3.14 hello world again and "
         "again running runner runs ran café naïve über straße").split()
UNSEEN = "ЖЩЯ漢字かな🙂🚀ØÆ€"  # characters the corpus never has: byte fallback

FIXED = [
    "",
    "Hello world",
    "the quick brown fox",
    " leading space",
    "trailing space ",
    "  two leading spaces",
    "a  b   c    d",
    "line one\nline two\n\nline four\n",
    "tabs\tand\ttabs",
    "numbers 12345 and 3.14159",
    "café naïve über straße",
    "漢字 and 🙂 need bytes",
    "already\u2581has\u2581pieces",
    "\u2581",
    " ",
    "x",
    "llamallamallama",
]


def corpus(rng: random.Random) -> str:
    lines = []
    for _ in range(3000):
        n = rng.randint(3, 14)
        lines.append(" ".join(rng.choice(WORDS) for _ in range(n)))
    return "\n".join(lines)


def random_case(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(1, 10)):
        k = rng.random()
        if k < 0.6:
            parts.append(rng.choice(WORDS))
        elif k < 0.7:
            parts.append(rng.choice(UNSEEN))
        elif k < 0.8:
            parts.append(str(rng.randint(0, 99999)))
        elif k < 0.9:
            parts.append(rng.choice(["  ", "   ", "\n", "\t", "\u2581", "!", "?", ","]))
        else:
            w = rng.choice(WORDS)
            parts.append(w[: rng.randint(1, len(w))])
    sep = rng.choice([" ", "", "  "])
    return sep.join(parts)


def train(rng: random.Random, vocab_size: int, dummy_prefix: bool,
          user_defined=()) -> spm.SentencePieceProcessor:
    """A SentencePiece BPE model configured as Llama 2's tokenizer.model (byte fallback, identity
    normalization, extra whitespace kept, digits split; add_dummy_prefix and user-defined pieces
    as given) on the seeded corpus."""
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus(rng).split("\n")), model_writer=model,
        model_type="bpe", vocab_size=vocab_size, byte_fallback=True, character_coverage=1.0,
        normalization_rule_name="identity", add_dummy_prefix=dummy_prefix,
        remove_extra_whitespaces=False, split_digits=True, minloglevel=2,
        bos_id=1, eos_id=2, unk_id=0, pad_id=-1,
        user_defined_symbols=list(user_defined))  # fmt: skip
    return spm.SentencePieceProcessor(model_proto=model.getvalue())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--fuzz", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    sp = train(rng, 420, True)
    n = sp.get_piece_size()

    def ttype(i: int) -> int:  # GGUF / llama.cpp token types, as convert_hf_to_gguf maps them
        if sp.is_unknown(i):
            return 2
        if sp.is_control(i):
            return 3
        if sp.is_byte(i):
            return 6
        if sp.is_unused(i):
            return 5
        return 1

    def hx(s: str) -> str:
        return s.encode("utf-8").hex() or "-"

    cases = FIXED + [random_case(rng) for _ in range(a.fuzz)]
    with open(a.out, "w") as f:
        f.write("vt-spm-dump 1\nspace 1\n")
        f.write(f"tokens {n}\n")
        for i in range(n):
            f.write(f"{hx(sp.id_to_piece(i))} {ttype(i)} {sp.get_score(i)!r}\n")
        f.write(f"cases {len(cases)}\n")
        bytes_fallback = 0
        for c in cases:
            ids = sp.encode(c, out_type=int)
            bytes_fallback += any(sp.is_byte(i) for i in ids)
            f.write(f"{hx(c)} {len(ids)} {' '.join(map(str, ids))}\n")
    print(f"spm_ref: {n} pieces, {len(cases)} cases ({bytes_fallback} with byte fallback)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
