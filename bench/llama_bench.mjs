// llama.cpp (through node-llama-cpp's prebuilt CPU libraries) on a GGUF file: pp and tg tokens/s,
// measured like `qwenc bench`: one batch of PP random tokens, then TG greedy decode steps after DEPTH
// positions of context (default PP, the prompt's; 0: from an empty context, as llama-bench's tg).
// usage: node bench/llama_bench.mjs MODEL.gguf PP TG THREADS [KV=f16|f32|q8_0] [DEPTH=PP]  (KV cache type, keys and
// values; flash attention off, but for q8_0, which llama.cpp keeps in V only with flash attention on)
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const [modelPath, ppArg, tgArg, threadsArg, kvArg, depthArg] = process.argv.slice(2);
const kvType = (kvArg || "f16").toUpperCase();
const pp = Number(ppArg || 512), tg = Number(tgArg || 128), threads = Number(threadsArg || 2);
const depth = depthArg === undefined || depthArg === "" ? pp : Number(depthArg);
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: threads });
const model = await llama.loadModel({ modelPath, gpuLayers: 0, useMmap: true });
let best = { pp: 0, tg: 0 };
for (let rep = 0; rep < 2; rep++) {
  const context = await model.createContext({ contextSize: Math.max(pp, depth) + tg + 16, batchSize: pp, threads, flashAttention: kvType.startsWith("Q"), // llama.cpp quantizes V only with flash attention
                                             experimentalKvCacheKeyType: kvType, experimentalKvCacheValueType: kvType });
  const seq = context.getSequence();
  const tokens = Array.from({ length: Math.max(pp, depth) }, (_, i) => (i * 7919 + 12345) % 150000);
  let t0 = process.hrtime.bigint();
  await seq.evaluateWithoutGeneratingNewTokens(tokens.slice(0, pp));
  const ppS = Number(process.hrtime.bigint() - t0) / 1e9;
  if (depth < pp) await seq.eraseContextTokenRanges([{ start: depth, end: pp }]);
  else if (depth > pp) await seq.evaluateWithoutGeneratingNewTokens(tokens.slice(pp, depth));
  let n = 0;
  t0 = process.hrtime.bigint();
  for await (const _ of seq.evaluate([tokens[0]], { temperature: 0 })) { if (++n >= tg) break; }
  const tgS = Number(process.hrtime.bigint() - t0) / 1e9;
  best.pp = Math.max(best.pp, pp / ppS);
  best.tg = Math.max(best.tg, n / tgS);
  await context.dispose();
}
console.log(JSON.stringify({ pp_tok_s: best.pp, tg_tok_s: best.tg, kv_type: kvType, cpu: llama.cpuMathCores ?? null }));
await model.dispose();
await llama.dispose();
