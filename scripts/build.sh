#!/usr/bin/env bash
# Configures and builds DocDSA (Release, Ninja) into build/ (or $DOCDSA_BUILD_DIR), with the
# CUDA kernels when nvcc is installed (DOCDSA_CUDA=0|1 overrides).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${DOCDSA_BUILD_DIR:-$ROOT/build}"
# The CUDA kernels (kernels/cuda) build wherever nvcc is: DOCDSA_CUDA=0 leaves them out, =1
# insists (configure fails without the toolkit). Without a GPU their tests report as skipped.
CUDA_ARGS=()
NVCC="$(command -v nvcc || true)"
[ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
case "${DOCDSA_CUDA:-auto}" in
  0|OFF|off) CUDA_ARGS=(-DDOCDSA_CUDA=OFF) ;;
  1|ON|on) CUDA_ARGS=(-DDOCDSA_CUDA=ON ${NVCC:+-DCMAKE_CUDA_COMPILER=$NVCC}) ;;
  *) [ -n "$NVCC" ] && CUDA_ARGS=(-DDOCDSA_CUDA=ON -DCMAKE_CUDA_COMPILER="$NVCC") ;;
esac
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release "${CUDA_ARGS[@]}" "$@" >/dev/null
cmake --build "$BUILD" -j "$(nproc)"
