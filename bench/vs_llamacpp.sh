#!/usr/bin/env bash
# qwenc vs llama.cpp on the same machine, in one run, on the same synthetic weights (Qwen3-0.6B
# shape unless SHAPE says otherwise) at bf16, Q8_0 and Q4_0: pp and tg tokens/s side by side, with ratios.
#   [DEPTH=D] bench/vs_llamacpp.sh [PP=512] [TG=128] [THREADS=all CPUs] [KV=f16|f32|q8_0] [SHAPE=qwen3-0.6b] [LAYERS=all]
# tg decodes after DEPTH positions of context in both engines: by default PP (it continues the pp
# prompt); DEPTH=0 decodes from an empty context, as llama-bench's tg does.
# Both engines keep their KV cache in the same type (KV; f16 is llama.cpp's default, f32 qwenc's; for q8_0
# llama.cpp runs with flash attention, without which it cannot quantize V).
# SHAPE is any `qwenc synth --shape` (qwen3-30b-a3b: the MoE; LAYERS=4 writes a 4-layer slice).
# PROFILE=1 runs qwenc's decode with --profile and prints, under each row, where its decode step's time went
# (loops over the threads and the caller's waits at their ends, attention, the caller alone; ~0.2% slower).
# llama.cpp comes from npm (node-llama-cpp's prebuilt CPU builds); the weights are written once
# as a HF directory (qwenc synth) and as GGUF (bench_gguf_write, same quantizer for both).
# Row bf16-a (CPUs with AVX512-BF16): qwenc with --bf16-prefill, prefill activations rounded to
# bf16 as llama.cpp's bf16 path rounds them, against the same llama.cpp bf16 run.
# QWENC_KERNELS=avx2 compares the AVX2 paths, as on a CPU without AVX-512: qwenc takes its AVX2
# kernels, llama.cpp its haswell build (AVX2 + FMA + F16C) from a private copy of the prebuilt
# package that holds no other CPU variant (under $QWENC_BENCH_DIR/llama-<variant>, made once).
# QWENC_KERNELS=avx2+vnni: the same with AVX-VNNI, against llama.cpp's alderlake build.
set -euo pipefail
cd "$(dirname "$0")/.."
pp=${1:-512} tg=${2:-128} threads=${3:-$(nproc)} kv=${4:-f16} shape=${5:-qwen3-0.6b} layers=${6:-}
depth=${DEPTH:-$pp}
profile=""; [ "${PROFILE:-0}" != 0 ] && profile=--profile
work=${QWENC_BENCH_DIR:-bench/out}
mkdir -p "$work"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j --target qwenc bench_gguf_write >/dev/null
if [ ! -d bench/node_modules/node-llama-cpp ]; then
  (cd bench && npm install --no-audit --no-fund --no-save node-llama-cpp@3.22.1 >/dev/null)
