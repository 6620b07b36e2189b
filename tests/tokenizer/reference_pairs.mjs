// Reference encodings of single texts and text pairs from tokenizers.js
// (@huggingface/tokenizers) for badam's encoder-tokenizer parity test
// (tests/test_tokenizer_pairs.c): WordPiece (BERT) and RobertaProcessing tokenizers.
//
//   node reference_pairs.mjs TOKENIZER_JSON CONFIG_JSON|- CORPUS_DIR OUT.jsonl
//
// CONFIG_JSON is the tokenizer_config.json badam reads next to the file, or "-" when there is
// none (then decodes skip transformers' clean_up_tokenization_spaces, as badam does without a
// config). Cases: the texts below, every non-empty line of the corpus files, random strings from
// a fixed seed, and pairs of them. Each output line:
//   {"name", "a" (base64 of text's UTF-8), "b" (the pair's, or null),
//    "ids" (no special tokens), "ids_special", "type_ids" (expected: from the type_id fields of
//    the TemplateProcessing template; all 0 for RobertaProcessing, as Rust and transformers),
//    "node_type_ids" (tokenizers.js' own, for the record), "decode", "decode_skip" (base64)}.
// An empty second text is not a pair for tokenizers.js (`text_pair || null`), so no pair here
// has one; tests/test_tokenizer_pairs.c checks that case against Rust's rule by hand.
import fs from "node:fs";
import path from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";

const [jsonPath, cfgPath, corpusDir, outPath] = process.argv.slice(2);
if (!outPath) {
  console.error("usage: node reference_pairs.mjs TOKENIZER_JSON CONFIG_JSON|- CORPUS_DIR OUT.jsonl");
  process.exit(2);
}
const tokJson = JSON.parse(fs.readFileSync(jsonPath, "utf8"));
const tokCfg = cfgPath === "-" ? { clean_up_tokenization_spaces: false }
  : JSON.parse(fs.readFileSync(cfgPath, "utf8"));
const tokenizer = new Tokenizer(tokJson, tokCfg);

const texts = [
  "Hello, world!",
  "The quick brown fox jumps over the lazy dog.",
  "Café naïve résumé Ångström façade coöperate",
  "ÉCOLE ÉLÈVE À LA CRÈME BRÛLÉE",
  "Tiếng Việt có dấu, Português, Español: ñandú",
  "我爱北京天安门",
  "中文和English混合的句子。标点，还有！",
  "日本語のテキストとカタカナ",
  "안녕하세요 세계",
  "Wait... what?! (yes) [no] {maybe} \"quoted\" 'single' — em – en",
  "¿Qué? ¡Hola! «guillemets» „low“ ‹one› 「括弧」",
  "a-b_c/d\\e@f#g$h%i^j&k*l+m=n<o>p|q~r`s",
  "control\u0000chars\u0007here\u001b and\u200bzero\ufeffwidth\u00adsoft",
  "\t\n\r tabs\tand\nnewlines\r\n",
  "xyzzyqwerty zzqqxxj qxqxqxqx",
  "I ❤️ 🤗 emojis 👍🏽 ✨",
  "a".repeat(150),
  "supercalifragilisticexpialidocious".repeat(4),
  "b".repeat(100),
  "c".repeat(101),
  "é".repeat(100) + " " + "é".repeat(101),
  "",
  "   \t\n  ",
  "3.14159 1,000,000 2nd 42% $5.99 #1",
  "https://example.com/path?q=1&r=2#frag",
  "don't won't it's I'm we've they're y'all",
  "[CLS] [SEP] [MASK] [UNK] [PAD] inside text",
  "[mask] [cls] lowercase look-alikes",
  "ΑΒΓ αβγ Ωμέγα ΑΘΗΝΑ σοφία",
  "Привет, мир! Съешь же ещё этих мягких",
  "مرحبا بالعالم",
  "नमस्ते दुनिया",
  "สวัสดีครับ",
  "İstanbul ISTANBUL ıi",
  "ß straße STRASSE",
  "ﬁ ligature ﬀ ﬃ",
  "ＡＢＣ１２３ fullwidth",
  "½ ² Ⅻ ⅻ ①",
  "a\u00a0b\u3000c\u2028d\u2003e",
  "e\u0301 combining a\u0308 o\u0302",
  "The model's accuracy (94.2%) beat the baseline; see Table 3.",
  "unbelievably unaffable antidisestablishmentarianism",
  "🤗",
  ".",
  "x",
];

