#!/usr/bin/env bash
# Builds one libFuzzer target with ASan+UBSan (clang) and runs it for SECONDS (default 60).
#   fuzz/run.sh jinja|tokenizer|tokenizer_json|safetensors|output_parser|config [SECONDS]
# (config: its corpus starts from the small golden models' own config.json files)
# Crashes, leaks and slow inputs are written to build-fuzz/ (crash-*, leak-*, slow-unit-*).
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
if [ $target = config ]; then
  i=0
  for m in qwen3-yarn-tiny qwen3-moe-tiny qwen2-moe-tiny qwen2-untied-f32; do
    { printf "\\$(printf %o $i)"; cat ../shared/golden/models/$m/config.json; } > $out/corpus-$target/seed-$m
    { printf "\\$(printf %o $i)"; cat ../shared/golden/models/$m/config.json; printf '\0'; cat ../shared/golden/models/$m/generation_config.json; } \
      > $out/corpus-$target/seed-$m-generation
    i=$((i + 1))
  done
fi
QWENC_FUZZ_MODELS=${QWENC_FUZZ_MODELS:-$(realpath ../shared/golden/models)} \
QWENC_FUZZ_MODEL=${QWENC_FUZZ_MODEL:-$(realpath ../shared/golden/models/qwen3-tiny)} \
  $out/fuzz_$target -max_total_time=$secs -max_len=${FUZZ_MAX_LEN:-4096} -artifact_prefix=$out/ $out/corpus-$target ${FUZZ_SEEDS:-}
