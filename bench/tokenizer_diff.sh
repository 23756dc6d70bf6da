#!/usr/bin/env bash
# Differential check of qwenc's tokenizer against Hugging Face `tokenizers` (Rust, through node) on
# the same tokenizer.json: every code point from U+0080 up in a probe text ("a" X "'re " X "a": is X
# a letter, a number, other?), every combining mark after marks of each combining class (NFC
# reordering), then random texts and random sequences of marks and bases (seeded); and the other way,
# random id lists (byte tokens cutting characters, control tokens) decoded by both. Prints the
# mismatches and their count; exits 1 if any. Takes ~3 minutes.
#   bench/tokenizer_diff.sh [SEED=1] [RANDOM_TEXTS=20000]
set -euo pipefail
cd "$(dirname "$0")/.."
golden=${QWENC_GOLDEN:-../shared/golden}
tok=$golden/models/qwen3-tiny
seed=${1:-1} n=${2:-20000}
work=bench/out/tokenizer_diff
mkdir -p $work
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j --target qwenc >/dev/null
[ -d bench/node_modules/@anush008/tokenizers ] || (cd bench && npm install --no-audit --no-fund --no-save @anush008/tokenizers@0.6.0 >/dev/null)
python3 - $work/texts.jsonl "$seed" "$n" <<'PY'
import json, random, sys, unicodedata
path, seed, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
R = random.Random(seed)
cps = [c for c in range(0x80, 0x110000) if not 0xD800 <= c <= 0xDFFF]
marks = [c for c in cps if unicodedata.combining(chr(c))]  # Python's own Unicode version
old = unicodedata.ucd_3_2_0  # one mark per combining class that every version agrees on
probe_marks = sorted({old.combining(chr(c)): c for c in reversed(marks) if old.combining(chr(c)) == unicodedata.combining(chr(c))}.items())
pieces = ["Hello", " world", "'s", "'RE", " 123", "3.14", " ", "\t", "\n", "\r\n", "  \n", "你好", "こんにちは", "한국어", "مرحبا", "नमस्ते",
          "ไทย", "Привет", "e\u0301", "😀", "👨\u200d👩\u200d👧", "\u00a0", "\u3000", "<|im_start|>", "<think>", "def f(x):\n    return x"]
with open(path, "w", encoding="utf-8") as f:
    put = lambda s: f.write(json.dumps({"text": s}, ensure_ascii=False) + "\n")
    for c in cps: put("a" + chr(c) + "'re " + chr(c) + "a")
    for x in marks: put(" ".join("q" + chr(m) + chr(x) for _, m in probe_marks))
    for _ in range(n):
        put("".join(R.choice(pieces) if R.random() < 0.8 else chr(R.choice(cps)) for _ in range(R.randint(1, 12))))
    for _ in range(n):
        put("".join(chr(R.choice(marks)) if R.random() < 0.45 else R.choice("aeoAEOnNcCsS") for _ in range(R.randint(2, 8))))
with open(path + ".ids", "w") as f:
    for _ in range(n // 4):
        f.write(json.dumps([R.randint(0, 255) if r < 0.3 else R.randint(0, 151642) if r < 0.9 else R.randint(151643, 151664)
                            for r in (R.random() for _ in range(R.randint(1, 10)))]) + "\n")
PY
NODE_PATH=bench/node_modules node -e '
const { Tokenizer } = require("@anush008/tokenizers");
const fs = require("fs");
const [tokPath, path] = process.argv.slice(1);
(async () => {
  const tok = Tokenizer.fromFile(tokPath), out = [];
  for (const line of fs.readFileSync(path, "utf8").split("\n"))
    if (line) out.push(JSON.stringify(Array.from((await tok.encode(JSON.parse(line).text, null, { addSpecialTokens: true })).getIds())));
  fs.writeFileSync(path + ".hf", out.join("\n") + "\n");
  const texts = [];
  for (const line of fs.readFileSync(path + ".ids", "utf8").split("\n"))
    if (line) texts.push(JSON.stringify({ text: await tok.decode(JSON.parse(line), false) }));
  fs.writeFileSync(path + ".ids.hf", texts.join("\n") + "\n");
})();' $tok/tokenizer.json $work/texts.jsonl
build/qwenc tokenize -m $tok --jsonl < $work/texts.jsonl > $work/texts.jsonl.qwenc
build/qwenc detokenize -m $tok --jsonl < $work/texts.jsonl.ids > $work/texts.jsonl.ids.qwenc
python3 - $work/texts.jsonl <<'PY'
import json, sys
path = sys.argv[1]
texts = [json.loads(l)["text"] for l in open(path, encoding="utf-8")]
hf = [json.loads(l) for l in open(path + ".hf")]
qw = [json.loads(l) for l in open(path + ".qwenc")]
bad = [i for i, (h, q) in enumerate(zip(hf, qw)) if h != q]
for i in bad[:20]:
    print(f"{texts[i]!r} ({' '.join(f'U+{ord(c):04X}' for c in texts[i][:12])})\n  HF    {hf[i]}\n  qwenc {qw[i]}")
print(f"{len(bad)} of {len(texts)} texts tokenized differently" + ("" if len(texts) == len(hf) == len(qw) else " (COUNTS DIFFER)"))
ids = [l.strip() for l in open(path + ".ids")]
hf_text = [json.loads(l)["text"] for l in open(path + ".ids.hf", encoding="utf-8")]
qw_text = [json.loads(l)["text"] for l in open(path + ".ids.qwenc", encoding="utf-8")]
bad_dec = [i for i, (h, q) in enumerate(zip(hf_text, qw_text)) if h != q]
for i in bad_dec[:20]:
    print(f"{ids[i]}\n  HF    {hf_text[i]!r}\n  qwenc {qw_text[i]!r}")
print(f"{len(bad_dec)} of {len(ids)} id lists decoded differently" + ("" if len(ids) == len(hf_text) == len(qw_text) else " (COUNTS DIFFER)"))
sys.exit(1 if bad or bad_dec or not len(texts) == len(hf) == len(qw) or not len(ids) == len(hf_text) == len(qw_text) else 0)
PY
