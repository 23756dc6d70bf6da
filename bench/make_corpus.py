#!/usr/bin/env python3
"""Builds a mixed English / Chinese / code corpus of about SIZE_MB megabytes for the tokenizer
benchmark, from text that is on every machine: the golden parity texts (English and Chinese
document chunks), this repository's C sources and docs, and system C headers."""
import glob, json, os, sys

out, size_mb = sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 4
here = os.path.dirname(os.path.abspath(__file__))
golden = os.environ.get("QWENC_GOLDEN", os.path.join(here, "..", "..", "shared", "golden"))
english, chinese, code = [], [], []
for line in open(os.path.join(golden, "tokenizer", "qwen3-parity.jsonl"), encoding="utf-8"):
    t = json.loads(line)["text"]
    (chinese if sum("\u4e00" <= c <= "\u9fff" for c in t) > len(t) // 20 else english).append(t)
for pattern in [os.path.join(here, "..", "src", "*", "*.c"), "/usr/include/*.h"]:
    for path in sorted(glob.glob(pattern))[:200]:
        try:
            code.append(open(path, encoding="utf-8").read())
        except (UnicodeDecodeError, OSError):
            pass
for path in [os.path.join(golden, "README.md"), os.path.join(here, "..", "README.md")]:
    english.append(open(path, encoding="utf-8").read())
parts = ["\n".join(english), "\n".join(chinese), "\n".join(code)]
target = int(size_mb * 1e6)
chunks, total, i = [], 0, 0
while total < target:  # interleave the three kinds so every stretch of the corpus is mixed
    p = parts[i % 3]
    start = (i * 7919) % max(1, len(p) - 20000)
    piece = p[start:start + 20000]
    chunks.append(piece)
    total += len(piece.encode())
    i += 1
open(out, "w", encoding="utf-8").write("".join(chunks))
print(f"{out}: {total / 1e6:.1f} MB, english {len(parts[0].encode())/1e6:.2f} MB / chinese {len(parts[1].encode())/1e6:.2f} MB / code {len(parts[2].encode())/1e6:.2f} MB of sources")
