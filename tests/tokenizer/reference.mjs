// Reference encodings from tokenizers.js (@huggingface/tokenizers) for badam's parity test.
//
//   node reference.mjs MODEL_DIR CORPUS_DIR OUT.jsonl
//
// MODEL_DIR holds tokenizer.json and tokenizer_config.json. The cases are: every corpus file
// whole, every non-empty line of every file, and a few generated ones (long words, long numbers,
// whitespace runs). Each output line is one case:
//   {"name", "b64" (the exact bytes badam encodes), "ids" (no special tokens),
//    "ids_special" (with the post-processor), "decode" (decode(ids_special)),
//    "decode_skip" (decode(ids_special, skip_special_tokens)), "slice" (ids_special without its
//    first and last id), "decode_slice"}; decodes are base64 of their UTF-8 (they may hold NUL).
// Invalid UTF-8 in the corpus: badam receives the raw bytes; tokenizers.js receives the same
// bytes decoded by TextDecoder (each maximal invalid subpart -> U+FFFD), which is what badam
// does to invalid input, so both see the same text.
import fs from "node:fs";
import path from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";

const [modelDir, corpusDir, outPath] = process.argv.slice(2);
if (!outPath) {
  console.error("usage: node reference.mjs MODEL_DIR CORPUS_DIR OUT.jsonl");
  process.exit(2);
}
const tokJson = JSON.parse(fs.readFileSync(path.join(modelDir, "tokenizer.json"), "utf8"));
const cfgPath = path.join(modelDir, "tokenizer_config.json");
const tokCfg = fs.existsSync(cfgPath) ? JSON.parse(fs.readFileSync(cfgPath, "utf8")) : {};
const tokenizer = new Tokenizer(tokJson, tokCfg);

const cases = [];
for (const file of fs.readdirSync(corpusDir).sort()) {
  const bytes = fs.readFileSync(path.join(corpusDir, file));
  cases.push({ name: file, bytes });
  let start = 0, line = 1;
  for (let i = 0; i <= bytes.length; i++) {
    if (i === bytes.length || bytes[i] === 0x0a) {
      if (i > start) cases.push({ name: `${file}:${line}`, bytes: bytes.subarray(start, i) });
      start = i + 1;
      line++;
    }
  }
}
const gen = (name, s) => cases.push({ name: `generated:${name}`, bytes: Buffer.from(s, "utf8") });
gen("long-a", "a".repeat(5000));
gen("long-ab", "ab".repeat(2500));
gen("long-word", "Pneumonoultramicroscopicsilicovolcanoconiosis".repeat(40));
gen("long-number", "1234567890".repeat(300));
gen("long-spaces", " ".repeat(3000) + "x");
gen("long-newlines", "\n".repeat(1000) + "y" + "\r\n".repeat(500));
gen("long-tabs", "\t".repeat(777));
gen("long-cjk", "漢字".repeat(1000));
gen("long-emoji", "👨‍👩‍👧‍👦".repeat(300));
gen("long-url", "https://example.com/" + "path/".repeat(200) + "?q=" + "x".repeat(500));
gen("long-base64", Buffer.from(Array.from({ length: 1500 }, (_, i) => (i * 37 + 11) % 256)).toString("base64"));
gen("empty", "");
gen("single-space", " ");
gen("repeat-specials", "<|eot_id|><s></s><|im_end|>".repeat(50));
// Random strings over pieces that stress the pre-tokenizer regexes (a fixed-seed LCG).
let seed = 12345;
const rand = (n) => ((seed = (seed * 1103515245 + 12345) % 2147483648) % n);
const pieces = [
  "a", "b", "Z", "hello", "The", " ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u0085",
  "0", "7", "42", "12345", "'s", "'T", "'ll", "'RE", "?", "!", "...", "--", "(", ")", "{", "}", "$", "_",
  "é", "e\u0301", "ß", "İ", "ǅ", "日本", "語", "한국", "مرحبا", "हिन्दी", "\u0301", "👍", "👨‍👩‍👧", "🇯🇵",
  "١٢٣", "٣", "１２", "Ⅻ", "½", "²", "<s>", "</s>", "<|eot_id|>", "<|im_start|>", "<think>", "<|", "|>", "▁",
  "Ġ", "\u200d", "\ufeff", "\u2028", "\\", "\"", "<0x41>",
];
for (let i = 0; i < 300; i++) {
  let s = "";
  const n = 1 + rand(40);
  for (let k = 0; k < n; k++) s += pieces[rand(pieces.length)];
  gen(`random-${i}`, s);
}

const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
const decode = (ids, skip) =>
  Buffer.from(ids.length ? tokenizer.decode(ids, { skip_special_tokens: skip }) : "", "utf8").toString("base64");
const out = fs.createWriteStream(outPath);
for (const c of cases) {
  const text = decoder.decode(c.bytes);
  const ids = tokenizer.encode(text, { add_special_tokens: false }).ids;
  const ids_special = tokenizer.encode(text, { add_special_tokens: true }).ids;
  const slice = ids_special.slice(1, -1);
  out.write(JSON.stringify({
    name: c.name,
    b64: Buffer.from(c.bytes).toString("base64"),
    ids, ids_special,
    decode: decode(ids_special, false),
    decode_skip: decode(ids_special, true),
    slice,
    decode_slice: decode(slice, false),
  }) + "\n");
}
out.end();
