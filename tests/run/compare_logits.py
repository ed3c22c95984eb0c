#!/usr/bin/env python3
"""Compares two [n_positions, vocab] logits .npy files (A = vtstore, B = reference).

  --min-cos C       cosine similarity of every position >= C
  --top1            same argmax at every position
  --max-rel R       max |A - B| / max |B| per position <= R (budget invariance)
  --json JA JB      `vtstore run --json` outputs of both runs: same generated ids
  --min-read-ratio  with --json: JA's decode must read >= this fraction of the model per token
                    (proves the first run really streamed)
  --report          print one JSON line of the figures instead of failing
Exit 0 when every requested check holds, 1 otherwise (each failure printed)."""
import argparse
import json
import sys

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("a")
ap.add_argument("b")
ap.add_argument("--min-cos", type=float)
ap.add_argument("--top1", action="store_true")
ap.add_argument("--max-rel", type=float)
ap.add_argument("--json", nargs=2)
ap.add_argument("--min-read-ratio", type=float)
ap.add_argument("--report", action="store_true")
args = ap.parse_args()

a = np.load(args.a).astype(np.float64)
b = np.load(args.b).astype(np.float64)
fails = []
n = min(a.shape[0], b.shape[0])
if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
    sys.exit("compare_logits: shapes %s and %s" % (a.shape, b.shape))
if a.shape[0] != b.shape[0] and args.report is False and args.max_rel is not None:
    fails.append("position counts differ: %d vs %d" % (a.shape[0], b.shape[0]))
a, b = a[:n], b[:n]
cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
top_a, top_b = a.argmax(1), b.argmax(1)
rel = np.abs(a - b).max(1) / np.abs(b).max(1)
res = {"positions": int(n), "cos_min": float(cos.min()), "cos_mean": float(cos.mean()),
       "top1_match": float((top_a == top_b).mean()), "max_rel": float(rel.max())}
if args.report:
    print(json.dumps(res))
    sys.exit(0)
print("positions %d: cosine min %.7f mean %.7f, top-1 match %d/%d, max rel diff %.3g"
      % (n, res["cos_min"], res["cos_mean"], int((top_a == top_b).sum()), n, res["max_rel"]))
if args.min_cos is not None:
    for i in np.nonzero(cos < args.min_cos)[0]:
        fails.append("position %d: cosine %.6f < %g" % (i, cos[i], args.min_cos))
if args.top1:
    for i in np.nonzero(top_a != top_b)[0]:
        fails.append("position %d: top-1 %d vs %d" % (i, top_a[i], top_b[i]))
if args.max_rel is not None:
    for i in np.nonzero(rel > args.max_rel)[0]:
        fails.append("position %d: relative difference %.3g > %g" % (i, rel[i], args.max_rel))
if args.json:
    ja, jb = (json.load(open(p)) for p in args.json)
    if ja["generated_ids"] != jb["generated_ids"]:
        fails.append("generated ids differ: %s vs %s" % (ja["generated_ids"], jb["generated_ids"]))
    else:
        print("same %d generated ids: %r" % (len(ja["generated_ids"]), ja["text"]))
    if args.min_read_ratio is not None:
        per_tok = ja["decode"]["bytes_read_per_token"]
        ratio = per_tok / ja["model_bytes"]
        print("first run read %.1f MiB per decoded token from disk (%.0f%% of the model)"
              % (per_tok / 2**20, 100 * ratio))
        if ratio < args.min_read_ratio:
            fails.append("the budgeted run read only %.0f%% of the model per token: it did not "
                         "stream" % (100 * ratio))
for f in fails:
    print("FAIL:", f, file=sys.stderr)
sys.exit(1 if fails else 0)
