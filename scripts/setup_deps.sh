#!/usr/bin/env bash
# Installs the Debian 12 packages DocDSA builds and tests with, when any are missing.
# Idempotent; needs root (or sudo) only when something must be installed.
# Installs with --no-install-recommends: every package the build reads must be listed here or
# be a Depends of one listed (scripts/check_deps_closure.sh, run by scripts/test.sh, checks it).
# Usage: scripts/setup_deps.sh [--list]   (--list: print the package names and exit)
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  python3 python3-pip python3-venv unzip
  libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev libeigen3-dev libxxhash-dev python3-jsonschema libsqlite3-dev sqlite3
  libgtest-dev libgmock-dev libbenchmark-dev
  qt6-base-dev libqt6opengl6-dev qt6-charts-dev libpoppler-qt6-dev poppler-utils desktop-file-utils
  libtesseract-dev libleptonica-dev tesseract-ocr-eng tesseract-ocr-fra tesseract-ocr-osd img2pdf
  clang libclang-rt-14-dev
)
# Optional: the CUDA Toolkit for the CUDA kernels (cmake -DDOCDSA_CUDA=ON; scripts/build.sh turns
# it on where nvcc is). Not in the default list: a build without CUDA needs nothing of it, and
# CI machines have no GPU. DOCDSA_WITH_CUDA=1 adds Debian's toolkit (non-free: nvcc, cuBLAS)
# unless an nvcc is already installed (NVIDIA's cuda-toolkit-13-0 lives in /usr/local/cuda).
if [ "${DOCDSA_WITH_CUDA:-0}" = 1 ] && ! command -v nvcc >/dev/null && [ ! -x /usr/local/cuda/bin/nvcc ]; then
  PKGS+=(nvidia-cuda-toolkit nvidia-cuda-dev)
fi
if [ "${1:-}" = "--list" ]; then
  printf '%s\n' "${PKGS[@]}"
  exit 0
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PKGS[@]} packages present"
  exit 0
fi
echo "deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done"
