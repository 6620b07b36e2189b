// Encodes texts with tokenizers.js (@huggingface/tokenizers), without special tokens added:
// what transformers' apply_chat_template(tokenize=True) does with a rendered chat template.
//
//   node encode.mjs MODEL_DIR TEXTS.json OUT.json
//
// TEXTS.json: a list of strings (other entries are passed through as null). OUT.json: the list
// of id lists.
import fs from "node:fs";
import path from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";

const [modelDir, textsPath, outPath] = process.argv.slice(2);
if (!outPath) {
  console.error("usage: node encode.mjs MODEL_DIR TEXTS.json OUT.json");
  process.exit(2);
}
const tokJson = JSON.parse(fs.readFileSync(path.join(modelDir, "tokenizer.json"), "utf8"));
const cfgPath = path.join(modelDir, "tokenizer_config.json");
const tokCfg = fs.existsSync(cfgPath) ? JSON.parse(fs.readFileSync(cfgPath, "utf8")) : {};
const tokenizer = new Tokenizer(tokJson, tokCfg);
const texts = JSON.parse(fs.readFileSync(textsPath, "utf8"));
const out = texts.map((t) =>
  typeof t === "string" ? tokenizer.encode(t, { add_special_tokens: false }).ids : null,
);
fs.writeFileSync(outPath, JSON.stringify(out));
