#!/usr/bin/env bash
# The one script run on the GPU machine for the CUDA backend (issue 19; README.md, "CUDA").
# It builds badam with -DBADAM_CUDA=ON, makes the first GPU call (badam plan --device cuda), runs
# every GPU test (test_backend_ops with the cuda backend, test_cuda_model) and a small benchmark
# (BAdam on a random 130m-shaped Llama, bf16: tokens/s), then prints the plan of an 8B-shaped
# model next to the device's free memory. Budget: under 4 minutes on one H200.
#
# The GPU machine has the CUDA toolkit, CMake and PyTorch but not our C dependencies and no
# package registry, so their .deb files travel with the working tree in build-debs/ (ignored by
# git through .gitignore's build*; about 18 MB; name it in the device tool's `carry`):
#
#   bash scripts/device_check.sh fetch   # here, once: apt-get download the .debs into build-debs/
#   bash scripts/device_check.sh         # on the device: unpack (dpkg -x) and run everything
#
# Without a GPU (a rehearsal on a development machine) it stops at the first GPU call with that
# call's error and exit status 2. Logs go to $OUT (the device tool's folder) when set.
set -uo pipefail
cd "$(dirname "$0")/.."
DEBS=(libjansson4 libjansson-dev libpcre2-8-0 libpcre2-dev libutf8proc2 libutf8proc-dev libssl3
      libssl-dev libopenblas0-openmp libopenblas-openmp-dev libopenblas-dev libgfortran5
      pkgconf pkgconf-bin libpkgconf3)
if [ "${1:-}" = fetch ]; then
  mkdir -p build-debs && (cd build-debs && apt-get download "${DEBS[@]}") || exit 1
  du -sh build-debs
  exit 0
fi

start=$SECONDS
log() { echo "[device_check +$((SECONDS - start))s] $*"; }
fail() { log "FAILED: $*"; exit "${2:-1}"; }
outdir=${OUT:-/tmp/badam-device-out}
mkdir -p "$outdir"

