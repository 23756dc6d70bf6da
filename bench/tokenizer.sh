#!/usr/bin/env bash
# Tokenizer benchmark: qwenc vs Hugging Face `tokenizers` (Rust, through node), same machine,
# same run, same tokenizer.json and corpus. Single thread for both.
#   bench/tokenizer.sh [CORPUS_MB]
set -euo pipefail
cd "$(dirname "$0")/.."
golden=${QWENC_GOLDEN:-../shared/golden}
model=$golden/models/qwen3-tiny
mb=${1:-4}
mkdir -p bench/out
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j --target bench_tokenizer >/dev/null
[ -d bench/node_modules/@anush008/tokenizers ] || (cd bench && npm install --no-audit --no-fund --no-save @anush008/tokenizers@0.6.0 >/dev/null)
QWENC_GOLDEN=$golden python3 bench/make_corpus.py bench/out/corpus.txt "$mb"
# the same ids from both (a benchmark of a wrong answer would mean nothing)
q=$(build/bench_tokenizer $model bench/out/corpus.txt 3)
h=$(RAYON_NUM_THREADS=1 UV_THREADPOOL_SIZE=1 TOKENIZERS_PARALLELISM=false node bench/hf_tokenizer_bench.js $model/tokenizer.json bench/out/corpus.txt 3)
python3 - "$q" "$h" <<'PY'
import json, sys, platform
q, h = json.loads(sys.argv[1]), json.loads(sys.argv[2])
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
print(f"machine: {cpu}")
print(f"{'':24}{'qwenc':>12}{'HF tokenizers':>16}{'ratio':>10}")
print(f"{'encode MB/s (1 thread)':24}{q['mb_per_s']:>12.2f}{h['mb_per_s']:>16.2f}{q['mb_per_s']/h['mb_per_s']:>9.1f}x")
print(f"{'  per 4 KB document':24}{q['docs_mb_per_s']:>12.2f}{h['docs_mb_per_s']:>16.2f}{q['docs_mb_per_s']/h['docs_mb_per_s']:>9.1f}x")
print(f"{'load tokenizer.json s':24}{q['load_s']:>12.3f}{h['load_s']:>16.3f}")
print(f"{'tokens':24}{q['tokens']:>12}{h['tokens']:>16}   {'same count' if q['tokens']==h['tokens'] and q['doc_tokens']==h['doc_tokens'] else 'DIFFERENT COUNT'}")
print(f"{'peak RSS MB (process)':24}{q['peak_rss_mb']:>12.1f}{h['rss_mb']:>16.1f}")
print(f"1 MB of one CJK character: {q['cjk_1mb_s']:.3f} s; 1 MB of letters without spaces: {q['letters_1mb_s']:.3f} s")
PY