fi
llama_dir=bench node_flags="" variant=""
case "${QWENC_KERNELS:-}" in avx2) variant=haswell ;; avx2+vnni) variant=alderlake ;; esac
if [ -n "$variant" ]; then
  llama_dir=$work/llama-$variant node_flags=--preserve-symlinks
  if [ ! -f $llama_dir/.complete ]; then
    # every package linked but the prebuilt one, whose bins keep only libggml-cpu-$variant.so
    pkg=bench/node_modules/@node-llama-cpp/linux-x64 own=$llama_dir/node_modules/@node-llama-cpp/linux-x64
    mkdir -p $own/bins/linux-x64
    for p in bench/node_modules/* bench/node_modules/@node-llama-cpp/*; do
      case $p in */@node-llama-cpp | */linux-x64) ;; *) ln -sfn "$(realpath $p)" $llama_dir/node_modules/${p#bench/node_modules/} ;; esac
    done
    for p in $pkg/*; do [ "$(basename $p)" = bins ] || ln -sfn "$(realpath $p)" $own/; done
    for f in $pkg/bins/linux-x64/*; do
      case $(basename $f) in libggml-cpu-$variant.so) cp $f $own/bins/linux-x64/ ;; libggml-cpu-*) ;; *) cp $f $own/bins/linux-x64/ ;; esac
    done
    touch $llama_dir/.complete
  fi
  cp bench/llama_bench.mjs $llama_dir/ # this checkout's, whenever the copy was made
fi
name=$shape${layers:+-${layers}l}
model=$work/$name
[ -f $model/model.safetensors ] || build/qwenc synth --shape $shape $model ${layers:+--layers $layers} --tokenizer ${QWENC_GOLDEN:-../shared/golden}/models/qwen3-tiny
printf 'machine: %s, %s threads, %s KV cache in both engines, %s, tg after %s positions%s\n' "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" "$threads" "$kv" "$name" "$depth" \
  "${variant:+, qwenc kernels $QWENC_KERNELS, llama.cpp $variant build}"
printf '%-6s %12s %12s %7s   %12s %12s %7s   %s\n' format qwenc-pp llama-pp ratio qwenc-tg llama-tg ratio \
  "qwenc decode GB/s: share of the probe between tokens (median, range over windows); of the best read after the run"
# one line of the table: row NAME QWENC_JSON LLAMA_JSON
row() {
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys
fmt, q, l = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(f"{fmt:6} {q['pp_tok_s']:12.1f} {l['pp_tok_s']:12.1f} {q['pp_tok_s']/l['pp_tok_s']:6.2f}x   "
      f"{q['tg_tok_s']:12.1f} {l['tg_tok_s']:12.1f} {q['tg_tok_s']/l['tg_tok_s']:6.2f}x   "
      f"{q['decode_gb_s']:.1f} GB/s: {100*q['decode_share_between_tokens']:.0f}% "
      f"({100*q['decode_share_lo']:.0f}-{100*q['decode_share_hi']:.0f}%) of {q['mem_bw_between_tokens_gb_s']:.1f}; "
      f"{100*q['decode_gb_s']/q['mem_bw_gb_s']:.0f}% of {q['mem_bw_gb_s']:.1f}"
      if q['bw_windows'] else f"{q['decode_gb_s']:.1f} GB/s (bandwidth not measured)")
if 'step_ms' in q:
    print(f"{'':6} qwenc decode step {q['step_ms']:.3f} ms: {q['step_loops']:.0f} loops over the threads {q['step_loop_ms']:.3f} "
          f"(waiting at their ends {q['step_wait_ms']:.3f}), attention {q['step_attention_ms']:.3f}, "
          f"the caller alone {q['step_ms'] - q['step_loop_ms']:.3f}")
PY
}
for fmt in bf16 q8_0 q4_0; do
  gguf=$work/$name-$fmt.gguf
  [ -f $gguf ] || build/bench_gguf_write $model $gguf $fmt 2>/dev/null
  quant=""; [ $fmt != bf16 ] && quant="--quant $fmt"
  q=$(build/qwenc bench -m $model -p $pp -n $tg -d $depth -t $threads -r 3 $quant --kv-type $kv $profile --json)
  gguf_path=$(realpath $gguf)
  l=$(cd $llama_dir && node $node_flags llama_bench.mjs "$gguf_path" $pp $tg $threads $kv $depth 2>/dev/null | tail -1)
  row $fmt "$q" "$l"
  if [ $fmt = bf16 ] && [ "$llama_dir" = bench ] && grep -qw avx512_bf16 /proc/cpuinfo; then
    # bf16 activations in prefill, as llama.cpp's bf16 path has them (qwenc's default keeps them f32)
    q=$(build/qwenc bench -m $model -p $pp -n $tg -d $depth -t $threads -r 3 --bf16-prefill --kv-type $kv $profile --json)
    row bf16-a "$q" "$l"
  fi
done
