#!/usr/bin/env python3
"""Prints the ids of each chat-wrapped prompt, one comma-separated line per prompt: the GGUF's own
tokenizer.chat_template rendered by jinja2 as transformers' apply_chat_template does (one user
message, add_generation_prompt; with --system TEXT a system message first), encoded by the
Hugging Face `tokenizers` oracle of tests/model/tok_ref.py.
Usage: tok_ids.py GGUF [--system TEXT] PROMPT..."""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "model"))
import gguf  # noqa: E402
import jinja2  # noqa: E402
import tok_ref  # noqa: E402

args = sys.argv[1:]
path = args.pop(0)
system = None
if args[:1] == ["--system"]:
    system = args[1]
    args = args[2:]
r = gguf.GGUFReader(path)
f = r.fields["tokenizer.chat_template"]
template = jinja2.Environment(trim_blocks=True, lstrip_blocks=True).from_string(
    bytes(f.parts[f.data[0]]).decode())
toks, types, merges, _ = tok_ref.read_vocab(path)
ref = tok_ref.RefTokenizer(toks, types, merges)
for p in args:
    msgs = ([{"role": "system", "content": system}] if system is not None else []) + \
        [{"role": "user", "content": p}]
    text = template.render(messages=msgs, add_generation_prompt=True, bos_token="",
                           eos_token="")
    print(",".join(map(str, ref.encode(text))))