const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
const cases = [];
for (let i = 0; i < texts.length; i++) cases.push({ name: `text-${i}`, a: Buffer.from(texts[i]), b: null });
for (const file of fs.readdirSync(corpusDir).sort()) {
  const bytes = fs.readFileSync(path.join(corpusDir, file));
  let start = 0, line = 1;
  for (let i = 0; i <= bytes.length; i++) {
    if (i === bytes.length || bytes[i] === 0x0a) {
      if (i > start) cases.push({ name: `${file}:${line}`, a: bytes.subarray(start, i), b: null });
      start = i + 1;
      line++;
    }
  }
}
let seed = 20240618;
const rand = (n) => ((seed = (seed * 1103515245 + 12345) % 2147483648) % n);
const pieces = [
  "a", "Z", "hello", "The", "un", "##ing", " ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000",
  "0", "42", "3.5", "'s", "n't", "?", "!", "...", "--", "(", ")", "\"", ",", ".", "é", "E\u0301",
  "ß", "Ü", "ñ", "中", "文", "字", "日本", "한국", "мир", "αβ", "\u0301", "👍", "🤗", "[CLS]",
  "[SEP]", "[MASK]", "[UNK]", "[PAD]", "##", "#", "\u0007", "\u200b", "\u00ad", "x".repeat(60),
  "Ångström", "naïve", "—", "«", "»", "¿", "@", "$", "^", "`", "|", "~", "<s>", "</s>",
];
for (let i = 0; i < 200; i++) {
  let s = "";
  const n = 1 + rand(24);
  for (let k = 0; k < n; k++) s += pieces[rand(pieces.length)];
  cases.push({ name: `random-${i}`, a: Buffer.from(s), b: null });
}
// Texts where tokenizers.js and Rust tokenizers (badam's rule) differ for BertNormalizer are
// left out: CJK ideographs outside the BMP (tokenizers.js walks UTF-16 units and does not space
// them out) and capital sigma (JavaScript's toLowerCase has the final-sigma rule, Rust's per-char
// lowercase not). tests/test_tokenizer_pairs.c checks both against Rust's rule by hand.
const rustDiffers = (bytes) => /[\u{20000}-\u{2FA1F}]|\u03A3/u.test(decoder.decode(bytes));
const kept = cases.filter((c) => !rustDiffers(c.a));
console.error(`reference_pairs: ${cases.length - kept.length} texts left out (Rust differs)`);
cases.length = 0;
cases.push(...kept);
const singles = cases.slice();
for (let i = 0; i + 1 < singles.length; i++) {
  const b = singles[i + 1].a;
  if (b.length === 0) continue;
  cases.push({ name: `pair:${singles[i].name}+${singles[i + 1].name}`, a: singles[i].a, b });
}
for (let i = 0; i < 150; i++) {
  const x = singles[rand(singles.length)], y = singles[rand(singles.length)];
  if (y.a.length === 0) continue;
  cases.push({ name: `pair:${x.name}+${y.name}`, a: x.a, b: y.a });
}

// The type ids Rust's post-processor gives: TemplateProcessing's type_id fields (or RoBERTa's
// zeros); na and nb are the token counts of the two texts without special tokens.
const post = tokJson.post_processor;
function expectedTypes(na, nb, pair) {
  if (post && post.type === "RobertaProcessing") {
    const specials = pair ? 4 : 2;
    return new Array(na + nb + specials).fill(0);
  }
  if (!post || post.type !== "TemplateProcessing") throw new Error("unexpected post_processor");
  const out = [];
  for (const item of pair ? post.pair : post.single) {
    if (item.SpecialToken) {
      const n = post.special_tokens[item.SpecialToken.id].ids.length;
      for (let k = 0; k < n; k++) out.push(item.SpecialToken.type_id);
    } else {
      const n = item.Sequence.id === "A" ? na : nb;
      for (let k = 0; k < n; k++) out.push(item.Sequence.type_id);
    }
  }
  return out;
}

const b64 = (s) => Buffer.from(s, "utf8").toString("base64");
const decode = (ids, skip) => b64(ids.length ? tokenizer.decode(ids, { skip_special_tokens: skip }) : "");
const out = fs.createWriteStream(outPath);
for (const c of cases) {
  const a = decoder.decode(c.a);
  const b = c.b === null ? null : decoder.decode(c.b);
  const plain = tokenizer.encode(a, { text_pair: b, add_special_tokens: false });
  const full = tokenizer.encode(a, { text_pair: b, add_special_tokens: true, return_token_type_ids: true });
  const na = tokenizer.encode(a, { add_special_tokens: false }).ids.length;
  const nb = b === null ? 0 : tokenizer.encode(b, { add_special_tokens: false }).ids.length;
  out.write(JSON.stringify({
    name: c.name,
    a: Buffer.from(c.a).toString("base64"),
    b: c.b === null ? null : Buffer.from(c.b).toString("base64"),
    ids: plain.ids,
    ids_special: full.ids,
    type_ids: expectedTypes(na, nb, b !== null),
    node_type_ids: full.token_type_ids ?? null,
    decode: decode(full.ids, false),
    decode_skip: decode(full.ids, true),
  }) + "\n");
}
out.end();
