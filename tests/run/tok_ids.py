#!/usr/bin/env python3
"""Prints the ids of each chat-wrapped prompt, one comma-separated line per prompt, as the
Hugging Face `tokenizers` oracle of tests/model/tok_ref.py encodes them.
Usage: tok_ids.py GGUF PROMPT..."""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "model"))
import tok_ref  # noqa: E402

toks, types, merges, _ = tok_ref.read_vocab(sys.argv[1])
ref = tok_ref.RefTokenizer(toks, types, merges)
for p in sys.argv[2:]:
    text = "<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n" % p
    print(",".join(map(str, ref.encode(text))))