# ---- 1. our C dependencies from the carried .debs, unpacked into a folder of their own
deps=/tmp/badam-deps
rm -rf "$deps" && mkdir -p "$deps"
ls build-debs/*.deb >/dev/null 2>&1 || fail "no build-debs/*.deb: run 'bash scripts/device_check.sh fetch' first and carry build-debs"
for f in build-debs/*.deb; do
  if command -v dpkg >/dev/null; then
    dpkg -x "$f" "$deps" || fail "dpkg -x $f"
  else # no dpkg: a .deb is an ar archive holding data.tar.xz
    (cd "$deps" && ar p "$OLDPWD/$f" data.tar.xz | tar -xJ) || fail "unpacking $f"
  fi
done
lib=$deps/usr/lib/x86_64-linux-gnu
export LD_LIBRARY_PATH=$lib:$lib/openblas-openmp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PKG_CONFIG_PATH=$lib/pkgconfig:$deps/usr/share/pkgconfig PKG_CONFIG_SYSROOT_DIR=$deps
export PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 PKG_CONFIG_ALLOW_SYSTEM_LIBS=1
log "dependencies unpacked into $deps ($(du -sh "$deps" | cut -f1))"

# ---- 2. build (CUDA on, no MPI; no -Werror: the device's compiler may warn where CI's does not)
build=build-gpu
nvcc_bin=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBADAM_CUDA=ON -DBADAM_WERROR=OFF -DBADAM_MPI=OFF \
  -DCMAKE_CUDA_COMPILER="$nvcc_bin" -DPKG_CONFIG_EXECUTABLE="$deps/usr/bin/pkgconf" \
  -DOPENBLAS_LIBRARY="$lib/openblas-openmp/libopenblas.so" \
  -DCBLAS_INCLUDE_DIR="$deps/usr/include/x86_64-linux-gnu/openblas-openmp" \
  "-DCMAKE_C_FLAGS=-I$deps/usr/include -I$deps/usr/include/x86_64-linux-gnu" \
  >"$outdir/cmake.log" 2>&1 || { tail -30 "$outdir/cmake.log"; fail "cmake configure"; }
timeout "${BUILD_TIMEOUT:-170}" cmake --build "$build" -j"${JOBS:-$(nproc)}" --target badam_cli test_backend_ops test_cuda_model test_cuda_gemm_rate \
  >"$outdir/build.log" 2>&1 || { grep -E "error|Error" "$outdir/build.log" | head -30; fail "build"; }
log "built $build"
cli=$build/badam

# ---- 3. the first GPU call
"$cli" plan --device cuda --model models/tiny-random-llama --method badam \
  >"$outdir/first_call.log" 2>&1
rc=$?
cat "$outdir/first_call.log"
[ $rc -eq 0 ] || fail "the first GPU call (badam plan --device cuda) failed: no usable GPU here" 2
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv

# ---- 4. every GPU test
status=0
for t in test_backend_ops test_cuda_model test_cuda_gemm_rate; do
  (cd "$build" && BADAM_SOURCE_DIR=$PWD/.. BADAM_BINARY_DIR=$PWD BADAM_CLI=$PWD/badam \
     OMP_NUM_THREADS=8 timeout 120 "./$t") >"$outdir/$t.log" 2>&1
  trc=$?
  grep -E "^(ok|FAIL|SKIP)|rel err|step [0-9]|backend cuda|failed|TFLOP" "$outdir/$t.log" | head -40
  if grep -q "backend cuda: not available" "$outdir/$t.log"; then trc=1; fi
  log "$t: exit $trc"
  [ $trc -eq 0 ] || status=1
done

# ---- 5. benchmark: BAdam by layer on a random 130m-shaped Llama, bf16, on the GPU
m=/tmp/badam-m130
env -u LD_LIBRARY_PATH python3 bench/compare_torch/make_model.py --size 130m --out "$m" --examples 64 --seq 512 \
  >"$outdir/make_model.log" 2>&1 || log "make_model.py failed (see make_model.log)"
if [ -f "$m/config.json" ]; then
  rm -rf /tmp/badam-bench-out
  t0=$(date +%s.%N)
  timeout 90 "$cli" train --device cuda --model "$m" --data "$m/train.jsonl" --out /tmp/badam-bench-out \
    --method badam --dtype bf16 --max-steps 12 --batch-size 4 --seq-len 512 --no-shuffle \
    --no-group-by-length --no-checkpoint --schedule constant --switch-every 50 \
    >"$outdir/bench_130m.log" 2>&1
  brc=$?
  t1=$(date +%s.%N)
  grep -E "memory plan|device memory|device peak|error" "$outdir/bench_130m.log"
  tail -3 "$outdir/bench_130m.log"
  cp /tmp/badam-bench-out/metrics.jsonl "$outdir/bench_130m_metrics.jsonl" 2>/dev/null
  peak=$(grep -o "[0-9.]* TFLOP/s" "$outdir/test_cuda_gemm_rate.log" | head -1 | cut -d" " -f1)
  env -u LD_LIBRARY_PATH python3 - "$outdir/bench_130m_metrics.jsonl" "$t0" "$t1" "${peak:-0}" <<'PY' || true
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rows = [r for r in rows if "loss" in r]
wall = float(sys.argv[3]) - float(sys.argv[2])
print(f"130m bench: {len(rows)} steps, {wall:.1f} s wall for the whole command")
for r in rows:
    print(f"  step {r['step']}: loss {r['loss']:.4f} tokens/s {r.get('tokens_per_s', 0):.0f} "
          f"fwd {r.get('forward_s', 0):.3f} bwd {r.get('backward_s', 0):.3f} "
          f"upd {r.get('update_s', 0):.3f} s")
later = [r for r in rows[2:] if r.get("step_s")]
if later:
    bt = sum(r["batch_tokens"] for r in later) / sum(r["step_s"] for r in later)
    peak = float(sys.argv[4])
    # 6 N flops per token (forward + full backward), N ~ 134e6 for the 130m shape (an upper
    # bound: BAdam's backward skips the weight gradients of inactive blocks)
    mfu = 6 * 134e6 * bt / (peak * 1e12) if peak > 0 else float("nan")
    print(f"130m bench: {bt:.0f} batch tokens/s after 2 warm-up steps; 6N-MFU {mfu:.3%} "
          f"of the measured bf16 GEMM rate {peak} TFLOP/s")
PY
  log "130m benchmark: exit $brc"
  [ $brc -eq 0 ] || status=1
  # the same run, 6 steps, with the shared-memory tiled attention (BADAM_CUDA_ATTN=tiled)
  if [ "${BENCH_TILED:-1}" = 1 ]; then
    rm -rf /tmp/badam-bench-tiled
    BADAM_CUDA_ATTN=tiled timeout 45 "$cli" train --device cuda --model "$m" --data "$m/train.jsonl" \
      --out /tmp/badam-bench-tiled --method badam --dtype bf16 --max-steps 6 --batch-size 4 \
      --seq-len 512 --no-shuffle --no-group-by-length --no-checkpoint --schedule constant \
      --switch-every 50 >"$outdir/bench_130m_tiled.log" 2>&1
    trc=$?
    cp /tmp/badam-bench-tiled/metrics.jsonl "$outdir/bench_130m_tiled_metrics.jsonl" 2>/dev/null
    env -u LD_LIBRARY_PATH python3 - "$outdir/bench_130m_tiled_metrics.jsonl" <<'PY' || true
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for r in [r for r in rows if "loss" in r]:
    print(f"  tiled step {r['step']}: loss {r['loss']:.4f} tokens/s {r.get('tokens_per_s', 0):.0f} "
          f"fwd {r.get('forward_s', 0):.3f} bwd {r.get('backward_s', 0):.3f}")
PY
    log "130m benchmark, tiled attention: exit $trc"
    [ $trc -eq 0 ] || status=1
  fi
fi

# ---- 6. the 8B-shaped plan against the device's free memory (config only)
p8=/tmp/badam-8b && mkdir -p $p8
cat >$p8/config.json <<'JSON'
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
 "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
 "num_key_value_heads": 8, "vocab_size": 128256, "tie_word_embeddings": false,
 "rope_theta": 500000.0, "max_position_embeddings": 8192, "rms_norm_eps": 1e-5,
 "hidden_act": "silu", "torch_dtype": "bfloat16"}
JSON
"$cli" plan --device cuda --model $p8 --method badam --seq-len 1024 --batch-size 2 --recompute \
  2>&1 | tee "$outdir/plan_8b.log"

log "done: status $status"
exit $status
