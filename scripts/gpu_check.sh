#!/usr/bin/env bash
# GPU check (issue 13): builds the CUDA kernels with all cores, runs the gpu-labelled tests
# (each CUDA op against the CPU reference) and the device benchmarks, and prints one table.
# Made for a lent GPU machine (one H200, 16 cores) and to finish there within 10 minutes. It
# configures the whole project (no GUI) and builds only the CUDA targets, which adds the CUDA
# backend's tests against the CPU backend; where the application's libraries (Qt, Poppler, ...)
# are missing it falls back to the standalone kernels/cuda project (kernels, op tests and the
# benchmark: a C++ compiler, the CUDA Toolkit and GoogleTest).
# Usage: scripts/gpu_check.sh [build dir]   (default build-gpu/; DOCDSA_CUDA_ARCH=90 builds one
# architecture; DOCDSA_GPU_STANDALONE=1 skips the whole-project attempt).
# Exit: 0 all ran and passed, 1 a build step or test failed, 77 no GPU.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build-gpu}"
JOBS="$(nproc)"
NVCC="$(command -v nvcc || true)"
[ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
[ -n "$NVCC" ] || { echo "gpu_check: nvcc not found (install the CUDA Toolkit)" >&2; exit 1; }
LOG="$BUILD/gpu_check.log"
mkdir -p "$BUILD"
: >"$LOG"
step() { printf '%-8s %6ss  %s\n' "$1" "$2" "$3"; }
now() { date +%s; }
START=$(now)

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

t=$(now)
ARCH=()
[ -n "${DOCDSA_CUDA_ARCH:-}" ] && ARCH=(-DCMAKE_CUDA_ARCHITECTURES="$DOCDSA_CUDA_ARCH")
COMMON=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_COMPILER="$NVCC" "${ARCH[@]}")
if [ "${DOCDSA_GPU_STANDALONE:-0}" != 1 ] &&
   cmake -S "$ROOT" -B "$BUILD" "${COMMON[@]}" -DDOCDSA_CUDA=ON -DDOCDSA_BUILD_GUI=OFF >>"$LOG" 2>&1; then
  MODE="whole project"
  TARGETS=(--target cuda_tests cuda_host_tests cuda_backend_tests cuda_backend_unit_tests cuda_backend_ops_tests cuda_device_e2e_tests docdsa-cuda-bench)
  BENCH="$BUILD/kernels/cuda/docdsa-cuda-bench"
else
  rm -rf "$BUILD/CMakeCache.txt" "$BUILD/CMakeFiles"  # a cache made for the other source tree
  echo "gpu_check: building the standalone kernels/cuda project" | tee -a "$LOG"
  MODE="standalone kernels/cuda"
  TARGETS=()
  BENCH="$BUILD/docdsa-cuda-bench"
  cmake -S "$ROOT/kernels/cuda" -B "$BUILD" "${COMMON[@]}" >>"$LOG" 2>&1 || MODE=""
fi
if [ -n "$MODE" ] && cmake --build "$BUILD" -j "$JOBS" "${TARGETS[@]}" >>"$LOG" 2>&1; then
  BUILD_OK=1
else
  BUILD_OK=0
  tail -n 40 "$LOG" >&2
fi
BUILD_S=$(( $(now) - t ))

TESTS="not run"
RC=0
if [ "$BUILD_OK" = 1 ]; then
  t=$(now)
  (cd "$BUILD" && ctest -R '^cuda\.' --output-on-failure --timeout 300 -j 4) >"$BUILD/ctest.log" 2>&1
  CT=$?
  TEST_S=$(( $(now) - t ))
  PASSED=$(grep -c ' Passed ' "$BUILD/ctest.log")
  SKIPPED=$(grep -c '\*\*\*Skipped' "$BUILD/ctest.log")
  FAILED=$(grep -cE '\*\*\*Failed|\*\*\*Exception|\*\*\*Timeout' "$BUILD/ctest.log")
  TESTS="$PASSED passed, $SKIPPED skipped, $FAILED failed"
  [ "$CT" = 0 ] || RC=1
  [ "$FAILED" = 0 ] || grep -E '\*\*\*Failed|\*\*\*Exception|\*\*\*Timeout' "$BUILD/ctest.log" >&2
  t=$(now)
  timeout 300 "$BENCH" >"$BUILD/bench.txt" 2>&1
  BR=$?
  BENCH_S=$(( $(now) - t ))
  [ "$BR" = 0 ] || { [ "$BR" = 77 ] && [ "$RC" = 0 ] && RC=77; [ "$BR" != 77 ] && RC=1; }
else
  RC=1
fi

echo
echo "== DocDSA GPU check ($(date -u +%FT%TZ)) =="
step build "$BUILD_S" "$([ "$BUILD_OK" = 1 ] && echo ok || echo FAILED), ${MODE:-no configure} (log: $LOG)"
[ "$BUILD_OK" = 1 ] && step tests "$TEST_S" "ctest -R '^cuda\.' (labels gpu, unit): $TESTS (log: $BUILD/ctest.log)"
[ "$BUILD_OK" = 1 ] && step bench "$BENCH_S" "docdsa-cuda-bench exit $BR"
[ -f "$BUILD/bench.txt" ] && { echo; cat "$BUILD/bench.txt"; }
echo
echo "total $(( $(now) - START ))s, exit $RC"
exit $RC
