#!/usr/bin/env bash
# The tokenize/detokenize command-line contract and its errors.
set -u
bin=${QWENC_BIN:-build/qwenc}
golden=${QWENC_GOLDEN:-${QWENC_GOLDEN_DEFAULT:-../shared/golden}}
model=$golden/models/qwen3-tiny
fail=0
expect() { if [ "$2" != "$3" ]; then echo "FAIL $1: got [$2] want [$3]"; fail=1; else echo "ok $1"; fi; }

expect stdin "$(printf 'Hello world' | $bin tokenize -m $model)" "[9707, 1879]"
expect jsonl "$(printf '{"text": "Hello world"}\n{"text": "<|im_end|>"}\n' | $bin tokenize -m $model --jsonl)" "$(printf '[9707, 1879]\n[151645]')"
expect detok "$(echo '[9707, 1879]' | $bin detokenize -m $model)" "Hello world"
# --jsonl: a JSON object per array; a character cut off decodes to U+FFFD (ids: "Hello", bytes E4 BD of "你")
expect detok-jsonl "$(printf '[9707, 1879]\n[9707, 160, 121]\n' | $bin detokenize -m $model --jsonl)" \
  "$(printf '{"text":"Hello world"}\n{"text":"Hello\\uFFFD"}')"

# Bad input: one line on stderr, non-zero exit, no crash (exit status < 128).
tmp=$(mktemp -d)
check_error() {
  local name=$1; shift
  err=$("$@" 2>&1 >/dev/null </dev/null); rc=$?
  lines=$(printf '%s' "$err" | grep -c '')
  if [ $rc -eq 0 ] || [ $rc -ge 128 ] || [ "$lines" -ne 1 ]; then echo "FAIL $name: rc=$rc stderr=[$err]"; fail=1; else echo "ok $name: $err"; fi
}
check_error missing-dir $bin tokenize -m $tmp/nope
check_error missing-file $bin tokenize -m $tmp
printf '{"model": {"type": "Unigram", "vocab": []}}' > $tmp/tokenizer.json
check_error unknown-model $bin tokenize -m $tmp
head -c 100000 $model/tokenizer.json > $tmp/tokenizer.json
check_error truncated $bin tokenize -m $tmp
check_error bad-utf8 bash -c "printf 'a\xff' | $bin tokenize -m $model"
check_error bad-ids bash -c "echo '[1, \"x\"]' | $bin detokenize -m $model"
check_error bad-ids-jsonl bash -c "printf '[1]\\n[2, -5]\\n' | $bin detokenize -m $model --jsonl"
check_error empty-detok bash -c "printf '' | $bin detokenize -m $model"
check_error bad-jsonl bash -c "echo '{\"txt\": 1}' | $bin tokenize -m $model --jsonl"
rm -rf $tmp
exit $fail
