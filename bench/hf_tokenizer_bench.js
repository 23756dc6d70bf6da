// Hugging Face `tokenizers` (Rust, via @anush008/tokenizers) on the same tokenizer.json and corpus.
// Prints: load seconds, encode MB/s (best of REPS), token count. Single thread: one encode call
// of the whole text, RAYON_NUM_THREADS=1 and UV_THREADPOOL_SIZE=1 set by the caller.
const { Tokenizer } = require("@anush008/tokenizers");
const fs = require("fs");
const [tokPath, corpusPath, reps] = process.argv.slice(2);
const text = fs.readFileSync(corpusPath, "utf8");
const bytes = Buffer.byteLength(text);
(async () => {
  let t0 = process.hrtime.bigint();
  const tok = Tokenizer.fromFile(tokPath);
  const load = Number(process.hrtime.bigint() - t0) / 1e9;
  // documents: split after the first newline once a piece reaches 4096 bytes (as the C bench does)
  const buf = Buffer.from(text, "utf8"), docs = [];
  for (let start = 0; start < buf.length;) {
    let end = Math.min(buf.length, start + 4096);
    while (end < buf.length && buf[end - 1] !== 10) end++;
    docs.push(buf.subarray(start, end).toString("utf8"));
    start = end;
  }
  let best = Infinity, bestDocs = Infinity, n = 0, nDocs = 0;
  for (let i = 0; i < Number(reps || 3); i++) {
    t0 = process.hrtime.bigint();
    const enc = await tok.encode(text, null, { addSpecialTokens: true });
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    n = enc.getIds().length;
    if (dt < best) best = dt;
    t0 = process.hrtime.bigint();
    nDocs = 0;
    for (const d of docs) nDocs += (await tok.encode(d, null, { addSpecialTokens: true })).getIds().length;
    const dd = Number(process.hrtime.bigint() - t0) / 1e9;
    if (dd < bestDocs) bestDocs = dd;
  }
  console.log(JSON.stringify({ load_s: load, mb_per_s: bytes / 1e6 / best, docs_mb_per_s: bytes / 1e6 / bestDocs,
                               tokens: n, doc_tokens: nDocs, rss_mb: process.memoryUsage().rss / 1e6 }));
})();
