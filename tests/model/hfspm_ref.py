#!/usr/bin/env python3
"""Independent reference for vtstore's tokenizer.json BPE over SentencePiece pieces
(tools/run/hf_config.c hf_spm_space, tokenizer.c vt_tok_create_spm_bpe): Hugging Face's
`tokenizers` library itself, on tokenizer.json files made here as transformers converts
Gemma's, Llama 2's and Mistral's tokenizer.model.

A small SentencePiece BPE model is trained (sentencepiece, as spm_ref.py does, byte fallback)
on spm_ref.py's seeded corpus. Its pieces become model.vocab; model.merges are every split
(left, right) of a piece whose two parts are pieces, ranked by the piece's score (highest
first), ties by the parts' ids, as transformers' SentencePieceExtractor writes them; the
control and user-defined pieces (two whitespace runs, as Gemma's has) are added_tokens. The
files differ in how spaces are marked, as the three families' files do:
  gemma    normalizer Replace(" " -> "▁"), no pre_tokenizer
  llama    normalizer Sequence[Prepend("▁"), Replace(" " -> "▁")], no pre_tokenizer
  mistral  no normalizer, pre_tokenizer Metaspace("▁", prepend_scheme "first", split false)
  (and metaspace_always: the same with prepend_scheme "always")
`tokenizers` encodes spm_ref.py's fixed strings, seeded random ones and a few with the control
tokens' text inside (add_special_tokens false); the C tokenizer must give the same ids.

Usage: hfspm_ref.py OUTDIR [--fuzz N] [--seed S]
Writes OUTDIR/{gemma,llama,mistral,metaspace_always}.json and .cases: "HEX COUNT ID ID ..." per line (strings
as lowercase hex of their UTF-8 bytes, "-" when empty).
"""

import argparse
import json
import os
import random
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokenizers  # noqa: E402
from spm_ref import FIXED, random_case, train  # noqa: E402

SP = "\u2581"


def extract_merges(vocab, scores):
    """transformers' SentencePieceExtractor.extract: every split of every piece into two
    pieces, sorted by the piece's score (descending; a stable sort keeps the parts' id order)."""
    merges = []
    for piece, score in scores.items():
        local = [(piece[:i], piece[i:], score) for i in range(1, len(piece))
                 if piece[:i] in vocab and piece[i:] in vocab]
        local.sort(key=lambda m: (vocab[m[0]], vocab[m[1]]))
        merges.extend(local)
    merges.sort(key=lambda m: m[2], reverse=True)
    return [[a, b] for a, b, _ in merges]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--fuzz", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    # Gemma's user-defined pieces include whitespace runs: added tokens (not special) that
    # merges reach too; the converted files mark spaces themselves (no dummy prefix)
    user_defined = (SP * 2, SP * 4)
    sp = train(rng, 600, False, user_defined)
    n = sp.get_piece_size()
    vocab = {sp.id_to_piece(i): i for i in range(n)}
    # every piece, control, byte and user-defined ones included, as the converter takes them
    # (a user-defined piece's score, 0, ranks its merges first)
    scores = {sp.id_to_piece(i): sp.get_score(i) for i in range(n)}
    merges = extract_merges(vocab, scores)
    added = [{"id": i, "content": sp.id_to_piece(i), "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": False,
              "special": bool(sp.is_control(i) or sp.is_unknown(i))}
             for i in range(n)
             if sp.is_control(i) or sp.is_unknown(i) or sp.id_to_piece(i) in user_defined]
    replace = {"type": "Replace", "pattern": {"String": " "}, "content": SP}
    variants = {
        "gemma": (replace, None),
        "llama": ({"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": SP},
                                                        replace]}, None),
        "mistral": (None, {"type": "Metaspace", "replacement": SP, "prepend_scheme": "first",
                           "split": False}),
        "metaspace_always": (None, {"type": "Metaspace", "replacement": SP,
                                    "prepend_scheme": "always", "split": False}),
    }
    specials = [sp.id_to_piece(i) for i in range(n) if sp.is_control(i)]
    cases = FIXED + [random_case(rng) for _ in range(a.fuzz)]
    cases += [random_case(rng) + rng.choice(specials) + random_case(rng) for _ in range(50)]
    cases += [rng.choice(specials) + random_case(rng) for _ in range(20)]
    os.makedirs(a.out, exist_ok=True)
    for name, (norm, pre) in variants.items():
        tj = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
              "normalizer": norm, "pre_tokenizer": pre, "post_processor": None,
              "decoder": {"type": "Sequence", "decoders": [
                  {"type": "Replace", "pattern": {"String": SP}, "content": " "},
                  {"type": "ByteFallback"}, {"type": "Fuse"}]},
              "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>",
                        "continuing_subword_prefix": None, "end_of_word_suffix": None,
                        "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                        "vocab": vocab, "merges": merges}}
        text = json.dumps(tj, ensure_ascii=False)
        with open(os.path.join(a.out, name + ".json"), "w", encoding="utf-8") as f:
            f.write(text)
        tok = tokenizers.Tokenizer.from_str(text)
        fallback = 0
        with open(os.path.join(a.out, name + ".cases"), "w") as f:
            for c in cases:
                ids = tok.encode(c, add_special_tokens=False).ids
                fallback += any(sp.is_byte(i) for i in ids)
                f.write("%s %d %s\n" % (c.encode("utf-8").hex() or "-", len(ids),
                                        " ".join(map(str, ids))))
        print("hfspm_ref %s: %d pieces, %d merges, %d cases (%d with byte fallback)"
              % (name, n, len(merges), len(cases), fallback))
    return 0


if __name__ == "__main__":
    sys.exit(main())
