#!/usr/bin/env bash
# Builds the unit tests with AddressSanitizer + UndefinedBehaviorSanitizer (CMake preset
# "asan", into build-asan/) and runs them. Any report fails the run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
"$ROOT/scripts/setup_deps.sh"
cmake --preset asan >/dev/null
cmake --build --preset asan -j "$(nproc)" --target unit_tests core_tests shard_tests storage_ingest_tests docdsa
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --preset asan -j "$(nproc)"
