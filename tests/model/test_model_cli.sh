#!/usr/bin/env bash
# The logits/run command-line contract: .npy output, greedy continuation end to end with the real
# tokenizer, hub-cache model ids, and one-line errors on bad model directories.
set -u
bin=${QWENC_BIN:-build/qwenc}
golden=${QWENC_GOLDEN:-${QWENC_GOLDEN_DEFAULT:-../shared/golden}}
fail=0
ok() { echo "ok $1"; }
bad() { echo "FAIL $1"; fail=1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --version: the version, the commit, the kernels
$bin --version | grep -Eq '^qwenc [0-9]+\.[0-9]+\.[0-9]+ \(.+\), kernels [a-z0-9+]+$' && ok version || bad "version [$($bin --version)]"

# logits: shape [T, vocab] float32
$bin logits -m $golden/models/qwen2-untied-f32 --ids 1,2,3,4,5 -o $tmp/l.npy -t 2 && python3 - "$tmp/l.npy" <<'PY' && ok logits-npy || bad logits-npy
import sys, struct, ast
b = open(sys.argv[1], 'rb').read()
assert b[:6] == b'\x93NUMPY', 'magic'
hl = struct.unpack('<H', b[8:10])[0]
h = ast.literal_eval(b[10:10 + hl].decode())
assert h['descr'] == '<f4' and h['shape'] == (5, 2048), h
assert (10 + hl) % 64 == 0, 'header alignment'
assert len(b) == 10 + hl + 5 * 2048 * 4, 'size'
PY

# logits --bf16-prefill: every qwen3-tiny case within the documented 3% of max|logit| of the reference; where the
# CPU has AVX512-BF16 the flag takes effect (the logits differ from the default's), elsewhere it changes nothing
bf16=0; grep -qw avx512_bf16 /proc/cpuinfo && bf16=1
python3 - "$golden" "$bin" "$tmp" $bf16 <<'PY' && ok logits-bf16-prefill || bad logits-bf16-prefill
import json, struct, ast, subprocess, sys
golden, binary, tmp, bf16 = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
def npy(path):
    b = open(path, 'rb').read()
    hl = struct.unpack('<H', b[8:10])[0]
    shape = ast.literal_eval(b[10:10 + hl].decode())['shape']
    return shape, struct.unpack(f'<{shape[0] * shape[1]}f', b[10 + hl:])
for c in json.load(open(f"{golden}/cases/qwen3-tiny.json"))['cases']:
    ids = ",".join(map(str, c['input_ids']))
    out = {}
    for flag in ([], ["--bf16-prefill"]):
        subprocess.run([binary, "logits", "-m", f"{golden}/models/qwen3-tiny", "--ids", ids, "-o", f"{tmp}/b.npy", "-t", "2"] + flag, check=True)
        shape, out[bool(flag)] = npy(f"{tmp}/b.npy")
    _, ref = npy(f"{golden}/cases/{c['logits_file']}")
    last = out[True][-len(ref):]
    err = max(abs(a - b) for a, b in zip(last, ref)) / max(abs(b) for b in ref)
    assert err <= 3e-2, (c['label'], err)
    assert (out[True] != out[False]) == bf16, (c['label'], bf16)
PY

# run: the greedy continuation of every qwen3-tiny case equals the reference's, decoded.
python3 - "$golden/cases/qwen3-tiny.json" > $tmp/cases.tsv <<'PY'
import json, sys
for c in json.load(open(sys.argv[1]))['cases']:
    print(json.dumps(c['text']) + '\t' + json.dumps(c['greedy_next_8']))
PY
while IFS=$'\t' read -r text_json greedy_json; do
  text=$(python3 -c 'import json,sys; sys.stdout.write(json.loads(sys.argv[1]) + "x")' "$text_json")
  text=${text%x}  # keep trailing newlines, which $(...) would strip
  want=$(echo "$greedy_json" | $bin detokenize -m $golden/models/qwen3-tiny)
  got=$($bin run -m $golden/models/qwen3-tiny -p "$text" --temp 0 -n 8 --ignore-eos 2>/dev/null)
  [ "$got" == "$want" ] && ok "run-greedy $text_json" || bad "run-greedy $text_json: got [$got] want [$want]"
done < $tmp/cases.tsv
python3 - "$golden/cases/qwen3-tiny.json" "$bin" "$golden/models/qwen3-tiny" <<'PY' && ok run-prompt-ids || bad run-prompt-ids
import json, sys, subprocess
cases, binary, model = sys.argv[1:]
for c in json.load(open(cases))['cases']:
    out = subprocess.run([binary, 'tokenize', '-m', model], input=c['text'].encode(), capture_output=True, check=True).stdout
    assert json.loads(out) == c['input_ids'], c['label']
PY

# piped output is exactly the continuation: the bytes of the greedy ids, nothing added
python3 - "$golden/cases/qwen3-tiny.json" "$bin" "$golden/models/qwen3-tiny" <<'PY' && ok run-exact-bytes || bad run-exact-bytes
import json, subprocess, sys
cases, binary, model = sys.argv[1:]
c = json.load(open(cases))['cases'][0]
want = subprocess.run([binary, 'detokenize', '-m', model], input=json.dumps(c['greedy_next_8']).encode(), capture_output=True, check=True).stdout
got = subprocess.run([binary, 'run', '-m', model, '-p', c['text'], '--temp', '0', '-n', '8', '--ignore-eos'], capture_output=True, check=True).stdout
assert got == want, (got, want)
PY

# -n 0: the prompt is processed and nothing generated; -n -1: until end-of-sequence or the context is full (a copy of
# qwen3-tiny whose context is 24 positions: the 3-token prompt, 21 new tokens cached after it and a last one sampled from the last position)
got=$($bin run -m $golden/models/qwen3-tiny -p "Hello there" -n 0 2>$tmp/n0.err); rc=$?
[ $rc -eq 0 ] && [ -z "$got" ] && grep -q "prompt 2 tokens .*generated 0 tokens" $tmp/n0.err && ok "run -n 0" || bad "run -n 0: rc=$rc [$got] [$(cat $tmp/n0.err)]"
mkdir -p $tmp/ctx24 && for f in model.safetensors tokenizer.json tokenizer_config.json generation_config.json; do ln -s "$(cd $golden/models/qwen3-tiny && pwd)/$f" $tmp/ctx24/; done
sed 's/"max_position_embeddings": [0-9]*/"max_position_embeddings": 24/' $golden/models/qwen3-tiny/config.json > $tmp/ctx24/config.json
$bin run -m $tmp/ctx24 -p "Hi you all" -n -1 --temp 0 --ignore-eos >/dev/null 2>$tmp/n1.err && grep -q "prompt 3 tokens .*generated 22 tokens" $tmp/n1.err \
  && ok "run -n -1" || bad "run -n -1 [$(cat $tmp/n1.err)]"

# -f FILE / -f -: the prompt read from a file or standard input as it is (trailing newline included) gives what -p gives
printf 'The capital of France is\n' > $tmp/prompt.txt
want=$($bin run -m $golden/models/qwen3-tiny -p "The capital of France is
" --temp 0 -n 6 --ignore-eos 2>/dev/null)
got=$($bin run -m $golden/models/qwen3-tiny -f $tmp/prompt.txt --temp 0 -n 6 --ignore-eos 2>/dev/null)
got2=$($bin run -m $golden/models/qwen3-tiny -f - --temp 0 -n 6 --ignore-eos < $tmp/prompt.txt 2>/dev/null)
nl=$($bin run -m $golden/models/qwen3-tiny -p "The capital of France is" --temp 0 -n 6 --ignore-eos 2>/dev/null)
[ -n "$want" ] && [ "$got" == "$want" ] && [ "$got2" == "$want" ] && [ "$nl" != "$want" ] && ok "run -f" || bad "run -f [$want] [$got] [$got2] [$nl]"

# --stop: the continuation up to the first occurrence of the text (here one from the middle of the plain continuation)
full=$($bin run -m $golden/models/qwen3-tiny -p "The capital of France is" --temp 0 -n 20 --ignore-eos 2>/dev/null)
stop=${full:10:4}
cut=$($bin run -m $golden/models/qwen3-tiny -p "The capital of France is" --temp 0 -n 20 --ignore-eos --stop "$stop" --stop $'\x01' 2>/dev/null)
[ ${#full} -gt 14 ] && [ "$cut" == "${full%%"$stop"*}" ] && ok "run --stop" || bad "run --stop [$full] [$stop] [$cut]"

# show: what a model is, without loading its weights
out=$($bin show -m $golden/models/qwen3-tiny 2>&1)
echo "$out" | grep -q "^context    40960 positions" && echo "$out" | grep -q "tools yes, thinking switch .* yes" && echo "$out" | grep -q "temperature 0.6, top_k 20" \
  && ok show || bad "show [$out]"
$bin show -m $golden/models/qwen3-moe-tiny 2>&1 | grep -q "no chat template" && ok show-no-template || bad show-no-template

# sampling runs and is reproducible with a seed
a=$($bin run -m $golden/models/qwen3-tiny -p "Hello" -n 12 --temp 0.8 --top-k 40 --top-p 0.9 --min-p 0.01 --seed 7 2>/dev/null)
b=$($bin run -m $golden/models/qwen3-tiny -p "Hello" -n 12 --temp 0.8 --top-k 40 --top-p 0.9 --min-p 0.01 --seed 7 2>/dev/null)
[ -n "$a" ] && [ "$a" == "$b" ] && ok seeded-sampling || bad "seeded-sampling [$a] [$b]"

# embed / rerank: one JSON array (unit length) per line; rerank scores match the golden pairs
python3 - "$golden" "$bin" <<'PY' && ok embed-rerank-cli || bad embed-rerank-cli
import json, math, subprocess, sys
golden, binary = sys.argv[1:]
c = json.load(open(f"{golden}/cases/qwen3-embedding-tiny.json"))
out = subprocess.run([binary, "embed", "-m", f"{golden}/models/qwen3-embedding-tiny"], input="\n".join(t.replace("\n", " ") for t in c["texts"][2:]).encode(),
                     capture_output=True, check=True).stdout.decode().splitlines()
assert len(out) == 2
for line, want in zip(out, c["embeddings"][2:]):
    v = json.loads(line)
    assert abs(sum(x * x for x in v) - 1) < 1e-4 and max(abs(a - b) for a, b in zip(v, want)) < 1e-5
r = json.load(open(f"{golden}/cases/qwen3-tiny.rerank.json"))
for p in r["pairs"]:
    got = subprocess.run([binary, "rerank", "-m", f"{golden}/models/qwen3-tiny", "-q", p["query"], "--instruction", r["instruction"]],
                         input=p["document"].encode(), capture_output=True, check=True).stdout.decode()
    assert abs(float(got) - p["score"]) < 1e-5, (got, p["score"])
PY

# embed / rerank: every input line gets its output line, empty ones too (Qwen3-Embedding's tokenizer appends
# <|endoftext|> to an empty text; an empty document is still a document); --dims renormalises the first N
python3 - "$golden" "$bin" <<'PY' && ok embed-rerank-lines || bad embed-rerank-lines
import json, subprocess, sys
golden, binary = sys.argv[1:]
run = lambda args, data: subprocess.run([binary] + args, input=data, capture_output=True, check=True).stdout.decode().splitlines()
out = run(["embed", "-m", f"{golden}/models/qwen3-embedding-tiny"], b"first\n\nthird\n")
assert len(out) == 3, out
full = [json.loads(l) for l in out]
assert full[0] != full[1] != full[2] and all(abs(sum(x * x for x in v) - 1) < 1e-4 for v in full)
cut = [json.loads(l) for l in run(["embed", "-m", f"{golden}/models/qwen3-embedding-tiny", "--dims", "8"], b"first\n\nthird\n")]
for v, w in zip(cut, full):
    n = sum(x * x for x in w[:8]) ** 0.5
    assert len(v) == 8 and max(abs(a - b / n) for a, b in zip(v, w[:8])) < 1e-5, (v, w[:8])
scores = run(["rerank", "-m", f"{golden}/models/qwen3-tiny", "-q", "hi"], b"doc\n\nother doc\n")
assert len(scores) == 3 and all(0 <= float(x) <= 1 for x in scores), scores
PY

# embed / rerank --bf16-prefill: close to the reference (cosine > 0.999 with each golden embedding, scores within
# 0.05) and, where the CPU has AVX512-BF16, in effect
python3 - "$golden" "$bin" $bf16 <<'PY' && ok embed-rerank-bf16-prefill || bad embed-rerank-bf16-prefill
import json, subprocess, sys
golden, binary, bf16 = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
c = json.load(open(f"{golden}/cases/qwen3-embedding-tiny.json"))
texts = "\n".join(t.replace("\n", " ") for t in c["texts"][2:]).encode()
run = lambda args, data: subprocess.run([binary] + args, input=data, capture_output=True, check=True).stdout.decode()
plain = run(["embed", "-m", f"{golden}/models/qwen3-embedding-tiny"], texts)
fast = run(["embed", "-m", f"{golden}/models/qwen3-embedding-tiny", "--bf16-prefill"], texts)
for line, want in zip(fast.splitlines(), c["embeddings"][2:]):
    assert sum(a * b for a, b in zip(json.loads(line), want)) > 0.999
assert (plain != fast) == bf16
r = json.load(open(f"{golden}/cases/qwen3-tiny.rerank.json"))
for p in r["pairs"]:
    args = ["rerank", "-m", f"{golden}/models/qwen3-tiny", "-q", p["query"], "--instruction", r["instruction"], "--bf16-prefill"]
    assert abs(float(run(args, p["document"].encode())) - p["score"]) < 0.05
PY

# a repo id resolved through the Hugging Face cache layout
mkdir -p $tmp/hub/models--Qwen--Tiny/snapshots $tmp/hub/models--Qwen--Tiny/refs
ln -s "$(cd $golden/models/qwen3-tiny && pwd)" $tmp/hub/models--Qwen--Tiny/snapshots/0123abcd
echo -n 0123abcd > $tmp/hub/models--Qwen--Tiny/refs/main
want=$($bin run -m $golden/models/qwen3-tiny -p "Hi" --temp 0 -n 4 2>/dev/null)
got=$(HF_HUB_CACHE=$tmp/hub $bin run -m Qwen/Tiny -p "Hi" --temp 0 -n 4 2>/dev/null)
[ "$got" == "$want" ] && ok hub-cache || bad "hub-cache [$got]"
# list: the cache's models by the repo ids -m takes (a repo without a snapshot left out)
mkdir -p $tmp/hub/models--Nobody--Empty/snapshots
got=$(HF_HUB_CACHE=$tmp/hub $bin list 2>&1)
echo "$got" | grep -q "^Qwen/Tiny  *qwen3 " && ! echo "$got" | grep -q "Nobody" && ok hub-list || bad "hub-list [$got]"
got=$(HF_HUB_CACHE=$tmp/nohub $bin list 2>&1 >/dev/null)
echo "$got" | grep -q "no models in the Hugging Face cache at $tmp/nohub" && ok hub-list-empty || bad "hub-list-empty [$got]"
mkdir -p $tmp/home && mv $tmp/hub $tmp/home/hub
got=$(HF_HUB_CACHE= HF_HOME=$tmp/home $bin run -m Qwen/Tiny -p "Hi" --temp 0 -n 4 2>/dev/null)
[ "$got" == "$want" ] && ok hf-home || bad "hf-home [$got]"

# qwenc synth writes a loadable real-shape checkpoint (one layer), which bench runs in every KV type and with bf16 prefill
$bin synth --shape qwen3-0.6b --layers 1 $tmp/synth --tokenizer $golden/models/qwen3-tiny 2>/dev/null
for opts in "--kv-type f32" "--kv-type f16" "--kv-type q8_0" "--kv-type f16 --bf16-prefill"; do
  out=$($bin bench -m $tmp/synth -p 8 -n 2 -r 2 -t 2 $opts --json 2>&1)
  python3 -c "import json,sys; d=json.loads(sys.argv[1]); assert d['pp_tok_s'] > 0 and d['tg_tok_s'] > 0 and d['weight_gb'] > 0.3, d
assert d['kv_reserve_s'] >= 0, d  # the KV cache made resident before timing
bw, mean = d['mem_bw_gb_s'], d['mem_bw_mean_gb_s']  # the best of 8 reads and their mean rate
assert (bw is None) == (mean is None) and (bw is None or 0 < mean <= bw), d
# the second repetition probes after each of its 2 decode tokens: two windows, each a share of the probe after it
w = d['bw_windows']
assert w == (2 if bw else 0), d
assert w == 0 or (d['mem_bw_between_tokens_gb_s'] > 0 and 0 < d['decode_share_lo'] <= d['decode_share_between_tokens'] <= d['decode_share_hi']), d" "$out" \
    && ok "synth + bench ($opts)" || bad "synth + bench ($opts) [$out]"
done
# -d: the decode's context depth (default: the prompt's), shorter, none, or longer (prefilled untimed)
for d in 0 3 20; do
  out=$($bin bench -m $tmp/synth -p 8 -n 2 -d $d -r 1 -t 2 --json 2>&1)
  python3 -c "import json,sys; d=json.loads(sys.argv[1]); assert d['depth'] == int(sys.argv[2]) and d['tg_tok_s'] > 0, d" "$out" $d \
    && ok "bench -d $d" || bad "bench -d $d [$out]"
done
rm -rf $tmp/synth

# without memory for the 1 GiB bandwidth probe, bench still reports its speeds (bandwidth null, a note on stderr);
# not under ASan, which reserves terabytes of address space
if ! ldd $bin 2>/dev/null | grep -q libasan; then
  out=$( (ulimit -v 900000; $bin bench -m $golden/models/qwen3-tiny -p 8 -n 2 -r 2 -t 2 --json) 2>$tmp/bench.err)
  python3 -c "import json,sys; d=json.loads(sys.argv[1]); assert d['mem_bw_gb_s'] is None and d['mem_bw_mean_gb_s'] is None and d['tg_tok_s'] > 0, d
assert d['bw_windows'] == 0 and d['decode_share_between_tokens'] is None, d" "$out" \
    && grep -q "bandwidth not measured" $tmp/bench.err && ok "bench without memory for the probe" \
    || bad "bench without memory for the probe [$out] [$(cat $tmp/bench.err)]"
fi
# a probe buffer without huge pages (THP disabled for the process, PR_SET_THP_DISABLE = 41) is reported:
# its reads understate the bandwidth
python3 -c "import ctypes,os,sys
assert ctypes.CDLL(None).prctl(41, 1, 0, 0, 0) == 0
os.execv(sys.argv[1], sys.argv[1:])" $bin bench -m $golden/models/qwen3-tiny -p 8 -n 2 -r 1 -t 2 --json >/dev/null 2>$tmp/bench.err
grep -q "0% of the bandwidth probe's buffer is on huge pages" $tmp/bench.err && ok "bench: probe without huge pages" \
  || bad "bench: probe without huge pages [$(cat $tmp/bench.err)]"

# errors: one line, non-zero, no crash
check_error() {
  local name=$1; shift
  err=$("$@" 2>&1 >/dev/null); rc=$?
  lines=$(printf '%s' "$err" | grep -c '')
  if [ $rc -eq 0 ] || [ $rc -ge 128 ] || [ "$lines" -ne 1 ]; then bad "$name: rc=$rc stderr=[$err]"; else ok "$name: $err"; fi
}
check_error run-missing-dir $bin run -m $tmp/nope -p hi
check_error logits-missing-dir $bin logits -m $tmp/nope --ids 1 -o $tmp/x.npy
check_error hub-missing $bin run -m Qwen/NotThere -p hi
check_error bench-negative-depth $bin bench -m $golden/models/qwen3-tiny -d -1
check_error bench-huge-depth $bin bench -m $golden/models/qwen3-tiny -d 2147483647
check_error bench-bad-number $bin bench -m $golden/models/qwen3-tiny -p 12x
check_error run-bad-count $bin run -m $golden/models/qwen3-tiny -p hi -n 5x
check_error run-prompt-and-file $bin run -m $golden/models/qwen3-tiny -p hi -f $tmp/prompt.txt
check_error run-missing-prompt-file $bin run -m $golden/models/qwen3-tiny -f $tmp/nope.txt
check_error show-missing-dir $bin show -m $tmp/nope
check_error run-empty-stop $bin run -m $golden/models/qwen3-tiny -p hi --stop ""
check_error run-negative-count $bin run -m $golden/models/qwen3-tiny -p hi -n -2
check_error chat-zero-count $bin chat -m $golden/models/qwen3-tiny -n 0
check_error embed-negative-dims $bin embed -m $golden/models/qwen3-embedding-tiny --dims -1
check_error embed-too-many-dims $bin embed -m $golden/models/qwen3-embedding-tiny --dims 65
check_error embed-empty-line-no-eos sh -c "printf 'x\\n\\n' | $bin embed -m $golden/models/qwen2.5-tiny"
check_error run-bad-temp $bin run -m $golden/models/qwen3-tiny -p hi --temp abc
check_error run-negative-seed $bin run -m $golden/models/qwen3-tiny -p hi --seed -1
mkdir -p $tmp/empty && echo '{"model_type": "qwen3"' > $tmp/empty/config.json
check_error run-bad-config $bin run -m $tmp/empty -p hi
check_error logits-id-range $bin logits -m $golden/models/qwen2-untied-f32 --ids 1,99999 -o $tmp/x.npy
check_error logits-bad-ids $bin logits -m $golden/models/qwen2-untied-f32 --ids 1,x -o $tmp/x.npy
check_error bad-kv-type $bin run -m $golden/models/qwen3-tiny -p hi --kv-type q3
check_error kv-q8-narrow-heads $bin run -m $golden/models/qwen2.5-tiny -p hi --kv-type q8_0
check_error unknown-shape $bin synth --shape qwen9 $tmp/nope
# synth never writes random weights over a model (the golden model's files stay as they are)
mkdir -p $tmp/keep && cp $golden/models/qwen3-tiny/config.json $golden/models/qwen3-tiny/model.safetensors $tmp/keep/
sum_before=$(cat $tmp/keep/* | md5sum)
check_error synth-over-model $bin synth --shape qwen3-0.6b --layers 1 $tmp/keep
[ "$(cat $tmp/keep/* | md5sum)" = "$sum_before" ] && ok "synth left the model alone" || bad "synth changed an existing model's files"
err=$($bin quantize $tmp/keep $tmp/keep 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && printf '%s' "$err" | grep -q "own directory" && [ "$(cat $tmp/keep/* | md5sum)" = "$sum_before" ] \
  && ok "quantize in place refused, model unchanged" || bad "quantize in place: rc=$rc [$err]"
exit $fail
