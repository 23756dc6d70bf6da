#!/usr/bin/env python3
"""Writes a small but valid tokenizer.json (the 256 byte tokens, a few merges, Qwen's pre-tokenizer
and added tokens) from a real one, as a seed for fuzz_tokenizer_json.
usage: make_small_tokenizer.py REAL_TOKENIZER_JSON OUT"""
import json, sys

t = json.load(open(sys.argv[1], encoding="utf-8"))
vocab = t["model"]["vocab"]
keep = {k: v for k, v in vocab.items() if v < 256}
merges = []
for a, b in t["model"]["merges"][:2000]:
    if a in keep and b in keep and (a + b) in vocab:
        keep[a + b] = vocab[a + b]
        merges.append([a, b])
    if len(merges) >= 40:
        break
t["model"]["vocab"] = keep
t["model"]["merges"] = merges
t["added_tokens"] = [x for x in t["added_tokens"] if x["id"] <= 151645]
json.dump(t, open(sys.argv[2], "w", encoding="utf-8"), ensure_ascii=False)
