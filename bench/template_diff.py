"""Differential check of qwenc's chat-template rendering against Python jinja2, configured as
transformers.apply_chat_template configures it (sandbox, trim_blocks, lstrip_blocks, loopcontrols,
its tojson and raise_exception): random contexts (system/user/assistant/tool turns, tools, tool calls
with dict or JSON-string arguments, reasoning_content, enable_thinking, odd texts) rendered by both;
a context one renders and the other refuses counts as a mismatch. Needs jinja2 in this python3.

  [N=300] python3 bench/template_diff.py TEMPLATE.jinja [SEED]      (build/qwenc must exist)
Exits 1 on any mismatch; writes each failing context to bench/out/template_diff/failN.json.
"""
import json, random, subprocess, sys, os
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.ext import loopcontrols
from jinja2 import TemplateError

def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
def raise_exception(msg): raise TemplateError(msg)
env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
env.filters['tojson'] = tojson
env.globals['raise_exception'] = raise_exception

R = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
TEXTS = ["Hello", "你好，世界", "line1\nline2", "  spaced  ", "", "<think>inner</think>answer", "x</think>y", "tab\there",
         "emoji 😀", "quote \" and \\ backslash", "<tool_call>\n{}\n</tool_call>", "/think hi", "/no_think please", "\n\nlead", "trail\n\n",
         "<|im_start|>fake", "a<think>\nreason\n</think>\n\nb", "{{ not a var }}", "{% raw %}"]
def text(): return R.choice(TEXTS) if R.random() < 0.8 else " ".join(R.choice(TEXTS) for _ in range(R.randint(1, 3)))
def args():
    c = R.random()
    d = {"city": text(), "n": R.randint(-5, 100), "f": R.choice([1.5, 0.1, 2.0, 1e20, -0.0]), "ok": R.choice([True, False]), "none": None,
         "list": [1, "two", {"three": 3}], "nested": {"a": {"b": []}}}
    keys = R.sample(list(d), R.randint(0, len(d)))
    d = {k: d[k] for k in keys}
    return json.dumps(d, ensure_ascii=R.random() < 0.5) if c < 0.3 else d
def tool():
    return {"type": "function", "function": {"name": R.choice(["get_weather", "search", "calc_ü"]), "description": text(),
            "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": text()}, "n": {"type": "integer"}},
                           "required": R.sample(["city", "n"], R.randint(0, 2))}}}
def message(role):
    m = {"role": role}
    if role == "assistant":
        if R.random() < 0.4: m["reasoning_content"] = text()
        if R.random() < 0.4:
            m["tool_calls"] = [({"type": "function", "function": {"name": R.choice(["get_weather", "search"]), "arguments": args()}}
                                if R.random() < 0.8 else {"name": "bare", "arguments": args()}) for _ in range(R.randint(1, 3))]
            if R.random() < 0.3: m["content"] = None
            else: m["content"] = text()
        else: m["content"] = text()
    elif role == "tool":
        m["content"] = text()
        if R.random() < 0.3: m["name"] = "get_weather"
    else:
        m["content"] = text() if R.random() < 0.9 else [{"type": "text", "text": text()}]
    return m
def context():
    msgs = []
    if R.random() < 0.5: msgs.append(message("system"))
    for _ in range(R.randint(1, 6)):
        role = R.choice(["user", "assistant", "tool", "user", "assistant"])
        msgs.append(message(role))
    ctx = {"messages": msgs, "add_generation_prompt": R.random() < 0.6}
    if R.random() < 0.4: ctx["tools"] = [tool() for _ in range(R.randint(1, 2))]
    if R.random() < 0.5: ctx["enable_thinking"] = R.random() < 0.5
    return ctx

tpl_path = sys.argv[1]
out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out", "template_diff")
os.makedirs(out_dir, exist_ok=True)
src = open(tpl_path).read()
tpl = env.from_string(src)
n = int(os.environ.get("N", "300")); bad = 0; errs_both = 0
for i in range(n):
    ctx = dict(context(), bos_token="", eos_token="<|im_end|>")  # as the golden renderings' extra context
    try:
        want = tpl.render(**ctx); want_err = None
    except Exception as e:
        want, want_err = None, str(e)
    p = subprocess.run([os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "qwenc"), "template", "--template", tpl_path], input=json.dumps(ctx), capture_output=True, text=True)
    got = p.stdout if p.returncode == 0 else None
    if want_err is not None:
        if got is not None:
            bad += 1; print(f"[{i}] jinja2 error {want_err!r} but qwenc rendered"); json.dump(ctx, open(f"{out_dir}/fail{bad}.json", "w"))
        else: errs_both += 1
        continue
    if got is None or got != want:
        bad += 1
        print(f"[{i}] MISMATCH rc={p.returncode} err={p.stderr.strip()[:200]!r}")
        if got is not None:
            k = next((j for j in range(min(len(got), len(want))) if got[j] != want[j]), min(len(got), len(want)))
            print("   want:", repr(want[max(0,k-80):k+80])); print("   got: ", repr(got[max(0,k-80):k+80]))
        json.dump(ctx, open(f"{out_dir}/fail{bad}.json", "w"), ensure_ascii=False)
        if bad >= 5: break
print(f"{os.path.basename(tpl_path)}: {n} contexts, {bad} mismatches, {errs_both} errors in both")
sys.exit(1 if bad else 0)
