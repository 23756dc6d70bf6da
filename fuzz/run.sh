#!/usr/bin/env bash
# Builds one libFuzzer target with ASan+UBSan (clang) and runs it for SECONDS (default 60).
#   fuzz/run.sh jinja|tokenizer|safetensors|output_parser [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
target=$1 secs=${2:-60}
out=build-fuzz
mkdir -p $out/corpus-$target
srcs=$(ls src/base/*.c src/tensor/ops.c src/tensor/quant.c src/tensor/matmul.c src/io/*.c src/tokenizer/*.c src/chat/*.c src/model/*.c src/generate/*.c)
clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc \
  fuzz/fuzz_$target.c $srcs $(pkg-config --cflags --libs jansson libutf8proc) -lm -lpthread \
  src/tensor/dot_avx2.c src/tensor/dot_avxvnni.c src/tensor/dot_avx512.c -mavx2 -mfma -mf16c -mavxvnni -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16 -mavx512vnni \
  -o $out/fuzz_$target
QWENC_FUZZ_MODEL=${QWENC_FUZZ_MODEL:-$(realpath ../shared/golden/models/qwen3-tiny)} \
  $out/fuzz_$target -max_total_time=$secs -max_len=${FUZZ_MAX_LEN:-4096} $out/corpus-$target ${FUZZ_SEEDS:-}
