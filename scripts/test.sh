#!/usr/bin/env bash
# The whole test suite: a normal build (with the benchmark tools) and an ASan+UBSan build, each
# running every CTest test.
# QWENC_GOLDEN overrides the golden data directory (default: ../shared/golden).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs"
# the benchmark tools are not part of the default build: compile them so that they keep up
cmake --build build -j "$jobs" --target bench_tokenizer bench_gguf_write bench_matmul_stream bench_planes_ab
(cd build && ctest --output-on-failure -j "$jobs")
if [ "${QWENC_SKIP_ASAN:-0}" != 1 ]; then
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DQWENC_SANITIZE=ON >/dev/null
  cmake --build build-asan -j "$jobs"
  (cd build-asan && ctest --output-on-failure -j "$jobs")
fi
