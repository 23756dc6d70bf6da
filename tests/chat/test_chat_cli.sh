#!/usr/bin/env bash
# The template command against the golden cases, and multi-turn chat: the prompt of every turn is
# the template's rendering of the whole history (checked with the template command itself).
set -u
bin=${QWENC_BIN:-build/qwenc}
golden=${QWENC_GOLDEN:-${QWENC_GOLDEN_DEFAULT:-../shared/golden}}
model=$golden/models/qwen3-tiny
fail=0
ok() { echo "ok $1"; }
bad() { echo "FAIL $1"; fail=1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# template command: every golden case, byte-exact, errors exit non-zero
python3 - "$golden/templates" "$bin" <<'PY' && ok template-golden || bad template-golden
import json, subprocess, sys
d, binary = sys.argv[1:]
n = 0
for line in open(f"{d}/cases.jsonl"):
    c = json.loads(line)
    r = subprocess.run([binary, "template", "--template", f"{d}/{c['template']}"], input=json.dumps(c["context"]).encode(), capture_output=True)
    if "expected" in c:
        assert r.returncode == 0, (c["case"], r.stderr)
        assert r.stdout.decode() == c["expected"], (c["template"], c["case"])
    else:
        assert r.returncode != 0 and r.stderr, c["case"]
    n += 1
assert n == 78
PY
# -m uses the model's tokenizer_config.json template and special tokens
got=$(echo '{"messages": [{"role": "user", "content": "Hi"}], "add_generation_prompt": true}' | $bin template -m $model)
[ "$got" == "$(printf '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant')" ] && ok template-model || bad "template-model [$got]"
echo '{"messages": [{"role": "user", "content": "Hi"}], ' | $bin template -m $model >/dev/null 2>$tmp/err && bad template-bad-json || ok "template-bad-json: $(cat $tmp/err)"
printf '{%% if x %%}' > $tmp/bad.jinja
echo '{}' | $bin template --template $tmp/bad.jinja >/dev/null 2>$tmp/err && bad template-syntax || ok "template-syntax: $(cat $tmp/err)"

# chat: three turns piped in, thinking switched off for the last
echo '[{"type": "function", "function": {"name": "get_time", "description": "Current time", "parameters": {"type": "object", "properties": {}}}}]' > $tmp/tools.json
printf 'Hello there\nTell me more.\n/no_think\nAnd now?\n' | $bin chat -m $model --temp 0 -n 12 --tools $tmp/tools.json --dump-prompts $tmp/turns.jsonl > $tmp/out.txt 2>$tmp/err.txt
[ $? -eq 0 ] && ok chat-exit || bad "chat-exit: $(cat $tmp/err.txt)"
python3 - "$tmp/turns.jsonl" "$bin" "$model" <<'PY' && ok chat-history-prompts || bad chat-history-prompts
import json, subprocess, sys
path, binary, model = sys.argv[1:]
turns = [json.loads(l) for l in open(path)]
assert len(turns) == 3, len(turns)
for i, t in enumerate(turns):
    ctx = {k: v for k, v in t.items() if k != "prompt"}
    assert ctx["add_generation_prompt"] is True
    r = subprocess.run([binary, "template", "-m", model], input=json.dumps(ctx).encode(), capture_output=True, check=True)
    assert r.stdout.decode() == t["prompt"], f"turn {i}: prompt differs from the template's rendering of the history"
    assert len(t["messages"]) == 2 * i + 1, "history keeps every turn"
    if i:
        prev = turns[i - 1]
        assert t["messages"][:len(prev["messages"])] == prev["messages"]
        assert t["messages"][-2]["role"] == "assistant"
assert turns[2]["enable_thinking"] is False and turns[0]["enable_thinking"] is True
assert turns[2]["prompt"].endswith("<think>\n\n</think>\n\n")
assert all("<tools>" in t["prompt"] and "get_time" in t["prompt"] for t in turns)
PY
grep -q "thinking off" $tmp/out.txt && ok chat-no-think-command || bad chat-no-think-command

# chat: messages over several lines, wrapped in """ (Ollama) or continued by a trailing backslash (llama.cpp)
printf '"""First line\nsecond line\n"""\nsplit \\\nover two\n"""one-liner"""\n"""\n\nblank above\n"""\n""""""\n/no_think\n"""cut off at the end\nlast' \
  | $bin chat -m $model --temp 0 -n 2 --dump-prompts $tmp/multi.jsonl > /dev/null 2>$tmp/err.txt
python3 - "$tmp/multi.jsonl" <<'PY' && ok chat-multiline || bad "chat-multiline $(cat $tmp/err.txt)"
import json, sys
got = [json.loads(l)["messages"][-1]["content"] for l in open(sys.argv[1])]
want = ["First line\nsecond line", "split \nover two", "one-liner", "\nblank above", "cut off at the end\nlast"]
assert got == want, got
PY
# chat: Ollama's /clear and /bye as /reset and /quit
printf 'hi\n/clear\nagain\n/bye\nnot sent\n' | $bin chat -m $model --temp 0 -n 2 --dump-prompts $tmp/clear.jsonl > /dev/null 2>&1
python3 -c "import json,sys; t=[json.loads(l)['messages'] for l in open(sys.argv[1])]; assert [len(m) for m in t] == [1, 1] and t[1][0]['content'] == 'again', t" $tmp/clear.jsonl \
  && ok chat-clear-bye || bad chat-clear-bye
exit $fail
