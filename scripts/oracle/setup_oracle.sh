#!/usr/bin/env bash
# Installs the oracle, llama.cpp through the pinned PyPI package llama-cpp-python, into
# .venv-oracle (git-ignored). It builds llama.cpp from source: several minutes on 2 cores.
# Only needed to regenerate test fixtures or to run scripts/bench_llamacpp.py.
#
# Build flags: not -march=native (GGML_NATIVE). A native build on a Xeon with AMX segfaulted in
# its first eval, so the build enables exactly the x86 extensions this CPU reports in
# /proc/cpuinfo and leaves AMX off. The flags are kept in .venv-oracle/build-flags.txt, which
# scripts/bench_llamacpp.py prints; a later run on a CPU with other flags rebuilds.
# DOCDSA_ORACLE_CMAKE_ARGS="..." replaces the computed flags.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv-oracle"
LLAMA_CPP_PYTHON_VERSION=0.3.36

cpu_flags() {
  local f="" args=(-DGGML_NATIVE=OFF)
  [ -r /proc/cpuinfo ] && f=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
  has() { case "$f" in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
  onoff() { if has "$2"; then args+=("-D$1=ON"); else args+=("-D$1=OFF"); fi; }
  onoff GGML_SSE42 sse4_2
  onoff GGML_AVX avx
  onoff GGML_AVX2 avx2
  onoff GGML_FMA fma
  onoff GGML_F16C f16c
  onoff GGML_BMI2 bmi2
  onoff GGML_AVX_VNNI avx_vnni
  # GGML_AVX512 turns on -mavx512f/cd/vl/dq/bw together: all five must be there.
  if has avx512f && has avx512cd && has avx512vl && has avx512dq && has avx512bw; then
    args+=(-DGGML_AVX512=ON)
    onoff GGML_AVX512_VBMI avx512vbmi
    onoff GGML_AVX512_VNNI avx512_vnni
    onoff GGML_AVX512_BF16 avx512_bf16
  else
    args+=(-DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF)
  fi
  args+=(-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF)
  echo "${args[*]}"
}
FLAGS="${DOCDSA_ORACLE_CMAKE_ARGS:-$(cpu_flags)}"

if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/build-flags.txt" 2>/dev/null)" = "$FLAGS" ] &&
  "$VENV/bin/python" -c "import llama_cpp, sys; sys.exit(llama_cpp.__version__ != '$LLAMA_CPP_PYTHON_VERSION')" 2>/dev/null; then
  echo "oracle: llama-cpp-python $LLAMA_CPP_PYTHON_VERSION already in $VENV, built with: $FLAGS"
  exit 0
fi
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q numpy
echo "oracle: building llama-cpp-python $LLAMA_CPP_PYTHON_VERSION (llama.cpp from source; takes a while)"
echo "oracle: llama.cpp CMake flags: $FLAGS"
rm -f "$VENV/build-flags.txt"
# --no-cache-dir: a wheel cached from a build with other flags must not be reused.
CMAKE_ARGS="$FLAGS" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" "$VENV/bin/pip" install -q --no-cache-dir --force-reinstall \
  --no-deps "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION"
"$VENV/bin/pip" install -q "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION"  # its pure-Python dependencies
echo "$FLAGS" >"$VENV/build-flags.txt"
# A first eval proves the build runs on this CPU (the native build crashed right there).
MODEL="${DOCDSA_MODEL:-$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf}" "$VENV/bin/python" - <<'PY'
import os, llama_cpp
print("oracle: llama.cpp system info:", llama_cpp.llama_print_system_info().decode().strip())
model = os.environ["MODEL"]
if os.path.exists(model):
    llm = llama_cpp.Llama(model_path=model, n_ctx=64, verbose=False)
    llm.eval(llm.tokenize(b"The first eval runs on this CPU."))
    print(f"oracle: first eval on {os.path.basename(model)} ran")
PY
echo "oracle: ready in $VENV"
