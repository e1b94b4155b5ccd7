#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (into build-fuzz/) and runs each for a while.
# Usage: scripts/fuzz.sh [seconds per target, default 60]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECS="${1:-60}"
"$ROOT/scripts/setup_deps.sh"
cmake -S "$ROOT" -B "$ROOT/build-fuzz" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER=clang++ -DDOCDSA_BUILD_FUZZ=ON -DDOCDSA_BUILD_GUI=OFF -DDOCDSA_BUILD_TESTS=OFF >/dev/null
cmake --build "$ROOT/build-fuzz" -j "$(nproc)" --target fuzz_gguf
mkdir -p "$ROOT/build-fuzz/corpus-gguf"
"$ROOT/build-fuzz/tests/fuzz_gguf" -max_total_time="$SECS" -max_len=65536 "$ROOT/build-fuzz/corpus-gguf"
