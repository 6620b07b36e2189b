// Encode throughput of tokenizers.js (@huggingface/tokenizers) on the same lines as
// bench_tokenizer.c: node bench.mjs MODEL_DIR TEXT_FILE. Prints MB/s, tokens and the checksum.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const [modelDir, textFile, nodeModules] = process.argv.slice(2);
const require = createRequire(path.join(nodeModules, "x.js"));
const { Tokenizer } = require("@huggingface/tokenizers");
let t0 = performance.now();
const tok = new Tokenizer(
  JSON.parse(fs.readFileSync(path.join(modelDir, "tokenizer.json"), "utf8")),
  JSON.parse(fs.readFileSync(path.join(modelDir, "tokenizer_config.json"), "utf8")),
);
const loadS = (performance.now() - t0) / 1000;
const bytes = fs.readFileSync(textFile);
const lines = bytes.toString("utf8").split("\n");
for (const l of lines.slice(0, Math.floor(lines.length / 10))) tok.encode(l, { add_special_tokens: false });
t0 = performance.now();
let tokens = 0;
let checksum = 0n;
const all = [];
for (const l of lines) {
  const ids = tok.encode(l, { add_special_tokens: false }).ids;
  tokens += ids.length;
  all.push(ids);
}
const s = (performance.now() - t0) / 1000;
for (const ids of all) for (const id of ids) checksum = (checksum * 31n + BigInt(id)) % 1000000007n;
console.log(
  `tokenizers.js ${modelDir} ${(bytes.length / s / 1e6).toFixed(2)} MB/s  (${bytes.length} bytes, ` +
    `${lines.length} lines, ${tokens} tokens, checksum ${checksum}, ${s.toFixed(3)} s; load ${loadS.toFixed(2)} s)`,
);
