#!/usr/bin/env bash
# Builds the libFuzzer targets (GGUF reader, SRT, VTT, text transcripts) with clang into
# build-fuzz/ and runs each for a while.
# Usage: scripts/fuzz.sh [seconds per target, default 60]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECS="${1:-60}"
"$ROOT/scripts/setup_deps.sh"
cmake -S "$ROOT" -B "$ROOT/build-fuzz" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER=clang++ -DDOCDSA_BUILD_FUZZ=ON -DDOCDSA_BUILD_GUI=ON -DDOCDSA_BUILD_TESTS=OFF >/dev/null
cmake --build "$ROOT/build-fuzz" -j "$(nproc)" --target fuzz_gguf fuzz_srt fuzz_vtt fuzz_text
for t in gguf srt vtt text; do
  mkdir -p "$ROOT/build-fuzz/corpus-$t"
  # Seed the transcript fuzzers with the shared corpus's subtitle edge cases when present.
  case $t in srt|vtt) cp "$ROOT"/../shared/corpus/transcripts/edge-cases/$t/* "$ROOT/build-fuzz/corpus-$t/" 2>/dev/null || true ;; esac
  echo "fuzz: $t for ${SECS}s"
  "$ROOT/build-fuzz/tests/fuzz_$t" -max_total_time="$SECS" -max_len=65536 "$ROOT/build-fuzz/corpus-$t" 2>&1 | tail -n 1
done
